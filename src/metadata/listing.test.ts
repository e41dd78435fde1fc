import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MetadataStore } from './store.js';

const manifest = (n: string) => ({ digest: `sha256:${n.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, artifactType: null, subjectDigest: null, annotations: null, blobs: [], manifests: [] });

describe('sqlite tag listing read at once (columnNow)', () => {
  it('lists in byte order, a page at a time', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-listing-'));
    const store = await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db') });
    try {
      const tags = ['b', 'B', 'a-1', 'a', 'é', 'z', '0'];
      await store.registry.putManifest('list/repo', manifest('a'), tags);
      const sorted = [...tags].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(await store.registry.listTags('list/repo', { limit: 100 }), sorted);
      assert.deepEqual(await store.registry.listTags('list/repo', { limit: 2, after: 'B' }), sorted.slice(sorted.indexOf('B') + 1, sorted.indexOf('B') + 3));
      assert.equal(await store.registry.listTags('list/none', { limit: 100 }), null);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("never reads a transaction's uncommitted tags on the shared connection", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-listing-'));
    const store = await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db') });
    try {
      await store.registry.putManifest('list/repo', manifest('a'), ['kept']);
      const { id } = await store.db.selectFrom('repositories').select('id').where('name', '=', 'list/repo').executeTakeFirstOrThrow();
      const { id: manifestId } = await store.db.selectFrom('manifests').select('id').executeTakeFirstOrThrow();
      let listed: Promise<string[] | null> | undefined;
      await assert.rejects(
        store.writeTransaction(async (trx) => {
          await trx.insertInto('tags').values({ repository_id: id, name: 'ghost', manifest_id: manifestId, updated_at: 0 }).execute();
          // Listed while the transaction is open on this thread's one connection, across an await.
          listed = store.registry.listTags('list/repo', { limit: 100 });
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('rolled back');
        }),
        /rolled back/,
      );
      assert.deepEqual(await listed, ['kept']);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
