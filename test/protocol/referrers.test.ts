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

  /** Follows the Link headers from `first`, checking each page; returns the pages' digests. */
  async function allPages(repo: string, digest: string, first: string): Promise<{ pages: string[][]; links: string[] }> {
    const pages: string[][] = [];
    const links: string[] = [];
    let path: string | null = `/v2/${repo}/referrers/${digest}${first}`;
    while (path) {
      const res = await fetch(`${b.url}${path}`);
      const index = JSON.parse((await expectStatus(res, 200)).toString()) as Index;
      assert.equal(res.headers.get('content-type'), MT.ociIndex);
      pages.push(index.manifests.map((m) => m.digest));
      const link = res.headers.get('link');
      if (!link) break;
      const m = /^<([^>]+)>; rel="next"$/.exec(link);
      assert.ok(m, `a Link to the next page: ${link}`);
      links.push(m[1]!);
      path = m[1]!;
      assert.ok(pages.length < 20, 'the pages end');
    }
    return { pages, links };
  }

  test('pages with n and a Link header (rel="next") when there are more referrers than a page, filters kept', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const pushed: string[] = [];
    for (const type of ['sig', 'sbom', 'sig', 'sbom', 'sig']) pushed.push((await pushArtifact(b.url, repo, { artifactType: `application/vnd.example.${type}`, subject: img.descriptor })).digest);
    const { pages, links } = await allPages(repo, img.digest, '?n=2');
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    assert.deepEqual(pages.flat(), pushed, 'every referrer once, in the order they were pushed');
    for (const l of links) assert.match(l, new RegExp(`^/v2/${repo}/referrers/${img.digest}\\?n=2&last=\\d+$`));
    // Without n, all five fit in the default page: no Link.
    const whole = await referrers(repo, img.digest);
    assert.equal(whole.res.headers.get('link'), null);
    assert.deepEqual(whole.index.manifests.map((m) => m.digest), pushed);
    // The filter goes along to the next page, which says it was applied too.
    const sigs = await allPages(repo, img.digest, `?n=2&artifactType=${encodeURIComponent('application/vnd.example.sig')}`);
    assert.deepEqual(sigs.pages, [[pushed[0], pushed[2]], [pushed[4]]]);
    assert.match(sigs.links[0]!, /artifactType=application%2Fvnd\.example\.sig/);
    const second = await fetch(`${b.url}${sigs.links[0]}`);
    assert.equal(second.headers.get('oci-filters-applied'), 'artifactType');
    await second.arrayBuffer();
  });

  test('a referrer deleted between two pages does not break the next one', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const pushed: string[] = [];
    for (let i = 0; i < 4; i++) pushed.push((await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor })).digest);
    const first = await fetch(`${b.url}/v2/${repo}/referrers/${img.digest}?n=2`);
    await first.arrayBuffer();
    const next = /^<([^>]+)>/.exec(first.headers.get('link') ?? '')![1]!;
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${pushed[1]}`, { method: 'DELETE' }), 202);
    const rest = JSON.parse((await expectStatus(await fetch(`${b.url}${next}`), 200)).toString()) as Index;
    assert.deepEqual(rest.manifests.map((m) => m.digest), [pushed[2], pushed[3]]);
  });

  test('a page stops short of 4 MiB of descriptors, whatever n says', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const big = 'x'.repeat(1_600_000);
    const pushed: string[] = [];
    for (let i = 0; i < 3; i++) pushed.push((await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.big', subject: img.descriptor, annotations: { 'org.example.blob': `${i}${big}` } })).digest);
    const { pages } = await allPages(repo, img.digest, '');
    assert.deepEqual(pages, [[pushed[0], pushed[1]], [pushed[2]]]);
  });

  test('a bad n or page cursor → 400 PAGINATION_NUMBER_INVALID', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    for (const query of ['?n=-1', '?n=abc', '?last=abc', '?last=0', '?n=2&last=-5']) {
      await expectError(await fetch(`${b.url}/v2/${repo}/referrers/${img.digest}${query}`), 400, 'PAGINATION_NUMBER_INVALID');
    }
    // n=0: an empty index, and no next page.
    const none = await referrers(repo, img.digest, '?n=0');
    assert.deepEqual(none.index.manifests, []);
    assert.equal(none.res.headers.get('link'), null);
  });

  test('a deleted referrer disappears from the list', async () => {
    const repo = uniqueRepo();
    const img = await pushImage(b.url, repo, 'v1');
    const sig = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: img.descriptor });
    assert.equal((await referrers(repo, img.digest)).index.manifests.length, 1);
    await expectStatus(await fetch(`${b.url}/v2/${repo}/manifests/${sig.digest}`, { method: 'DELETE' }), 202);
    assert.deepEqual((await referrers(repo, img.digest)).index.manifests, []);
  });
});
