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
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const v = (value ?? 'info').toLowerCase();
  return v in LEVELS ? (v as LogLevel) : 'info';
}

export function createLogger(
  level: LogLevel = parseLogLevel(process.env.LOG_LEVEL),
  write: (line: string) => void = (l) => process.stdout.write(l)
): Logger {
  const threshold = LEVELS[level];
  const emit =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields: LogFields = {}) => {
      if (LEVELS[lvl] < threshold) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields })}\n`);
    };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
