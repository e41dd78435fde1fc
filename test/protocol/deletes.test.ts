/**
 * Content management (end-9, end-10): deleting tags, manifests and blobs;
 * storage.delete.enabled=false; storage.maintenance.readonly.enabled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startBerth, type TestBerth } from '../support/berth.js';
import {
  ACCEPT_ALL,
  MT,
  expectError,
  expectStatus,
  getBlob,
  getManifest,
  pushBlob,
  pushImage,
  pushIndex,
  randomData,
  sha256,
  startUpload,
  toBody,
  uniqueRepo,
  unknownDigest,
  useBerth,
  withDigest,
  buildImage,
  dataDir,
} from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

describe('deletes enabled', parallel, () => {
  const b = useBerth();

  test('DELETE by tag → 202; only that tag is gone, the manifest stays by digest and other tags', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'a');
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/b?`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body: img.body }), 201);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/a`, { method: 'DELETE' }), 202);
    await expectError(await getManifest(b.url, repo, 'a'), 404, 'MANIFEST_UNKNOWN');
    const byDigest = await getManifest(b.url, repo, img.digest);
    assert.deepEqual(await expectStatus(byDigest, 200), img.body);
    const other = await getManifest(b.url, repo, 'b');
    assert.equal((await expectStatus(other, 200)).byteLength, img.body.byteLength);
    const tags = await fetch(`${b.url}/v2/${repo}/tags/list`);
    assert.deepEqual(await tags.json(), { name: repo, tags: ['b'] });
  });

  test('DELETE by digest → 202; the manifest and all of its tags are gone', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'x');
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/y`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body: img.body }), 201);
    const keep = await pushImage(b.url, repo, 'keep');
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' }), 202);
    for (const ref of [img.digest, 'x', 'y']) {
      await expectError(await getManifest(b.url, repo, ref), 404, 'MANIFEST_UNKNOWN');
      const head = await getManifest(b.url, repo, ref, ACCEPT_ALL, 'HEAD');
      assert.equal(head.status, 404);
      await head.arrayBuffer();
    }
    const tags = await fetch(`${b.url}/v2/${repo}/tags/list`);
    assert.deepEqual(await tags.json(), { name: repo, tags: ['keep'] });
    await expectStatus(await getManifest(b.url, repo, keep.digest), 200);
    // The same manifest can be pushed again afterwards.
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/x`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body: img.body }), 201);
    await expectStatus(await getManifest(b.url, repo, 'x'), 200);
  });

  test('deleting a manifest in one repository leaves the same manifest in another', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const body = toBody(manifest);
    for (const r of [repo, other]) {
      if (r === other) {
        for (const d of [manifest.config, ...(manifest.layers as unknown[])] as { digest: string }[]) {
          await expectStatus(await fetch(`${b.url}/v2/${r}/blobs/uploads/?mount=${d.digest}&from=${repo}`, { method: 'POST' }), 201);
        }
      }
      await expectStatus(await fetch(`${b.url}/v2/${r}/manifests/v1`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body }), 201);
    }
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${sha256(body)}`, { method: 'DELETE' }), 202);
    await expectError(await getManifest(b.url, repo, 'v1'), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual(await expectStatus(await getManifest(b.url, other, 'v1'), 200), body);
  });

  test('blob DELETE → 202, then 404 BLOB_UNKNOWN in that repository only', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const data = randomData(100);
    const blob = await pushBlob(b.url, repo, data);
    await pushBlob(b.url, other, data);
    const res = await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'DELETE' });
    await expectStatus(res, 202);
    await expectError(await getBlob(b.url, repo, blob.digest), 404, 'BLOB_UNKNOWN');
    const head = await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    await head.arrayBuffer();
    assert.deepEqual(await expectStatus(await getBlob(b.url, other, blob.digest), 200), data);
    // Deleting again is 404.
    await expectError(await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
    // And it can be pushed again.
    await pushBlob(b.url, repo, data);
    await expectStatus(await getBlob(b.url, repo, blob.digest), 200);
  });

  test('a blob or child manifest that a live manifest of the repository needs → 409 DENIED naming it; top down it all goes', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo);
    const index = await pushIndex(b.url, repo, 'multi', [img.descriptor]);
    const layer = img.layers[0]!.digest;
    // Another repository's copy of the layer is its own: deleting it there is fine.
    const other = uniqueRepo();
    await expectStatus(await fetch(`${b.url}/v2/${other}/blobs/uploads/?mount=${layer}&from=${repo}`, { method: 'POST' }), 201);
    await expectStatus(await fetch(`${b.url}/v2/${other}/blobs/${layer}`, { method: 'DELETE' }), 202);

    const blobRefused = await expectError(await fetch(`${b.url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE' }), 409, 'DENIED');
    assert.match(blobRefused.errors[0]!.message, new RegExp(`${img.digest}.*delete that manifest first`));
    assert.deepEqual(blobRefused.errors[0]!.detail, { digest: layer, referencedBy: img.digest });
    const childRefused = await expectError(await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' }), 409, 'DENIED');
    assert.match(childRefused.errors[0]!.message, new RegExp(index.digest));
    // Nothing went: the index pulls whole.
    await expectStatus(await getManifest(b.url, repo, img.digest), 200);
    await expectStatus(await getBlob(b.url, repo, layer), 200);
    // Removing the tag is always allowed; the index by digest, then the image, then its blobs.
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/multi`, { method: 'DELETE' }), 202);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${index.digest}`, { method: 'DELETE' }), 202);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' }), 202);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE' }), 202);
  });

  test('deleting unknown things → 404', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'exists');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/nope`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/${unknownDigest()}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${b.url}/v2/${repo}/blobs/${unknownDigest()}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
    const ghost = uniqueRepo('ghost');
    await expectError(await fetch(`${b.url}/v2/${ghost}/manifests/latest`, { method: 'DELETE' }), 404);
    await expectError(await fetch(`${b.url}/v2/${ghost}/blobs/${unknownDigest()}`, { method: 'DELETE' }), 404);
  });

  test('malformed references on DELETE → 400', async () => {
    const repo = uniqueRepo();
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/-bad`, { method: 'DELETE' }), 400, 'TAG_INVALID');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/sha256:xyz`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
    await expectError(await fetch(`${b.url}/v2/${repo}/blobs/sha256:xyz`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  });
});

describe('storage.delete.enabled=false', parallel, () => {
  const b = useBerth({ REGISTRY_STORAGE_DELETE_ENABLED: 'false' });

  test('manifest and blob DELETE → 405 UNSUPPORTED, and nothing is deleted', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/v1`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    await expectError(await fetch(`${b.url}/v2/${repo}/blobs/${img.layers[0]!.digest}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    await expectStatus(await getManifest(b.url, repo, 'v1'), 200);
    await expectStatus(await getBlob(b.url, repo, img.layers[0]!.digest), 200);
  });

  test('pushing still works, and cancelling an upload is not a delete', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'v1');
    const location = await startUpload(b.url, repo);
    await expectStatus(await fetch(location, { method: 'DELETE' }), 204);
  });
});

describe('storage.maintenance.readonly.enabled=true', parallel, () => {
  let rw: TestBerth | undefined;
  let ro: TestBerth | undefined;
  const repo = 'readonly/repo';
  let digest = '';
  let layer = '';

  let dir: Awaited<ReturnType<typeof dataDir>> | undefined;

  before(async () => {
    // Fill a registry, stop it, and start a read-only one over the same data.
    dir = await dataDir();
    rw = await startBerth({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir.root });
    const img = await pushImage(rw.url, repo, 'v1');
    digest = img.digest;
    layer = img.layers[0]!.digest;
    await rw.close();
    ro = await startBerth({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir.root, REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'true' });
  });
  after(async () => {
    await ro?.close();
    await dir?.remove();
  });

  test('reads work', async () => {
    const url = ro!.url;
    await expectStatus(await getManifest(url, repo, 'v1'), 200);
    await expectStatus(await getManifest(url, repo, digest, ACCEPT_ALL, 'HEAD'), 200);
    await expectStatus(await getBlob(url, repo, layer), 200);
    assert.deepEqual(await (await fetch(`${url}/v2/${repo}/tags/list`)).json(), { name: repo, tags: ['v1'] });
    assert.deepEqual(await (await fetch(`${url}/v2/_catalog`)).json(), { repositories: [repo] });
    await expectStatus(await fetch(`${url}/v2/${repo}/referrers/${digest}`), 200);
    await expectStatus(await fetch(`${url}/v2/`), 200);
  });

  test('every write → 405 UNSUPPORTED', async () => {
    const url = ro!.url;
    const data = randomData(10);
    const d = sha256(data);
    const octet = { 'Content-Type': 'application/octet-stream' };
    const writes: [string, string, RequestInit][] = [
      ['start upload', `${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' }],
      ['single POST', `${url}/v2/${repo}/blobs/uploads/?digest=${d}`, { method: 'POST', headers: octet, body: data }],
      ['mount', `${url}/v2/other/blobs/uploads/?mount=${layer}&from=${repo}`, { method: 'POST' }],
      ['PATCH', `${url}/v2/${repo}/blobs/uploads/0123456789abcdef`, { method: 'PATCH', headers: octet, body: data }],
      ['PUT upload', withDigest(url, `${url}/v2/${repo}/blobs/uploads/0123456789abcdef`, d), { method: 'PUT', headers: octet, body: data }],
      ['cancel upload', `${url}/v2/${repo}/blobs/uploads/0123456789abcdef`, { method: 'DELETE' }],
      ['PUT manifest', `${url}/v2/${repo}/manifests/v2`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body: '{}' }],
      ['DELETE tag', `${url}/v2/${repo}/manifests/v1`, { method: 'DELETE' }],
      ['DELETE manifest', `${url}/v2/${repo}/manifests/${digest}`, { method: 'DELETE' }],
      ['DELETE blob', `${url}/v2/${repo}/blobs/${layer}`, { method: 'DELETE' }],
    ];
    for (const [what, u, init] of writes) {
      const res = await fetch(u, init);
      const text = await res.clone().text();
      assert.equal(res.status, 405, `${what}: ${res.status} ${text.slice(0, 200)}`);
      await expectError(res, 405, 'UNSUPPORTED');
    }
    // Nothing changed.
    await expectStatus(await getManifest(url, repo, 'v1'), 200);
    await expectStatus(await getBlob(url, repo, layer), 200);
    await expectError(await getBlob(url, 'other', layer), 404, 'BLOB_UNKNOWN');
  });
});
