/**
 * The one test suite every metadata engine must pass (SQLite and PostgreSQL).
 * Call it from `<engine>.test.ts` with a factory for a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { REPOSITORY_DELETE_BATCH, RepositoryBeingDeletedError, RepositoryDeletedError, StillReferencedError, type NewManifest } from './registry.js';
import type { MetadataStore } from './store.js';

const d = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function manifest(name: string, extra: Partial<NewManifest> = {}): NewManifest {
  return {
    digest: d(`manifest ${name}`),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 100,
    artifactType: null,
    subjectDigest: null,
    annotations: null,
    blobs: [],
    manifests: [],
    ...extra,
  };
}

/**
 * Claims and links a pushed blob as an upload's finish does: SQLite's
 * synchronous claimLinkNow, or the general claim where there is none
 * (PostgreSQL). True when linked, false when the bytes were not in place.
 */
export async function claimLink(store: MetadataStore, repository: string, digest: string, size: number, present: () => boolean, startedAt?: number): Promise<boolean> {
  const now = await store.registry.claimLinkNow(repository, digest, size, present, startedAt);
  if (now !== null) return now;
  return store.registry.claimBlob(
    digest,
    size,
    async (trx) => {
      if (!present()) throw new NotPresent();
      if (startedAt === undefined) await store.registry.linkInTransaction(trx, repository, digest);
      else await store.registry.linkUploadInTransaction(trx, repository, digest, startedAt);
      return true;
    },
    { repository },
  ).catch((err: unknown) => {
    if (err instanceof NotPresent) return false;
    throw err;
  });
}

class NotPresent extends Error {}

/**
 * Another request's transaction is open across an await (as a manifest's is
 * while its bytes are written) and then fails; a claimLinkNow started
 * meanwhile must commit on its own, not inside it.
 */
export async function claimLinkNowBesideOpenTransaction(store: MetadataStore, name: string): Promise<void> {
  const blob = d(`now-beside-${name}`);
  const other = d(`now-outer-${name}`);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const outer = store.registry.claimBlob(other, 1, async () => {
    entered();
    await held;
    throw new Error('the other request fails');
  });
  await inside;
  const beside = claimLink(store, `now/beside-${name}`, blob, 4, () => true);
  release();
  await assert.rejects(outer, /the other request fails/);
  assert.equal(await beside, true);
  assert.deepEqual(await store.registry.linkedBlob(`now/beside-${name}`, blob), { size: 4 }, 'committed on its own');
  assert.equal(await store.registry.knownBlob(other), null, 'the failed transaction left nothing');
}

