/**
 * Prometheus metrics: requests by route and status, latency, bytes in and
 * out, uploads in progress, garbage collection; and, beside Berth's own,
 * distribution's `registry_http_*` family under its names and handler
 * labels, so dashboards made for registry:2 keep working (docs/metrics.md
 * lists them all). One registry per server so tests can run several
 * servers in one process.
 *
 * Requests are counted in plain numbers, bound once per route, method and
 * status: a request allocates nothing and hashes no label set. prom-client
 * sees the numbers only when scraped.
 */
import client from 'prom-client';

/** What a garbage collection reports (a subset of gc's CollectSummary). */
export interface CollectionCounts {
  dryRun: boolean;
  blobsDeleted: number;
  bytesReclaimed: number;
  manifestsDeleted: number;
  orphanFilesDeleted: number;
  durationMs: number;
}

export interface Metrics {
  registry: client.Registry;
  gcCollected(summary: CollectionCounts): void;
  /** This thread's metrics as Prometheus text. */
  text(): Promise<{ contentType: string; text: string }>;
  /** A request reached `route` (for distribution's in-flight gauge); its observeRequest passes `entered`. */
  enter(route: string): void;
  observeRequest(route: string, method: string, status: number, seconds: number, bytesIn: number, bytesOut: number, entered?: boolean): void;
  storageError(operation: string): void;
  /** A timed blob-store call (src/storage/instrument.ts): distribution's storage action metric, and Berth's error count. */
  observeStorage(action: string, seconds: number, failed: boolean): void;
}

/**
 * distribution's handler names (registry/api/v2/routes.go, `-` turned to
 * `_` as its app.register does) for Berth's routes that do the same thing.
 * Routes distribution does not have (referrers, probes, Berth's API) get
 * Berth's metrics only.
 */
export const DISTRIBUTION_HANDLERS: Readonly<Record<string, string>> = {
  base: 'base',
  manifest: 'manifest',
  tags: 'tags',
  catalog: 'catalog',
  blob: 'blob',
  'upload-start': 'blob_upload',
  upload: 'blob_upload_chunk',
};

const BERTH_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** docker/go-metrics' defaults, which distribution's HTTP metrics use. */
const DISTRIBUTION_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60];
const DISTRIBUTION_SIZE_BUCKETS = Array.from({ length: 22 }, (_, i) => 1024 * 2 ** i); // 1 KiB … 2 GiB

type Labels = Record<string, string | number>;
type Sample = { labels: Labels; value: number; metricName?: string };

/** A histogram as plain counts. */
class Histogram {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  /** Samples as prom-client's histograms give them (cumulative buckets, +Inf, sum, count), so clusters aggregate alike. */
  samples(name: string, labels: Labels, out: Sample[]): void {
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i]!;
      out.push({ labels: { ...labels, le: this.bounds[i]! }, value: acc, metricName: `${name}_bucket` });
    }
    out.push({ labels: { ...labels, le: '+Inf' }, value: this.count, metricName: `${name}_bucket` });
    out.push({ labels, value: this.sum, metricName: `${name}_sum` });
    out.push({ labels, value: this.count, metricName: `${name}_count` });
  }
}

interface StatusCount {
  code: string;
  n: number;
}

interface MethodStats {
  /** distribution's method label: lower case, as promhttp writes it. */
  lower: string;
  statuses: Map<number, StatusCount>;
  latency: Histogram;
  distributionLatency?: Histogram;
}

interface RouteStats {
  handler?: string;
  inFlight: number;
  bytesIn: number;
  bytesOut: number;
  methods: Map<string, MethodStats>;
  requestSizes?: Histogram;
  responseSizes?: Histogram;
}

/**
 * A metric whose samples are computed when scraped. prom-client's registry
 * and its cluster aggregation need only `get()` (and `reset()`).
 */
function scraped(registry: client.Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => Sample[]): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: () => ({ name, help, type, aggregator: 'sum' as const, values: collect() }),
    reset: () => {},
  };
  registry.registerMetric(metric as unknown as client.Metric);
}

