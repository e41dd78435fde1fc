/** Pulling blobs (end-2): GET / HEAD, ranges, digests, repository scoping. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectError, expectStatus, getBlob, pushBlob, randomData, sha256, sha512, uniqueRepo, unknownDigest, useBerth, withDigest, startUpload, MT } from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

describe('GET and HEAD /v2/<name>/blobs/<digest>', parallel, () => {
  test('GET returns the bytes with Content-Length, Docker-Content-Digest and Content-Type', async () => {
    const repo = uniqueRepo();
    const data = randomData(3000);
    const blob = await pushBlob(b.url, repo, data);
    const res = await getBlob(b.url, repo, blob.digest);
    const body = await expectStatus(res, 200);
    assert.deepEqual(body, data);
    assert.equal(res.headers.get('content-length'), '3000');
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(sha256(body), blob.digest, 'the body matches Docker-Content-Digest');
  });

  test('HEAD answers 200 with the headers and no body', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, randomData(1234));
    const res = await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
    const body = await expectStatus(res, 200);
    assert.equal(body.byteLength, 0);
    assert.equal(res.headers.get('content-length'), '1234');
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  });

  test('blobs are cacheable: an Etag and Accept-Ranges', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, 'cache me');
    const res = await getBlob(b.url, repo, blob.digest);
    await expectStatus(res, 200);
    assert.ok(res.headers.get('etag')?.includes(blob.digest.slice(7)), 'Etag names the digest');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
  });

  test('an unknown blob is 404 BLOB_UNKNOWN; HEAD is 404 without a body', async () => {
    const repo = uniqueRepo();
    await pushBlob(b.url, repo, 'something so the repository exists');
    const digest = unknownDigest();
    const body = await expectError(await getBlob(b.url, repo, digest), 404, 'BLOB_UNKNOWN');
    assert.deepEqual(body.errors[0]!.detail, { digest });
    const head = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    // ... and in a repository that does not exist at all.
    await expectError(await getBlob(b.url, uniqueRepo('nowhere'), digest), 404, 'BLOB_UNKNOWN');
  });

  test('a blob pushed to one repository is not readable through another until mounted', async () => {
    const a = uniqueRepo('a');
    const other = uniqueRepo('b');
    await pushBlob(b.url, other, 'other exists');
    const blob = await pushBlob(b.url, a, randomData(100));
    await expectError(await getBlob(b.url, other, blob.digest), 404, 'BLOB_UNKNOWN');
    const head = await fetch(`${b.url}/v2/${other}/blobs/${blob.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    await head.arrayBuffer();

    const mount = await fetch(`${b.url}/v2/${other}/blobs/uploads/?mount=${blob.digest}&from=${a}`, { method: 'POST' });
    await expectStatus(mount, 201);
    const res = await getBlob(b.url, other, blob.digest);
    assert.equal(sha256(await expectStatus(res, 200)), blob.digest);
  });

  test('a zero-length blob', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, Buffer.alloc(0));
    assert.equal(blob.digest, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const res = await getBlob(b.url, repo, blob.digest);
    assert.equal((await expectStatus(res, 200)).byteLength, 0);
    assert.equal(res.headers.get('content-length'), '0');
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
  });
});

describe('Range requests', parallel, () => {
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const repo = uniqueRepo('ranges');
  let pushed: Promise<unknown> | undefined;

  async function range(header: string, digest = sha256(data)): Promise<Response> {
    pushed ??= pushBlob(b.url, repo, data);
    await pushed;
    return getBlob(b.url, repo, digest, { Range: header });
  }

  const cases: [string, number, number][] = [
    ['bytes=0-99', 0, 99],
    ['bytes=0-0', 0, 0],
    ['bytes=100-199', 100, 199],
    ['bytes=500-999', 500, 999],
    ['bytes=-100', 900, 999],
    ['bytes=-1', 999, 999],
    ['bytes=950-', 950, 999],
    ['bytes=0-', 0, 999],
    ['bytes=990-5000', 990, 999],
    ['bytes=-5000', 0, 999],
  ];
  for (const [header, start, end] of cases) {
    test(`${header} → 206 bytes ${start}-${end}/1000`, async () => {
      const res = await range(header);
      const body = await expectStatus(res, 206);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/1000`);
      assert.equal(res.headers.get('content-length'), String(end - start + 1));
      assert.deepEqual(body, data.subarray(start, end + 1));
    });
  }

  // `bytes=500-0` (last before first) is invalid: 416 as in distribution and the OCI conformance suite.
  for (const header of ['bytes=1000-', 'bytes=1000-1999', 'bytes=5000-6000', 'bytes=-0', 'bytes=500-0', 'bytes=5000-10000']) {
    test(`${header} is 416 with Content-Range bytes */1000`, async () => {
      const res = await range(header);
      assert.equal(res.headers.get('content-range'), 'bytes */1000');
      // No spec code fits a read; RANGE_INVALID is distribution's code for a 416.
      await expectError(res, 416, 'RANGE_INVALID');
    });
  }

  test('a malformed Range is ignored: 200 with the whole blob', async () => {
    for (const header of ['bytes=abc', 'items=0-1', 'bytes=-']) {
      const res = await range(header);
      assert.deepEqual(await expectStatus(res, 200), data, header);
    }
  });

  test('a Range on an unknown blob is still 404 BLOB_UNKNOWN', async () => {
    await expectError(await range('bytes=0-1', unknownDigest()), 404, 'BLOB_UNKNOWN');
  });
});

describe('digests in the URL', parallel, () => {
  const malformed: [string, string][] = [
    ['non-hex', 'sha256:xyz'],
    ['63 hex characters', `sha256:${'a'.repeat(63)}`],
    ['65 hex characters', `sha256:${'a'.repeat(65)}`],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
    ['unsupported algorithm', `md5:${'a'.repeat(32)}`],
    ['no colon', 'a'.repeat(64)],
    ['empty hex', 'sha256:'],
    ['empty algorithm', `:${'a'.repeat(64)}`],
    ['sha512 with 64 hex', `sha512:${'a'.repeat(64)}`],
    ['upper-case algorithm', `SHA256:${'a'.repeat(64)}`],
  ];
  for (const [why, digest] of malformed) {
    test(`${why} (${digest.slice(0, 24)}…) is 400 DIGEST_INVALID`, async () => {
      const repo = uniqueRepo();
      await expectError(await getBlob(b.url, repo, digest), 400, 'DIGEST_INVALID');
      const head = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(head.status, 400);
      await head.arrayBuffer();
    });
  }

  test('a percent-encoded colon (sha256%3A…) names the same blob', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, 'encoded colon');
    const encoded = blob.digest.replace(':', '%3A');
    const res = await fetch(`${b.url}/v2/${repo}/blobs/${encoded}`);
    assert.equal((await expectStatus(res, 200)).toString(), 'encoded colon');
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    const lower = await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest.replace(':', '%3a')}`, { method: 'HEAD' });
    assert.equal(lower.status, 200);
    await lower.arrayBuffer();
  });

  test('sha512 digests work end to end: upload, GET, HEAD, manifest reference, manifest by digest', async () => {
    const repo = uniqueRepo();
    const data = randomData(777);
    const digest = sha512(data);
    const location = await startUpload(b.url, repo);
    const put = await fetch(withDigest(b.url, location, digest), { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: data });
    await expectStatus(put, 201);
    assert.equal(put.headers.get('docker-content-digest'), digest);
    assert.ok(put.headers.get('location')?.endsWith(`/v2/${repo}/blobs/${digest}`));

    const res = await getBlob(b.url, repo, digest);
    assert.deepEqual(await expectStatus(res, 200), data);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const head = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    await expectStatus(head, 200);
    assert.equal(head.headers.get('content-length'), '777');

    // Single-POST with a sha512 digest.
    const more = randomData(10);
    const post = await fetch(`${b.url}/v2/${repo}/blobs/uploads/?digest=${sha512(more)}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: more });
    await expectStatus(post, 201);

    // A manifest whose config is addressed by sha512, pushed by its own sha512 digest.
    const config = await pushBlob(b.url, repo, '{"architecture":"amd64","os":"linux"}', MT.ociConfig, 'sha512');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [{ mediaType: MT.ociLayer, digest, size: 777 }] }));
    const mdigest = sha512(manifest);
    const mput = await fetch(`${b.url}/v2/${repo}/manifests/${mdigest}`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body: manifest });
    await expectStatus(mput, 201);
    assert.equal(mput.headers.get('docker-content-digest'), mdigest);
    const mget = await fetch(`${b.url}/v2/${repo}/manifests/${mdigest}`, { headers: { Accept: MT.ociManifest } });
    assert.deepEqual(await expectStatus(mget, 200), manifest);
    assert.equal(mget.headers.get('docker-content-digest'), mdigest);

    // The sha256 name of the same bytes is a different blob as far as the repository is concerned.
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
  });
});
