/**
 * Durability against the real server process: an upload survives kill -9,
 * concurrent pushes of one blob both succeed with one stored copy, and a
 * 1 GiB blob streams through with flat memory.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { freePort } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function startUpload(base: string, repo: string): Promise<string> {
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(r.status, 202);
  return r.headers.get('location')!;
}

async function patch(location: string, chunk: Buffer, start: number): Promise<Response> {
  return fetch(location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + chunk.byteLength - 1}`, 'Content-Length': String(chunk.byteLength) },
    body: chunk,
  });
}

function withQuery(location: string, key: string, value: string): string {
  const u = new URL(location);
  u.searchParams.set(key, value);
  return u.toString();
}

/** The process and its descendants (a cluster's primary and workers). */
async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process went away
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  return tree;
}

/** Peak resident memory (VmHWM) and current RSS of a process tree, summed, in bytes. */
async function memoryOf(pid: number): Promise<{ hwm: number; rss: number }> {
  let hwm = 0;
  let rss = 0;
  for (const p of await processTree(pid)) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    hwm += kb('VmHWM');
    rss += kb('VmRSS');
  }
  return { hwm, rss };
}

describe('durability (real server process)', () => {
  let root: string;
  let port: number;
  let berth: BerthProcess;
  const env = () => ({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' });

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'berth-durability-'));
    port = await freePort();
    berth = await spawnBerth(port, env());
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('resumes a chunked upload after kill -9 mid-chunk', async () => {
    const data = randomBytes(12 * 1024 * 1024);
    const first = data.subarray(0, 4 * 1024 * 1024);
    const location = await startUpload(berth.url, 'crash/resume');
    const id = location.split('/').pop()!;
    assert.equal((await patch(location, first, 0)).status, 202);

    // Stream part of the second chunk, wait until the server has written
    // some of it to the upload file, then kill the server without warning.
    const uploadFile = path.join(root, 'uploads', id);
    const req = http.request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } });
    req.on('error', () => {});
    req.write(data.subarray(first.byteLength, first.byteLength + 3 * 1024 * 1024));
    // A deadline that only bounds a broken server: the 3 MiB are written in a moment.
    const deadline = Date.now() + 30_000;
    while ((await stat(uploadFile)).size <= first.byteLength) {
      assert.ok(Date.now() < deadline, 'server never wrote the second chunk');
      await new Promise((r) => setTimeout(r, 10));
    }
    await berth.stop('SIGKILL');
    req.destroy();

    berth = await spawnBerth(port, env());
    const status = await fetch(location);
    assert.equal(status.status, 204);
    const range = status.headers.get('range')!;
    const offset = Number(/^0-(\d+)$/.exec(range)![1]) + 1;
    assert.ok(offset >= first.byteLength && offset <= data.byteLength, `resumes from a sane offset (${offset})`);

    // The client continues from the reported offset, as the spec describes.
    const rest = data.subarray(offset);
    const mid = Math.floor(rest.byteLength / 2);
    assert.equal((await patch(location, rest.subarray(0, mid), offset)).status, 202);
    const final = await fetch(withQuery(location, 'digest', sha256(data)), {
      method: 'PUT',
      headers: { 'Content-Range': `${offset + mid}-${data.byteLength - 1}`, 'Content-Length': String(rest.byteLength - mid) },
      body: rest.subarray(mid),
    });
    assert.equal(final.status, 201, await final.text());
    const blob = Buffer.from(await (await fetch(`${berth.url}/v2/crash/resume/blobs/${sha256(data)}`)).arrayBuffer());
    assert.equal(blob.byteLength, data.byteLength);
    assert.equal(sha256(blob), sha256(data));
  });

  it('two clients pushing the same blob at once both succeed, one copy is stored', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha256(data);
    const push = async (repo: string) => {
      const location = await startUpload(berth.url, repo);
      const half = Math.floor(data.byteLength / 2);
      assert.equal((await patch(location, data.subarray(0, half), 0)).status, 202);
      const r = await fetch(withQuery(location, 'digest', digest), { method: 'PUT', body: data.subarray(half), headers: { 'Content-Length': String(data.byteLength - half) } });
      return r.status;
    };
    const statuses = await Promise.all([push('same/one'), push('same/one'), push('same/two'), push('same/two')]);
    assert.deepEqual(statuses, [201, 201, 201, 201]);
    for (const repo of ['same/one', 'same/two']) {
      const r = await fetch(`${berth.url}/v2/${repo}/blobs/${digest}`);
      assert.equal(sha256(Buffer.from(await r.arrayBuffer())), digest);
    }
    const hex = digest.slice('sha256:'.length);
    const stored = await readdir(path.join(root, 'blobs', 'sha256', hex.slice(0, 2)));
    assert.deepEqual(stored.filter((f) => f === hex), [hex], 'exactly one stored copy');
    const leftovers = (await readdir(path.join(root, 'uploads'))).length;
    assert.equal(leftovers, 0, 'no upload files left behind');
  });

  it('pushes and pulls a 1 GiB blob with flat memory', async () => {
    const GiB = 1024 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    for (let i = 0; i < GiB / block.byteLength; i++) hash.update(block);
    const digest = `sha256:${hash.digest('hex')}`;
    const pid = berth.child.pid!;
    const before = await memoryOf(pid);

    let peak = 0;
    const sampler = setInterval(() => {
      memoryOf(pid).then((m) => (peak = Math.max(peak, m.rss)), () => {});
    }, 50);
    try {
      const location = await startUpload(berth.url, 'big/blob');
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(withQuery(location, 'digest', digest), { method: 'PUT', headers: { 'Content-Length': String(GiB) } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        let sent = 0;
        const pump = () => {
          while (sent < GiB) {
            sent += block.byteLength;
            if (!req.write(block)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      assert.equal(status, 201);

      const pulled = createHash('sha256');
      let size = 0;
      await new Promise<void>((resolve, reject) => {
        http.get(`${berth.url}/v2/big/blob/blobs/${digest}`, (res) => {
          assert.equal(res.statusCode, 200);
          res.on('data', (c: Buffer) => {
            pulled.update(c);
            size += c.byteLength;
          });
          res.on('end', resolve);
          res.on('error', reject);
        });
      });
      assert.equal(size, GiB);
      assert.equal(`sha256:${pulled.digest('hex')}`, digest);
    } finally {
      clearInterval(sampler);
    }
    const { hwm } = await memoryOf(pid);
    assert.ok((await processTree(pid)).length >= 1);
    const growth = Math.max(peak, hwm) - before.rss;
    // Streams, not buffers: a buffered GiB would show as ≥ 1 GiB of growth.
    assert.ok(growth < 150 * 1024 * 1024, `server memory grew by ${(growth / 1048576).toFixed(1)} MiB moving 1 GiB`);
  });
});
