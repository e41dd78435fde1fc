/**
 * The collector works in bounded batches: candidates read a page at a time,
 * events emitted per batch, a dry run's plan capped while its counts stay whole.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { RegistryEvent } from '../events/index.js';
import { MetadataStore } from '../metadata/index.js';
import { InMemoryBlobStore } from '../storage/inmemory.js';
import { BATCH, GarbageCollector } from './collector.js';
import { PLAN_LIMIT, type PlannedItem } from './dry-run.js';

const d = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const COUNT = 2 * BATCH + 137;

describe('garbage collector batches', () => {
  let meta: MetadataStore;
  const emitted: RegistryEvent[][] = [];
  let gc: GarbageCollector;
  const pages: number[] = [];

  before(async () => {
    meta = await MetadataStore.open({ sqlitePath: ':memory:' });
    const store = new InMemoryBlobStore();
    gc = new GarbageCollector(meta, store, undefined, () => ({ emit: async (events) => void emitted.push(events) }));
    // Untagged manifests: with delete-untagged, every one and its bytes are garbage once the grace period is over.
    for (let i = 0; i < COUNT; i++) {
      const m = { digest: d(`manifest ${i}`), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, artifactType: null, subjectDigest: null, annotations: null, blobs: [], manifests: [] };
      assert.deepEqual(await meta.registry.putManifest(`batch/r${i % 3}`, m, []), { ok: true });
    }
    const candidates = meta.collection.blobCandidates.bind(meta.collection);
    meta.collection.blobCandidates = async (cutoff, limit, after) => {
      const page = await candidates(cutoff, limit, after);
      pages.push(page.length);
      return page;
    };
    await new Promise((r) => setTimeout(r, 5));
  });
  after(async () => {
    await gc.stop();
    await meta.close();
  });

  it('a dry run counts everything, lists the first PLAN_LIMIT and tells each item to onPlanned', async () => {
    const told: PlannedItem[] = [];
    const summary = await gc.collect({ graceMs: 0, deleteUntagged: true, dryRun: true, onPlanned: (i) => told.push(i) });
    assert.equal(summary.manifestsDeleted, COUNT);
    assert.equal(summary.blobsEligible, COUNT, "the manifests' bytes");
    assert.equal(summary.bytesReclaimed, COUNT * 10);
    assert.equal(summary.plan!.manifests.length, PLAN_LIMIT);
    assert.equal(summary.plan!.blobs.length, PLAN_LIMIT);
    assert.equal(summary.plan!.truncated, true);
    assert.equal(told.filter((i) => i.kind === 'manifest').length, COUNT);
    assert.equal(told.filter((i) => i.kind === 'blob').length, COUNT);
    assert.equal(pages.length, 0, 'a dry run deletes nothing');
  });

  it('reads candidates a page at a time and emits events per batch', async () => {
    const summary = await gc.collect({ graceMs: 0, deleteUntagged: true, dryRun: false });
    assert.equal(summary.manifestsDeleted, COUNT);
    assert.equal(summary.blobsDeleted, COUNT);
    assert.equal(summary.blobsEligible, COUNT);
    assert.ok(pages.every((n) => n <= BATCH), `pages ${pages.join(',')}`);
    assert.ok(pages.length >= Math.ceil(COUNT / BATCH), `pages ${pages.join(',')}`);
    assert.equal(emitted.flat().length, COUNT, 'one delete event per manifest');
    assert.ok(emitted.length >= Math.ceil(COUNT / BATCH));
    assert.ok(emitted.every((e) => e.length <= BATCH), `batches ${emitted.map((e) => e.length).join(',')}`);
    // Recorded as runs, the newest first.
    const latest = await gc.status('latest');
    assert.equal(latest?.state, 'finished');
    assert.equal(latest?.summary?.blobsDeleted, COUNT);
  });

  it('start returns at once with the run; wait reports it finished', async () => {
    const run = await gc.start({ graceMs: 0, deleteUntagged: false, dryRun: false });
    assert.ok(['queued', 'running'].includes(run.state));
    const done = await gc.wait(run.id, 30_000);
    assert.equal(done?.state, 'finished');
    assert.equal(done?.summary?.blobsDeleted, 0);
  });

  it('a stopped collector fails its queued run instead of running it', async () => {
    const other = new GarbageCollector(meta, new InMemoryBlobStore());
    const run = other.collect({ graceMs: 0, deleteUntagged: false, dryRun: false });
    const stopping = other.stop();
    await assert.rejects(run, /stopped/);
    await stopping;
    assert.equal((await other.status('latest'))?.state, 'failed');
  });
});
