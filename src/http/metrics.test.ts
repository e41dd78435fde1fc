import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateMetrics, createMetrics, DISTRIBUTION_HANDLERS } from './metrics.js';

/** Prometheus text → `value(name, labels)` for the sample with exactly those labels. */
function parse(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)!;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    types,
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const want = Object.entries(labels);
      return samples.find((x) => x.name === name && Object.keys(x.labels).length === want.length && want.every(([k, v]) => x.labels[k] === v))?.value;
    },
    names: () => new Set(samples.map((s) => s.name)),
  };
}

describe('metrics', () => {
  it('counts each request under Berth’s names and distribution’s, with distribution’s handler names and lower-case methods', async () => {
    const m = createMetrics();
    m.observeRequest('base', 'GET', 200, 0.002, 0, 2);
    m.observeRequest('base', 'GET', 200, 0.3, 0, 2);
    m.observeRequest('upload-start', 'POST', 202, 0.004, 0, 0);
    m.observeRequest('upload', 'PATCH', 202, 0.02, 5000, 0);
    m.observeRequest('manifest', 'HEAD', 404, 0.001, 0, 0);
    m.observeRequest('referrers', 'GET', 200, 0.001, 0, 100);
    const p = parse((await m.text()).text);

    assert.equal(p.value('berth_http_requests_total', { route: 'base', method: 'GET', status: '200' }), 2);
    assert.equal(p.value('registry_http_requests_total', { handler: 'base', code: '200', method: 'get' }), 2);
    assert.equal(p.value('registry_http_requests_total', { handler: 'blob_upload', code: '202', method: 'post' }), 1);
    assert.equal(p.value('registry_http_requests_total', { handler: 'blob_upload_chunk', code: '202', method: 'patch' }), 1);
    assert.equal(p.value('registry_http_requests_total', { handler: 'manifest', code: '404', method: 'head' }), 1);
    assert.equal(p.value('berth_http_requests_total', { route: 'referrers', method: 'GET', status: '200' }), 1, 'Berth counts every route');
    assert.ok(![...p.names()].some((n) => n.startsWith('registry_') && p.value(n, { handler: 'referrers' }) !== undefined), 'a route distribution lacks gets no registry_ metric');

    // Histograms: buckets cumulative, then +Inf, sum and count.
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'base', method: 'get', le: '0.005' }), 1);
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'base', method: 'get', le: '0.5' }), 2);
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'base', method: 'get', le: '+Inf' }), 2);
    assert.equal(p.value('registry_http_request_duration_seconds_count', { handler: 'base', method: 'get' }), 2);
    assert.ok(Math.abs(p.value('registry_http_request_duration_seconds_sum', { handler: 'base', method: 'get' })! - 0.302) < 1e-9);
    assert.equal(p.value('berth_http_request_duration_seconds_bucket', { route: 'base', method: 'GET', le: '0.0025' }), 1, 'Berth keeps its finer buckets');
    assert.equal(p.value('registry_http_request_size_bytes_bucket', { handler: 'blob_upload_chunk', le: '4096' }), 0);
    assert.equal(p.value('registry_http_request_size_bytes_bucket', { handler: 'blob_upload_chunk', le: '8192' }), 1);
    assert.equal(p.value('registry_http_request_size_bytes_sum', { handler: 'blob_upload_chunk' }), 5000);
    assert.equal(p.value('registry_http_response_size_bytes_sum', { handler: 'base' }), 4);
    assert.equal(p.value('berth_http_request_bytes_total', { route: 'upload' }), 5000);

    assert.equal(p.types.get('registry_http_requests_total'), 'counter');
    assert.equal(p.types.get('registry_http_request_duration_seconds'), 'histogram');
    assert.equal(p.types.get('registry_http_request_size_bytes'), 'histogram');
    assert.equal(p.types.get('registry_http_response_size_bytes'), 'histogram');
    assert.equal(p.types.get('registry_http_in_flight_requests'), 'gauge');
  });

  it('tracks in-flight requests per handler, every handler exported from the start', async () => {
    const m = createMetrics();
    let p = parse((await m.text()).text);
    for (const handler of Object.values(DISTRIBUTION_HANDLERS)) assert.equal(p.value('registry_http_in_flight_requests', { handler }), 0, handler);
    m.enter('blob');
    m.enter('blob');
    m.enter('manifest');
    p = parse((await m.text()).text);
    assert.equal(p.value('registry_http_in_flight_requests', { handler: 'blob' }), 2);
    assert.equal(p.value('registry_http_in_flight_requests', { handler: 'manifest' }), 1);
    m.observeRequest('blob', 'GET', 200, 0.01, 0, 10, true);
    m.observeRequest('manifest', 'GET', 200, 0.01, 0, 10, true);
    p = parse((await m.text()).text);
    assert.equal(p.value('registry_http_in_flight_requests', { handler: 'blob' }), 1);
    assert.equal(p.value('registry_http_in_flight_requests', { handler: 'manifest' }), 0);
  });

  it('sums the threads’ metrics in the main thread', async () => {
    const main = createMetrics();
    const worker = createMetrics();
    main.observeRequest('blob', 'GET', 200, 0.01, 0, 100);
    worker.observeRequest('blob', 'GET', 200, 0.02, 0, 300);
    worker.observeRequest('blob', 'GET', 404, 0.001, 0, 50);
    worker.enter('catalog');
    // What a worker posts to the main thread (structured clone of its JSON).
    const fromWorker = structuredClone(await worker.registry.getMetricsAsJSON());
    const p = parse((await aggregateMetrics(main, [fromWorker])).text);
    assert.equal(p.value('registry_http_requests_total', { handler: 'blob', code: '200', method: 'get' }), 2);
    assert.equal(p.value('registry_http_requests_total', { handler: 'blob', code: '404', method: 'get' }), 1);
    assert.equal(p.value('berth_http_requests_total', { route: 'blob', method: 'GET', status: '200' }), 2);
    assert.equal(p.value('registry_http_response_size_bytes_sum', { handler: 'blob' }), 450);
    assert.equal(p.value('registry_http_response_size_bytes_count', { handler: 'blob' }), 3);
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'blob', method: 'get', le: '0.005' }), 1);
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'blob', method: 'get', le: '0.01' }), 2);
    assert.equal(p.value('registry_http_request_duration_seconds_bucket', { handler: 'blob', method: 'get', le: '0.025' }), 3);
    assert.equal(p.value('berth_http_response_bytes_total', { route: 'blob' }), 450);
    assert.equal(p.value('registry_http_in_flight_requests', { handler: 'catalog' }), 1);
    // Process-wide figures are the same in every thread: taken once, not summed.
    const own = parse((await main.text()).text);
    assert.ok(own.value('berth_process_max_fds')! > 0);
    assert.equal(p.value('berth_process_max_fds'), own.value('berth_process_max_fds'), 'the limit of the process, not twice it');
    assert.ok(p.value('berth_nodejs_heap_size_used_bytes')! > own.value('berth_nodejs_heap_size_used_bytes')!, 'each thread’s own heap is summed');
  });
});
