/** Pushing and pulling manifests (end-3, end-7): the four media types, artifacts, validation, negotiation. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ACCEPT_ALL,
  EMPTY_DESCRIPTOR,
  MT,
  buildImage,
  expectError,
  expectStatus,
  getManifest,
  pushArtifact,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  putManifest,
  randomData,
  resolve,
  sha256,
  toBody,
  uniqueRepo,
  unknownDigest,
  useBerth,
} from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

/** GET and HEAD by tag and by digest all serve the same manifest with the right headers. */
async function expectServed(repo: string, tag: string | undefined, digest: string, body: Buffer, mediaType: string): Promise<void> {
  for (const ref of tag ? [tag, digest] : [digest]) {
    const get = await getManifest(b.url, repo, ref);
    assert.deepEqual(await expectStatus(get, 200), body, `GET ${ref} returns the exact bytes pushed`);
    assert.equal(get.headers.get('content-type'), mediaType, `GET ${ref} Content-Type`);
    assert.equal(get.headers.get('content-length'), String(body.byteLength));
    assert.equal(get.headers.get('docker-content-digest'), digest);

    const head = await getManifest(b.url, repo, ref, ACCEPT_ALL, 'HEAD');
    assert.equal((await expectStatus(head, 200)).byteLength, 0);
    assert.equal(head.headers.get('content-type'), mediaType, `HEAD ${ref} Content-Type`);
    assert.equal(head.headers.get('content-length'), String(body.byteLength));
    assert.equal(head.headers.get('docker-content-digest'), digest);
  }
}

