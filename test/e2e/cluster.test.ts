/**
 * Several serving threads in one process: any of them serves any request,
 * an upload continues across threads, the main thread aggregates the
 * workers' metrics, and SIGTERM drains them all. (A crashed worker thread
 * being replaced is tested in src/cli/threads.test.ts.)
 *
 * Which thread served a request is read from the process's own access log
 * (every line carries `worker`), found by the X-Request-Id the test sent.
 * The main thread deals fresh connections in turn (src/cli/threads.ts), and
 * every request here opens one, so consecutive requests reach different
 * threads whatever the machine's load: nothing is left to chance.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { freePort } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Request ids unique to this run, sent as X-Request-Id and logged as reqId. */
let requests = 0;
const nextId = (what: string) => `cluster-${process.pid}-${what}-${++requests}`;

interface AccessLine {
  reqId: string;
  worker: number;
  method: string;
  path: string;
  status: number;
}

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

/** The access log lines of the process so far, by request id. */
function accessLines(berth: BerthProcess): Map<string, AccessLine> {
  const out = new Map<string, AccessLine>();
  for (const l of berth.output().split('\n')) {
    if (!l.startsWith('{') || !l.includes('"msg":"request"')) continue;
    const line = JSON.parse(l) as AccessLine;
    out.set(line.reqId, line);
  }
  return out;
}

/**
 * The access log lines of these requests. A line is written when the response
 * ends, and a worker's stdout reaches the process's through the main thread,
 * so a line may come a little after its response: wait for all of them.
 */
