// `foremforge serve --dir S`: the inference service (OpenAI-compatible API, /predict, /metrics)
// on 127.0.0.1:8001. SIGTERM or Ctrl-C stop accepting, let in-flight requests finish, exit 0.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ForgeError } from '../../ts/errors.js';
import { createLogger, parseLogLevel } from '../../ts/serve/log.js';
import { startService } from '../../ts/serve/service.js';
import { numberFlag } from '../flags.js';

interface ServeFlags {
  dir: string;
  port?: string;
  host?: string;
  threads?: string;
  spinning?: string;
  maxBatch: string;
  maxQueue: string;
  timeoutS: string;
  drainS: string;
  maxBodyKb: string;
  apiKeyFile?: string;
  cors?: string | boolean;
  logPrompts?: boolean;
}

const intFlag = (flag: string, value: string, min: number, max = 0xffff_ffff): number =>
  numberFlag(flag, value, { integer: true, min, max });

function onOff(flag: string, value: string): boolean {
  if (value === 'on' || value === 'off') return value === 'on';
  throw new ForgeError('INVALID_ARGUMENT', `${flag} must be on or off, got "${value}"`);
}

function apiKey(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let key: string;
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ForgeError('INVALID_ARGUMENT', `--api-key-file ${file}: ${(err as Error).message}`);
    }
    if (key === '') throw new ForgeError('INVALID_ARGUMENT', `--api-key-file ${file} is empty`);
    return key;
  }
  const fromEnv = process.env.TINYFORGE_API_KEY?.trim();
  return fromEnv === '' ? undefined : fromEnv;
}

/** --port/--host over tinyforge.config.json's serve.port/serve.host (and TINYFORGE_SERVE_*). */
async function listenAddress(flags: ServeFlags): Promise<{ port: number; host: string }> {
  const { applyFlags, loadConfig } = await import('../../ts/config/load.js');
  const port = flags.port === undefined ? undefined : intFlag('--port', flags.port, 0, 65_535);
  return applyFlags(loadConfig().config, { port, host: flags.host }, { group: 'serve' }).serve;
}

export const serveCommand = new Command('serve')
  .description(
    'Serve a model over HTTP: OpenAI-compatible /v1/chat/completions, /v1/completions and /v1/models, plus /predict, /health, /ready and /metrics.'
  )
  .requiredOption('--dir <path>', 'model (HF folder or .gguf), training run folder (base + adapter) or export folder')
  .option('--port <n>', 'TCP port, 0 = any free port (default: serve.port of tinyforge.config.json, else 8001)')
  .option('--host <addr>', 'address to bind; 0.0.0.0 exposes the service to the network (default: serve.host, else 127.0.0.1)')
  .option('--threads <n>', 'compute threads (default: one per core)')
  .option(
    '--spinning <on|off>',
    'ORT compute threads spin between ops instead of sleeping: faster on a host the service has to itself, much slower on a loaded one',
    'on'
  )
  .option('--max-batch <n>', 'generations running at once (the engine may allow fewer)', '8')
  .option('--max-queue <n>', 'generations waiting for a slot; beyond that: 503 + Retry-After', '64')
  .option('--timeout-s <n>', 'per-request limit in seconds, queue wait included', '120')
  .option('--drain-s <n>', 'on SIGTERM, seconds to let in-flight requests finish', '30')
  .option('--max-body-kb <n>', 'largest request body in KiB', '1024')
  .option('--api-key-file <file>', 'require "Authorization: Bearer <key>" (key read from the file; or set TINYFORGE_API_KEY)')
  .option('--cors [origin]', 'allow browser calls from origin (default *)')
  .option('--log-prompts', 'put prompts in the request log (off: logs carry token counts only)')
  .exitOverride()
  .action(async (flags: ServeFlags) => {
    const options = {
      dir: flags.dir,
      ...(await listenAddress(flags)),
      maxBatch: intFlag('--max-batch', flags.maxBatch, 1),
      maxQueue: intFlag('--max-queue', flags.maxQueue, 0),
      timeoutMs: intFlag('--timeout-s', flags.timeoutS, 1) * 1000,
      drainTimeoutMs: intFlag('--drain-s', flags.drainS, 0) * 1000,
      bodyLimitBytes: intFlag('--max-body-kb', flags.maxBodyKb, 1) * 1024,
      logPrompts: flags.logPrompts === true,
      logger: createLogger(parseLogLevel(process.env.LOG_LEVEL)),
      ...(flags.threads === undefined ? {} : { threads: intFlag('--threads', flags.threads, 1, 1024) }),
      spinning: onOff('--spinning', flags.spinning ?? 'on'),
      ...(flags.cors === undefined ? {} : { corsOrigin: flags.cors === true ? '*' : String(flags.cors) }),
    };
    const key = apiKey(flags.apiKeyFile);
    // The candle engine computes on rayon's pool, sized from this variable when first used.
    if (options.threads !== undefined && process.env.RAYON_NUM_THREADS === undefined)
      process.env.RAYON_NUM_THREADS = String(options.threads);
    const service = await startService({ ...options, ...(key === undefined ? {} : { apiKey: key }) });
    await service.stopped;
    process.exit(0);
  });