describe('PUT and GET each media type', parallel, () => {
  test('OCI image manifest by tag → 201 with Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1', { layers: 2 });
    const res = img.response;
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), img.digest);
    assert.equal(resolve(b.url, res.headers.get('location')).pathname, `/v2/${repo}/manifests/${img.digest}`);
    await expectServed(repo, 'v1', img.digest, img.body, MT.ociManifest);
  });

  test('OCI image manifest by digest → 201, not tagged', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'keep'); // so the repository has a tag list
    const img = await pushImage(b.url, repo);
    assert.equal(resolve(b.url, img.response.headers.get('location')).pathname, `/v2/${repo}/manifests/${img.digest}`);
    await expectServed(repo, undefined, img.digest, img.body, MT.ociManifest);
    const tags = await fetch(`${b.url}/v2/${repo}/tags/list`);
    assert.deepEqual(await tags.json(), { name: repo, tags: ['keep'] });
  });

  test('the Location of a PUT is a working URL for the manifest', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'loc');
    const res = await fetch(resolve(b.url, img.response.headers.get('location')), { headers: { Accept: MT.ociManifest } });
    assert.deepEqual(await expectStatus(res, 200), img.body);
  });

  test('Docker schema2 manifest', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'docker', { kind: 'docker', layers: 2 });
    await expectServed(repo, 'docker', img.digest, img.body, MT.dockerManifest);
  });

  test('Docker manifest list over schema2 children', async () => {
    const repo = uniqueRepo();
    const amd = await pushImage(b.url, repo, undefined, { kind: 'docker' });
    const arm = await pushImage(b.url, repo, undefined, { kind: 'docker' });
    const list = await pushIndex(b.url, repo, 'multi', [amd.descriptor, arm.descriptor], 'docker');
    await expectServed(repo, 'multi', list.digest, list.body, MT.dockerManifestList);
  });

  test('OCI index over OCI manifests', async () => {
    const repo = uniqueRepo();
    const children = [await pushImage(b.url, repo), await pushImage(b.url, repo), await pushImage(b.url, repo)];
    const index = await pushIndex(b.url, repo, 'index', children.map((c) => c.descriptor), 'oci', { annotations: { 'org.example': 'x' } });
    await expectServed(repo, 'index', index.digest, index.body, MT.ociIndex);
    // Children stay pullable by digest.
    for (const c of children) await expectServed(repo, undefined, c.digest, c.body, MT.ociManifest);
  });

  test('an empty OCI index is valid', async () => {
    const repo = uniqueRepo();
    const idx = await pushIndex(b.url, repo, 'empty', []);
    await expectServed(repo, 'empty', idx.digest, idx.body, MT.ociIndex);
  });

  test('a foreign layer with URLs need not be pushed (Windows base layers)', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo, { kind: 'docker' });
    (manifest.layers as unknown[]).unshift({
      mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
      digest: unknownDigest(),
      size: 1234,
      urls: ['https://example.com/layer.tar.gz'],
    });
    const m = await pushManifest(b.url, repo, 'foreign', manifest, MT.dockerManifest);
    await expectServed(repo, 'foreign', m.digest, m.body, MT.dockerManifest);
  });

  test('an OCI index may nest another index', async () => {
    const repo = uniqueRepo();
    const child = await pushImage(b.url, repo);
    const inner = await pushIndex(b.url, repo, undefined, [child.descriptor]);
    const outer = await pushIndex(b.url, repo, 'nested', [inner.descriptor]);
    await expectServed(repo, 'nested', outer.digest, outer.body, MT.ociIndex);
  });

  test('an artifact: OCI manifest with artifactType and the empty config', async () => {
    const repo = uniqueRepo();
    const empty = await pushBlob(b.url, repo, '{}', MT.ociEmpty);
    assert.equal(empty.digest, EMPTY_DESCRIPTOR.digest);
    const art = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sbom.v1+json', reference: 'sbom' });
    await expectServed(repo, 'sbom', art.digest, art.body, MT.ociManifest);
    const parsed = JSON.parse(art.body.toString()) as { artifactType: string; config: unknown };
    assert.equal(parsed.artifactType, 'application/vnd.example.sbom.v1+json');
    assert.deepEqual(parsed.config, EMPTY_DESCRIPTOR);
  });

  test('an artifact without layers', async () => {
    const repo = uniqueRepo();
    await pushBlob(b.url, repo, '{}', MT.ociEmpty);
    const manifest = { schemaVersion: 2, mediaType: MT.ociManifest, artifactType: 'application/vnd.example.note', config: EMPTY_DESCRIPTOR, layers: [] };
    const m = await pushManifest(b.url, repo, 'note', manifest, MT.ociManifest);
    await expectServed(repo, 'note', m.digest, m.body, MT.ociManifest);
  });

  test('an OCI manifest without a mediaType field is accepted with the OCI Content-Type', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    delete manifest.mediaType;
    const m = await pushManifest(b.url, repo, 'nomt', manifest, MT.ociManifest);
    await expectServed(repo, 'nomt', m.digest, m.body, MT.ociManifest);
  });

  test('Content-Type parameters are ignored; the stored type is the bare media type', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const res = await putManifest(b.url, repo, 'params', manifest, `${MT.ociManifest}; charset=utf-8`);
    await expectStatus(res, 201);
    const get = await getManifest(b.url, repo, 'params');
    await expectStatus(get, 200);
    assert.equal(get.headers.get('content-type'), MT.ociManifest);
  });

  test('the bytes are stored as pushed: whitespace and key order are kept, the digest is of the exact body', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const body = Buffer.from(`${JSON.stringify(manifest, null, 3)}\n\n`);
    const m = await pushManifest(b.url, repo, 'pretty', body, MT.ociManifest);
    assert.equal(m.digest, sha256(body));
    await expectServed(repo, 'pretty', m.digest, body, MT.ociManifest);
  });

  test('re-pushing the same manifest is idempotent; re-pointing a tag moves it', async () => {
    const repo = uniqueRepo();
    const one = await pushImage(b.url, repo, 'latest');
    await pushManifest(b.url, repo, 'latest', one.body, MT.ociManifest);
    const two = await pushImage(b.url, repo, 'latest');
    const res = await getManifest(b.url, repo, 'latest');
    await expectStatus(res, 200);
    assert.equal(res.headers.get('docker-content-digest'), two.digest);
    // The old one is still there by digest.
    await expectServed(repo, undefined, one.digest, one.body, MT.ociManifest);
  });
});

