/**
 * The S3 driver against a real S3 API (OpenStack Swift's s3api, see
 * test/support/swift.ts): the shared driver suite, then what only object
 * stores raise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Engine, type S3Engine } from '../../test/support/swift.js';
import { createS3Client, MIN_PART, S3BlobStore, type S3Options } from './s3.js';
import { runDriverSuite } from './suite.js';
import type { Readable } from 'node:stream';

const here = path.dirname(fileURLToPath(import.meta.url));

async function bucketFor(engine: S3Engine): Promise<S3Options> {
  const opts: S3Options = {
    bucket: `berth-${randomBytes(6).toString('hex')}`,
    region: engine.region,
    endpoint: engine.endpoint,
    accessKey: engine.accessKey,
    secretKey: engine.secretKey,
    forcePathStyle: true,
    rootDirectory: '/registry',
    chunkSize: MIN_PART,
    storageClass: 'NONE',
  };
  const client = createS3Client(opts);
  await client.send(new CreateBucketCommand({ Bucket: opts.bucket }));
  client.destroy();
  return opts;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function* chunksOf(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const uploadId = () => randomBytes(16).toString('base64url');

runDriverSuite('s3 (Swift s3api)', async () => {
  const store = new S3BlobStore(await bucketFor(await s3Engine()));
  return { store, cleanup: async () => {} };
});

describe('s3 driver: what object stores raise', () => {
  let opts: S3Options;
  const stores: S3BlobStore[] = [];
  /** A fresh driver instance: nothing of an upload kept in memory, as on another replica. */
  const fresh = (extra: Partial<S3Options> = {}) => {
    const s = new S3BlobStore({ ...opts, ...extra });
    stores.push(s);
    return s;
  };

  before(async () => {
    opts = await bucketFor(await s3Engine());
  });
  after(async () => {
    for (const s of stores) await s.close();
  });

  it('does not rely on listings: every key written in the last minute is missing from them, and uploads still work', async () => {
    const client = createS3Client(opts);
    const written = new Set<string>();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        const out = await next(args);
        if (context.commandName === 'PutObjectCommand' || context.commandName === 'CompleteMultipartUploadCommand') written.add(input.Key!);
        if (context.commandName === 'ListObjectsV2Command') {
          const o = out.output as { Contents?: { Key?: string }[] };
          o.Contents = o.Contents?.filter((c) => !written.has(c.Key!));
        }
        return out;
      },
      { step: 'initialize', name: 'laggingListings' },
    );
    const lagging = fresh({ client });
    const data = randomBytes(MIN_PART + 300_000);
    const id = uploadId();
    await lagging.createUpload(id);
    let size = 0;
    for (const [from, to] of [
      [0, 1],
      [1, 200_000],
      [200_000, 3_000_000],
      [3_000_000, data.byteLength],
    ] as const) {
      size = await fresh({ client }).appendUpload(id, size, chunksOf(data.subarray(from, to), 65_536));
      assert.equal(await fresh({ client }).uploadSize(id), to);
    }
    // The listing (lagging) shows no segment, yet the commit finds them all.
    const listed = await client.send(new ListObjectsV2Command({ Bucket: opts.bucket, Prefix: 'registry/uploads/' }));
    assert.equal(listed.Contents?.length ?? 0, 0, 'the lagging listing hides what was just written');
    await fresh({ client }).commitUpload(id, sha256(data));
    assert.deepEqual(await collect(await fresh().get(sha256(data))), data);
    await fresh().deleteUpload(id);
    assert.equal(await fresh().uploadSize(id), null);
  });

  it('continues an upload in a fresh driver instance and in another process, and cuts a partial part short', async () => {
    const data = randomBytes(2 * MIN_PART + 12_345);
    const id = uploadId();
    await fresh().createUpload(id);
    let size = await fresh().appendUpload(id, 0, chunksOf(data.subarray(0, 3_000_000), 4099));
    // Another process (nothing shared but the bucket) appends the next 4 MB, read from its stdin.
    const script = `
      import { S3BlobStore } from ${JSON.stringify(path.join(here, 's3.js'))};
      const store = new S3BlobStore(JSON.parse(process.env.OPTS));
      console.log(await store.appendUpload(process.env.ID, Number(process.env.AT), process.stdin));
      await store.close();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, OPTS: JSON.stringify(opts), ID: id, AT: String(size) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin.end(data.subarray(size, 7_000_000));
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0, 'the other process appended');
    size = Number(stdout.trim());
    assert.equal(size, 7_000_000);
    // A retried chunk from an earlier offset replaces the end of the other process's segment.
    size = await fresh().appendUpload(id, 6_500_000, chunksOf(data.subarray(6_500_000), 1_000_000));
    assert.equal(size, data.byteLength);
    assert.deepEqual(await collect(await fresh().readUpload(id)), data);
    await fresh().commitUpload(id, sha256(data));
    await fresh().deleteUpload(id);
    assert.deepEqual(await collect(await fresh().get(sha256(data))), data);
  });

  it('deleting an upload aborts the multipart upload a writer that died left behind', async () => {
    const id = uploadId();
    const store = fresh();
    await store.createUpload(id);
    const client = createS3Client(opts);
    const key = `registry/uploads/${id}/dead-writer`;
    await client.send(new CreateMultipartUploadCommand({ Bucket: opts.bucket, Key: key }));
    const pending = async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: opts.bucket, Prefix: `registry/uploads/${id}/` }))).Uploads ?? []).length;
    assert.equal(await pending(), 1);
    await store.deleteUpload(id);
    assert.equal(await pending(), 0);
    client.destroy();
  });

  it('a failed commit leaves nothing visible, and the commit can be done again', async () => {
    const data = randomBytes(MIN_PART + 2 * 1024 * 1024);
    const id = uploadId();
    await fresh().createUpload(id);
    await fresh().appendUpload(id, 0, chunksOf(data.subarray(0, 100_000), 10_000));
    await fresh().appendUpload(id, 100_000, chunksOf(data.subarray(100_000), 1 << 20));
    const client = createS3Client(opts);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CompleteMultipartUploadCommand') throw new Error('engine went away');
        return next(args);
      },
      { step: 'initialize', name: 'failingCompletion' },
    );
    await assert.rejects(fresh({ client }).commitUpload(id, sha256(data)), /engine went away/);
    assert.equal(await fresh().stat(sha256(data)), null, 'nothing under the digest');
    for await (const b of fresh().list()) assert.notEqual(b.digest, sha256(data));
    await fresh().commitUpload(id, sha256(data));
    assert.deepEqual(await collect(await fresh().get(sha256(data))), data);
    await fresh().deleteUpload(id);
  });

  it('joins tiny chunks (1 byte, 100 KiB) summing past 5 MiB', async () => {
    const data = randomBytes(10 + 53 * 100 * 1024);
    const id = uploadId();
    const store = fresh();
    await store.createUpload(id);
    let size = 0;
    for (let i = 0; i < 10; i++) size = await store.appendUpload(id, size, chunksOf(data.subarray(i, i + 1), 1));
    while (size < data.byteLength) size = await store.appendUpload(id, size, chunksOf(data.subarray(size, size + 100 * 1024), 100 * 1024));
    assert.equal(size, data.byteLength);
    await store.commitUpload(id, sha256(data));
    await store.deleteUpload(id);
    assert.deepEqual(await collect(await store.get(sha256(data))), data);
    assert.deepEqual(await collect(await store.get(sha256(data), { offset: MIN_PART - 3, length: 7 })), data.subarray(MIN_PART - 3, MIN_PART + 4));
  });

  it('streams a 64 MiB blob in and out with flat memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const block = randomBytes(1024 * 1024);
    const TOTAL = 64;
    async function* body(): AsyncIterable<Uint8Array> {
      // Each MiB differs (its number in front), so a misplaced part changes the digest.
      for (let i = 0; i < TOTAL; i++) {
        const b = Buffer.from(block);
        b.writeUInt32BE(i, 0);
        yield b;
      }
    }
    const expected = createHash('sha256');
    for await (const b of body()) expected.update(b);
    const digest = `sha256:${expected.digest('hex')}`;

    gc();
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
    }, 50);
    try {
      const store = fresh({ multipartCopyChunkSize: 16 * 1024 * 1024 });
      const id = uploadId();
      await store.createUpload(id);
      assert.equal(await store.appendUpload(id, 0, body()), TOTAL * 1024 * 1024);
      await store.commitUpload(id, digest);
      await store.deleteUpload(id);
      const read = createHash('sha256');
      for await (const c of await store.get(digest)) read.update(c as Buffer);
      assert.equal(`sha256:${read.digest('hex')}`, digest);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peak < 32 * 1024 * 1024, `at most a few parts held at once (peak ${Math.round(peak / 1024 / 1024)} MiB above the start)`);
  });

  it('hands out presigned download URLs only when redirects are on, and only for GET', async () => {
    const data = randomBytes(1000);
    const store = fresh({ redirect: true, redirectExpirySeconds: 60 });
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, chunksOf(data, 1000));
    await store.commitUpload(id, sha256(data));
    await store.deleteUpload(id);
    const url = await store.redirectURL(sha256(data), 'GET');
    assert.ok(url && url.includes('X-Amz-Signature='), url ?? 'null');
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);
    assert.equal(await store.redirectURL(sha256(data), 'HEAD'), null);
    assert.equal(await fresh().redirectURL(sha256(data), 'GET'), null);
    const tampered = new URL(url);
    tampered.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    assert.equal((await fetch(tampered)).status, 403, 'the signature is checked by the engine');
  });

  it("takes its keys from the AWS SDK's default chain when the config gives none", async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = opts.accessKey;
    process.env.AWS_SECRET_ACCESS_KEY = opts.secretKey;
    try {
      const data = randomBytes(100);
      const store = fresh({ accessKey: undefined, secretKey: undefined });
      await store.writeBlob(sha256(data), data);
      assert.deepEqual(await collect(await store.get(sha256(data))), data);
      // And the engine does check them: wrong keys from the chain are refused.
      process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
      await assert.rejects(fresh({ accessKey: undefined, secretKey: undefined }).stat(sha256(data)), (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 403);
    } finally {
      for (const [k, v] of [
        ['AWS_ACCESS_KEY_ID', saved.id],
        ['AWS_SECRET_ACCESS_KEY', saved.secret],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('a lease a dead holder never released expires, and the upload can be continued', async () => {
    const id = uploadId();
    await fresh().createUpload(id);
    const dead = await fresh({ leaseMs: 2000 }).lockUpload(id);
    assert.ok(dead, 'granted to the first holder, which then dies without releasing');
    assert.equal(await fresh().lockUpload(id), null, 'refused while the lease runs');
    await new Promise((r) => setTimeout(r, 2100));
    const next = await fresh().lockUpload(id);
    assert.ok(next, 'granted once the lease has expired');
    assert.equal(await fresh().appendUpload(id, 0, chunksOf(Buffer.from('abc'), 1)), 3);
    await next();
    await fresh().deleteUpload(id);
  });
});