/** prometheus' default buckets, which distribution's storage timer (docker/go-metrics NewLabeledTimer) uses. */
const STORAGE_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(opts: { uploadsInProgress?: () => Promise<number>; storageDriver?: string } = {}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'berth_' });

  const routes = new Map<string, RouteStats>();
  const routeStats = (route: string): RouteStats => {
    let r = routes.get(route);
    if (!r) {
      const handler = DISTRIBUTION_HANDLERS[route];
      r = { handler, inFlight: 0, bytesIn: 0, bytesOut: 0, methods: new Map() };
      if (handler) {
        r.requestSizes = new Histogram(DISTRIBUTION_SIZE_BUCKETS);
        r.responseSizes = new Histogram(DISTRIBUTION_SIZE_BUCKETS);
      }
      routes.set(route, r);
    }
    return r;
  };
  // distribution exports every handler's in-flight gauge from the start.
  for (const route of Object.keys(DISTRIBUTION_HANDLERS)) routeStats(route);

  const each = (fn: (route: string, r: RouteStats, out: Sample[]) => void) => () => {
    const out: Sample[] = [];
    for (const [route, r] of routes) fn(route, r, out);
    return out;
  };
  const eachMethod = (fn: (route: string, r: RouteStats, method: string, m: MethodStats, out: Sample[]) => void) =>
    each((route, r, out) => {
      for (const [method, m] of r.methods) fn(route, r, method, m, out);
    });

  // Berth's own.
  scraped(
    registry,
    'berth_http_requests_total',
    'HTTP requests by route, method and status',
    'counter',
    eachMethod((route, _r, method, m, out) => {
      for (const c of m.statuses.values()) out.push({ labels: { route, method, status: c.code }, value: c.n });
    }),
  );
  scraped(
    registry,
    'berth_http_request_duration_seconds',
    'HTTP request latency by route and method',
    'histogram',
    eachMethod((route, _r, method, m, out) => m.latency.samples('berth_http_request_duration_seconds', { route, method }, out)),
  );
  scraped(
    registry,
    'berth_http_request_bytes_total',
    'Request body bytes received, by route',
    'counter',
    each((route, r, out) => {
      if (r.methods.size > 0) out.push({ labels: { route }, value: r.bytesIn });
    }),
  );
  scraped(
    registry,
    'berth_http_response_bytes_total',
    'Response body bytes sent, by route',
    'counter',
    each((route, r, out) => {
      if (r.methods.size > 0) out.push({ labels: { route }, value: r.bytesOut });
    }),
  );

  // distribution's (docker/go-metrics' NewDefaultHttpMetrics, namespace registry, subsystem http).
  scraped(
    registry,
    'registry_http_requests_total',
    'Total number of HTTP requests made.',
    'counter',
    eachMethod((_route, r, _method, m, out) => {
      if (!r.handler) return;
      for (const c of m.statuses.values()) out.push({ labels: { handler: r.handler, code: c.code, method: m.lower }, value: c.n });
    }),
  );
  scraped(
    registry,
    'registry_http_request_duration_seconds',
    'The HTTP request latencies in seconds.',
    'histogram',
    eachMethod((_route, r, _method, m, out) => {
      if (r.handler) m.distributionLatency!.samples('registry_http_request_duration_seconds', { handler: r.handler, method: m.lower }, out);
    }),
  );
  scraped(
    registry,
    'registry_http_request_size_bytes',
    'The HTTP request sizes in bytes.',
    'histogram',
    each((_route, r, out) => {
      if (r.handler && r.requestSizes!.count > 0) r.requestSizes!.samples('registry_http_request_size_bytes', { handler: r.handler }, out);
    }),
  );
  scraped(
    registry,
    'registry_http_response_size_bytes',
    'The HTTP response sizes in bytes.',
    'histogram',
    each((_route, r, out) => {
      if (r.handler && r.responseSizes!.count > 0) r.responseSizes!.samples('registry_http_response_size_bytes', { handler: r.handler }, out);
    }),
  );
  scraped(
    registry,
    'registry_http_in_flight_requests',
    'The in-flight HTTP requests',
    'gauge',
    each((_route, r, out) => {
      if (r.handler) out.push({ labels: { handler: r.handler }, value: r.inFlight });
    }),
  );

  // distribution's storage timer (registry/storage/driver/base: namespace registry, subsystem storage).
  const storageActions = new Map<string, Histogram>();
  const driver = opts.storageDriver ?? 'filesystem';
  scraped(
    registry,
    'registry_storage_action_seconds',
    'The number of seconds that the storage action takes',
    'histogram',
    () => {
      const out: Sample[] = [];
      for (const [action, h] of storageActions) h.samples('registry_storage_action_seconds', { driver, action }, out);
      return out;
    },
  );

  const gcRuns = new client.Counter({ name: 'berth_gc_runs_total', help: 'Garbage collections run, by dry_run', labelNames: ['dry_run'] as const, registers: [registry] });
  const gcBlobs = new client.Counter({ name: 'berth_gc_blobs_deleted_total', help: 'Blobs removed by garbage collection (orphaned files included)', registers: [registry] });
  const gcBytes = new client.Counter({ name: 'berth_gc_bytes_reclaimed_total', help: 'Bytes reclaimed by garbage collection', registers: [registry] });
  const gcManifests = new client.Counter({ name: 'berth_gc_manifests_deleted_total', help: 'Untagged manifests removed by garbage collection', registers: [registry] });
  const gcDuration = new client.Histogram({ name: 'berth_gc_duration_seconds', help: 'How long garbage collections take', buckets: [0.01, 0.1, 1, 10, 60, 600], registers: [registry] });
  const storageErrors = new client.Counter({ name: 'berth_storage_errors_total', help: 'Blob store operations that failed', labelNames: ['operation'] as const, registers: [registry] });
  if (opts.uploadsInProgress) {
    const count = opts.uploadsInProgress;
    new client.Gauge({
      name: 'berth_uploads_in_progress',
      help: 'Blob uploads started and not yet completed, cancelled or purged',
      registers: [registry],
      // Counted by the main thread only (the files in the blob store), not summed over threads.
      aggregator: 'max',
      async collect() {
        this.set(await count());
      },
    });
  }
  return {
    registry,
    async text() {
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
    enter(route) {
      routeStats(route).inFlight++;
    },
    observeRequest(route, method, status, seconds, inBytes, outBytes, entered = false) {
      const r = routeStats(route);
      if (entered) r.inFlight--;
      let m = r.methods.get(method);
      if (!m) {
        m = { lower: method.toLowerCase(), statuses: new Map(), latency: new Histogram(BERTH_DURATION_BUCKETS) };
        if (r.handler) m.distributionLatency = new Histogram(DISTRIBUTION_DURATION_BUCKETS);
        r.methods.set(method, m);
      }
      let c = m.statuses.get(status);
      if (!c) {
        c = { code: String(status), n: 0 };
        m.statuses.set(status, c);
      }
      c.n++;
      m.latency.observe(seconds);
      r.bytesIn += inBytes;
      r.bytesOut += outBytes;
      if (r.handler) {
        m.distributionLatency!.observe(seconds);
        r.requestSizes!.observe(inBytes);
        r.responseSizes!.observe(outBytes);
      }
    },
    gcCollected(summary) {
      gcRuns.inc({ dry_run: String(summary.dryRun) });
      gcDuration.observe(summary.durationMs / 1000);
      if (summary.dryRun) return;
      gcBlobs.inc(summary.blobsDeleted + summary.orphanFilesDeleted);
      gcBytes.inc(summary.bytesReclaimed);
      gcManifests.inc(summary.manifestsDeleted);
    },
    storageError(operation) {
      storageErrors.inc({ operation });
    },
    observeStorage(action, seconds, failed) {
      let h = storageActions.get(action);
      if (!h) {
        h = new Histogram(STORAGE_DURATION_BUCKETS);
        storageActions.set(action, h);
      }
      h.observe(seconds);
      if (failed) storageErrors.inc({ operation: action });
    },
  };
}

/** Metrics of several serving threads (the main thread and its workers), summed as prom-client aggregates clusters. */
export async function aggregateMetrics(own: Metrics, others: client.MetricObjectWithValues<client.MetricValue<string>>[][]): Promise<{ contentType: string; text: string }> {
  // process_* figures (CPU, resident memory, file descriptors) are the whole
  // process's in every thread: the main thread's alone, not their sum.
  const all = [await own.registry.getMetricsAsJSON(), ...others.map((metrics) => metrics.filter((m) => !m.name.startsWith('berth_process_')))];
  const merged = client.AggregatorRegistry.aggregate(all as Parameters<typeof client.AggregatorRegistry.aggregate>[0]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}
