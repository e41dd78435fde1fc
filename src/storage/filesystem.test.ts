import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UploadHash } from './driver.js';
import { FilesystemBlobStore, place } from './filesystem.js';
import { runDriverSuite } from './suite.js';

runDriverSuite('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-fs-'));
  return { store: new FilesystemBlobStore({ rootDirectory: dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('placing an upload as a blob (place)', () => {
  for (const code of ['EPERM', 'EXDEV']) {
    it(`copies it into place (${code}), keeping the upload to be committed again from`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'berth-place-'));
      try {
        const source = path.join(dir, 'upload');
        const target = path.join(dir, 'blob');
        await writeFile(source, 'the bytes');
        const refuse = () => {
          throw Object.assign(new Error(`link: ${code}`), { code });
        };
        place(source, target, refuse);
        assert.equal(await readFile(target, 'utf8'), 'the bytes');
        assert.equal(await readFile(source, 'utf8'), 'the bytes', 'the upload is still there');
        // A collection removed the bytes; the claim commits again from the upload.
        await rm(target);
        place(source, target, refuse);
        assert.equal(await readFile(target, 'utf8'), 'the bytes');
        assert.deepEqual((await readdir(dir)).sort(), ['blob', 'upload'], 'no temporary file left behind');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('replaces a file of another size already in place (a crash with fsync off left it), and keeps one of the same size', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-place-'));
    try {
      const source = path.join(dir, 'upload');
      const target = path.join(dir, 'blob');
      await writeFile(source, 'the bytes');
      await writeFile(target, '');
      place(source, target);
      assert.equal(await readFile(target, 'utf8'), 'the bytes');
      // Same size: the same bytes, since the name is their digest (not read again).
      await writeFile(target, 'THE BYTES');
      place(source, target);
      assert.equal(await readFile(target, 'utf8'), 'THE BYTES');
      assert.deepEqual((await readdir(dir)).sort(), ['blob', 'upload'], 'no temporary file left behind');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passes other link errors through', async () => {
    assert.throws(
      () =>
        place('/nonexistent/a', '/nonexistent/b', () => {
          throw Object.assign(new Error('link: ENOENT'), { code: 'ENOENT' });
        }),
      /ENOENT/,
    );
  });
});

describe('an upload’s last append committed in the same step (appendAndCommit)', () => {
  const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  async function* chunks(data: Buffer, size: number): AsyncIterable<Uint8Array> {
    for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
  }
  async function withStore(opts: { fsync?: boolean }, fn: (store: FilesystemBlobStore, dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-fs-commit-'));
    try {
      await fn(new FilesystemBlobStore({ rootDirectory: dir, ...opts }), dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const id = (n: number) => `${'u'.repeat(43)}${n}`;

  it('commits when the bytes are the digest, after earlier appends and across several writes', async () => {
    await withStore({}, async (store) => {
      const first = randomBytes(100_000);
      const last = randomBytes(3 * 1024 * 1024 + 5); // more than one write batch
      const all = Buffer.concat([first, last]);
      const hash = new UploadHash();
      await store.createUpload(id(1));
      await store.appendUpload(id(1), 0, chunks(first, 7_000), { hash });
      const r = await store.appendAndCommit(id(1), first.byteLength, chunks(last, 64 * 1024), sha256(all), hash);
      assert.deepEqual(r, { size: all.byteLength, committed: true });
      assert.equal(store.existsNow(sha256(all)), true);
      assert.equal(hash.digest(), sha256(all));
      await store.deleteUpload(id(1));
      const stored: Buffer[] = [];
      for await (const c of await store.get(sha256(all))) stored.push(c as Buffer);
      assert.equal(sha256(Buffer.concat(stored)), sha256(all), 'the blob outlives its upload');
    });
  });

  it('links nothing when the bytes are another digest; the upload keeps them', async () => {
    await withStore({}, async (store) => {
      const data = randomBytes(4096);
      const claimed = sha256(randomBytes(8));
      await store.createUpload(id(2));
      const r = await store.appendAndCommit(id(2), 0, chunks(data, 4096), claimed, new UploadHash());
      assert.deepEqual(r, { size: 4096, committed: false });
      assert.equal(store.existsNow(claimed), false);
      assert.equal(store.existsNow(sha256(data)), false);
      assert.equal(await store.uploadSize(id(2)), 4096);
    });
  });

  it('leaves the commit to commitUpload when the blob directory was removed meanwhile (a collection)', async () => {
    await withStore({}, async (store, dir) => {
      const first = randomBytes(4096);
      const prefix = sha256(first).slice('sha256:'.length, 'sha256:'.length + 2);
      let second = randomBytes(4096);
      while (!sha256(second).startsWith(`sha256:${prefix}`)) second = randomBytes(4096);
      await store.createUpload(id(5));
      assert.equal((await store.appendAndCommit(id(5), 0, chunks(first, 4096), sha256(first), new UploadHash())).committed, true);
      // The directory goes, as a collection removes an emptied one; the store still thinks it made it.
      await rm(path.join(dir, 'blobs', 'sha256', prefix), { recursive: true });
      await store.createUpload(id(6));
      assert.deepEqual(await store.appendAndCommit(id(6), 0, chunks(second, 4096), sha256(second), new UploadHash()), { size: 4096, committed: false });
      await store.commitUpload(id(6), sha256(second));
      assert.equal(store.existsNow(sha256(second)), true);
    });
  });

  it('leaves the commit to commitUpload with fsync off, or with nothing left to write', async () => {
    await withStore({ fsync: false }, async (store) => {
      const data = randomBytes(4096);
      await store.createUpload(id(3));
      assert.deepEqual(await store.appendAndCommit(id(3), 0, chunks(data, 4096), sha256(data), new UploadHash()), { size: 4096, committed: false });
      assert.equal(store.existsNow(sha256(data)), false);
    });
    await withStore({}, async (store) => {
      const data = randomBytes(4096);
      const hash = new UploadHash();
      await store.createUpload(id(4));
      await store.appendUpload(id(4), 0, chunks(data, 4096), { hash });
      assert.deepEqual(await store.appendAndCommit(id(4), 4096, chunks(Buffer.alloc(0), 1), sha256(data), hash), { size: 4096, committed: false });
      await store.commitUpload(id(4), sha256(data));
      assert.equal(store.existsNow(sha256(data)), true);
    });
  });

  it('leaves a blob file of another size to commitUpload, which replaces it with the verified bytes', async () => {
    await withStore({}, async (store, dir) => {
      const data = randomBytes(5000);
      const digest = sha256(data);
      const blobFile = path.join(dir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
      await mkdir(path.dirname(blobFile), { recursive: true });
      await writeFile(blobFile, data.subarray(0, 1000)); // what a crash with fsync off can leave
      await store.createUpload(id(8));
      assert.deepEqual(await store.appendAndCommit(id(8), 0, chunks(data, 4096), digest, new UploadHash()), { size: 5000, committed: false });
      await store.commitUpload(id(8), digest);
      assert.deepEqual(await readFile(blobFile), data);
    });
  });

  it('passes empty chunks by, however many come before the bytes (a write takes at most 1024 buffers)', async () => {
    await withStore({}, async (store) => {
      const data = randomBytes(10_000);
      async function* padded(): AsyncIterable<Uint8Array> {
        for (let i = 0; i < 1500; i++) yield Buffer.alloc(0);
        yield data.subarray(0, 6000);
        for (let i = 0; i < 1500; i++) yield new Uint8Array(0);
        yield data.subarray(6000);
      }
      await store.createUpload(id(7));
      assert.deepEqual(await store.appendAndCommit(id(7), 0, padded(), sha256(data), new UploadHash()), { size: 10_000, committed: true });
      assert.equal(store.existsNow(sha256(data)), true);
    });
  });
});

describe('directories the store makes', () => {
  it('flushes each one into its parent, deepest first, once, before a blob in it is committed', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'berth-fs-dirs-'));
    const root = path.join(tmp, 'registry');
    const synced: string[] = [];
    const store = new FilesystemBlobStore({ rootDirectory: root, syncDir: async (dir) => void synced.push(dir) });
    const id = `${'d'.repeat(43)}1`;
    try {
      const data = randomBytes(1000);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      const blobDir = path.join(root, 'blobs', 'sha256', digest.slice(7, 9));
      await store.createUpload(id);
      await store.appendUpload(id, 0, [data] as unknown as AsyncIterable<Uint8Array>);
      await store.commitUpload(id, digest);
      // Made by the commit: blobs/, blobs/sha256/ and the digest's own directory, each entry flushed in its parent.
      const order = [path.join(root, 'blobs', 'sha256'), path.join(root, 'blobs'), root].map((d) => synced.lastIndexOf(d));
      assert.ok(order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, `flushed: ${synced.join(', ')}`);
      assert.ok(synced.includes(tmp), `the registry's own directory, made by the store, is flushed into its parent: ${synced.join(', ')}`);
      assert.equal(synced.at(-1), blobDir, 'and the commit flushes the blob’s directory last');

      // Nothing new to make: only the commit's own flush.
      synced.length = 0;
      await store.createUpload(`${'d'.repeat(43)}2`);
      await store.appendUpload(`${'d'.repeat(43)}2`, 0, [data] as unknown as AsyncIterable<Uint8Array>);
      await store.commitUpload(`${'d'.repeat(43)}2`, digest);
      assert.deepEqual(synced, [blobDir]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
