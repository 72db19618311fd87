// Prometheus metrics (GET /metrics), one registry per server so several servers in one process
// (tests) do not collide. Names follow Prometheus conventions: _total counters, _seconds units.
// prom-client is imported file by file: its index also loads the cluster aggregator, Pushgateway
// (http, https, zlib), Summary (tdigest) and the default metrics (@opentelemetry/api), ~0.1 s of
// startup before the model can load. The default (process) metrics load after the server
// listens, while the model loads on its own thread (`loadDefaults`).
import type { Counter, Gauge, Histogram } from 'prom-client';
import CounterClass from 'prom-client/lib/counter.js';
import GaugeClass from 'prom-client/lib/gauge.js';
import HistogramClass from 'prom-client/lib/histogram.js';
import RegistryClass from 'prom-client/lib/registry.js';
import { HttpMetrics } from './http-metrics.js';

// HTTP latency spans a /health (~0.1 ms) to a long generation (~minutes).
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
// The goal for p99 time to first token at 8 clients is 300 ms: buckets resolve around it.
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30];
const TOKENS_PER_SECOND_BUCKETS = [1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];

export class ServerMetrics {
  readonly registry = new RegistryClass();
  /** Requests and latency by route, method and status (see http-metrics.ts). */
  readonly http: HttpMetrics;
  readonly timeToFirstToken: Histogram<'route'>;
  readonly promptTokens: Counter<'route'>;
  readonly generatedTokens: Counter<'route'>;
  readonly tokensPerSecond: Histogram<'route'>;
  readonly queueDepth: Gauge;
  readonly activeBatch: Gauge;
  readonly cancelled: Counter<'reason'>;
  readonly rejected: Counter<'reason'>;
  readonly loadSeconds: Gauge;
  readonly ready: Gauge;
  private defaults: Promise<void> | undefined;

  constructor() {
    const registers = [this.registry];
    this.http = new HttpMetrics(this.registry, LATENCY_BUCKETS);
    this.timeToFirstToken = new HistogramClass({
      name: 'tinyforge_time_to_first_token_seconds',
      help: 'Time from request to the first generated text (queue wait included).',
      labelNames: ['route'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.promptTokens = new CounterClass({
      name: 'tinyforge_prompt_tokens_total',
      help: 'Prompt tokens of generations that started.',
      labelNames: ['route'],
      registers,
    });
    this.generatedTokens = new CounterClass({
      name: 'tinyforge_generated_tokens_total',
      help: 'Tokens generated (counted as the engine reports them).',
      labelNames: ['route'],
      registers,
    });
    this.tokensPerSecond = new HistogramClass({
      name: 'tinyforge_generation_tokens_per_second',
      help: 'Generated tokens per second of engine time, per finished request.',
      labelNames: ['route'],
      buckets: TOKENS_PER_SECOND_BUCKETS,
      registers,
    });
    this.queueDepth = new GaugeClass({ name: 'tinyforge_queue_depth', help: 'Requests waiting for a generation slot.', registers });
    this.activeBatch = new GaugeClass({ name: 'tinyforge_active_batch_size', help: 'Generations running in the engine now.', registers });
    this.cancelled = new CounterClass({
      name: 'tinyforge_generations_cancelled_total',
      help: 'Generations abandoned: client disconnected, timeout or shutdown.',
      labelNames: ['reason'],
      registers,
    });
    this.rejected = new CounterClass({
      name: 'tinyforge_requests_rejected_total',
      help: 'Generation requests refused before queueing (queue_full, shutting_down).',
      labelNames: ['reason'],
      registers,
    });
    this.loadSeconds = new GaugeClass({
      name: 'tinyforge_model_load_seconds',
      help: 'Seconds the engine took to load the model.',
      registers,
    });
    this.ready = new GaugeClass({
      name: 'tinyforge_ready',
      help: '1 when the model is loaded and the server accepts generations.',
      registers,
    });
  }

  /** Adds the process metrics (CPU, RSS, heap, event-loop lag...); idempotent. */
  loadDefaults(): Promise<void> {
    this.defaults ??= import('prom-client/lib/defaultMetrics.js').then(({ default: collectDefaultMetrics }) =>
      collectDefaultMetrics({ register: this.registry, prefix: 'tinyforge_' })
    );
    return this.defaults;
  }

  /** The exposition text; the process metrics are in it from the first scrape on. */
  async text(): Promise<string> {
    await this.loadDefaults();
    return this.registry.metrics();
  }
}
