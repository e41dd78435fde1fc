// Change signals and the scheduled jobs' election on a real PostgreSQL:
// several "processes" (stores and links of their own) on one database.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startPostgres, type PostgresServer } from '../../test/support/postgres.js';
import { openClusterLink, type ClusterLink } from './cluster.js';
import { MetadataStore } from './store.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Ends the links' sessions, the members of changes.ts (as a restarted PostgreSQL or a network cut would). */
async function terminateListeners(store: MetadataStore): Promise<number> {
  const { sql } = await import('./kysely.js');
  const r = await sql<{ n: number }>`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 5 AND pid <> pg_backend_pid()`.execute(store.db);
  return r.rows[0]!.n;
}

describe('replicas on PostgreSQL: change signals and the jobs election', () => {
  let pg: PostgresServer;
  const stores: MetadataStore[] = [];
  const links: ClusterLink[] = [];
  const open = async () => {
    const store = await MetadataStore.open({ url: pg.url });
    stores.push(store);
    return store;
  };
  const link = async (store: MetadataStore, pollMs = 100) => {
    const l = await openClusterLink(pg.url, store.signals, log, { pollMs, maxBackoffMs: 200 });
    links.push(l);
    return l;
  };

  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const l of links) await l.close();
    for (const s of stores) await s.close();
    await pg?.stop();
  });

  it('delivers a change to the other process’s subscribers before the writer’s call returns', async () => {
    const [a, b] = [await open(), await open()];
    await link(a);
    await link(b);
    const seen: string[] = [];
    b.signals.subscribe('credentials', () => seen.push('b credentials'));
    b.signals.subscribe('keys', () => seen.push('b keys'));
    a.signals.subscribe('credentials', () => seen.push('a credentials'));
    await a.signals.changed('credentials');
    // The writer's call returned only once b acknowledged, after b's subscribers ran.
    assert.ok(seen.includes('b credentials'), 'b dropped its caches before the writer went on');
    assert.equal(a.signals.stats.unacknowledged, 0);
    assert.ok(seen.includes('a credentials'), 'the writer dropped its own at once');
    assert.ok(!seen.includes('b keys'), 'only the topic that changed');
  });

  it('a process that does not listen still reaches the others, and waits for it', async () => {
    const [writer, reader] = [await open(), await open()];
    await link(reader);
    let heard = 0;
    reader.signals.subscribe('keys', () => heard++);
    await writer.signals.changed('keys');
    assert.equal(heard, 1, 'the reader dropped its caches before the writer went on');
    assert.equal(writer.signals.stats.unacknowledged, 0);
  });

  it('flushes every cache when the listening connection drops, reconnects, and hears changes again', async () => {
    const [a, b] = [await open(), await open()];
    await link(a);
    await link(b);
    let flushes = 0;
    let credentials = 0;
    b.signals.subscribe('*', () => flushes++);
    b.signals.subscribe('credentials', () => credentials++);
    const before = b.signals.stats.flushes;
    const admin = await open();
    assert.ok((await terminateListeners(admin)) >= 2);
    // Dropped: flushed at once; back: flushed again.
    await until('a flush on the drop and one on the reconnect', () => b.signals.stats.flushes >= before + 2, 10_000);
    assert.ok(flushes >= 2);
    await until('b to listen again', () => (b.signals as unknown as { listening: boolean }).listening, 10_000);
    const heard = credentials;
    await a.signals.changed('credentials');
    await until('b to hear a change after reconnecting', () => credentials > heard, 5000);
  });

  it('runs the jobs on exactly one process, and moves them when it goes', async () => {
    const stores3 = [await open(), await open(), await open()];
    const ls = await Promise.all(stores3.map((s) => link(s)));
    const running = [0, 0, 0];
    const stops = ls.map((l, i) =>
      l.lead('test job', () => {
        running[i]!++;
        return () => running[i]!--;
      }),
    );
    await until('a leader', () => running.some((n) => n > 0));
    await sleep(500);
    assert.equal(running.reduce((x, y) => x + y, 0), 1, `one runs it: ${running.join(',')}`);
    const first = running.indexOf(1);
    // Closed: its session ends, and another takes over.
    await ls[first]!.close();
    assert.equal(running[first], 0, 'stopped on close');
    await until('another leader', () => running.some((n, i) => i !== first && n > 0), 3000);
    await sleep(500);
    assert.equal(running.reduce((x, y) => x + y, 0), 1, `still one: ${running.join(',')}`);
    const second = running.indexOf(1);
    // Its session killed from outside: it notices and stops, and the last one takes over.
    const admin = await open();
    await terminateListeners(admin);
    await until('the jobs to move or stay with exactly one', () => running.reduce((x, y) => x + y, 0) === 1 && running[first] === 0, 10_000);
    await sleep(500);
    assert.equal(running.reduce((x, y) => x + y, 0), 1, `one after the cut: ${running.join(',')} (was ${second})`);
    for (const stop of stops) stop();
    assert.deepEqual(running, [0, 0, 0]);
  });

  it('lets the jobs go as soon as the leader stops them, before its connection closes (a draining shutdown)', async () => {
    const ls = [await link(await open()), await link(await open())];
    const running = [0, 0];
    const stops = ls.map((l, i) =>
      l.lead('draining job', () => {
        running[i]!++;
        return () => running[i]!--;
      }),
    );
    await until('a leader', () => running.some((n) => n > 0));
    const first = running.indexOf(1);
    stops[first]!();
    await until('the other to take over while the first is still connected', () => running[1 - first] === 1, 10_000);
    assert.equal(ls[first]!.leading, false);
    stops[1 - first]!();
  });

  it('without PostgreSQL, a process alone leads at once', async () => {
    const l = await openClusterLink(undefined, (await open()).signals, log);
    let ran = false;
    const stop = l.lead('job', () => {
      ran = true;
      return () => (ran = false);
    });
    assert.ok(ran);
    stop();
    assert.ok(!ran);
    await l.close();
  });
});
