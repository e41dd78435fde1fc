/**
 * The persisted notification queue against a real SQLite database and a real
 * HTTP receiver: order, filters, headers, the breaker's retries, leases
 * between processes, and no loss across a close and reopen.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import { startPostgres } from '../../test/support/postgres.js';
import { MetadataStore } from '../metadata/index.js';
import { NotificationQueue, type EndpointConfig } from './queue.js';
import { EVENTS_MEDIA_TYPE, type RegistryEvent } from './types.js';

interface Received {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  events: RegistryEvent[];
  status: number;
}

/** A notification endpoint: records every request; `respond` picks the status (and may delay). */
class Receiver {
  readonly requests: Received[] = [];
  respond: (req: Received) => number | Promise<number> = () => 200;
  inFlight = 0;
  maxInFlight = 0;
  private server!: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: RegistryEvent[] };
        const r: Received = { at: Date.now(), path: req.url ?? '', headers: req.headers, events: body.events, status: 0 };
        r.status = await this.respond(r);
        this.requests.push(r);
        this.inFlight--;
        res.writeHead(r.status).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Event ids of accepted requests, in arrival order. */
  delivered(path?: string): string[] {
    return this.requests.filter((r) => r.status < 300 && (path === undefined || r.path === path)).flatMap((r) => r.events.map((e) => e.id));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

function endpoint(name: string, url: string, extra: Partial<EndpointConfig> = {}): EndpointConfig {
  return { name, disabled: false, url, headers: {}, timeout: 1000, threshold: 3, backoff: 200, ignoredmediatypes: [], ignore: { mediatypes: [], actions: [] }, ...extra };
}

let seq = 0;
function ev(action: RegistryEvent['action'], mediaType = 'application/vnd.oci.image.manifest.v1+json'): RegistryEvent {
  seq++;
  return { id: `event-${String(seq).padStart(5, '0')}`, timestamp: new Date().toISOString(), action, target: { mediaType, digest: `sha256:${String(seq).padStart(64, '0')}`, size: 1, length: 1, repository: 'r' } };
}

function logger(lines?: string[]): Logger {
  if (!lines) return pino({ level: 'silent' });
  return pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const source = { addr: 'test:5000', instanceID: 'instance-1' };

describe('NotificationQueue', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-events-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers in order, in the distribution envelope, with the configured headers and the source filled in', async () => {
    const rx = await new Receiver().start();
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const q = new NotificationQueue({
      db: store.db,
      endpoints: [endpoint('a', `${rx.url}/hook`, { headers: { Authorization: ['Bearer secret'], 'X-Multi': ['one', 'two'] } })],
      source,
      log: logger(),
      maxBatch: 7,
    });
    try {
      await q.start();
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) {
        const batch = [ev('push'), ev('pull'), ev('mount'), ev('delete')];
        sent.push(...batch.map((e) => e.id));
        await q.emit(batch);
      }
      await until('all events', () => rx.delivered().length >= sent.length);
      assert.deepEqual(rx.delivered(), sent);
      const first = rx.requests[0]!;
      assert.equal(first.path, '/hook');
      assert.equal(first.headers['content-type'], EVENTS_MEDIA_TYPE);
      assert.equal(first.headers.authorization, 'Bearer secret');
      assert.equal(first.headers['x-multi'], 'one, two');
      assert.ok(rx.requests.every((r) => r.events.length <= 7), 'batches respect maxBatch');
      assert.deepEqual(first.events[0]!.source, source);
      await until('queue drained', async () => (await q.status())[0]!.pending === 0);
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('sends the user info of an endpoint URL (user:pass@host) as Basic auth, as distribution does', async () => {
    const rx = await new Receiver().start();
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const withUser = rx.url.replace('http://', 'http://hook%40ops:p%3Ass@');
    const q = new NotificationQueue({ db: store.db, endpoints: [endpoint('basic', `${withUser}/hook?x=1`)], source, log: logger() });
    try {
      await q.start();
      const e = ev('push');
      await q.emit([e]);
      await until('the event', () => rx.delivered().length === 1);
      const got = rx.requests[0]!;
      assert.equal(got.path, '/hook?x=1');
      assert.equal(got.headers.authorization, `Basic ${Buffer.from('hook@ops:p:ss').toString('base64')}`);
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('honours ignore.mediatypes, the older ignoredmediatypes, ignore.actions, and disabled endpoints', async () => {
    const rx = await new Receiver().start();
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const layer = 'application/vnd.oci.image.layer.v1.tar+gzip';
    const q = new NotificationQueue({
      db: store.db,
      endpoints: [
        endpoint('all', `${rx.url}/all`),
        endpoint('no-layers', `${rx.url}/no-layers`, { ignore: { mediatypes: [layer], actions: [] } }),
        endpoint('no-layers-old', `${rx.url}/no-layers-old`, { ignoredmediatypes: [layer] }),
        endpoint('no-pulls', `${rx.url}/no-pulls`, { ignore: { mediatypes: [], actions: ['pull'] } }),
        endpoint('off', `${rx.url}/off`, { disabled: true }),
      ],
      source,
      log: logger(),
    });
    try {
      await q.start();
      const push = ev('push');
      const pullLayer = ev('pull', layer);
      const pullManifest = ev('pull');
      const del: RegistryEvent = { ...ev('delete'), target: { digest: 'sha256:1', repository: 'r' } };
      await q.emit([push, pullLayer, pullManifest, del]);
      await until('deliveries', () => rx.delivered('/all').length === 4 && rx.delivered('/no-pulls').length === 2 && rx.delivered('/no-layers').length === 3 && rx.delivered('/no-layers-old').length === 3);
      assert.deepEqual(rx.delivered('/no-layers'), [push.id, pullManifest.id, del.id]);
      assert.deepEqual(rx.delivered('/no-layers-old'), [push.id, pullManifest.id, del.id]);
      assert.deepEqual(rx.delivered('/no-pulls'), [push.id, del.id]);
      await until('queues drained', async () => (await q.status()).every((s) => s.pending === 0));
      const rows = await store.db.selectFrom('notification_queue').select('endpoint').execute();
      assert.equal(rows.length, 0);
      assert.equal(rx.delivered('/off').length, 0);
      assert.deepEqual(
        (await q.status()).map((s) => s.name),
        ['all', 'no-layers', 'no-layers-old', 'no-pulls'],
      );
      // An event every endpoint ignores writes nothing.
      const q2 = new NotificationQueue({ db: store.db, endpoints: [endpoint('no-pulls', rx.url, { ignore: { mediatypes: [], actions: ['pull'] } })], source, log: logger() });
      await q2.emit([ev('pull')]);
      assert.equal((await store.db.selectFrom('notification_queue').select('id').execute()).length, 0);
      await q2.close();
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('retries the same batch: at once below the threshold, then after backoff; warns and records the failures', async () => {
    const rx = await new Receiver().start();
    let failing = true;
    rx.respond = () => (failing ? 500 : 202);
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const lines: string[] = [];
    const q = new NotificationQueue({ db: store.db, endpoints: [endpoint('flaky', rx.url, { threshold: 3, backoff: 300 })], source, log: logger(lines) });
    try {
      await q.start();
      const events = [ev('push'), ev('push')];
      await q.emit(events);
      await until('five attempts', () => rx.requests.length >= 5);
      const status = (await q.status())[0]!;
      assert.ok(status.failures >= 4, `failures recorded: ${status.failures}`);
      assert.match(status.lastError ?? '', /500/);
      assert.ok(lines.some((l) => l.includes('"level":40') && l.includes('is failing')), 'a warning once the threshold is reached');
      // Every attempt carried exactly the same batch.
      for (const r of rx.requests) assert.deepEqual(r.events.map((e) => e.id), events.map((e) => e.id));
      const gaps = rx.requests.slice(1, 5).map((r, i) => r.at - rx.requests[i]!.at);
      // Attempts 2 and 3 follow at once; attempt 4 and later wait for the backoff.
      assert.ok(gaps[0]! < 250 && gaps[1]! < 250, `immediate retries below the threshold: ${gaps}`);
      assert.ok(gaps[2]! >= 280 && gaps[3]! >= 280, `backoff after the threshold: ${gaps}`);
      // Events emitted while failing queue behind the failing batch.
      const later = ev('delete');
      await q.emit([later]);
      failing = false;
      await until('recovery', () => rx.delivered().length === 3);
      assert.deepEqual(rx.delivered(), [...events, later].map((e) => e.id));
      const recovered = (await q.status())[0]!;
      assert.equal(recovered.failures, 0);
      assert.equal(recovered.lastError, null);
      assert.ok(lines.some((l) => l.includes('recovered')));
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('counts a response slower than the timeout as a failure', async () => {
    const rx = await new Receiver().start();
    let slow = true;
    rx.respond = async () => {
      if (slow) await new Promise((r) => setTimeout(r, 400));
      return 200;
    };
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const q = new NotificationQueue({ db: store.db, endpoints: [endpoint('slow', rx.url, { timeout: 100, threshold: 1, backoff: 300 })], source, log: logger() });
    try {
      await q.start();
      const e = ev('push');
      await q.emit([e]);
      await until('a timeout recorded', async () => /within 100ms/.test((await q.status())[0]!.lastError ?? ''));
      slow = false;
      await until('delivery', async () => (await q.status())[0]!.pending === 0);
      assert.equal(rx.delivered().at(-1), e.id);
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('loses nothing across a close and reopen of the same database, and close waits for the POST in flight', async () => {
    const rx = await new Receiver().start();
    const file = path.join(dir, 'reopen.db');
    rx.respond = () => 503;
    let store = await MetadataStore.open({ sqlitePath: file });
    const config = [endpoint('e', rx.url, { threshold: 1, backoff: 100 })];
    let q = new NotificationQueue({ db: store.db, endpoints: config, source, log: logger(), owner: 'process-1', maxBatch: 3 });
    const sent: RegistryEvent[] = [];
    await q.start();
    for (let i = 0; i < 10; i++) {
      const e = ev('push');
      sent.push(e);
      await q.emit([e]);
    }
    await until('some failures', () => rx.requests.length >= 2);
    // The next attempt is held by the receiver while close() runs: close waits for it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = false;
    rx.respond = async () => {
      holding = true;
      await held;
      return 200;
    };
    await until('an attempt in flight', () => holding);
    let closed = false;
    const closing = q.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'close waits for the in-flight POST');
    rx.respond = () => 503;
    release();
    await closing;
    const deliveredBefore = rx.delivered();
    // That accepted batch was deleted before close returned; the rest is still queued.
    const left = await store.db.selectFrom('notification_queue').select('payload').orderBy('id').execute();
    assert.equal(left.length + deliveredBefore.length, sent.length);
    const lease = await store.db.selectFrom('notification_endpoints').selectAll().executeTakeFirstOrThrow();
    assert.equal(lease.lease_owner, null, 'the lease is released on close');
    await store.close();

    rx.respond = () => 200;
    store = await MetadataStore.open({ sqlitePath: file });
    q = new NotificationQueue({ db: store.db, endpoints: config, source, log: logger(), owner: 'process-2' });
    try {
      await q.start();
      await until('everything', () => rx.delivered().length >= sent.length);
      assert.deepEqual(rx.delivered(), sent.map((e) => e.id));
    } finally {
      await q.close();
      await store.close();
      await rx.close();
    }
  });

  it('lets one process deliver an endpoint at a time, and takes over a lease that expired (SQLite)', async () => {
    const file = path.join(dir, 'lease.db');
    await leaseSuite(() => MetadataStore.open({ sqlitePath: file }));
  });

  it('lets one replica deliver an endpoint at a time, and takes over a lease that expired (PostgreSQL)', async () => {
    const pg = await startPostgres();
    try {
      await leaseSuite(() => MetadataStore.open({ url: pg.url }));
    } finally {
      await pg.stop();
    }
  });
});

/** Two processes (two connections, two owners) sharing one database and one endpoint. */
async function leaseSuite(open: () => Promise<MetadataStore>): Promise<void> {
  const rx = await new Receiver().start();
  rx.respond = async () => {
    await new Promise((r) => setTimeout(r, 5));
    return 200;
  };
  const s1 = await open();
  const s2 = await open();
  const config = [endpoint('shared', rx.url)];
  const q1 = new NotificationQueue({ db: s1.db, endpoints: config, source: { addr: 'one:5000', instanceID: 'one' }, log: logger(), pollMs: 50, maxBatch: 3 });
  const q2 = new NotificationQueue({ db: s2.db, endpoints: config, source: { addr: 'two:5000', instanceID: 'two' }, log: logger(), pollMs: 50, maxBatch: 3 });
  try {
    await q1.start();
    await q2.start();
    // Emitted one after another from alternating processes: delivered in exactly that order.
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const e = ev('push');
      sent.push(e.id);
      await (i % 2 ? q1 : q2).emit([e]);
    }
    await until('all delivered', () => rx.delivered().length >= sent.length);
    assert.deepEqual(rx.delivered(), sent);
    // Emitted concurrently from both: each delivered once.
    const concurrent = Array.from({ length: 40 }, () => ev('pull'));
    await Promise.all(concurrent.map((e, i) => (i % 2 ? q1 : q2).emit([e])));
    await until('concurrent ones delivered', () => rx.delivered().length >= sent.length + concurrent.length);
    assert.deepEqual([...rx.delivered().slice(sent.length)].sort(), concurrent.map((e) => e.id).sort());
    assert.equal(rx.maxInFlight, 1, 'never two deliveries to one endpoint at once');
    await until('idle', async () => (await q1.status())[0]!.leaseOwner === null);

    // A process that died holding the lease: nobody delivers until it expires.
    await s1.db.updateTable('notification_endpoints').set({ lease_owner: 'dead', lease_until: Date.now() + 600 }).execute();
    const before = rx.requests.length;
    const e = ev('delete');
    const emitted = Date.now();
    await q2.emit([e]);
    await until('takeover', () => rx.delivered().includes(e.id));
    assert.equal(rx.requests.length, before + 1);
    assert.ok(rx.requests.at(-1)!.at - emitted >= 500, 'waited for the dead lease to expire');
  } finally {
    await q1.close();
    await q2.close();
    await s1.close();
    await s2.close();
    await rx.close();
  }
}