describe('references that must exist', parallel, () => {
  test('a missing layer → 400 MANIFEST_BLOB_UNKNOWN, and nothing is stored', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const missing = unknownDigest();
    (manifest.layers as unknown[]).push({ mediaType: MT.ociLayer, digest: missing, size: 10 });
    const res = await putManifest(b.url, repo, 'broken', manifest, MT.ociManifest);
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    await expectError(await getManifest(b.url, repo, 'broken'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await getManifest(b.url, repo, sha256(toBody(manifest))), 404, 'MANIFEST_UNKNOWN');
  });

  test('a missing config → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const layer = await pushBlob(b.url, repo, randomData(20), MT.dockerLayer);
    const manifest = { schemaVersion: 2, mediaType: MT.dockerManifest, config: { mediaType: MT.dockerConfig, digest: unknownDigest(), size: 2 }, layers: [layer] };
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.dockerManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('a blob that exists only in another repository is unknown here', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const { manifest } = await buildImage(b.url, other);
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('an index referencing an unknown child manifest → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const child = await pushImage(b.url, repo);
    const manifests = [child.descriptor, { mediaType: MT.ociManifest, digest: unknownDigest(), size: 500 }];
    const res = await putManifest(b.url, repo, 'idx', { schemaVersion: 2, mediaType: MT.ociIndex, manifests }, MT.ociIndex);
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    await expectError(await getManifest(b.url, repo, 'idx'), 404, 'MANIFEST_UNKNOWN');
  });

  test('an index child that is a blob but not a manifest → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, randomData(40));
    const res = await putManifest(b.url, repo, 'idx', { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: blob.digest, size: blob.size }] }, MT.ociIndex);
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('a manifest list referencing a child only in another repository → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const child = await pushImage(b.url, other, undefined, { kind: 'docker' });
    const res = await putManifest(b.url, repo, 'list', { schemaVersion: 2, mediaType: MT.dockerManifestList, manifests: [child.descriptor] }, MT.dockerManifestList);
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('a subject that does not exist is accepted, and OCI-Subject is returned', async () => {
    const repo = uniqueRepo();
    const subject = { mediaType: MT.ociManifest, digest: unknownDigest(), size: 1234 };
    const art = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject });
    assert.equal(art.response.headers.get('oci-subject'), subject.digest);
  });

  test('a manifest with subject → OCI-Subject response header; without → none', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    assert.equal(img.response.headers.get('oci-subject'), null);
    const art = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    assert.equal(art.response.headers.get('oci-subject'), img.digest);
    const idx = await pushIndex(b.url, repo, undefined, [img.descriptor], 'oci', { subject: img.descriptor, artifactType: 'application/vnd.example.bundle' });
    assert.equal(idx.response.headers.get('oci-subject'), img.digest);
  });
});

