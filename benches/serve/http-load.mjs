// A keep-alive HTTP/1.1 load generator for small GET responses (the /health comparison): N raw
// TCP connections, each keeping `depth` requests in flight (depth 1 = one request at a time, as
// health probes and autocannon's default send them; depth > 1 = HTTP pipelining, which puts the
// server's per-request cost in front of the syscall cost). Responses are parsed by their
// Content-Length, so two servers answering different bytes are still counted the same way.
import { readFileSync } from 'node:fs';
import net from 'node:net';

// USER_HZ: 100 on every Linux build that matters (getconf CLK_TCK).
const CLOCK_TICKS = 100;

const HEADER_END = Buffer.from('\r\n\r\n');

/** Number of complete responses at the front of `buf` and the bytes they span. */
function parseResponses(buf, statusCounts) {
  let offset = 0;
  let count = 0;
  for (;;) {
    const headEnd = buf.indexOf(HEADER_END, offset);
    if (headEnd < 0) break;
    const head = buf.toString('latin1', offset, headEnd);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const bodyLength = m ? Number(m[1]) : 0;
    const end = headEnd + 4 + bodyLength;
    if (end > buf.length) break;
    const status = head.slice(9, 12);
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    offset = end;
    count++;
  }
  return { count, consumed: offset };
}

/**
 * Sends `GET path` on `connections` keep-alive sockets for `seconds` (after `warmupSeconds` not
 * counted). Returns responses per second and the status codes seen.
 */
export async function httpLoad({ port, path = '/health', seconds = 3, warmupSeconds = 0.5, connections = 16, depth = 1, headers = {} }) {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`, 'latin1');
  const batch = Buffer.concat(Array.from({ length: depth }, () => request));
  const statusCounts = {};
  let counted = 0;
  let counting = false;
  const started = performance.now();
  const stopAt = started + (warmupSeconds + seconds) * 1000;
  let countFrom = 0;
  const warm = setTimeout(() => {
    counting = true;
    countFrom = performance.now();
  }, warmupSeconds * 1000);
  // One connection until the server closes it (llama-server's HTTP library does after 100
  // requests) or the time is up; a closed one is replaced while time remains.
  const connection = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      let pending = Buffer.alloc(0);
      let inFlight = 0;
      socket.on('connect', () => {
        inFlight = depth;
        socket.write(batch);
      });
      socket.on('data', (chunk) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        const { count, consumed } = parseResponses(pending, statusCounts);
        if (count === 0) return;
        pending = pending.subarray(consumed);
        inFlight -= count;
        if (counting) counted += count;
        if (performance.now() >= stopAt) {
          socket.destroy();
          resolve();
          return;
        }
        // Refill to `depth`: one write for the whole refill.
        const refill = depth - inFlight;
        inFlight = depth;
        socket.write(refill === depth ? batch : Buffer.concat(Array.from({ length: refill }, () => request)));
      });
      socket.on('error', reject);
      socket.on('close', resolve);
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < stopAt) await connection();
    })
  );
  clearTimeout(warm);
  const measured = (performance.now() - countFrom) / 1000;
  return { reqPerSec: counted / measured, responses: counted, statusCounts, connections, depth };
}

/** CPU seconds (user + system, all threads) a process has used so far; Linux /proc only. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the ")" that closes the command name: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
