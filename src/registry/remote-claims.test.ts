/**
 * The reserve / write / link path the registry takes on a store without a
 * local presence check (an object store): no store call inside a metadata
 * transaction, and bytes a collection removed in between are written again.
 * Run over the in-memory store with `existsNow` taken away.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MetadataStore } from '../metadata/index.js';
import { InMemoryBlobStore } from '../storage/inmemory.js';
import type { BlobStore } from '../storage/index.js';
import { Registry } from './registry.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

/** An in-memory store that answers like a remote one, and tells whether it is called inside a transaction. */
function remoteShaped(): { store: BlobStore; calls: string[] } {
  const inner = new InMemoryBlobStore();
  const calls: string[] = [];
  const store: BlobStore = Object.create(inner) as BlobStore;
  Object.defineProperty(store, 'existsNow', { value: undefined });
  for (const method of ['exists', 'commitUpload', 'writeBlob'] as const) {
    const original = (inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method];
    if (!original) continue;
    (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      calls.push(method);
      return original.apply(inner, args);
    };
  }
  return { store, calls };
}

describe('registry over a remote-shaped blob store', () => {
  let meta: MetadataStore;
  let registry: Registry;
  let remote: ReturnType<typeof remoteShaped>;

  before(async () => {
    meta = await MetadataStore.open({ sqlitePath: ':memory:' });
    remote = remoteShaped();
    registry = new Registry(meta, remote.store, { deleteEnabled: true });
    // A store call inside a write transaction would show up as a nested call here.
    const write = meta.registry.claimBlob.bind(meta.registry);
    let inside = 0;
    meta.registry.claimBlob = async (digest, size, body, scope) =>
      write(
        digest,
        size,
        async (trx) => {
          inside++;
          try {
            return await body(trx);
          } finally {
            inside--;
          }
        },
        scope,
      );
    const commit = remote.store.commitUpload.bind(remote.store);
    remote.store.commitUpload = async (id, digest) => {
      assert.equal(inside, 0, 'commitUpload is not called inside a metadata transaction');
      return commit(id, digest);
    };
  });
  after(async () => {
    await meta.close();
  });

  it('pushes a blob and a manifest with no store call inside a transaction', async () => {
    const layer = randomBytes(4000);
    const up = await registry.uploads.start('remote/app');
    await registry.uploads.append('remote/app', up.id, once(layer.subarray(0, 1000)));
    await registry.uploads.finish('remote/app', up.id, sha256(layer), once(layer.subarray(1000)));
    assert.deepEqual(await registry.statBlob('remote/app', sha256(layer)), { digest: sha256(layer), size: 4000 });
    const config = Buffer.from('{}');
    await registry.uploads.putWhole('remote/app', sha256(config), once(config));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.byteLength },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.byteLength }],
      }),
    );
    const put = await registry.putManifest('remote/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', manifest);
    assert.equal(put.digest, sha256(manifest));
    assert.deepEqual((await registry.getManifest('remote/app', 'v1')).body, manifest);
    assert.ok(!remote.calls.includes('exists'), 'no presence check is made at all');
  });

  it('writes the bytes again when a collection removed them between the write and the link', async () => {
    const layer = randomBytes(3000);
    const digest = sha256(layer);
    const commit = remote.store.commitUpload.bind(remote.store);
    let commits = 0;
    remote.store.commitUpload = async (id, d) => {
      await commit(id, d);
      if (++commits === 1) {
        // A collection whose grace period has passed: marks the reserved blob, removes its bytes, forgets it.
        assert.ok(await meta.collection.markBlobDeleting(d, Date.now() + 3_600_000));
        assert.equal(await remote.store.delete(d), true);
        await meta.collection.forgetBlob(d);
      }
    };
    try {
      const up = await registry.uploads.start('remote/gc');
      await registry.uploads.finish('remote/gc', up.id, digest, once(layer));
    } finally {
      remote.store.commitUpload = commit;
    }
    assert.equal(commits, 2, 'the second round wrote the bytes again');
    assert.equal(await remote.store.exists(digest), true);
    assert.deepEqual(await registry.statBlob('remote/gc', digest), { digest, size: 3000 });
  });
});