describe('invalid manifests', parallel, () => {
  test('Content-Type and body mediaType disagree → 400 MANIFEST_INVALID', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.dockerManifest), 400, 'MANIFEST_INVALID');
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.ociIndex), 400, 'MANIFEST_INVALID');
    const { manifest: docker } = await buildImage(b.url, repo, { kind: 'docker' });
    await expectError(await putManifest(b.url, repo, 'x', docker, MT.ociManifest), 400, 'MANIFEST_INVALID');
  });

  test('invalid JSON → 400 MANIFEST_INVALID', async () => {
    const repo = uniqueRepo();
    await expectError(await putManifest(b.url, repo, 'x', '{"schemaVersion": 2, ', MT.ociManifest), 400, 'MANIFEST_INVALID');
    await expectError(await putManifest(b.url, repo, 'x', 'plain text', MT.dockerManifest), 400, 'MANIFEST_INVALID');
  });

  test('schema1 by Content-Type → 400 MANIFEST_INVALID saying schema1 is not supported', async () => {
    const repo = uniqueRepo();
    const body = { schemaVersion: 1, name: repo, tag: 'old', architecture: 'amd64', fsLayers: [], history: [], signatures: [] };
    for (const ct of [MT.dockerSchema1Signed, MT.dockerSchema1]) {
      const err = await expectError(await putManifest(b.url, repo, 'old', body, ct), 400, 'MANIFEST_INVALID');
      assert.match(err.errors[0]!.message, /schema ?1/i);
      assert.match(err.errors[0]!.message, /not supported/i);
    }
  });

  test('a body with schemaVersion 1 → 400 MANIFEST_INVALID saying schema1 is not supported', async () => {
    const repo = uniqueRepo();
    const body = { schemaVersion: 1, name: repo, tag: 'old', architecture: 'amd64', fsLayers: [{ blobSum: unknownDigest() }], history: [{ v1Compatibility: '{}' }] };
    for (const ct of ['application/json', undefined]) {
      const err = await expectError(await putManifest(b.url, repo, 'old', Buffer.from(JSON.stringify(body)), ct), 400, 'MANIFEST_INVALID');
      assert.match(err.errors[0]!.message, /schema ?1/i);
      assert.match(err.errors[0]!.message, /not supported/i);
    }
  });

  test('schemaVersion other than 2 → 400 MANIFEST_INVALID', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    manifest.schemaVersion = 3;
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.ociManifest), 400, 'MANIFEST_INVALID');
  });

  test('a Docker schema2 manifest without a mediaType field → 400 MANIFEST_INVALID', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo, { kind: 'docker' });
    delete manifest.mediaType;
    await expectError(await putManifest(b.url, repo, 'x', manifest, MT.dockerManifest), 400, 'MANIFEST_INVALID');
  });

  test('PUT by digest whose body does not match → 400 DIGEST_INVALID, nothing stored', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const wrong = unknownDigest();
    await expectError(await putManifest(b.url, repo, wrong, manifest, MT.ociManifest), 400, 'DIGEST_INVALID');
    await expectError(await getManifest(b.url, repo, wrong), 404, 'MANIFEST_UNKNOWN');
    await expectError(await getManifest(b.url, repo, sha256(toBody(manifest))), 404, 'MANIFEST_UNKNOWN');
  });

  test('PUT by a malformed digest reference → 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    await expectError(await putManifest(b.url, repo, 'sha256:abc', manifest, MT.ociManifest), 400, 'DIGEST_INVALID');
  });

  test('a body over 4 MiB → 413', async () => {
    const repo = uniqueRepo();
    const config = await pushBlob(b.url, repo, '{}', MT.ociConfig);
    const manifest = { schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [], annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } };
    const res = await putManifest(b.url, repo, 'huge', manifest, MT.ociManifest);
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    await expectError(await getManifest(b.url, repo, 'huge'), 404, 'MANIFEST_UNKNOWN');
  });

  test('a body over 4 MiB sent without Content-Length (chunked) → 413, and the server keeps serving', async () => {
    const repo = uniqueRepo();
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < big.length; i += 64 * 1024) controller.enqueue(new Uint8Array(big.subarray(i, i + 64 * 1024)));
        controller.close();
      },
    });
    const res = await fetch(`${b.url}/v2/${repo}/manifests/huge`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    await expectError(await getManifest(b.url, repo, 'huge'), 404);
  });

  test('a body just under 4 MiB is accepted', async () => {
    const repo = uniqueRepo();
    const config = await pushBlob(b.url, repo, '{}', MT.ociConfig);
    const base = { schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [], annotations: { pad: '' } };
    const pad = 4 * 1024 * 1024 - Buffer.byteLength(JSON.stringify(base));
    base.annotations.pad = 'x'.repeat(pad);
    const body = Buffer.from(JSON.stringify(base));
    assert.equal(body.byteLength, 4 * 1024 * 1024);
    const m = await pushManifest(b.url, repo, 'big', body, MT.ociManifest);
    const res = await getManifest(b.url, repo, 'big');
    assert.equal((await expectStatus(res, 200)).byteLength, body.byteLength);
    assert.equal(res.headers.get('docker-content-digest'), m.digest);
  });
});

