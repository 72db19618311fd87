// One JSON object per line on stdout (what log shippers expect from a container). LOG_LEVEL
// picks the threshold: debug | info (default) | warn | error | silent.
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes lines still buffered. */
  flush(): void;
  /** Whether lines of `level` are written (lets a hot path skip building their fields). */
  enabled?(level: Exclude<LogLevel, 'silent'>): boolean;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const v = (value ?? 'info').toLowerCase();
  return v in LEVELS ? (v as LogLevel) : 'info';
}

// A closed stdout (the log reader went away: `serve | head`, a dead collector) must not take the
// server down with an unhandled EPIPE; the lines are lost, the requests still get answers.
let stdoutGuarded = false;
function writeStdout(text: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', () => undefined);
  }
  if (!process.stdout.destroyed) process.stdout.write(text);
}

const exitFlushers = new Set<() => void>();
function onExit(flush: () => void): void {
  if (exitFlushers.size === 0)
    process.once('exit', () => {
      for (const f of exitFlushers) f();
    });
  exitFlushers.add(flush);
}

/**
 * Lines are batched and written once per event-loop turn: a write to a pipe is a synchronous
 * syscall on Linux, and one per request was a third of the CPU of a /health-only load. Whatever
 * is pending is written before the process exits.
 */
export function createLogger(level: LogLevel = parseLogLevel(process.env.LOG_LEVEL), write: (text: string) => void = writeStdout): Logger {
  const threshold = LEVELS[level];
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    write(text);
  };
  onExit(flush);
  // Many lines share a millisecond under load: format its timestamp once.
  let lastMs = -1;
  let lastTime = '';
  const emit = (lvl: Exclude<LogLevel, 'silent'>) => {
    const head = `","level":"${lvl}","msg":`;
    return (msg: string, fields?: LogFields): void => {
      if (LEVELS[lvl] < threshold) return;
      const now = Date.now();
      if (now !== lastMs) {
        lastMs = now;
        lastTime = new Date(now).toISOString();
      }
      if (pending.length === 0) setImmediate(flush);
      // The fixed keys first, then the fields' own object: one stringify, no merged copy.
      const rest = fields === undefined ? '}' : JSON.stringify(fields);
      pending.push(`{"time":"${lastTime}${head}${JSON.stringify(msg)}${rest.length > 2 ? `,${rest.slice(1)}` : '}'}\n`);
    };
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    flush,
    enabled: (lvl) => LEVELS[lvl] >= threshold,
  };
}