async function linesOf(berth: BerthProcess, ids: string[]): Promise<AccessLine[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = accessLines(berth);
    const missing = ids.filter((id) => !lines.has(id));
    if (!missing.length) return ids.map((id) => lines.get(id)!);
    assert.ok(Date.now() < deadline, `no access log line for ${missing.join(', ')} within 20 s`);
    await sleep(20);
  }
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
      // Both threads take connections as soon as they are up (the warm-up is tested below).
      REGISTRY_BERTH_WARMUP: '0',
      REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}`,
      REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'true',
    });
    // The main thread serves at once; connections are dealt to both threads
    // only once the worker is ready, which the start-up line says.
    const deadline = Date.now() + 30_000;
    while (!berth.output().includes('all 2 threads serving')) {
      assert.ok(Date.now() < deadline, `the worker thread never joined:\n${berth.output()}`);
      await sleep(20);
    }
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('runs two threads in one process (the main thread serves too) and spreads requests over them', async () => {
    assert.deepEqual(await children(berth.child.pid!), [], 'no child processes');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = nextId('base');
      ids.push(id);
      const r = await request(`${berth.url}/v2/`, 'GET', undefined, { 'X-Request-Id': id });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-request-id'], id);
    }
    const served = (await linesOf(berth, ids)).map((l) => l.worker);
    // Dealt in turn: ten each, and never twice in a row to the same thread.
    assert.deepEqual([0, 1].map((w) => served.filter((s) => s === w).length), [10, 10], `threads in order: ${served.join(',')}`);
    for (let i = 1; i < served.length; i++) assert.notEqual(served[i], served[i - 1], `threads in order: ${served.join(',')}`);
  });

  it('continues an upload whose chunks reach both threads, and commits the right bytes', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const start = await request(`${berth.url}/v2/spread/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    let location = start.headers.location!;
    const uploadPath = new URL(location).pathname;
    const chunk = 256 * 1024;
    const patches: string[] = [];
    for (let offset = 0; offset < data.byteLength; offset += chunk) {
      const part = data.subarray(offset, offset + chunk);
      const id = nextId('patch');
      patches.push(id);
      const r = await request(location, 'PATCH', part, { 'Content-Range': `${offset}-${offset + part.byteLength - 1}`, 'X-Request-Id': id });
      assert.equal(r.status, 202, r.body.toString());
      assert.equal(r.headers.range, `0-${offset + part.byteLength - 1}`);
      location = r.headers.location!;
    }
    const done = await request(`${location}?digest=${sha256(data)}`, 'PUT');
    assert.equal(done.status, 201, done.body.toString());
    assert.equal(done.headers['docker-content-digest'], sha256(data));
    const pulled = await request(`${berth.url}/v2/spread/blob/blobs/${sha256(data)}`, 'GET');
    assert.equal(pulled.status, 200);
    assert.equal(pulled.body.byteLength, data.byteLength);
    assert.equal(sha256(pulled.body), sha256(data));

    // The log proves where each chunk went: all 12 PATCHes of this upload, on both threads, alternating.
    const lines = await linesOf(berth, patches);
    for (const l of lines) {
      assert.equal(l.method, 'PATCH');
      assert.equal(l.path, uploadPath);
      assert.equal(l.status, 202);
    }
    const served = lines.map((l) => l.worker);
    assert.equal(served.length, 12);
    assert.deepEqual([...new Set(served)].sort(), [0, 1], `chunks served by threads ${served.join(',')}`);
    for (let i = 1; i < served.length; i++) assert.notEqual(served[i], served[i - 1], `consecutive chunks on one thread: ${served.join(',')}`);
  });

  it('lets only one of two simultaneous chunks for one upload in, whatever thread each reaches', async () => {
    const start = await request(`${berth.url}/v2/race/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    const location = start.headers.location!;
    const one = randomBytes(8 * 1024 * 1024);
    const two = randomBytes(8 * 1024 * 1024);
    // Fresh connections are dealt in turn, so the two PATCHes reach both threads.
    const ids = [nextId('race'), nextId('race')];
    const results = await Promise.all(
      [one, two].map((body, i) => request(location, 'PATCH', body, { 'Content-Range': `0-${body.byteLength - 1}`, 'X-Request-Id': ids[i]! })),
    );
    const threads = (await linesOf(berth, ids)).map((l) => l.worker);
    assert.deepEqual([...threads].sort(), [0, 1], `the two PATCHes were served by threads ${threads.join(', ')}`);
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
    assert.equal(start.status, 202);
    const location = start.headers.location!;
    const one = randomBytes(8 * 1024 * 1024);
    const two = randomBytes(8 * 1024 * 1024);
    const ids = [nextId('race'), nextId('race')];
    const results = await Promise.all([one, two].map((body, i) => request(location, 'PATCH', body, { 'Content-Range': `0-${body.byteLength - 1}`, 'X-Request-Id': ids[i]! })));
    assert.deepEqual(results.map((r) => r.status).filter((s) => s === 202), [202], `exactly one chunk is taken: ${results.map((r) => r.status).join(', ')}`);
    assert.deepEqual((await linesOf(berth, ids)).map((l) => l.worker).sort(), [0, 1], 'the two PATCHes reached both threads');
    const taken = results[0]!.status === 202 ? one : two;
    const done = await request(`${location}?digest=${sha256(taken)}`, 'PUT');
    assert.equal(done.status, 201, done.body.toString());
    const pulled = await request(`${berth.url}/v2/race/blob2/blobs/${sha256(taken)}`, 'GET');
    assert.equal(sha256(pulled.body), sha256(taken));
  });

  it('aggregates the workers’ metrics in the main thread', async () => {
    const baseRequests = async () => {
      const metrics = await request(`http://127.0.0.1:${debugPort}/metrics`, 'GET');
      assert.equal(metrics.status, 200);
      const line = metrics.body
        .toString()
        .split('\n')
        .find((l) => l.startsWith('berth_http_requests_total{') && l.includes('route="base"') && l.includes('status="200"'));
      assert.ok(line, 'requests counted');
      return Number(line.split(' ').pop());
    };
    const before = await baseRequests();
    assert.ok(before >= 20, `all threads' requests summed: ${before}`);
    // Ten more, five to each thread: the sum grows by ten only if both threads' counts are in it.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = nextId('metrics');
      ids.push(id);
      assert.equal((await request(`${berth.url}/v2/`, 'GET', undefined, { 'X-Request-Id': id })).status, 200);
    }
    const served = (await linesOf(berth, ids)).map((l) => l.worker);
    assert.deepEqual([0, 1].map((w) => served.filter((s) => s === w).length), [5, 5], `threads: ${served.join(',')}`);
    // A request is counted as its response closes, which may be a moment after the client has it.
    const deadline = Date.now() + 20_000;
    let after = await baseRequests();
    while (after < before + 10 && Date.now() < deadline) {
      await sleep(50);
      after = await baseRequests();
    }
    assert.equal(after, before + 10, 'every thread’s requests are in the sum, each once');
    assert.equal((await request(`http://127.0.0.1:${debugPort}/debug/health`, 'GET')).status, 200);
  });

  it('drains every thread on SIGTERM and exits 0', async () => {
    // A keep-alive connection left open must not hold the shutdown up.
    const agent = new http.Agent({ keepAlive: true });
    await new Promise((resolve) => http.get(`${berth.url}/v2/`, { agent }, (res) => res.resume().on('end', resolve)));
    const started = Date.now();
    assert.equal(await berth.stop('SIGTERM'), 0);
    // Held up by the idle connection, it would wait out http.draintimeout (30 s by default).
    assert.ok(Date.now() - started < 15_000, `shut down in ${Date.now() - started} ms`);
    agent.destroy();
    assert.match(berth.output(), /shutting down/);
  });
});