describe('tags in the reference', parallel, () => {
  for (const [why, tag] of [
    ['leading dash', '-bad'],
    ['leading dot', '.bad'],
    ['129 characters', `a${'b'.repeat(128)}`],
    ['a plus sign', 'a+b'],
    ['percent-encoded slash', 'a%2Fb'],
  ] as const) {
    test(`an invalid tag (${why}) → 400 TAG_INVALID on PUT`, async () => {
      const repo = uniqueRepo();
      const { manifest } = await buildImage(b.url, repo);
      await expectError(await putManifest(b.url, repo, tag, manifest, MT.ociManifest), 400, 'TAG_INVALID');
    });
  }

  test('a 128-character tag and odd but valid tags work', async () => {
    const repo = uniqueRepo();
    for (const tag of [`a${'b'.repeat(127)}`, '_', 'A', '1.0', 'v1.2.3-rc.1_build__2', 'UPPER_lower.9-']) {
      const img = await pushImage(b.url, repo, tag);
      const res = await getManifest(b.url, repo, tag);
      await expectStatus(res, 200);
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
    }
  });

  test('an unknown tag → 404 MANIFEST_UNKNOWN; HEAD → 404 without body', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'exists');
    await expectError(await getManifest(b.url, repo, 'missing'), 404, 'MANIFEST_UNKNOWN');
    const head = await getManifest(b.url, repo, 'missing', ACCEPT_ALL, 'HEAD');
    assert.equal(head.status, 404);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    await expectError(await getManifest(b.url, uniqueRepo('nowhere'), 'latest'), 404);
  });

  test('an unknown digest → 404 MANIFEST_UNKNOWN', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'exists');
    await expectError(await getManifest(b.url, repo, unknownDigest()), 404, 'MANIFEST_UNKNOWN');
  });

  test('a manifest of one repository is unknown in another', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    await pushImage(b.url, other, 'v1');
    const res = await getManifest(b.url, other, img.digest);
    await expectError(res, 404, 'MANIFEST_UNKNOWN');
  });

  // The OCI conformance suite's "nonexistent manifest" specs pull `.INVALID_MANIFEST_NAME`
  // (v1.1) and `sha256:baddigeststring` (its rewrite): a reference that is not
  // a valid tag or digest names no manifest, so reads are 404, never 400.
  const invalidReferences: [string, string][] = [
    ['the suite\'s invalid tag', '.INVALID_MANIFEST_NAME'],
    ['the suite\'s invalid digest', 'sha256:baddigeststring'],
    ['a leading dash', '-bad'],
    ['129 characters', `a${'b'.repeat(128)}`],
    ['non-hex digest', 'sha256:zzz'],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
    ['unsupported algorithm', `md5:${'a'.repeat(32)}`],
  ];
  for (const [why, ref] of invalidReferences) {
    test(`GET and HEAD of an invalid reference (${why}) → 404 MANIFEST_UNKNOWN`, async () => {
      const repo = uniqueRepo();
      await pushImage(b.url, repo, 'exists');
      await expectError(await getManifest(b.url, repo, ref), 404, 'MANIFEST_UNKNOWN');
      const head = await getManifest(b.url, repo, ref, ACCEPT_ALL, 'HEAD');
      assert.equal(head.status, 404);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
      // In a repository that does not exist too.
      await expectError(await getManifest(b.url, uniqueRepo('nowhere'), ref), 404, 'MANIFEST_UNKNOWN');
    });
  }

  test('PUT and DELETE of an invalid reference keep TAG_INVALID and DIGEST_INVALID', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    await expectError(await putManifest(b.url, repo, '.INVALID_MANIFEST_NAME', manifest, MT.ociManifest), 400, 'TAG_INVALID');
    await expectError(await putManifest(b.url, repo, 'sha256:baddigeststring', manifest, MT.ociManifest), 400, 'DIGEST_INVALID');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`, { method: 'DELETE' }), 400, 'TAG_INVALID');
    await expectError(await fetch(`${b.url}/v2/${repo}/manifests/sha256:baddigeststring`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  });

  test('PUT /manifests/<digest>?tag=a&tag=b tags both', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const body = toBody(manifest);
    const digest = sha256(body);
    const res = await fetch(`${b.url}/v2/${repo}/manifests/${digest}?tag=a&tag=b`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body });
    await expectStatus(res, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    for (const tag of ['a', 'b']) {
      const get = await getManifest(b.url, repo, tag);
      await expectStatus(get, 200);
      assert.equal(get.headers.get('docker-content-digest'), digest);
    }
    const tags = await fetch(`${b.url}/v2/${repo}/tags/list`);
    assert.deepEqual(await tags.json(), { name: repo, tags: ['a', 'b'] });
  });

  test('?tag= with an invalid tag → 400 TAG_INVALID and nothing tagged', async () => {
    const repo = uniqueRepo();
    const { manifest } = await buildImage(b.url, repo);
    const body = toBody(manifest);
    const res = await fetch(`${b.url}/v2/${repo}/manifests/${sha256(body)}?tag=ok&tag=-bad`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body });
    await expectError(res, 400, 'TAG_INVALID');
    await expectError(await getManifest(b.url, repo, 'ok'), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('content negotiation and caching', parallel, () => {
  test('an OCI manifest requested with only the Docker schema2 type → 404 MANIFEST_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'oci');
    for (const ref of ['oci', img.digest]) {
      await expectError(await getManifest(b.url, repo, ref, MT.dockerManifest), 404, 'MANIFEST_UNKNOWN');
    }
  });

  test('an OCI index requested with only Docker types → 404 MANIFEST_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo);
    await pushIndex(b.url, repo, 'idx', [img.descriptor]);
    await expectError(await getManifest(b.url, repo, 'idx', `${MT.dockerManifest}, ${MT.dockerManifestList}`), 404, 'MANIFEST_UNKNOWN');
  });

  for (const accept of [MT.ociManifest, '*/*', `${MT.dockerManifest}, ${MT.ociManifest};q=0.5`, `${MT.dockerManifest},${MT.ociManifest}`]) {
    test(`an OCI manifest with Accept: ${accept} → 200`, async () => {
      const repo = uniqueRepo();
      const img = await pushImage(b.url, repo, 'oci');
      const res = await getManifest(b.url, repo, 'oci', accept);
      assert.deepEqual(await expectStatus(res, 200), img.body);
      assert.equal(res.headers.get('content-type'), MT.ociManifest);
    });
  }

  test('several Accept headers are combined', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'oci');
    const headers = new Headers();
    headers.append('Accept', MT.dockerManifest);
    headers.append('Accept', MT.ociManifest);
    const res = await fetch(`${b.url}/v2/${repo}/manifests/oci`, { headers });
    await expectStatus(res, 200);
  });

  test('a Docker schema2 manifest is served to a schema2 client', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'd', { kind: 'docker' });
    const res = await getManifest(b.url, repo, 'd', MT.dockerManifest);
    assert.deepEqual(await expectStatus(res, 200), img.body);
    assert.equal(res.headers.get('content-type'), MT.dockerManifest);
  });

  test('Etag is the digest; If-None-Match with it → 304 without a body', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const res = await getManifest(b.url, repo, 'v1');
    await expectStatus(res, 200);
    const etag = res.headers.get('etag');
    assert.ok(etag?.includes(img.digest), `Etag ${etag} names the digest`);
    for (const ref of ['v1', img.digest]) {
      const cached = await fetch(`${b.url}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': etag! } });
      assert.equal(cached.status, 304);
      assert.equal((await cached.arrayBuffer()).byteLength, 0);
      assert.equal(cached.headers.get('docker-content-digest'), img.digest);
    }
    const stale = await fetch(`${b.url}/v2/${repo}/manifests/v1`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': `"${unknownDigest()}"` } });
    assert.deepEqual(await expectStatus(stale, 200), img.body);
  });
});
