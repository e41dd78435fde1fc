/**
 * Prometheus metrics: requests by route and status, latency, bytes in and
 * out, uploads in progress and storage errors. One registry per server so
 * tests can run several servers in one process.
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
  observeRequest(route: string, method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void;
  storageError(operation: string): void;
}

export function createMetrics(opts: { uploadsInProgress?: () => Promise<number> } = {}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'berth_' });
  const requests = new client.Counter({
    name: 'berth_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'HTTP request latency by route and method',
    labelNames: ['route', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const bytesIn = new client.Counter({ name: 'berth_http_request_bytes_total', help: 'Request body bytes received, by route', labelNames: ['route'] as const, registers: [registry] });
  const bytesOut = new client.Counter({ name: 'berth_http_response_bytes_total', help: 'Response body bytes sent, by route', labelNames: ['route'] as const, registers: [registry] });
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
    observeRequest(route, method, status, seconds, inBytes, outBytes) {
      requests.inc({ route, method, status: String(status) });
      latency.observe({ route, method }, seconds);
      if (inBytes) bytesIn.inc({ route }, inBytes);
      if (outBytes) bytesOut.inc({ route }, outBytes);
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
  };
}

/** Metrics of several serving threads (the main thread and its workers), summed as prom-client aggregates clusters. */
export async function aggregateMetrics(own: Metrics, others: client.MetricObjectWithValues<client.MetricValue<string>>[][]): Promise<{ contentType: string; text: string }> {
  const all = [await own.registry.getMetricsAsJSON(), ...others];
  const merged = client.AggregatorRegistry.aggregate(all as Parameters<typeof client.AggregatorRegistry.aggregate>[0]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}
