/**
 * Several serving threads in one process: any of them serves any request,
 * an upload continues across threads, the main thread aggregates the
 * workers' metrics, and SIGTERM drains them all. (A crashed worker thread
 * being replaced is tested in src/cli/threads.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { freePort } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** One request on a fresh connection, so the cluster may hand it to any worker. */
function request(url: string, method: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...headers, ...(body ? { 'Content-Length': String(body.byteLength) } : {}) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function children(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
  }
  return out;
}

describe('several serving threads', () => {
  let root: string;
  let berth: BerthProcess;
  let debugPort: number;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'berth-cluster-'));
    debugPort = await freePort();
    berth = await spawnBerth(await freePort(), {
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
      REGISTRY_BERTH_WORKERS: '2',
      REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}`,
      REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'true',
    });
    // The primary serves at once; the worker joins when it is ready.
    for (let i = 0; i < 200 && !berth.output().includes('with 2 threads'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(berth.output(), /with 2 threads/);
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('runs two threads in one process (the main thread serves too) and spreads requests over them', async () => {
    assert.deepEqual(await children(berth.child.pid!), [], 'no child processes');
    for (let i = 0; i < 20; i++) assert.equal((await request(`${berth.url}/v2/`, 'GET')).status, 200);
    const workers = new Set(
      berth
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => (JSON.parse(l) as { worker?: number }).worker),
    );
    assert.deepEqual([...workers].sort(), [0, 1], `requests served by threads ${[...workers].join(', ')}`);
  });

  it('continues an upload whatever worker each chunk reaches', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const start = await request(`${berth.url}/v2/spread/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    let location = start.headers.location!;
    const chunk = 256 * 1024;
    for (let offset = 0; offset < data.byteLength; offset += chunk) {
      const part = data.subarray(offset, offset + chunk);
      const r = await request(location, 'PATCH', part, { 'Content-Range': `${offset}-${offset + part.byteLength - 1}` });
      assert.equal(r.status, 202, r.body.toString());
      location = r.headers.location!;
    }
    const done = await request(`${location}?digest=${sha256(data)}`, 'PUT');
    assert.equal(done.status, 201, done.body.toString());
    const pulled = await request(`${berth.url}/v2/spread/blob/blobs/${sha256(data)}`, 'GET');
    assert.equal(sha256(pulled.body), sha256(data));
  });

  it('lets only one of two simultaneous chunks for one upload in, whatever thread each reaches', async () => {
    const start = await request(`${berth.url}/v2/race/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    const location = start.headers.location!;
    const one = randomBytes(8 * 1024 * 1024);
    const two = randomBytes(8 * 1024 * 1024);
    // Fresh connections are dealt in turn, so the two PATCHes reach both threads.
    const results = await Promise.all(
      [one, two].map((body) => request(location, 'PATCH', body, { 'Content-Range': `0-${body.byteLength - 1}` })),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.equal(statuses[0], 202, `one chunk is taken: ${statuses.join(', ')}`);
    // The other is refused: 409 while the first holds the upload, 416 if it arrives after.
    assert.ok(statuses[1] === 409 || statuses[1] === 416, `the other is refused: ${statuses.join(', ')}`);
    const won = results[0]!.status === 202 ? one : two;
    const lost = won === one ? two : one;
    const wrong = await request(`${results.find((r) => r.status === 202)!.headers.location}?digest=${sha256(lost)}`, 'PUT');
    assert.equal(wrong.status, 400, 'the refused chunk is not in the upload');
  });

  it('commits exactly the chunk that was taken', async () => {
    const start = await request(`${berth.url}/v2/race/blob2/blobs/uploads/`, 'POST');
    const location = start.headers.location!;
    const one = randomBytes(8 * 1024 * 1024);
    const two = randomBytes(8 * 1024 * 1024);
    const results = await Promise.all([one, two].map((body) => request(location, 'PATCH', body, { 'Content-Range': `0-${body.byteLength - 1}` })));
    const taken = results[0]!.status === 202 ? one : two;
    const done = await request(`${location}?digest=${sha256(taken)}`, 'PUT');
    assert.equal(done.status, 201, done.body.toString());
    const pulled = await request(`${berth.url}/v2/race/blob2/blobs/${sha256(taken)}`, 'GET');
    assert.equal(sha256(pulled.body), sha256(taken));
  });

  it('aggregates the workers’ metrics in the main thread', async () => {
    const metrics = await request(`http://127.0.0.1:${debugPort}/metrics`, 'GET');
    assert.equal(metrics.status, 200);
    const line = metrics.body
      .toString()
      .split('\n')
      .find((l) => l.startsWith('berth_http_requests_total{') && l.includes('route="base"') && l.includes('status="200"'));
    assert.ok(line, 'requests counted');
    assert.ok(Number(line.split(' ').pop()) >= 20, `all workers' requests summed: ${line}`);
    assert.equal((await request(`http://127.0.0.1:${debugPort}/debug/health`, 'GET')).status, 200);
  });

  it('drains every thread on SIGTERM and exits 0', async () => {
    // A keep-alive connection left open must not hold the shutdown up.
    const agent = new http.Agent({ keepAlive: true });
    await new Promise((resolve) => http.get(`${berth.url}/v2/`, { agent }, (res) => res.resume().on('end', resolve)));
    const started = Date.now();
    assert.equal(await berth.stop('SIGTERM'), 0);
    assert.ok(Date.now() - started < 5000, `shut down in ${Date.now() - started} ms`);
    agent.destroy();
    assert.match(berth.output(), /shutting down/);
  });
});
