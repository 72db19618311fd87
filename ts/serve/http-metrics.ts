// The two metrics every HTTP request touches: tinyforge_http_requests_total{route,method,status}
// and tinyforge_http_request_duration_seconds{route,status}. prom-client's labelled
// Counter.inc + Histogram.observe validate and hash the labels on every call (~1.5 us together,
// measured with --cpu-prof under a /health load), which was a tenth of the server's whole
// per-request cost; here a request adds to plain numbers of a series it looked up once, and the
// Prometheus samples are built only when /metrics is scraped. The text is the same as
// prom-client's (same names, label order and bucket lines): both render through its Registry.
import type { Metric, Registry } from 'prom-client';

export interface HttpSeries {
  /** Counts one answered request that took `seconds`. */
  observe(seconds: number): void;
}

interface Series extends HttpSeries {
  readonly route: string;
  readonly method: string;
  readonly status: string;
  count: number;
  sum: number;
  /** Non-cumulative: buckets[i] counts values in (bound[i-1], bound[i]]; the last slot is +Inf. */
  readonly buckets: Float64Array;
}

interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
}

export class HttpMetrics {
  private readonly series = new Map<string, Series>();

  constructor(
    registry: Registry,
    private readonly bounds: readonly number[]
  ) {
    const counter = {
      name: 'tinyforge_http_requests_total',
      help: 'HTTP requests answered, by route, method and status.',
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({ ...meta(counter), values: this.counterSamples() }),
      reset: () => this.series.clear(),
    };
    const histogram = {
      name: 'tinyforge_http_request_duration_seconds',
      help: 'Time from request to the end of its response.',
      type: 'histogram',
      aggregator: 'sum',
      // What the text exposition reads (prom-client's Histogram has the same pair): bucket bounds
      // in `labels`, the series labels in `sharedLabels`, so `le` comes first as prom-client has it.
      getForPromString: async () => ({ ...meta(histogram), values: this.histogramSamples() }),
      get: async () => ({
        ...meta(histogram),
        values: this.histogramSamples().map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })),
      }),
      reset: () => this.series.clear(),
    };
    // The registry only calls get/getForPromString/reset and reads name/type/aggregator.
    registry.registerMetric(counter as unknown as Metric);
    registry.registerMetric(histogram as unknown as Metric);
  }

  /** The series of one route/method/status; look it up once per request, or once for good. */
  get(route: string, method: string, status: number): HttpSeries {
    const key = `${route}\n${method}\n${status}`;
    let s = this.series.get(key);
    if (!s) {
      const buckets = new Float64Array(this.bounds.length + 1);
      const bounds = this.bounds;
      s = {
        route,
        method,
        status: String(status),
        count: 0,
        sum: 0,
        buckets,
        observe(seconds: number) {
          this.count++;
          this.sum += seconds;
          let i = 0;
          while (i < bounds.length && seconds > (bounds[i] as number)) i++;
          (buckets[i] as number)++;
        },
      };
      this.series.set(key, s);
    }
    return s;
  }

  private counterSamples(): Sample[] {
    return [...this.series.values()].map((s) => ({ labels: { route: s.route, method: s.method, status: s.status }, value: s.count }));
  }

  private histogramSamples(): Sample[] {
    // The histogram has no method label: series that differ only by method add up.
    const groups = new Map<string, { route: string; status: string; count: number; sum: number; buckets: Float64Array }>();
    for (const s of this.series.values()) {
      const key = `${s.route}\n${s.status}`;
      let g = groups.get(key);
      if (!g) {
        g = { route: s.route, status: s.status, count: 0, sum: 0, buckets: new Float64Array(s.buckets.length) };
        groups.set(key, g);
      }
      g.count += s.count;
      g.sum += s.sum;
      for (let i = 0; i < s.buckets.length; i++) (g.buckets[i] as number) += s.buckets[i] as number;
    }
    const name = 'tinyforge_http_request_duration_seconds';
    const out: Sample[] = [];
    for (const g of groups.values()) {
      const sharedLabels = { route: g.route, status: g.status };
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += g.buckets[i] as number;
        out.push({ labels: { le }, sharedLabels, value: cumulative, metricName: `${name}_bucket` });
      });
      out.push(
        { labels: { le: '+Inf' }, sharedLabels, value: g.count, metricName: `${name}_bucket` },
        { labels: {}, sharedLabels, value: g.sum, metricName: `${name}_sum` },
        { labels: {}, sharedLabels, value: g.count, metricName: `${name}_count` }
      );
    }
    return out;
  }
}

function meta(m: { name: string; help: string; type: string; aggregator: string }) {
  return { name: m.name, help: m.help, type: m.type, aggregator: m.aggregator };
}
