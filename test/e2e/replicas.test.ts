/**
 * Replicas: two `berth serve` processes with the same config over one
 * PostgreSQL database and one blob store, behind HAProxy in round robin: one
 * registry. The store is S3 on OpenStack Swift (redirects off: these tests
 * read blob bytes from Berth itself; the clients' test follows redirects);
 * the filesystem on one shared directory runs only the case it adds
 * something to (a chunk cut off mid-stream, whose first part is already on
 * disk).
 *
 * Where each request went is read from the replicas' access logs by the
 * X-Request-Id the test sent, so "alternating" is checked, not assumed.
 * Notifications go to a counting receiver: each event arrives once,
 * whichever replica took the request and whichever delivers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it as nodeIt } from 'node:test';
import type { RegistryEvent } from '../../src/events/index.js';
import { startPostgres, createDatabase, type PostgresServer } from '../support/postgres.js';
import { replicaStorage, startReplicas, type ReplicaSet, type StorageBlock } from '../support/replicas.js';
import { s3Engine } from '../support/swift.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes process `pid` has read so far, sockets included (what a replica received of a request in flight). */
async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return Number(/^rchar: (\d+)/m.exec(io)?.[1] ?? 0);
}

let requests = 0;
const nextId = (what: string) => `replicas-${process.pid}-${what}-${++requests}`;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One keep-alive agent, as a client would use: HAProxy still balances each request. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(url: string, method: string, opts: { body?: Buffer; headers?: Record<string, string>; id?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body) headers['Content-Length'] = String(opts.body.byteLength);
  if (opts.id) headers['X-Request-Id'] = opts.id;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A monolithic blob upload (POST then PUT) at `base`. */
async function pushBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, 'POST');
  assert.equal(start.status, 202, start.body.toString());
  const u = new URL(start.headers.location!, base);
  u.searchParams.set('digest', sha256(data));
  const put = await request(u.toString(), 'PUT', { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 201, put.body.toString());
  return sha256(data);
}

