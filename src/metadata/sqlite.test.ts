import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetadataStore } from './store.js';
import { WriteGate } from './gate.js';
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
