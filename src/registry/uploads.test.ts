/**
 * A chunk shorter than its Content-Length is refused (SIZE_INVALID), however
 * many bytes the upload held before it: the count is the chunk's own. Over
 * the filesystem store (the default, which appends and commits the last
 * chunk in one step) and the in-memory one.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MetadataStore } from '../metadata/index.js';
import { FilesystemBlobStore } from '../storage/filesystem.js';
import { InMemoryBlobStore } from '../storage/inmemory.js';
import type { BlobStore } from '../storage/index.js';
import { RegistryError } from './errors.js';
import { Registry } from './registry.js';

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function sizeInvalid(received: number, announced: number) {
  return (err: unknown) => err instanceof RegistryError && err.code === 'SIZE_INVALID' && err.message === `received ${received} bytes but Content-Length was ${announced}`;
}

const stores: [string, () => Promise<{ store: BlobStore; cleanup: () => Promise<void> }>][] = [
  [
    'filesystem',
    async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'berth-uploads-'));
      return { store: new FilesystemBlobStore({ rootDirectory: root }), cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  ],
  ['in-memory', async () => ({ store: new InMemoryBlobStore(), cleanup: async () => {} })],
];

for (const [name, open] of stores) {
  describe(`uploads: a chunk's length (${name} store)`, () => {
    let meta: MetadataStore;
    let registry: Registry;
    let cleanup: () => Promise<void>;

    before(async () => {
      meta = await MetadataStore.open({ sqlitePath: ':memory:' });
      const opened = await open();
      cleanup = opened.cleanup;
      registry = new Registry(meta, opened.store, { deleteEnabled: true });
    });
    after(async () => {
      await meta.close();
      await cleanup();
    });

    it('counts each chunk on its own, after bytes already uploaded', async () => {
      const { id } = await registry.uploads.start('lengths/a');
      const first = randomBytes(300);
      const second = randomBytes(200);
      assert.equal((await registry.uploads.append('lengths/a', id, once(first), undefined, 300)).size, 300);
      // 200 bytes after 300: the chunk's own count, not the upload's 500.
      assert.equal((await registry.uploads.append('lengths/a', id, once(second), { start: 300, end: 499 }, 200)).size, 500);
      await assert.rejects(registry.uploads.append('lengths/a', id, once(randomBytes(10)), undefined, 15), sizeInvalid(10, 15));
    });

    it('refuses a last chunk shorter than announced, and the digest does not appear in the repository', async () => {
      const { id } = await registry.uploads.start('lengths/b');
      const head = randomBytes(100);
      const tail = randomBytes(80);
      await registry.uploads.append('lengths/b', id, once(head), undefined, 100);
      // The digest of what the client meant to send; 60 of the tail's 80 bytes arrive.
      const digest = sha256(Buffer.concat([head, tail]));
      await assert.rejects(registry.uploads.finish('lengths/b', id, digest, once(tail.subarray(0, 60)), undefined, 80), sizeInvalid(60, 80));
      assert.equal(await meta.registry.linkedBlob('lengths/b', digest), null);
    });

    it('refuses a monolithic push whose body is shorter than its Content-Length', async () => {
      const blob = randomBytes(4096);
      await assert.rejects(registry.uploads.putWhole('lengths/c', sha256(blob), once(blob.subarray(0, 4000)), 4096), sizeInvalid(4000, 4096));
      const whole = await registry.uploads.putWhole('lengths/c', sha256(blob), once(blob), 4096);
      assert.deepEqual(whole, { digest: sha256(blob), size: 4096 });
    });
  });
}
