// Draining connectors in tests: every record, or the error a connector is expected to raise.
import type { SourceRecord } from '../../ts/connectors/types.js';

export async function all(it: AsyncIterable<SourceRecord>): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

export async function failure(it: AsyncIterable<SourceRecord>): Promise<Error & { code?: string }> {
  try {
    await all(it);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the connector to fail');
}