describe('the main thread warms up alone (berth.warmup, by default 2s of its work)', () => {
  let root: string;
  let berth: BerthProcess;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'berth-warmup-'));
    // The configuration a user writes for two threads; the warm-up is its default.
    const config = path.join(root, 'config.yml');
    await writeFile(config, ['version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(root, 'data')}`, 'berth:', '  workers: 2', ''].join('\n'));
    berth = await spawnBerth(await freePort(), {}, ['serve', config]);
    const deadline = Date.now() + 30_000;
    while (!berth.output().includes('with 2 threads')) {
      assert.ok(Date.now() < deadline, `the worker thread never started:\n${berth.output()}`);
      await sleep(20);
    }
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('serves everything on the main thread until it has worked 2 s, then deals to both', async () => {
    const ten = async (what: string) => {
      const ids = Array.from({ length: 10 }, () => nextId(what));
      for (const id of ids) assert.equal((await request(`${berth.url}/v2/`, 'GET', undefined, { 'X-Request-Id': id })).status, 200);
      return (await linesOf(berth, ids)).map((l) => l.worker);
    };
    assert.deepEqual(await ten('alone'), Array(10).fill(0), 'the worker is up but takes nothing yet');
    assert.doesNotMatch(berth.output(), /all 2 threads serving/);

    // Work for the main thread: 4 KiB pushes, 8 at a time, until the worker joins.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const deadline = Date.now() + 60_000;
    let pushed = 0;
    const pusher = async () => {
      while (!berth.output().includes('all 2 threads serving')) {
        assert.ok(Date.now() < deadline, `the worker did not join after ${pushed} pushes`);
        const blob = randomBytes(4096);
        const url = `${berth.url}/v2/warm/up/blobs/uploads/?digest=${sha256(blob)}`;
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Length': '4096', 'Content-Type': 'application/octet-stream' } }, (res) => {
            res.resume().on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(blob);
        });
        assert.equal(status, 201);
        pushed++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, pusher));
    } finally {
      agent.destroy();
    }
    // Hundreds of pushes at least: a join after a few requests would be no warm-up.
    assert.ok(pushed >= 300, `joined after only ${pushed} pushes`);

    const served = await ten('joined');
    assert.deepEqual([0, 1].map((w) => served.filter((s) => s === w).length), [5, 5], `threads in order: ${served.join(',')}`);
  });
});
