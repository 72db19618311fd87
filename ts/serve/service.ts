// `foremforge serve` as a function: listen first (so /health and /ready answer during the load),
// load the engine for `dir`, then serve until SIGTERM/SIGINT, which drains and resolves.
import { type LoadEngineOptions, loadEngine, resolveServeTarget } from './load-engine.js';
import { InferenceServer, type ServerOptions } from './server.js';

export interface ServiceOptions extends ServerOptions, LoadEngineOptions {
  /** Model file/folder, training run folder or export folder. */
  dir: string;
}

export interface RunningService {
  server: InferenceServer;
  port: number;
  /** Resolves once the server stopped (after a signal or `stop()`). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

export async function startService(options: ServiceOptions, handleSignals = true): Promise<RunningService> {
  // Resolve --dir before binding the port, so a typo fails fast with a clear message.
  const target = resolveServeTarget(options.dir);
  const server = new InferenceServer(options);
  // The model loads on native threads from here; the server listens meanwhile, so /health and
  // /ready answer during the load, and the rest of startup (uWS, the process metrics' modules)
  // overlaps with it instead of adding to the time to /ready.
  const loading = loadEngine(target, options);
  // Awaited below; until then a failed load must not count as an unhandled rejection.
  loading.catch(() => undefined);
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    void loading.then(
      (engine) => engine.close(),
      () => undefined
    );
    throw err;
  }
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const stop = async (): Promise<void> => {
    await server.shutdown();
    resolveStopped();
  };
  if (handleSignals) {
    const onSignal = (): void => void stop();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    void stopped.then(() => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    });
  }
  try {
    server.setEngine(await loading);
  } catch (err) {
    await stop();
    throw err;
  }
  return { server, port, stopped, stop };
}