export function runMetadataSuite(name: string, open: () => Promise<{ store: MetadataStore; cleanup(): Promise<void> }>): void {
  describe(`metadata store: ${name}`, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('migrates idempotently', async () => {
      await store.migrate();
      await store.migrate();
      await store.ping();
    });

    it('creates repositories once, even concurrently', async () => {
      const ids = await Promise.all(Array.from({ length: 8 }, () => store.registry.ensureRepository('concurrent/repo')));
      assert.equal(new Set(ids).size, 1);
      assert.equal(await store.registry.repositoryId('concurrent/repo'), ids[0]);
      assert.equal(await store.registry.repositoryId('never/created'), null);
    });

    it("a cached read sees this connection's own writes at once", async () => {
      // Reads are cached until the database changes; the claim's statements are compiled once, and must still count as writes.
      const blob = d('cached-1');
      // Both repositories exist already: creating one is a write of its own.
      await store.registry.linkBlob('cache/a', d('cached-0'), 1);
      await store.registry.linkBlob('cache/b', d('cached-0'), 1);
      assert.equal(await store.registry.linkedBlob('cache/a', blob), null);
      await store.registry.linkBlob('cache/a', blob, 7);
      assert.deepEqual(await store.registry.linkedBlob('cache/a', blob), { size: 7 });
      assert.equal(await store.registry.linkedBlob('cache/b', blob), null);
      assert.deepEqual(await store.registry.mountBlob('cache/b', 'cache/a', blob), { size: 7 });
      assert.deepEqual(await store.registry.linkedBlob('cache/b', blob), { size: 7 });
    });

    it('lists the repositories a blob is linked in, by name, a page at a time', async () => {
      const blob = d('holders-1');
      for (const r of ['holders/c', 'holders/a', 'holders/b']) await store.registry.linkBlob(r, blob, 3);
      await store.registry.linkBlob('holders/other', d('holders-2'), 3);
      assert.deepEqual(await store.registry.repositoriesWithBlob(blob, { limit: 10 }), ['holders/a', 'holders/b', 'holders/c']);
      assert.deepEqual(await store.registry.repositoriesWithBlob(blob, { limit: 2 }), ['holders/a', 'holders/b']);
      assert.deepEqual(await store.registry.repositoriesWithBlob(blob, { after: 'holders/b', limit: 2 }), ['holders/c']);
      await store.registry.unlinkBlob('holders/b', blob);
      assert.deepEqual(await store.registry.repositoriesWithBlob(blob, { limit: 10 }), ['holders/a', 'holders/c']);
      assert.deepEqual(await store.registry.repositoriesWithBlob(d('holders-none'), { limit: 10 }), []);
    });

    it('links blobs per repository', async () => {
      const blob = d('blob-1');
      await store.registry.linkBlob('links/a', blob, 42);
      await store.registry.linkBlob('links/a', blob, 42); // idempotent
      assert.deepEqual(await store.registry.linkedBlob('links/a', blob), { size: 42 });
      assert.equal(await store.registry.linkedBlob('links/b', blob), null, 'not linked in another repository');
      assert.deepEqual(await store.registry.knownBlob(blob), { size: 42 });
      assert.equal(await store.registry.unlinkBlob('links/a', blob), true);
      assert.equal(await store.registry.unlinkBlob('links/a', blob), false);
      assert.equal(await store.registry.linkedBlob('links/a', blob), null);
      assert.deepEqual(await store.registry.knownBlob(blob), { size: 42 }, 'the blob itself stays known');
    });

    it('claims and links a pushed blob (on SQLite in one synchronous transaction, claimLinkNow)', async () => {
      const blob = d('now-1');
      // SQLite has the synchronous path; PostgreSQL has none, and the caller claims the general way.
      if (store.dialect === 'sqlite') assert.equal(await store.registry.claimLinkNow('now/probe', d('now-probe'), 1, () => true), true);
      else assert.equal(await store.registry.claimLinkNow('now/probe', d('now-probe'), 1, () => true), null);
      assert.equal(await store.registry.linkedBlob('now/a', blob), null); // cached now: the claim must make it stale
      // The bytes are not in place: nothing is written, not even the repository.
      assert.equal(await claimLink(store, 'now/a', blob, 3, () => false), false);
      assert.equal(await store.registry.knownBlob(blob), null);
      assert.equal(await store.registry.repositoryId('now/a'), null);
      assert.equal(await store.registry.linkedBlob('now/a', blob), null);
      // In place: recorded, the repository created, linked, and seen at once by the same connection's cached reads.
      assert.equal(await claimLink(store, 'now/a', blob, 3, () => true), true);
      assert.deepEqual(await store.registry.linkedBlob('now/a', blob), { size: 3 });
      assert.deepEqual(await store.registry.knownBlob(blob), { size: 3 });
      assert.equal(await claimLink(store, 'now/a', blob, 3, () => true), true, 'again: idempotent');
      // Many at once, into new and existing repositories.
      const many = Array.from({ length: 40 }, (_, i) => ({ repo: `now/r${i % 5}`, blob: d(`now-many-${i}`) }));
      assert.deepEqual(await Promise.all(many.map((m, i) => claimLink(store, m.repo, m.blob, i, () => true))), many.map(() => true));
      for (const [i, m] of many.entries()) assert.deepEqual(await store.registry.linkedBlob(m.repo, m.blob), { size: i });
    });

    it('a claim waits for a transaction held open across an await, and is not rolled back with it', async () => {
      // This store has no write gate, as a lone serving thread has none (sqlite.test.ts runs it with one).
      await claimLinkNowBesideOpenTransaction(store, 'ungated');
    });

    it('a claim waits while a garbage collection is deleting the blob, then claims it', async () => {
      const blob = d('now-collected');
      await store.registry.linkBlob('now/gc', blob, 9);
      assert.deepEqual(await store.collection.markBlobDeleting(blob, (await store.clock()) + 60_000), { repositories: ['now/gc'], size: 9 });
      let settled = false;
      const claim = claimLink(store, 'now/gc', blob, 9, () => true).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(settled, false, 'waits while the blob is being deleted');
      await store.collection.forgetBlob(blob);
      assert.equal(await claim, true);
      assert.deepEqual(await store.registry.linkedBlob('now/gc', blob), { size: 9 });
    });

    it('refuses a manifest whose blobs or children are missing, and stores nothing', async () => {
      const layer = d('layer-missing');
      const r = await store.registry.putManifest('refs/a', manifest('m-missing', { blobs: [layer], manifests: [d('child-missing')] }), ['t']);
      assert.deepEqual(r, { ok: false, missingBlobs: [layer], missingManifests: [d('child-missing')] });
      assert.equal(await store.registry.manifestByTag('refs/a', 't'), null);
    });

    it('stores manifests, tags and references; retags move the tag', async () => {
      const layer = d('layer-ok');
      await store.registry.linkBlob('refs/b', layer, 10);
      const m1 = manifest('m1', { blobs: [layer, layer], annotations: { a: 'b' } });
      assert.deepEqual(await store.registry.putManifest('refs/b', m1, ['v1', 'latest']), { ok: true });
      assert.deepEqual(await store.registry.putManifest('refs/b', m1, ['v1']), { ok: true }, 're-putting is idempotent');
      const byTag = await store.registry.manifestByTag('refs/b', 'latest');
      assert.equal(byTag?.digest, m1.digest);
      assert.deepEqual(byTag?.annotations, { a: 'b' });
      assert.equal((await store.registry.manifestByDigest('refs/b', m1.digest))?.size, 100);
      assert.equal(await store.registry.manifestByDigest('refs/other', m1.digest), null);

      const m2 = manifest('m2', { blobs: [layer] });
      await store.registry.putManifest('refs/b', m2, ['latest']);
      assert.equal((await store.registry.manifestByTag('refs/b', 'latest'))?.digest, m2.digest);
      assert.equal((await store.registry.manifestByTag('refs/b', 'v1'))?.digest, m1.digest);

      const index = manifest('idx', { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [m1.digest, m2.digest] });
      assert.deepEqual(await store.registry.putManifest('refs/b', index, ['multi']), { ok: true });
    });

    it('deletes a tag alone, or a manifest with all its tags', async () => {
      const m = manifest('del-m');
      await store.registry.putManifest('del/a', m, ['one', 'two', 'three']);
      assert.equal(await store.registry.deleteTag('del/a', 'one'), true);
      assert.equal(await store.registry.deleteTag('del/a', 'one'), false);
      assert.deepEqual(await store.registry.listTags('del/a', { limit: 10 }), ['three', 'two']);
      assert.equal(await store.registry.deleteManifest('del/a', m.digest), true);
      assert.equal(await store.registry.listTags('del/a', { limit: 10 }), null, 'without a manifest the repository is unknown (docs/gc.md)');
      assert.equal(await store.registry.manifestByDigest('del/a', m.digest), null);
      assert.equal(await store.registry.deleteManifest('del/a', m.digest), false);
      assert.equal(await store.registry.deleteManifest('del/none', m.digest), false);
    });

    it('paginates tags and repositories in byte order', async () => {
      const m = manifest('page-m');
      const tags = ['b', 'A', 'a', '1.0', '1.10', '1.2', 'Z', '_x'];
      await store.registry.putManifest('page/repo', m, tags);
      const all = await store.registry.listTags('page/repo', { limit: 100 });
      assert.deepEqual(all, [...tags].sort());
      const first = await store.registry.listTags('page/repo', { limit: 3 });
      const rest = await store.registry.listTags('page/repo', { limit: 100, after: first![2] });
      assert.deepEqual([...first!, ...rest!], all);
      assert.equal(await store.registry.listTags('page/unknown', { limit: 1 }), null);

      for (const r of ['cat/b', 'cat/a', 'cat/a-b', 'cat/a/b', 'cat/a.b']) await store.registry.putManifest(r, manifest(`cat-${r}`), ['t']);
      await store.registry.ensureRepository('cat/empty'); // no manifest: not listed
      const repos = (await store.registry.listRepositories({ limit: 1000 })).filter((r) => r.startsWith('cat/'));
      assert.deepEqual(repos, ['cat/a', 'cat/a-b', 'cat/a.b', 'cat/a/b', 'cat/b']);
      const after = await store.registry.listRepositories({ limit: 2, after: 'cat/a-b' });
      assert.deepEqual(after, ['cat/a.b', 'cat/a/b']);
    });

    it('finds referrers by subject, filtered by artifact type', async () => {
      const subject = d('subject');
      await store.registry.putManifest('ref/a', manifest('sig', { subjectDigest: subject, artifactType: 'application/vnd.example.sig', annotations: { k: 'v' } }), []);
      await store.registry.putManifest('ref/a', manifest('sbom', { subjectDigest: subject, artifactType: 'application/vnd.example.sbom' }), []);
      await store.registry.putManifest('ref/b', manifest('elsewhere', { subjectDigest: subject, artifactType: 'application/vnd.example.sig' }), []);
      const all = await store.registry.referrers('ref/a', subject);
      assert.equal(all.length, 2);
      const sigs = await store.registry.referrers('ref/a', subject, 'application/vnd.example.sig');
      assert.equal(sigs.length, 1);
      assert.equal(sigs[0]!.digest, d('manifest sig'));
      assert.deepEqual(sigs[0]!.annotations, { k: 'v' });
      assert.deepEqual(await store.registry.referrers('ref/a', d('nothing')), []);
      // A page at a time, in push order, after the last one seen.
      const first = await store.registry.referrers('ref/a', subject, undefined, { limit: 1 });
      assert.deepEqual(first.map((r) => r.digest), [d('manifest sig')]);
      const rest = await store.registry.referrers('ref/a', subject, undefined, { afterId: first[0]!.id, limit: 10 });
      assert.deepEqual(rest.map((r) => r.digest), [d('manifest sbom')]);
    });

    it('serialises concurrent tag updates without losing the repository', async () => {
      const ms = Array.from({ length: 10 }, (_, i) => manifest(`race-${i}`));
      await Promise.all(ms.map((m) => store.registry.putManifest('race/a', m, ['latest'])));
      const final = await store.registry.manifestByTag('race/a', 'latest');
      assert.ok(ms.some((m) => m.digest === final?.digest));
      assert.deepEqual(await store.registry.listTags('race/a', { limit: 10 }), ['latest']);
    });

    it('manifest writes, manifest deletes, links, prunes and collections racing on shared layers: none fails, no acknowledged manifest is left incomplete', async () => {
      const layers = Array.from({ length: 4 }, (_, i) => d(`shared-layer-${i}`));
      const repos = ['conc/a', 'conc/b', 'conc/c'];
      for (const r of repos) for (const [i, l] of layers.entries()) await store.registry.linkBlob(r, l, 100 + i);
      const image = (i: number) => manifest(`conc-${i}`, { blobs: [layers[i % 4]!, layers[(i + 1) % 4]!] });
      const acked: { repo: string; digest: string; blobs: string[] }[] = [];
      let refused = 0;
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 60; i++) {
        const repo = repos[i % 3]!;
        const m = image(i);
        ops.push(store.registry.putManifest(repo, m, [`t${i}`]).then((r) => (r.ok ? acked.push({ repo, digest: m.digest, blobs: m.blobs }) : refused++)));
        ops.push(store.registry.linkBlob(repos[(i + 1) % 3]!, layers[(i + 2) % 4]!, 100 + ((i + 2) % 4)));
        if (i % 3 === 2) ops.push(store.registry.deleteManifest(repo, image(i - 2).digest));
        if (i % 6 === 0) ops.push(store.registry.mountBlob(repos[(i + 2) % 3]!, repo, layers[i % 4]!));
        if (i % 5 === 0) {
          ops.push(
            (async () => {
              // A collection with no grace at all: every link and blob no manifest holds is garbage.
              const cutoff = (await store.clock()) + 1;
              await store.collection.pruneStaleLinks(cutoff);
              for (const l of layers) if (await store.collection.markBlobDeleting(l, cutoff)) await store.collection.forgetBlob(l);
            })(),
          );
        }
      }
      await Promise.all(ops);
      assert.ok(acked.length > 0, `some manifests were acknowledged (${refused} refused)`);
      let present = 0;
      for (const a of acked) {
        if (!(await store.registry.manifestByDigest(a.repo, a.digest))) continue; // deleted meanwhile
        present++;
        for (const b of a.blobs) assert.notEqual(await store.registry.linkedBlob(a.repo, b), null, `${a.repo}@${a.digest} lost its blob ${b}`);
      }
      assert.ok(present > 0, 'some acknowledged manifests were left to check');
      // A collection now spares every blob they reference.
      const cutoff = (await store.clock()) + 1;
      await store.collection.pruneStaleLinks(cutoff);
      for (const a of acked) {
        if (!(await store.registry.manifestByDigest(a.repo, a.digest))) continue;
        for (const b of a.blobs) {
          assert.equal(await store.collection.markBlobDeleting(b, cutoff), null, `a referenced blob ${b} is not collectable`);
          assert.notEqual(await store.registry.linkedBlob(a.repo, b), null, `nor is its link pruned`);
        }
      }
    });

    it('tags a manifest while it is being deleted without a constraint error', async () => {
      const m = manifest('tag-vs-delete');
      await store.registry.putManifest('tagdel/a', m, ['first']);
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        ops.push(store.registry.putManifest('tagdel/a', m, [`t${i}`]));
        ops.push(store.registry.deleteManifest('tagdel/a', m.digest));
      }
      await Promise.all(ops);
      const tags = (await store.registry.listTags('tagdel/a', { limit: 100 })) ?? [];
      const present = await store.registry.manifestByDigest('tagdel/a', m.digest);
      if (present) for (const t of tags) assert.equal((await store.registry.manifestByTag('tagdel/a', t))?.digest, m.digest);
      else assert.deepEqual(tags, [], 'no tag outlives its manifest');
    });

    it('mounts only a blob still linked and live in the source, recording nothing otherwise', async () => {
      const blob = d('mount-deleting');
      await store.registry.linkBlob('mnt/from', blob, 5);
      assert.deepEqual(await store.collection.markBlobDeleting(blob, (await store.clock()) + 60_000), { repositories: ['mnt/from'], size: 5 });
      assert.equal(await store.registry.mountBlob('mnt/to', 'mnt/from', blob), null);
      assert.equal(await store.registry.repositoryId('mnt/to'), null, 'not even the repository');
      await store.collection.forgetBlob(blob);
      assert.equal(await store.collection.blobRecorded(blob), false);
    });

    it('an upload finishing after its repository was deleted does not bring the repository back', async () => {
      const blob = d('after-delete');
      await store.registry.putManifest('gone/a', manifest('gone-m'), ['t']);
      const startedBefore = await store.clock();
      await new Promise((r) => setTimeout(r, 5));
      assert.notEqual(await store.registry.deleteRepository('gone/a'), null);
      await assert.rejects(claimLink(store, 'gone/a', blob, 3, () => true, startedBefore), RepositoryDeletedError);
      assert.equal(await store.registry.repositoryId('gone/a'), null, 'still deleted');
      assert.equal(await store.registry.linkedBlob('gone/a', blob), null);
      // An upload begun after the delete creates the repository anew, as a first push does.
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await claimLink(store, 'gone/a', blob, 3, () => true, await store.clock()), true);
      assert.deepEqual(await store.registry.linkedBlob('gone/a', blob), { size: 3 });
      // And one begun before the delete may link into the repository made since (it exists: nothing is brought back).
      assert.equal(await claimLink(store, 'gone/a', d('after-delete-2'), 4, () => true, startedBefore), true);
    });

    it('deletes a large repository in batches, each bounded, with what each removed', async () => {
      const repo = 'bulk/del';
      const layer = d('bulk-layer');
      await store.registry.linkBlob(repo, layer, 5);
      const base = manifest('bulk-base', { blobs: [layer] });
      const tags = Array.from({ length: 2 * REPOSITORY_DELETE_BATCH + 10 }, (_, i) => `t${i}`);
      assert.deepEqual(await store.registry.putManifest(repo, base, tags), { ok: true });
      const extra = Array.from({ length: REPOSITORY_DELETE_BATCH + 3 }, (_, i) => manifest(`bulk-${i}`));
      for (const m of extra) await store.registry.putManifest(repo, m, []);
      await store.registry.putManifest('bulk/neighbour', manifest('bulk-neighbour'), ['keep']);
      const startedBefore = await store.clock();
      await new Promise((r) => setTimeout(r, 5));
      const batches: { tags: number; manifests: number }[] = [];
      const removedTags = new Set<string>();
      const removedManifests = new Set<string>();
      const counts = await store.registry.deleteRepository(repo, async (b) => {
        batches.push({ tags: b.tags.length, manifests: b.manifests.length });
        for (const t of b.tags) removedTags.add(t.tag);
        for (const m of b.manifests) removedManifests.add(m.digest);
      });
      assert.deepEqual(counts, { tags: tags.length, manifests: extra.length + 1 });
      assert.ok(batches.length >= 5, JSON.stringify(batches));
      assert.ok(batches.every((b) => b.tags + b.manifests <= REPOSITORY_DELETE_BATCH), JSON.stringify(batches));
      assert.equal(removedTags.size, tags.length);
      assert.equal(removedManifests.size, extra.length + 1);
      assert.equal(await store.registry.repositoryId(repo), null);
      assert.equal(await store.registry.listTags(repo, { limit: 10 }), null);
      assert.equal(await store.registry.linkedBlob(repo, layer), null);
      assert.equal((await store.registry.manifestByTag('bulk/neighbour', 'keep'))?.digest, manifest('bulk-neighbour').digest, 'another repository untouched');
      await assert.rejects(claimLink(store, repo, d('bulk-late-upload'), 1, () => true, startedBefore), RepositoryDeletedError, 'an upload begun before the delete');
      assert.equal(await store.registry.deleteRepository(repo), null);
    });

    it('refuses pushes, mounts and uploads into a repository while it is being deleted; the delete completes', async () => {
      const repo = 'busy/del';
      const layer = d('busy-layer');
      await store.registry.linkBlob('busy/source', layer, 7);
      await store.registry.linkBlob(repo, layer, 7);
      for (let i = 0; i < REPOSITORY_DELETE_BATCH + 5; i++) await store.registry.putManifest(repo, manifest(`busy-${i}`, { blobs: [layer] }), [`t${i}`]);
      let pause!: () => void;
      const paused = new Promise<void>((r) => (pause = r));
      let resume!: () => void;
      const resumed = new Promise<void>((r) => (resume = r));
      let first = true;
      const deleting = store.registry.deleteRepository(repo, async () => {
        if (!first) return;
        first = false;
        pause();
        await resumed;
      });
      await paused; // one batch committed, the repository marked
      await assert.rejects(store.registry.putManifest(repo, manifest('busy-new', { blobs: [layer] }), ['new']), RepositoryBeingDeletedError);
      await store.registry.linkBlob('busy/source', d('busy-other'), 3);
      await assert.rejects(store.registry.mountBlob(repo, 'busy/source', d('busy-other')), RepositoryBeingDeletedError);
      await assert.rejects(claimLink(store, repo, d('busy-upload'), 2, () => true, await store.clock()), RepositoryDeletedError);
      // Reads and deletes still work meanwhile.
      assert.notEqual(await store.registry.listTags(repo, { limit: 1 }), null);
      resume();
      assert.deepEqual(await deleting, { tags: REPOSITORY_DELETE_BATCH + 5, manifests: REPOSITORY_DELETE_BATCH + 5 });
      assert.equal(await store.registry.repositoryId(repo), null);
      assert.equal(await store.registry.linkedBlob(repo, d('busy-other')), null, 'nothing slipped in');
      assert.equal(await store.registry.manifestByTag(repo, 'new'), null);
      // After the delete, a push creates the repository anew.
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await claimLink(store, repo, layer, 7, () => true, await store.clock()), true);
      assert.deepEqual(await store.registry.putManifest(repo, manifest('busy-after', { blobs: [layer] }), ['after']), { ok: true });
      assert.deepEqual(await store.registry.linkedBlob('busy/source', layer), { size: 7 });
    });

    it("one repository's usage: its own distinct blobs and manifests, its tags, through indexes only", async () => {
      const layer = d('usage-layer');
      const shared = d('usage-shared');
      await store.registry.linkBlob('usage/a', layer, 1000);
      await store.registry.linkBlob('usage/a', shared, 30);
      await store.registry.linkBlob('usage/b', shared, 30);
      await store.registry.linkBlob('usage/a', d('usage-stray'), 7); // linked, not referenced: still counted, as in storageUsage
      const m = manifest('usage-m', { blobs: [layer, shared, shared] });
      await store.registry.putManifest('usage/a', m, ['one', 'two']);
      await store.registry.putManifest('usage/b', manifest('usage-b', { blobs: [shared] }), ['x']);
      assert.deepEqual(await store.collection.repositoryUsage('usage/a'), { bytes: 1000 + 30 + 7 + 100, blobs: 4, tags: 2 });
      assert.deepEqual(await store.collection.repositoryUsage('usage/b'), { bytes: 30 + 100, blobs: 2, tags: 1 });
      const all = (await store.collection.storageUsage()).repositories.find((r) => r.name === 'usage/a');
      assert.deepEqual(all, { name: 'usage/a', bytes: 1137, blobs: 4 }, 'the same numbers as the whole accounting');
      assert.equal(await store.collection.repositoryUsage('usage/none'), null);
      await store.registry.linkBlob('usage/blobs-only', layer, 1000);
      assert.equal(await store.collection.repositoryUsage('usage/blobs-only'), null, 'no manifest: not a repository (docs/gc.md)');

      const plans = (await store.collection.explainRepositoryUsage('usage/a')).join('\n');
      if (store.dialect === 'sqlite') {
        // SEARCH through an index on every table; never a SCAN of one (SCAN u is the union's own result).
        assert.doesNotMatch(plans, /\bSCAN (rb|b|m|tags)\b/, plans);
        for (const table of ['rb', 'b', 'm', 'tags']) assert.match(plans, new RegExp(`SEARCH ${table} USING .*INDEX .*\\(repository_id=\\?|SEARCH ${table} USING .*INDEX .*\\(digest=\\?`), plans);
      } else {
        assert.doesNotMatch(plans, /Seq Scan/, plans);
        assert.match(plans, /Scan (using|on) repository_blobs_pk/, plans);
        assert.match(plans, /Scan (using|on) manifests_(repository_digest|subject)/, plans);
        assert.match(plans, /Scan (using|on) tags_pk/, plans);
      }
    });

    it('refuses to unlink a blob or delete a child manifest that a live manifest of the repository needs', async () => {
      const repo = 'integrity/a';
      const layer = d('integrity-layer');
      await store.registry.linkBlob(repo, layer, 10);
      await store.registry.linkBlob('integrity/other', layer, 10);
      const child = manifest('integrity-child', { blobs: [layer] });
      assert.deepEqual(await store.registry.putManifest(repo, child, []), { ok: true });
      const index = manifest('integrity-index', { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child.digest] });
      assert.deepEqual(await store.registry.putManifest(repo, index, ['multi']), { ok: true });
      const refused = (kind: string, by: string) => (err: unknown) => err instanceof StillReferencedError && err.kind === kind && err.referencedBy === by;
      await assert.rejects(store.registry.unlinkBlob(repo, layer), refused('blob', child.digest));
      await assert.rejects(store.registry.deleteManifest(repo, child.digest), refused('manifest', index.digest));
      assert.deepEqual(await store.registry.linkedBlob(repo, layer), { size: 10 }, 'nothing removed');
      assert.notEqual(await store.registry.manifestByDigest(repo, child.digest), null);
      // Elsewhere the same blob is free; a tag delete is always fine.
      assert.equal(await store.registry.unlinkBlob('integrity/other', layer), true);
      assert.equal(await store.registry.deleteTag(repo, 'multi'), true);
      // Top down it all goes.
      assert.equal(await store.registry.deleteManifest(repo, index.digest), true);
      assert.equal(await store.registry.deleteManifest(repo, child.digest), true);
      assert.equal(await store.registry.unlinkBlob(repo, layer), true);
    });

    it('a delete racing a manifest write that needs the same child or blob: never an acknowledged manifest left incomplete', async () => {
      const repo = 'integrity/race';
      for (let round = 0; round < 15; round++) {
        const layer = d(`race-layer-${round}`);
        await store.registry.linkBlob(repo, layer, 10);
        const child = manifest(`race-child-${round}`);
        assert.deepEqual(await store.registry.putManifest(repo, child, []), { ok: true });
        const image = manifest(`race-image-${round}`, { blobs: [layer] });
        const index = manifest(`race-index-${round}`, { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child.digest] });
        const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
        const [putIndex, delChild, putImage, unlink] = await Promise.all([
          settle(store.registry.putManifest(repo, index, [`i${round}`])),
          settle(store.registry.deleteManifest(repo, child.digest)),
          settle(store.registry.putManifest(repo, image, [`m${round}`])),
          settle(store.registry.unlinkBlob(repo, layer)),
        ]);
        for (const r of [delChild, unlink]) if (!r.ok) assert.ok(r.e instanceof StillReferencedError, String(r.e));
        if (putIndex.ok && putIndex.v.ok) {
          assert.equal(delChild.ok, false, `round ${round}: the child of an acknowledged index was deleted`);
          assert.notEqual(await store.registry.manifestByDigest(repo, child.digest), null);
        } else {
          assert.deepEqual(putIndex.ok && putIndex.v, { ok: false, missingBlobs: [], missingManifests: [child.digest] });
        }
        if (putImage.ok && putImage.v.ok) {
          assert.equal(unlink.ok, false, `round ${round}: a blob of an acknowledged manifest was unlinked`);
          assert.deepEqual(await store.registry.linkedBlob(repo, layer), { size: 10 });
        } else {
          assert.deepEqual(putImage.ok && putImage.v, { ok: false, missingBlobs: [layer], missingManifests: [] });
        }
      }
    });

    it('records garbage collection runs; joins only a fresh one with the same options, a queued one first', async () => {
      const opts = { dryRun: false, graceMs: 0, deleteUntagged: true };
      const t = await store.clock();
      const a = await store.collection.createGcRun(opts, 'owner-a', { freshSince: t - 60_000 });
      assert.equal(a.joined, false);
      assert.equal(a.run.state, 'queued');
      assert.deepEqual([a.run.dryRun, a.run.graceMs, a.run.deleteUntagged, a.run.owner], [false, 0, true, 'owner-a']);
      assert.equal((await store.collection.gcRun('latest'))?.id, a.run.id);
      // The same options: joined. Other options, or no join asked for: a run of its own.
      assert.deepEqual(await store.collection.createGcRun(opts, 'owner-b', { freshSince: t - 60_000 }), { run: a.run, joined: true });
      const other = await store.collection.createGcRun({ ...opts, dryRun: true }, 'owner-b', { freshSince: t - 60_000 });
      assert.equal(other.joined, false);
      const own = await store.collection.createGcRun(opts, 'owner-b', null);
      assert.equal(own.joined, false);
      // a runs, own stays queued: a join prefers the queued one (it has not started, so it sees every delete so far).
      await store.collection.updateGcRun(a.run.id, { state: 'running', started: true, progress: '{"phase":"blobs","done":1}' });
      assert.equal((await store.collection.createGcRun(opts, 'owner-c', { freshSince: t - 60_000 })).run.id, own.run.id);
      await store.collection.updateGcRun(own.run.id, { state: 'finished', finished: true, summary: '{"blobsDeleted":3}' });
      const finished = await store.collection.gcRun(own.run.id);
      assert.equal(finished?.state, 'finished');
      assert.equal(finished?.summary, '{"blobsDeleted":3}');
      assert.ok(finished!.finishedAt! >= t);
      assert.equal((await store.collection.createGcRun(opts, 'owner-c', { freshSince: t - 60_000 })).run.id, a.run.id, 'the running one, once none is queued');
      // Not refreshed since freshSince: its process died; not joined.
      const later = (await store.clock()) + 1000;
      assert.equal((await store.collection.createGcRun(opts, 'owner-c', { freshSince: later })).joined, false);
      await store.collection.touchGcRuns([a.run.id]);
      assert.ok((await store.collection.gcRun(a.run.id))!.updatedAt >= t);
      assert.equal(await store.collection.gcRun(987654321), null);
    });

    it("reads the time from the database's clock", async () => {
      const before = Date.now();
      const a = await store.clock();
      const b = await store.clock();
      assert.ok(Number.isInteger(a) && b >= a, `${a} then ${b}`);
      // The same machine here: the two clocks agree to within a few seconds.
      assert.ok(Math.abs(a - before) < 5_000, `database clock ${a}, process clock ${before}`);
    });
  });
}
