/**
 * The one test suite every blob-store driver must pass (as distribution's
 * storage/driver/testsuites does). Call it from `<driver>.test.ts`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readSync } from 'node:fs';
import { describe, it, before, after } from 'node:test';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, openReader, UploadHash, UploadNotFoundError, type BlobStore } from './driver.js';

export interface DriverFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function* chunksOf(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

function uploadId(): string {
  return randomUUID();
}

async function put(store: BlobStore, data: Buffer): Promise<string> {
  const id = uploadId();
  await store.createUpload(id);
  await store.appendUpload(id, 0, chunksOf(data, 1000));
  const digest = sha256(data);
  await store.commitUpload(id, digest);
  await store.deleteUpload(id);
  return digest;
}

export function runDriverSuite(name: string, makeDriver: () => Promise<DriverFixture>): void {
  describe(`blob store driver: ${name}`, () => {
    let fx: DriverFixture;
    before(async () => {
      fx = await makeDriver();
    });
    after(async () => {
      await fx.store.close?.();
      await fx.cleanup();
    });

    it('commits an upload and serves it whole and by range', async () => {
      const data = randomBytes(300_000);
      const digest = await put(fx.store, data);
      assert.deepEqual(await fx.store.stat(digest), { digest, size: data.byteLength });
      assert.deepEqual(await collect(await fx.store.get(digest)), data);
      const part = await collect(await fx.store.get(digest, { offset: 1234, length: 5000 }));
      assert.deepEqual(part, data.subarray(1234, 6234));
      const tail = await collect(await fx.store.get(digest, { offset: data.byteLength - 1, length: 1 }));
      assert.deepEqual(tail, data.subarray(data.byteLength - 1));
    });

    it('reports absent blobs as null / BlobNotFoundError', async () => {
      const digest = sha256(randomBytes(16));
      assert.equal(await fx.store.stat(digest), null);
      await assert.rejects(fx.store.get(digest), BlobNotFoundError);
      assert.equal(await fx.store.delete(digest), false);
    });

    it('an upload in progress is not visible as a blob', async () => {
      const data = randomBytes(1000);
      const id = uploadId();
      await fx.store.createUpload(id);
      await fx.store.appendUpload(id, 0, chunksOf(data, 100));
      assert.equal(await fx.store.stat(sha256(data)), null);
      assert.equal(await fx.store.uploadSize(id), 1000);
      await fx.store.deleteUpload(id);
      assert.equal(await fx.store.uploadSize(id), null);
    });

    it('appends in several calls and re-reads the upload', async () => {
      const data = randomBytes(70_000);
      const id = uploadId();
      await fx.store.createUpload(id);
      assert.equal(await fx.store.uploadSize(id), 0);
      let size = await fx.store.appendUpload(id, 0, chunksOf(data.subarray(0, 30_000), 4096));
      assert.equal(size, 30_000);
      size = await fx.store.appendUpload(id, size, chunksOf(data.subarray(30_000), 7000));
      assert.equal(size, 70_000);
      assert.deepEqual(await collect(await fx.store.readUpload(id)), data);
      assert.equal(await fx.store.exists(sha256(data)), false);
      await fx.store.commitUpload(id, sha256(data));
      assert.equal(await fx.store.exists(sha256(data)), true);
      assert.equal(await fx.store.uploadSize(id), 70_000, 'the upload stays until it is deleted');
      await fx.store.deleteUpload(id);
      assert.equal(await fx.store.uploadSize(id), null);
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data, 'deleting the upload leaves the blob');
    });

    it('appends megabytes in odd-sized chunks intact', async () => {
      const data = randomBytes(5 * 1024 * 1024 + 12_345);
      const id = uploadId();
      await fx.store.createUpload(id);
      // 4099-byte chunks: batches end mid-chunk-stream, and one batch holds hundreds of buffers.
      assert.equal(await fx.store.appendUpload(id, 0, chunksOf(data.subarray(0, 3_000_000), 4099)), 3_000_000);
      assert.equal(await fx.store.appendUpload(id, 3_000_000, chunksOf(data.subarray(3_000_000), 65_536)), data.byteLength);
      await fx.store.commitUpload(id, sha256(data));
      await fx.store.deleteUpload(id);
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data);
    });

    it('feeds a running hash with exactly the bytes it appends, across appends', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 777);
      const id = uploadId();
      await fx.store.createUpload(id);
      const hash = new UploadHash();
      let size = await fx.store.appendUpload(id, 0, chunksOf(data.subarray(0, 1_500_001), 4099), { hash });
      assert.equal(hash.digest(), sha256(data.subarray(0, 1_500_001)), 'the digest so far, and the hash stays usable');
      size = await fx.store.appendUpload(id, size, chunksOf(data.subarray(size), 65_536), { hash, durable: true });
      assert.equal(size, data.byteLength);
      assert.equal(hash.digest(), sha256(data));
      await fx.store.deleteUpload(id);
    });

    it('a failing body leaves the upload at a size the next append can continue from', async () => {
      const id = uploadId();
      await fx.store.createUpload(id);
      async function* failing(): AsyncIterable<Uint8Array> {
        yield Buffer.alloc(2 * 1024 * 1024, 1);
        throw new Error('client went away');
      }
      await assert.rejects(fx.store.appendUpload(id, 0, failing()), /client went away/);
      const size = (await fx.store.uploadSize(id))!;
      assert.ok(size <= 2 * 1024 * 1024, `at most what was sent is kept (${size})`);
      const tail = Buffer.from('tail');
      assert.equal(await fx.store.appendUpload(id, size, chunksOf(tail, 2)), size + 4);
      const whole = await collect(await fx.store.readUpload(id));
      assert.deepEqual(whole.subarray(size), tail);
      assert.ok(whole.subarray(0, size).every((b) => b === 1));
      await fx.store.deleteUpload(id);
    });

    /** An upload of `data`, committed (and kept). */
    async function committedUpload(data: Buffer, chunk: number): Promise<string> {
      const id = uploadId();
      await fx.store.createUpload(id);
      await fx.store.appendUpload(id, 0, chunksOf(data, chunk));
      await fx.store.commitUpload(id, sha256(data));
      return id;
    }

    it('a commit can be repeated after the blob was deleted, until the upload is', async () => {
      const data = randomBytes(1000);
      const id = await committedUpload(data, 100);
      assert.equal(await fx.store.delete(sha256(data)), true);
      assert.equal(await fx.store.exists(sha256(data)), false);
      await fx.store.commitUpload(id, sha256(data));
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data);
      await fx.store.deleteUpload(id);
    });

    it('refuses appends to a committed upload, whose bytes are a blob now', async () => {
      const data = randomBytes(5000);
      const id = await committedUpload(data, 1000);
      await assert.rejects(fx.store.appendUpload(id, 5000, chunksOf(Buffer.from('junk'), 4)), UploadNotFoundError);
      await assert.rejects(fx.store.appendUpload(id, 0, chunksOf(Buffer.from('junk'), 4)), UploadNotFoundError);
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data, 'the blob is unchanged');
      await fx.store.deleteUpload(id);
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data);
    });

    it('locks an upload against a second holder until released', async () => {
      const id = uploadId();
      await fx.store.createUpload(id);
      const release = await fx.store.lockUpload(id);
      assert.ok(release, 'the first lock is granted');
      assert.equal(await fx.store.lockUpload(id), null, 'a second is refused while the first is held');
      await release();
      const again = await fx.store.lockUpload(id);
      assert.ok(again, 'granted again once released');
      await again();
      await fx.store.deleteUpload(id);
      await assert.rejects(fx.store.lockUpload(id), UploadNotFoundError);
    });

    it('an append at an earlier offset replaces what lay beyond it', async () => {
      const id = uploadId();
      await fx.store.createUpload(id);
      await fx.store.appendUpload(id, 0, chunksOf(Buffer.from('hello, wrong tail'), 5));
      const size = await fx.store.appendUpload(id, 7, chunksOf(Buffer.from('world'), 2));
      assert.equal(size, 12);
      assert.equal((await collect(await fx.store.readUpload(id))).toString(), 'hello, world');
      await fx.store.deleteUpload(id);
    });

    it('committing the same content twice leaves one readable copy', async () => {
      const data = randomBytes(5000);
      const ids = [uploadId(), uploadId()];
      for (const id of ids) {
        await fx.store.createUpload(id);
        await fx.store.appendUpload(id, 0, chunksOf(data, 999));
      }
      await Promise.all(ids.map((id) => fx.store.commitUpload(id, sha256(data))));
      await Promise.all(ids.map((id) => fx.store.deleteUpload(id)));
      assert.deepEqual(await collect(await fx.store.get(sha256(data))), data);
      const listed = [];
      for await (const b of fx.store.list()) if (b.digest === sha256(data)) listed.push(b);
      assert.equal(listed.length, 1);
    });

    it('pumps a blob, and a range of it, in order through reused buffers', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 777);
      const digest = await put(fx.store, data);
      const pumped = async (range?: { offset: number; length: number }) => {
        const parts: Buffer[] = [];
        const reader = await openReader(fx.store, digest, range);
        // The copy is taken before resolving: after that the buffer may be refilled.
        await reader.pump(async (chunk) => {
          parts.push(Buffer.from(chunk));
          await new Promise((r) => setTimeout(r, Math.random() * 3));
        });
        return Buffer.concat(parts);
      };
      assert.deepEqual(await pumped(), data);
      assert.deepEqual(await pumped({ offset: 1_000_001, length: 2_100_000 }), data.subarray(1_000_001, 3_100_001));
      const failing = await openReader(fx.store, digest);
      await assert.rejects(failing.pump(async () => Promise.reject(new Error('client went away'))), /client went away/);
      assert.deepEqual(await pumped(), data, 'a failed pump leaves the next one intact');
      await assert.rejects(openReader(fx.store, sha256(randomBytes(8))), BlobNotFoundError);
    });

    it('hands out a local file for a blob, whole and by range, where the driver has files', async (t) => {
      const openFile = fx.store.openFile?.bind(fx.store);
      if (!openFile) {
        t.diagnostic(`${name} keeps no local files: blob GETs use open/get`);
        return;
      }
      const data = randomBytes(70_000);
      const digest = await put(fx.store, data);
      const read = async (range?: { offset: number; length: number }) => {
        const file = await openFile(digest, range);
        try {
          const out = Buffer.alloc(file.length);
          for (let got = 0; got < file.length; ) {
            const n = readSync(file.fd, out, got, file.length - got, file.offset + got);
            if (n === 0) throw new Error(`the file ended ${file.length - got} bytes early`);
            got += n;
          }
          return out;
        } finally {
          await file.close();
        }
      };
      assert.deepEqual(await read(), data);
      assert.deepEqual(await read({ offset: 1234, length: 5000 }), data.subarray(1234, 6234));
      await assert.rejects(openFile(sha256(randomBytes(8))), BlobNotFoundError);
    });

    it('deletes committed blobs', async () => {
      const digest = await put(fx.store, randomBytes(10));
      assert.equal(await fx.store.delete(digest), true);
      assert.equal(await fx.store.stat(digest), null);
    });

    it('lists blobs and uploads', async () => {
      const digest = await put(fx.store, randomBytes(77));
      const id = uploadId();
      await fx.store.createUpload(id);
      const blobs = [];
      for await (const b of fx.store.list()) blobs.push(b);
      assert.ok(blobs.some((b) => b.digest === digest && b.size === 77));
      const uploads = [];
      for await (const u of fx.store.listUploads()) uploads.push(u);
      const mine = uploads.find((u) => u.id === id);
      assert.ok(mine);
      assert.equal(mine.size, 0);
      assert.ok(mine.modified instanceof Date);
      await fx.store.deleteUpload(id);
    });

    it('handles sha512 digests and empty blobs', async () => {
      const data = Buffer.alloc(0);
      const id = uploadId();
      await fx.store.createUpload(id);
      await fx.store.appendUpload(id, 0, chunksOf(data, 1));
      const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
      await fx.store.commitUpload(id, digest);
      await fx.store.deleteUpload(id);
      assert.deepEqual(await fx.store.stat(digest), { digest, size: 0 });
      assert.equal((await collect(await fx.store.get(digest))).byteLength, 0);
    });

    it('rejects keys that could escape the store', async () => {
      // Refused for what they are, by the key check, not by whatever the path happened to reach.
      await assert.rejects(() => fx.store.stat('sha256:../../etc/passwd'), /refusing malformed digest/);
      await assert.rejects(() => fx.store.createUpload('../escape-attempt'), /refusing malformed upload id/);
      await assert.rejects(() => fx.store.appendUpload('not/a/valid/id', 0, chunksOf(Buffer.alloc(1), 1)), /refusing malformed upload id/);
    });

    it('operations on an unknown upload fail with UploadNotFoundError', async () => {
      const id = uploadId();
      assert.equal(await fx.store.uploadSize(id), null);
      await assert.rejects(fx.store.appendUpload(id, 0, chunksOf(Buffer.from('x'), 1)), UploadNotFoundError);
      await assert.rejects(fx.store.commitUpload(id, sha256(Buffer.from('x'))), UploadNotFoundError);
      await assert.rejects(fx.store.readUpload(id), UploadNotFoundError);
      await fx.store.deleteUpload(id); // not an error
    });
  });
}
