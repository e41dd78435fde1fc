import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { MetadataStore } from './store.js';
import { WriteGate } from './gate.js';
import { sql } from './kysely.js';
import { claimLinkNowBesideOpenTransaction, runMetadataSuite } from './suite.js';

runMetadataSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-'));
  return { store: await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('sqlite read cache', () => {
  it('sees commits made through another connection (another process) from the next request on', async () => {
    // A request that follows another process's commit arrives through I/O,
    // in a later event-loop iteration; this models that arrival.
    const nextRequest = () => new Promise((r) => setImmediate(r));
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-cache-'));
    const file = path.join(dir, 'berth.db');
    const a = await MetadataStore.open({ sqlitePath: file });
    const b = await MetadataStore.open({ sqlitePath: file });
    try {
      const m = (n: string) => ({ digest: `sha256:${n.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, artifactType: null, subjectDigest: null, annotations: null, blobs: [], manifests: [] });
      await a.registry.putManifest('cache/repo', m('a'), ['latest']);
      assert.equal((await a.registry.manifestByTag('cache/repo', 'latest'))?.digest, m('a').digest);
      assert.equal((await a.registry.manifestByTag('cache/repo', 'latest'))?.digest, m('a').digest, 'served again (from the cache)');
      await b.registry.putManifest('cache/repo', m('b'), ['latest']);
      await nextRequest();
      assert.equal((await a.registry.manifestByTag('cache/repo', 'latest'))?.digest, m('b').digest, 'the other connection moved the tag');
      await b.registry.deleteTag('cache/repo', 'latest');
      await nextRequest();
      assert.equal(await a.registry.manifestByTag('cache/repo', 'latest'), null);

      await b.registry.linkBlob('cache/repo', `sha256:${'c'.repeat(64)}`, 5);
      await nextRequest();
      assert.deepEqual(await a.registry.linkedBlob('cache/repo', `sha256:${'c'.repeat(64)}`), { size: 5 });
      await b.registry.unlinkBlob('cache/repo', `sha256:${'c'.repeat(64)}`);
      await nextRequest();
      assert.equal(await a.registry.linkedBlob('cache/repo', `sha256:${'c'.repeat(64)}`), null);
      // And this connection's own writes.
      await a.registry.linkBlob('cache/repo', `sha256:${'c'.repeat(64)}`, 5);
      assert.deepEqual(await a.registry.linkedBlob('cache/repo', `sha256:${'c'.repeat(64)}`), { size: 5 });
      await a.registry.unlinkBlob('cache/repo', `sha256:${'c'.repeat(64)}`);
      assert.equal(await a.registry.linkedBlob('cache/repo', `sha256:${'c'.repeat(64)}`), null);
    } finally {
      await a.close();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite with a write gate', () => {
  it('claimLinkNow waits for a transaction held open across an await, and is not rolled back with it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-gate-'));
    const store = await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db'), writeGate: new WriteGate(WriteGate.shared(), 1) });
    try {
      await claimLinkNowBesideOpenTransaction(store, 'gated');
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite group commit (writeNow)', () => {
  const digest = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

  for (const gated of [false, true]) {
    it(`claims asked for together share one transaction, and each is still all or nothing (${gated ? 'with' : 'without'} a write gate)`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-group-'));
      const file = path.join(dir, 'berth.db');
      const store = await MetadataStore.open({ sqlitePath: file, writeGate: gated ? new WriteGate(WriteGate.shared(), 1) : undefined });
      const other = new Database(file);
      // Frames in the write-ahead log since it was last emptied: the pages the commits wrote.
      const empty = () => other.pragma('wal_checkpoint(TRUNCATE)');
      const frames = () => (other.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
      try {
        await store.registry.ensureRepository('group/one-by-one');
        await store.registry.ensureRepository('group/together');
        empty();
        for (let i = 0; i < 20; i++) assert.equal(await store.registry.claimLinkNow('group/one-by-one', digest(`seq-${i}`), 1, () => true), true);
        const oneByOne = frames();
        empty();
        const together = await Promise.all(Array.from({ length: 20 }, (_, i) => store.registry.claimLinkNow('group/together', digest(`batch-${i}`), 1, () => true)));
        assert.deepEqual(together, together.map(() => true));
        const batched = frames();
        assert.ok(batched * 4 < oneByOne, `20 claims together wrote ${batched} pages, one by one ${oneByOne}`);

        // One batch: a claim, a claim whose bytes are gone (rolled back), a
        // body that writes and then fails, and another claim.
        const gone = digest('mixed-gone');
        const failed = digest('mixed-failed');
        const insert = (dg: string) =>
          store.runNow('test: insert blob', [dg], (x) => store.db.insertInto('blobs').values({ digest: x, size: 1, created_at: 0, last_used_at: 0, state: 'live', deleting_at: null }));
        const outcomes = await Promise.allSettled([
          store.registry.claimLinkNow('group/mixed', digest('mixed-a'), 1, () => true),
          store.registry.claimLinkNow('group/mixed', gone, 1, () => false),
          store.writeNow(() => {
            insert(failed);
            throw new Error('this body fails after writing');
          }, 'rolled back'),
          store.registry.claimLinkNow('group/mixed', digest('mixed-b'), 1, () => true),
        ]);
        assert.deepEqual(
          outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
          [true, false, 'this body fails after writing', true],
        );
        assert.deepEqual(await store.registry.linkedBlob('group/mixed', digest('mixed-a')), { size: 1 });
        assert.deepEqual(await store.registry.linkedBlob('group/mixed', digest('mixed-b')), { size: 1 });
        assert.equal(await store.registry.knownBlob(gone), null, 'the claim whose bytes were gone wrote nothing');
        assert.equal(await store.registry.knownBlob(failed), null, 'the failed body wrote nothing');
        assert.equal(other.prepare('SELECT count(*) FROM blobs WHERE digest IN (?, ?)').pluck().get(gone, failed), 0);
      } finally {
        other.close();
        await store.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  /** A store on a fresh file, a second connection to it, and a body that writes a blob's row. */
  async function fresh(name: string) {
    const dir = await mkdtemp(path.join(tmpdir(), `berth-sqlite-${name}-`));
    const file = path.join(dir, 'berth.db');
    const store = await MetadataStore.open({ sqlitePath: file });
    const other = new Database(file);
    const insert = (dg: string) =>
      store.runNow('test: insert blob', [dg], (x) => store.db.insertInto('blobs').values({ digest: x, size: 1, created_at: 0, last_used_at: 0, state: 'live', deleting_at: null }));
    const known = (...digests: string[]) => other.prepare(`SELECT count(*) FROM blobs WHERE digest IN (${digests.map(() => '?').join(', ')})`).pluck().get(...digests);
    const close = async () => {
      other.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    };
    return { store, other, insert, known, close };
  }
  const outcome = (o: PromiseSettledResult<unknown>) => (o.status === 'fulfilled' ? o.value : `rejected: ${(o.reason as Error).message}`);

  it('a batch whose transaction SQLite ends (the database is full) keeps nothing and fails every body; so does a body that catches that error and writes on', async () => {
    const { store, other, insert, known, close } = await fresh('full');
    try {
      other.exec('CREATE TABLE filler (b BLOB)');
      await store.registry.ensureRepository('group/full');
      // Room for a claim or two, not for the filler's hundred pages.
      const pages = other.pragma('page_count', { simple: true }) as number;
      await sql.raw(`PRAGMA max_page_count = ${pages + 16}`).execute(store.db);
      const filler = () => store.runNow('test: filler', [], () => ({ compile: () => sql`INSERT INTO filler VALUES (zeroblob(400000))`.compile(store.db) }));
      const batch = await Promise.allSettled([
        store.registry.claimLinkNow('group/full', digest('full-a'), 1, () => true),
        store.writeNow(() => filler(), 'rolled back'),
        store.registry.claimLinkNow('group/full', digest('full-b'), 1, () => true),
      ]);
      assert.deepEqual(batch.map(outcome), batch.map(() => 'rejected: database or disk is full'));
      assert.equal(known(digest('full-a'), digest('full-b')), 0);

      // Alone, a body that swallows the error: its next write finds no transaction and fails.
      const alone = await Promise.allSettled([
        store.writeNow(() => {
          try {
            filler();
          } catch {
            // ignored, as a careless body might
          }
          insert(digest('full-c'));
          return 'written';
        }, 'rolled back'),
      ]);
      assert.deepEqual(alone.map(outcome), ['rejected: runNow: no transaction is open (it runs inside a writeNow body)']);
      assert.equal(known(digest('full-c')), 0);

      await sql.raw('PRAGMA max_page_count = 1073741823').execute(store.db);
      assert.equal(await store.registry.claimLinkNow('group/full', digest('full-a'), 1, () => true), true, 'the next write goes through');
    } finally {
      await close();
    }
  });

  it('a body whose savepoint cannot be rolled back fails its whole batch, and nothing of the batch is kept', async () => {
    const { store, insert, known, close } = await fresh('undo');
    try {
      await store.registry.ensureRepository('group/undo');
      const batch = await Promise.allSettled([
        store.registry.claimLinkNow('group/undo', digest('undo-a'), 1, () => true),
        store.writeNow(() => {
          insert(digest('undo-failed'));
          // Ends the body's savepoint under it: rolling back to it then fails.
          store.runNow('test: release', [], () => ({ compile: () => sql`RELEASE berth_job`.compile(store.db) }));
          throw new Error('this body fails after writing');
        }, 'rolled back'),
        store.registry.claimLinkNow('group/undo', digest('undo-b'), 1, () => true),
      ]);
      assert.deepEqual(batch.map(outcome), batch.map(() => 'rejected: no such savepoint: berth_job'));
      assert.equal(known(digest('undo-a'), digest('undo-failed'), digest('undo-b')), 0);
      assert.equal(await store.registry.claimLinkNow('group/undo', digest('undo-a'), 1, () => true), true, 'the next write goes through');
    } finally {
      await close();
    }
  });
});

describe('sqlite start-up', () => {
  it('opening a migrated database compares no strings by locale (ICU\'s collator costs 14-18 ms of every start to load)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-start-'));
    const file = path.join(dir, 'berth.db');
    const original = String.prototype.localeCompare;
    let calls = 0;
    try {
      await (await MetadataStore.open({ sqlitePath: file })).close();
      String.prototype.localeCompare = function (this: string, ...args: Parameters<typeof original>) {
        calls++;
        return original.apply(this, args);
      };
      await (await MetadataStore.open({ sqlitePath: file })).close();
    } finally {
      String.prototype.localeCompare = original;
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal(calls, 0);
  });
});
