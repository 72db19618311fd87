// Worker thread for parallel validation: receives whole lines as raw UTF-8 bytes (the reader
// cuts at newlines, which never fall inside a multi-byte character), checks them with
// checkLines, and sends back the typed arrays (transferred, not copied). Lines are numbered
// from 1 within each job; the main thread adds the job's offset.
import { parentPort } from 'node:worker_threads';
import { checkLines } from './check-lines.js';
import { OVERLONG_LINE } from './lines.js';

export interface ValidateJob {
  id: number;
  bytes: ArrayBuffer;
  length: number;
  /** Strip a UTF-8 BOM (the file's first job). */
  first: boolean;
  maxChars: number;
  /** Lines longer than this many characters become LINE_TOO_LONG, as in readLineBatches. */
  maxLine: number;
  hashes: boolean;
}

parentPort?.on('message', (job: ValidateJob) => {
  let text = Buffer.from(job.bytes, 0, job.length).toString('utf8');
  if (job.first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i]!;
    if (s.length > job.maxLine) lines[i] = OVERLONG_LINE;
    else if (s.charCodeAt(s.length - 1) === 13) lines[i] = s.slice(0, -1);
  }
  const r = checkLines(lines, 1, { maxChars: job.maxChars, hashes: job.hashes });
  parentPort!.postMessage({ id: job.id, ...r }, [r.flags.buffer, r.hashA.buffer, r.hashB.buffer] as ArrayBuffer[]);
});
