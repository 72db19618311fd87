// OpenAI's response objects (chat.completion, chat.completion.chunk, text_completion), built from
// engine events. Field sets follow the openai npm client's types so its parsers accept them.
import { randomBytes } from 'node:crypto';
import type { DoneEvent, GeneratedToken } from './engine.js';

// Random per process, then a counter: unique across restarts, and no crypto call per request
// (randomBytes was 11% of a /health-only load).
const PROCESS_TOKEN = randomBytes(9).toString('base64url');
let counter = 0;

export function newId(prefix: string): string {
  counter += 1;
  return `${prefix}-${PROCESS_TOKEN}${counter.toString(36)}`;
}

export function usage(done: DoneEvent): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const { promptTokens, completionTokens } = done.usage;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

const bytesOf = (text: string): number[] => [...Buffer.from(text, 'utf8')];

/** `choices[].logprobs` of a chat completion (or of one chunk). */
export function chatLogprobs(tokens: GeneratedToken[]): { content: unknown[]; refusal: null } {
  return {
    content: tokens.map((t) => ({
      token: t.text,
      logprob: t.logprob,
      bytes: bytesOf(t.text),
      top_logprobs: (t.topLogprobs ?? []).map((alt) => ({ token: alt.text, logprob: alt.logprob, bytes: bytesOf(alt.text) })),
    })),
    refusal: null,
  };
}

/** `choices[].logprobs` of a legacy completion; `offset` is where these tokens start in the text. */
export function completionLogprobs(tokens: GeneratedToken[], offset: number, withTop: boolean) {
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.text.length;
  }
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: withTop ? tokens.map((t) => Object.fromEntries((t.topLogprobs ?? []).map((alt) => [alt.text, alt.logprob]))) : null,
    text_offset: textOffset,
  };
}

/** One server-sent event. */
export function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  // Tells nginx-style proxies not to buffer the stream.
  'X-Accel-Buffering': 'no',
};
