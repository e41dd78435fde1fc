/** The referrers API (end-12a/12b): manifests whose `subject` is a digest, as an OCI index. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MT, expectError, expectStatus, pushArtifact, pushImage, pushIndex, uniqueRepo, unknownDigest, useBerth, type Descriptor } from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: Descriptor[];
}

async function referrers(repo: string, digest: string, query = ''): Promise<{ res: Response; index: Index }> {
  const res = await fetch(`${b.url}/v2/${repo}/referrers/${digest}${query}`);
  const body = await expectStatus(res, 200);
  assert.equal(res.headers.get('content-type'), MT.ociIndex);
  const index = JSON.parse(body.toString()) as Index;
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, MT.ociIndex);
  assert.ok(Array.isArray(index.manifests), 'manifests is a list, never null');
  return { res, index };
}

const byDigest = (a: Descriptor, c: Descriptor) => a.digest.localeCompare(c.digest);

describe('GET /v2/<name>/referrers/<digest>', parallel, () => {
  test('lists the manifests whose subject is the digest, with artifactType and annotations', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const sig = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor, annotations: { 'org.example.signer': 'alice' } });
    const sbom = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sbom', subject: img.descriptor });
    // Not a referrer of img: no subject, or a different subject.
    await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig' });
    await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: sig.descriptor });

    const { res, index } = await referrers(repo, img.digest);
    assert.equal(res.headers.get('oci-filters-applied'), null);
    const expected: Descriptor[] = [
      { mediaType: MT.ociManifest, digest: sig.digest, size: sig.body.byteLength, artifactType: 'application/vnd.example.sig', annotations: { 'org.example.signer': 'alice' } },
      { mediaType: MT.ociManifest, digest: sbom.digest, size: sbom.body.byteLength, artifactType: 'application/vnd.example.sbom' },
    ];
    assert.deepEqual([...index.manifests].sort(byDigest), expected.sort(byDigest));
  });

  test('an image manifest with a subject but no artifactType is listed with its config media type', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const child = await pushImage(b.url, repo, undefined, { subject: img.descriptor });
    assert.equal(child.response.headers.get('oci-subject'), img.digest);
    const { index } = await referrers(repo, img.digest);
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0]!.digest, child.digest);
    assert.equal(index.manifests[0]!.artifactType, MT.ociConfig);
  });

  test('an OCI index with a subject is a referrer too', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const part = await pushImage(b.url, repo);
    const idx = await pushIndex(b.url, repo, undefined, [part.descriptor], 'oci', { subject: img.descriptor, artifactType: 'application/vnd.example.bundle' });
    const { index } = await referrers(repo, img.digest);
    assert.deepEqual(index.manifests, [{ mediaType: MT.ociIndex, digest: idx.digest, size: idx.body.byteLength, artifactType: 'application/vnd.example.bundle' }]);
  });

  test('?artifactType= filters and says so with OCI-Filters-Applied', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const sig1 = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    const sig2 = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sbom', subject: img.descriptor });

    const all = await referrers(repo, img.digest);
    assert.equal(all.index.manifests.length, 3);

    const { res, index } = await referrers(repo, img.digest, `?artifactType=${encodeURIComponent('application/vnd.example.sig')}`);
    assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [sig1.digest, sig2.digest].sort());
    for (const m of index.manifests) assert.equal(m.artifactType, 'application/vnd.example.sig');

    const none = await referrers(repo, img.digest, '?artifactType=application/vnd.example.nothing');
    assert.equal(none.res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(none.index.manifests, []);
  });

  test('?artifactType= with an unencoded + still matches a +json media type', async () => {
    // Form decoding turns a bare `+` into a space; a media type never holds one.
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const sbom = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sbom+json', subject: img.descriptor });
    await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig+json', subject: img.descriptor });
    for (const query of ['?artifactType=application/vnd.example.sbom+json', `?artifactType=${encodeURIComponent('application/vnd.example.sbom+json')}`]) {
      const { res, index } = await referrers(repo, img.digest, query);
      assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
      assert.deepEqual(index.manifests.map((m) => m.digest), [sbom.digest], query);
      assert.equal(index.manifests[0]!.artifactType, 'application/vnd.example.sbom+json');
    }
  });

  test('referrers may be pushed before their subject exists', async () => {
    const repo = uniqueRepo();
    const subject = { mediaType: MT.ociManifest, digest: unknownDigest(), size: 100 };
    const sig = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject });
    const { index } = await referrers(repo, subject.digest);
    assert.deepEqual(index.manifests.map((m) => m.digest), [sig.digest]);
  });

  test('an unknown digest → 200 with an empty manifests list (never 404)', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'v1');
    const { index } = await referrers(repo, unknownDigest());
    assert.deepEqual(index.manifests, []);
    const ghost = await referrers(uniqueRepo('ghost'), unknownDigest());
    assert.deepEqual(ghost.index.manifests, []);
  });

  test('referrers are scoped to the repository', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    await pushArtifact(b.url, other, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    const { index } = await referrers(repo, img.digest);
    assert.deepEqual(index.manifests, []);
    assert.equal((await referrers(other, img.digest)).index.manifests.length, 1);
  });

  for (const digest of ['sha256:xyz', 'latest', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`]) {
    test(`a malformed digest (${digest.slice(0, 20)}) → 400`, async () => {
      await expectError(await fetch(`${b.url}/v2/${uniqueRepo()}/referrers/${digest}`), 400, 'DIGEST_INVALID');
    });
  }

  test('a deleted referrer disappears from the list', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const sig = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    assert.equal((await referrers(repo, img.digest)).index.manifests.length, 1);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${sig.digest}`, { method: 'DELETE' }), 202);
    assert.deepEqual((await referrers(repo, img.digest)).index.manifests, []);
  });
});