/** Config, one layer, and an OCI manifest under `tag`; returns the manifest's digest. */
async function pushImage(base: string, repo: string, tag: string): Promise<{ digest: string; layer: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(4).toString('hex') }));
  const layer = randomBytes(2048);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.byteLength }],
    }),
  );
  const r = await request(`${base}/v2/${repo}/manifests/${tag}`, 'PUT', { body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(r.status, 201, r.body.toString());
  return { digest: sha256(manifest), layer: sha256(layer) };
}

const ACCEPT = { Accept: 'application/vnd.oci.image.manifest.v1+json' };

/** Counts every event it is sent, by id. */
class Receiver {
  readonly events: RegistryEvent[] = [];
  private server!: http.Server;
  url = '';
  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        try {
          this.events.push(...(JSON.parse(Buffer.concat(parts).toString()) as { events: RegistryEvent[] }).events);
        } catch {
          // counted as nothing: the checks below fail
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

interface Variant {
  name: string;
  storage(): Promise<StorageBlock>;
  /** Titles (substrings) of the cases this variant runs; all when absent. */
  only?: string[];
  /** Whether the part of a chunk written before its request broke stays in the upload. */
  partialChunks: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'S3 on Swift', storage: async () => replicaStorage({ s3: await s3Engine(), redirect: false }), partialChunks: false },
  { name: 'the filesystem on a shared directory', storage: () => replicaStorage(), only: ['in the middle of a chunk'], partialChunks: true },
];

for (const variant of VARIANTS) describe(`two replicas behind HAProxy over one PostgreSQL and ${variant.name}`, { timeout: 600_000 }, () => {
  const it = (title: string, fn: () => Promise<void>) => (variant.only && !variant.only.some((s) => title.includes(s)) ? undefined : nodeIt(title, fn));
  let pg: PostgresServer;
  let storage: StorageBlock;
  let set: ReplicaSet;
  let receiver: Receiver;

  before(async () => {
    pg = await startPostgres();
    storage = await variant.storage();
    receiver = await new Receiver().start();
    set = await startReplicas({
      count: 2,
      databaseUrl: await createDatabase(pg, 'replicas'),
      storage,
      env: {
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'counter',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: receiver.url,
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '2s',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_BACKOFF: '200ms',
      },
    });
  });
  after(async () => {
    agent.destroy();
    await set?.stop();
    await receiver?.close();
    await storage?.stop();
    await pg?.stop();
  });

  it('balances each request of one keep-alive client in turn over both replicas', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = nextId('base');
      ids.push(id);
      const r = await request(`${set.url}/v2/`, 'GET', { id });
      assert.equal(r.status, 200);
    }
    const served = await set.servedBy(ids);
    assert.deepEqual([0, 1].map((s) => served.filter((x) => x === s).length), [5, 5], `replicas in order: ${served.join(',')}`);
    for (let i = 1; i < served.length; i++) assert.notEqual(served[i], served[i - 1], `replicas in order: ${served.join(',')}`);
  });

  it('completes a chunked upload whose requests alternate between the replicas', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const ids = [nextId('post')];
    const start = await request(`${set.url}/v2/spread/blob/blobs/uploads/`, 'POST', { id: ids[0] });
    assert.equal(start.status, 202);
    let location = new URL(start.headers.location!, set.url).toString();
    const chunk = 512 * 1024;
    for (let offset = 0; offset < data.byteLength; offset += chunk) {
      const part = data.subarray(offset, offset + chunk);
      const id = nextId('patch');
      ids.push(id);
      const r = await request(location, 'PATCH', { body: part, id, headers: { 'Content-Range': `${offset}-${offset + part.byteLength - 1}`, 'Content-Type': 'application/octet-stream' } });
      assert.equal(r.status, 202, r.body.toString());
      assert.equal(r.headers.range, `0-${offset + part.byteLength - 1}`);
      location = new URL(r.headers.location!, set.url).toString();
    }
    // A status request in the middle of it, then the PUT, on whichever replica comes next.
    const statusId = nextId('status');
    ids.push(statusId);
    const status = await request(location, 'GET', { id: statusId });
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, `0-${data.byteLength - 1}`);
    const putId = nextId('put');
    ids.push(putId);
    const u = new URL(location);
    u.searchParams.set('digest', sha256(data));
    const done = await request(u.toString(), 'PUT', { id: putId });
    assert.equal(done.status, 201, done.body.toString());
    const served = await set.servedBy(ids);
    for (let i = 1; i < served.length; i++) assert.notEqual(served[i], served[i - 1], `consecutive requests of the upload on one replica: ${served.join(',')}`);
    // Each replica serves the blob, byte for byte.
    for (const base of set.urls) {
      const pulled = await request(`${base}/v2/spread/blob/blobs/${sha256(data)}`, 'GET');
      assert.equal(pulled.status, 200);
      assert.equal(sha256(pulled.body), sha256(data));
    }
  });

  it('continues an upload on the other replica after the one that started it was killed', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const half = data.byteLength / 2;
    // Started and half written on replica 0 directly, so the test knows which one to kill.
    const start = await request(`${set.urls[0]}/v2/killed/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    const first = await request(new URL(start.headers.location!, set.urls[0]).toString(), 'PATCH', { body: data.subarray(0, half), headers: { 'Content-Range': `0-${half - 1}` } });
    assert.equal(first.status, 202);
    const path = new URL(first.headers.location!, set.urls[0]);
    await set.kill(0);
    try {
      // Through the balancer: a refused connection to the dead replica is sent to the live one.
      const location = new URL(path.pathname + path.search, set.url).toString();
      const status = await request(location, 'GET');
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${half - 1}`, 'the live replica reports what the dead one received');
      const second = await request(location, 'PATCH', { body: data.subarray(half), headers: { 'Content-Range': `${half}-${data.byteLength - 1}` } });
      assert.equal(second.status, 202, second.body.toString());
      const u = new URL(second.headers.location!, set.url);
      u.searchParams.set('digest', sha256(data));
      const done = await request(u.toString(), 'PUT');
      assert.equal(done.status, 201, done.body.toString());
      const pulled = await request(`${set.urls[1]}/v2/killed/blob/blobs/${sha256(data)}`, 'GET');
      assert.equal(sha256(pulled.body), sha256(data));
    } finally {
      await set.restart(0);
    }
    // And the restarted replica serves it too.
    const again = await request(`${set.urls[0]}/v2/killed/blob/blobs/${sha256(data)}`, 'HEAD');
    assert.equal(again.status, 200);
  });

  it('resumes an upload from what reached the store when its replica is killed in the middle of a chunk', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const start = await request(`${set.urls[0]}/v2/midchunk/blob/blobs/uploads/`, 'POST');
    assert.equal(start.status, 202);
    // A first chunk of 1 MiB, whole.
    const whole = 1024 * 1024;
    const first = await request(new URL(start.headers.location!, set.urls[0]).toString(), 'PATCH', { body: data.subarray(0, whole), headers: { 'Content-Range': `0-${whole - 1}` } });
    assert.equal(first.status, 202, first.body.toString());
    const where = new URL(first.headers.location!, set.urls[0]);
    // A second PATCH streamed to replica 0: 1 MiB more, a pause, then the replica dies before the rest.
    const sent = whole + 1024 * 1024;
    const pid = set.replicas[0]!.child.pid!;
    const readBefore = await bytesRead(pid);
    const failed = new Promise<Error | number>((resolve) => {
      const req = http.request(where, { method: 'PATCH', agent: false, headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err) => resolve(err));
      req.write(data.subarray(whole, sent));
    });
    // The filesystem writes what arrives, so its Range (asked of the other replica) reaches `sent`; an object
    // store keeps a chunk as one object, visible only once whole, so there the replica has only read the bytes.
    const reached = variant.partialChunks ? sent : whole;
    const statusUrl = new URL(where.pathname + where.search, set.urls[1]).toString();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await request(statusUrl, 'GET');
      const arrived = (await bytesRead(pid)) - readBefore >= sent - whole;
      if (s.headers.range === `0-${reached - 1}` && arrived) break;
      assert.ok(Date.now() < deadline, `the chunk never reached the replica and the store: ${s.status} ${s.headers.range}, read ${(await bytesRead(pid)) - readBefore}`);
      await sleep(20);
    }
    await set.kill(0);
    try {
      assert.ok((await failed) instanceof Error, 'the chunk in flight failed with its replica');
      // The client asks where to go on, through the balancer, and sends the rest.
      const location = new URL(where.pathname + where.search, set.url).toString();
      const status = await request(location, 'GET');
      assert.equal(status.status, 204);
      const have = Number(status.headers.range!.split('-')[1]) + 1;
      assert.equal(have, reached, 'what reached the store is what the live replica reports');
      // An object store has no locks: the dead replica's lease on the upload (60 s, docs/storage.md) holds until it
      // expires, and meanwhile the upload is refused with 409 BLOB_UPLOAD_INVALID; the client sends again later.
      const refusedSince = Date.now();
      let rest: Answer;
      for (;;) {
        rest = await request(location, 'PATCH', { body: data.subarray(have), headers: { 'Content-Range': `${have}-${data.byteLength - 1}` } });
        if (rest.status !== 409 || variant.partialChunks) break;
        assert.equal((JSON.parse(rest.body.toString()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_INVALID');
        assert.ok(Date.now() - refusedSince < 75_000, 'the dead replica\'s lease outlived its 60 s');
        await sleep(1000);
      }
      assert.equal(rest.status, 202, rest.body.toString());
      const u = new URL(rest.headers.location!, set.url);
      u.searchParams.set('digest', sha256(data));
      const done = await request(u.toString(), 'PUT');
      assert.equal(done.status, 201, done.body.toString());
      assert.equal(sha256((await request(`${set.urls[1]}/v2/midchunk/blob/blobs/${sha256(data)}`, 'GET')).body), sha256(data));
    } finally {
      await set.restart(0);
    }
  });

  it('shows a tag move and a delete made through one replica at once through the other', async () => {
    const one = await pushImage(set.urls[0]!, 'moving/app', 'v1');
    // Both replicas have answered (and could have cached) the tag and the manifest.
    for (const base of set.urls) {
      const r = await request(`${base}/v2/moving/app/manifests/v1`, 'GET', { headers: ACCEPT });
      assert.equal(r.status, 200);
      assert.equal(r.headers['docker-content-digest'], one.digest);
    }
    for (let round = 0; round < 5; round++) {
      const two = await pushImage(set.urls[round % 2]!, 'moving/app', 'v1');
      const other = set.urls[(round + 1) % 2]!;
      const moved = await request(`${other}/v2/moving/app/manifests/v1`, 'GET', { headers: ACCEPT });
      assert.equal(moved.headers['docker-content-digest'], two.digest, `round ${round}: the other replica sees the moved tag at once`);
      const del = await request(`${set.urls[round % 2]}/v2/moving/app/manifests/${two.digest}`, 'DELETE');
      assert.equal(del.status, 202);
      for (const ref of [two.digest, 'v1']) {
        const gone = await request(`${other}/v2/moving/app/manifests/${ref}`, 'GET', { headers: ACCEPT });
        assert.equal(gone.status, 404, `round ${round}: ${ref} is gone on the other replica at once`);
        assert.equal((JSON.parse(gone.body.toString()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
      }
    }
    // The first manifest, then its layer, deleted through replica 1: unknown at replica 0 at once.
    assert.equal((await request(`${set.urls[0]}/v2/moving/app/blobs/${one.layer}`, 'HEAD')).status, 200);
    assert.equal((await request(`${set.urls[1]}/v2/moving/app/manifests/${one.digest}`, 'DELETE')).status, 202);
    assert.equal((await request(`${set.urls[0]}/v2/moving/app/manifests/${one.digest}`, 'HEAD', { headers: ACCEPT })).status, 404);
    const del = await request(`${set.urls[1]}/v2/moving/app/blobs/${one.layer}`, 'DELETE');
    assert.equal(del.status, 202);
    assert.equal((await request(`${set.urls[0]}/v2/moving/app/blobs/${one.layer}`, 'HEAD')).status, 404);
  });

  it('delivers each notification once, whichever replica took the request', async () => {
    const pushed: string[] = [];
    for (let i = 0; i < 6; i++) pushed.push((await pushImage(set.url, 'notified/app', `t${i}`)).digest);
    const deadline = Date.now() + 60_000;
    const manifestPushes = () => receiver.events.filter((e) => e.action === 'push' && e.target.repository === 'notified/app' && pushed.includes(e.target.digest!));
    while (manifestPushes().length < pushed.length && Date.now() < deadline) await sleep(100);
    // Time for a duplicate from a second deliverer to arrive, if there were one.
    await sleep(1500);
    const byId = new Map<string, number>();
    for (const e of receiver.events) byId.set(e.id, (byId.get(e.id) ?? 0) + 1);
    const twice = [...byId].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no event delivered twice');
    assert.deepEqual(manifestPushes().map((e) => e.target.digest).sort(), [...pushed].sort(), 'each manifest push delivered once');
    // The requests really went to both replicas, and the events say so (their source is the replica's instance).
    const sources = new Set(receiver.events.filter((e) => e.target.repository === 'notified/app').map((e) => e.source?.instanceID));
    assert.equal(sources.size, 2, `events from both replicas: ${[...sources].join(', ')}`);
  });
});
