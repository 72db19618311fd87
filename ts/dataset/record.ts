// The one JSONL record schema every connector produces, the dataset tools check and the trainer
// reads (rules: ./README.md, "The record schema"; checked by check-record.ts here and by
// crates/train/src/data/record.rs in Rust, both pinned to test/fixtures/records/schema-cases.json):
//   {"input": "...", "output": "...", "system"?: "..."}  kind "pair"
//   {"messages": [{"role": "...", "content": "..."}]}    kind "chat"
//   {"text": "..."}                                       kind "text"
// Keys starting with "_" (e.g. "_source", where the record came from) are metadata.

export type RecordKind = 'pair' | 'chat' | 'text';
export const RECORD_KINDS: readonly RecordKind[] = ['pair', 'chat', 'text'];

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
/** Matched exactly, case included. */
export const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant', 'tool'];

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface PairRecord {
  input: string;
  output: string;
  /** Becomes the chat's first message; blank means absent. */
  system?: string;
}

export interface ChatRecord {
  messages: ChatMessage[];
}

export interface TextRecord {
  text: string;
}

export type DataRecord = PairRecord | ChatRecord | TextRecord;

export function recordKind(record: DataRecord): RecordKind {
  if ('messages' in record) return 'chat';
  if ('text' in record) return 'text';
  return 'pair';
}

const BLANK = /^\p{White_Space}*$/u;

/**
 * Blank: every character is Unicode White_Space (U+00A0 and U+0085 are, the BOM U+FEFF is not).
 * Not `trim()`, whose set differs (it strips U+FEFF, keeps U+0085); Rust's `char::is_whitespace`
 * is this same set.
 */
export function isBlank(s: string): boolean {
  return BLANK.test(s);
}

/** The chat a record becomes for a chat template (text records have none). */
export function recordMessages(record: DataRecord): ChatMessage[] | undefined {
  if ('messages' in record) return record.messages.map((m) => ({ role: m.role, content: m.content }));
  if ('input' in record) {
    const out: ChatMessage[] = [];
    if (typeof record.system === 'string' && !isBlank(record.system)) out.push({ role: 'system', content: record.system });
    out.push({ role: 'user', content: record.input }, { role: 'assistant', content: record.output });
    return out;
  }
  return undefined;
}
