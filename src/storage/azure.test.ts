/**
 * The Azure Blob driver against Azurite (test/support/azurite.ts): the shared
 * driver suite, then what only object stores raise.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { BlockBlobClient } from '@azure/storage-blob';
import { azureEngine } from '../../test/support/azurite.js';
import { AzureBlobStore, type AzureOptions } from './azure.js';
import { runDriverSuite } from './suite.js';

async function containerFor(): Promise<AzureOptions> {
  const engine = await azureEngine();
  const opts: AzureOptions = {
    accountName: engine.accountName,
    accountKey: engine.accountKey,
    serviceUrl: engine.serviceUrl,
    container: `berth-${randomBytes(6).toString('hex')}`,
    rootDirectory: 'registry',
    blockSize: 1024 * 1024,
  };
  await new AzureBlobStore(opts).container.create();
  return opts;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const uploadId = () => randomBytes(16).toString('base64url');

async function* chunksOf(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

runDriverSuite('azure (Azurite)', async () => ({ store: new AzureBlobStore(await containerFor()), cleanup: async () => {} }));

describe('azure driver: what object stores raise', () => {
  let opts: AzureOptions;
  const fresh = (extra: Partial<AzureOptions> = {}) => new AzureBlobStore({ ...opts, ...extra });

  before(async () => {
    opts = await containerFor();
  });
  after(async () => {
    await fresh().container.deleteIfExists();
  });

  it('continues an upload in fresh driver instances, with tiny chunks summing past 5 MiB and a retried chunk', async () => {
    const data = randomBytes(10 + 53 * 100 * 1024);
    const id = uploadId();
    await fresh().createUpload(id);
    let size = 0;
    for (let i = 0; i < 10; i++) size = await fresh().appendUpload(id, size, chunksOf(data.subarray(i, i + 1), 1));
    while (size < data.byteLength) size = await fresh().appendUpload(id, size, chunksOf(data.subarray(size, size + 100 * 1024), 100 * 1024));
    // A retried chunk from inside an earlier block replaces what followed.
    size = await fresh().appendUpload(id, 1_000_005, chunksOf(data.subarray(1_000_005), 700_000));
    assert.equal(size, data.byteLength);
    assert.equal(await fresh().uploadSize(id), data.byteLength);
    await fresh().commitUpload(id, sha256(data));
    await fresh().deleteUpload(id);
    assert.deepEqual(await collect(await fresh().get(sha256(data))), data);
  });

  it('a failed commit leaves nothing visible, and the commit can be done again', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const id = uploadId();
    const store = fresh();
    await store.createUpload(id);
    await store.appendUpload(id, 0, chunksOf(data, 65_536));
    // The engine fails the target's block-list commit (as if the connection dropped there).
    const original = BlockBlobClient.prototype.commitBlockList;
    BlockBlobClient.prototype.commitBlockList = async function (this: BlockBlobClient, ...args: Parameters<typeof original>) {
      if (this.name.includes('/blobs/')) throw new Error('engine went away');
      return original.apply(this, args);
    };
    try {
      await assert.rejects(fresh().commitUpload(id, sha256(data)), /engine went away/);
    } finally {
      BlockBlobClient.prototype.commitBlockList = original;
    }
    assert.equal(await fresh().stat(sha256(data)), null, 'nothing under the digest');
    for await (const b of fresh().list()) assert.notEqual(b.digest, sha256(data));
    await fresh().commitUpload(id, sha256(data));
    assert.deepEqual(await collect(await fresh().get(sha256(data))), data);
    await fresh().deleteUpload(id);
  });

  it('hands out SAS download URLs only when redirects are on, and only for GET', async () => {
    const data = randomBytes(1000);
    const store = fresh({ redirect: true, redirectExpirySeconds: 60 });
    await store.writeBlob(sha256(data), data);
    const url = await store.redirectURL(sha256(data), 'GET');
    assert.ok(url && url.includes('sig='), url ?? 'null');
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), data);
    assert.equal(await store.redirectURL(sha256(data), 'HEAD'), null);
    assert.equal(await fresh().redirectURL(sha256(data), 'GET'), null);
  });

  it('a lease a dead holder never released expires, and a purge can break it', async () => {
    const id = uploadId();
    await fresh().createUpload(id);
    assert.ok(await fresh({ leaseSeconds: 15 }).lockUpload(id), 'granted to a holder that then dies');
    assert.equal(await fresh().lockUpload(id), null, 'refused while the lease runs');
    await fresh().deleteUpload(id);
    assert.equal(await fresh().uploadSize(id), null, 'deleted all the same (the lease broken)');
  });
});
