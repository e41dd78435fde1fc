/** Content discovery: tags/list (end-8a/8b) and _catalog, with n / last / Link pagination. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectError, expectStatus, pushImage, toBody, sha256, uniqueRepo, useBerth, buildImage, MT } from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

/** `<url>; rel="next"` → the URL, resolved against the registry. */
function nextUrl(res: Response): string | null {
  const link = res.headers.get('link');
  if (link === null) return null;
  const m = /^<([^>]+)>;\s*rel="?next"?$/.exec(link.trim());
  assert.ok(m, `Link header has the form <url>; rel="next": ${link}`);
  return new URL(m[1]!, b.url).toString();
}

/** Follows Link headers from `first`; returns every page's items. */
async function walk(first: string, key: 'tags' | 'repositories'): Promise<string[][]> {
  const pages: string[][] = [];
  let url: string | null = first;
  while (url) {
    const res: Response = await fetch(url);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as Record<string, string[]>;
    pages.push(body[key] ?? []);
    url = nextUrl(res);
    assert.ok(pages.length < 1000, 'pagination terminates');
  }
  return pages;
}

/** Pushes one manifest and points every tag at it in one request. */
async function tagAll(repo: string, tags: string[]): Promise<void> {
  const { manifest } = await buildImage(b.url, repo);
  const body = toBody(manifest);
  const q = tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&');
  const res = await fetch(`${b.url}/v2/${repo}/manifests/${sha256(body)}?${q}`, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body });
  await expectStatus(res, 201);
}

describe('GET /v2/<name>/tags/list', parallel, () => {
  test('lists every tag, sorted, with the name', async () => {
    const repo = uniqueRepo();
    const tags = ['latest', 'v1', 'v10', 'v2', 'A', 'a', '_x', '1.0', 'Z-9'];
    await tagAll(repo, tags);
    const res = await fetch(`${b.url}/v2/${repo}/tags/list`);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as { name: string; tags: string[] };
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.equal(body.name, repo);
    assert.deepEqual(body.tags, [...tags].sort());
    assert.equal(res.headers.get('link'), null, 'no Link header when everything fits');
  });

  test('n limits the page and Link points at the rest; following it walks the whole list', async () => {
    const repo = uniqueRepo();
    const tags = Array.from({ length: 23 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    await tagAll(repo, tags);
    for (const n of [1, 2, 5, 7, 22, 23, 24, 100]) {
      const pages = await walk(`${b.url}/v2/${repo}/tags/list?n=${n}`, 'tags');
      assert.deepEqual(pages.flat(), tags, `n=${n}: no duplicates, no gaps, in order`);
      for (const p of pages) assert.ok(p.length <= n, `n=${n}: page of ${p.length}`);
      assert.equal(pages.length, Math.ceil(tags.length / n), `n=${n}: a Link exactly when more follow`);
    }
  });

  test('Link is present exactly when more tags follow', async () => {
    const repo = uniqueRepo();
    await tagAll(repo, ['a', 'b', 'c']);
    const full = await fetch(`${b.url}/v2/${repo}/tags/list?n=3`);
    assert.deepEqual(((await full.json()) as { tags: string[] }).tags, ['a', 'b', 'c']);
    assert.equal(full.headers.get('link'), null);
    const partial = await fetch(`${b.url}/v2/${repo}/tags/list?n=2`);
    assert.deepEqual(((await partial.json()) as { tags: string[] }).tags, ['a', 'b']);
    const next = nextUrl(partial);
    assert.ok(next);
    const u = new URL(next);
    assert.equal(u.pathname, `/v2/${repo}/tags/list`);
    assert.equal(u.searchParams.get('n'), '2');
    assert.equal(u.searchParams.get('last'), 'b');
  });

  test('last returns the tags strictly after it, with or without n', async () => {
    const repo = uniqueRepo();
    await tagAll(repo, ['a', 'b', 'c', 'd']);
    const after = await fetch(`${b.url}/v2/${repo}/tags/list?last=b`);
    assert.deepEqual(((await after.json()) as { tags: string[] }).tags, ['c', 'd']);
    const afterN = await fetch(`${b.url}/v2/${repo}/tags/list?n=1&last=b`);
    assert.deepEqual(((await afterN.json()) as { tags: string[] }).tags, ['c']);
    assert.ok(nextUrl(afterN));
    const between = await fetch(`${b.url}/v2/${repo}/tags/list?last=bb`);
    assert.deepEqual(((await between.json()) as { tags: string[] }).tags, ['c', 'd'], 'last need not be an existing tag');
    const end = await fetch(`${b.url}/v2/${repo}/tags/list?last=d`);
    const body = (await end.json()) as { tags: string[] | null };
    assert.deepEqual(body.tags ?? [], []);
    assert.equal(end.headers.get('link'), null);
  });

  test('n=0 → 200 with no tags and no Link', async () => {
    const repo = uniqueRepo();
    await tagAll(repo, ['a', 'b']);
    const res = await fetch(`${b.url}/v2/${repo}/tags/list?n=0`);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as { name: string; tags: string[] | null };
    assert.equal(body.name, repo);
    assert.deepEqual(body.tags ?? [], []);
    assert.equal(res.headers.get('link'), null);
  });

  for (const n of ['-1', 'abc', '1.5', '1e2', '0x1']) {
    test(`n=${n} → 400 PAGINATION_NUMBER_INVALID`, async () => {
      const repo = uniqueRepo();
      await pushImage(b.url, repo, 'v1');
      await expectError(await fetch(`${b.url}/v2/${repo}/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
      await expectError(await fetch(`${b.url}/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
    });
  }

  test('tags of an unknown repository → 404 NAME_UNKNOWN', async () => {
    await expectError(await fetch(`${b.url}/v2/${uniqueRepo('ghost')}/tags/list`), 404, 'NAME_UNKNOWN');
    await expectError(await fetch(`${b.url}/v2/${uniqueRepo('ghost')}/tags/list?n=0`), 404, 'NAME_UNKNOWN');
  });

  test('a repository with blobs but no tags lists an empty set', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo); // by digest only
    const res = await fetch(`${b.url}/v2/${repo}/tags/list`);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as { name: string; tags: string[] | null };
    assert.equal(body.name, repo);
    assert.deepEqual(body.tags ?? [], []);
  });

  test('nested names a/b/c work and are separate from their parents', async () => {
    const base = uniqueRepo('nest');
    await pushImage(b.url, `${base}/b/c`, 'deep');
    await pushImage(b.url, `${base}/b`, 'mid');
    const deep = await fetch(`${b.url}/v2/${base}/b/c/tags/list`);
    assert.deepEqual(await deep.json(), { name: `${base}/b/c`, tags: ['deep'] });
    const mid = await fetch(`${b.url}/v2/${base}/b/tags/list`);
    assert.deepEqual(await mid.json(), { name: `${base}/b`, tags: ['mid'] });
    await expectError(await fetch(`${b.url}/v2/${base}/tags/list`), 404, 'NAME_UNKNOWN');
  });

  test('repositories whose names look like route words still work', async () => {
    for (const repo of ['tags/list', 'manifests/x', 'blobs/uploads', 'v2/v2']) {
      await pushImage(b.url, repo, 'ok');
      const res = await fetch(`${b.url}/v2/${repo}/tags/list`);
      assert.deepEqual(await res.json(), { name: repo, tags: ['ok'] });
      const m = await fetch(`${b.url}/v2/${repo}/manifests/ok`, { headers: { Accept: MT.ociManifest } });
      await expectStatus(m, 200);
    }
  });
});

describe('GET /v2/_catalog', () => {
  // Runs in a fresh registry so the catalog is known exactly.
  const c = (() => {
    let names: string[] = [];
    return {
      get names() {
        return names;
      },
      async seed() {
        if (names.length) return names;
        const res = await fetch(`${b.url}/v2/_catalog`);
        const existing = ((await res.json()) as { repositories: string[] }).repositories;
        const added = ['zeta', 'alpha', 'alpha/one', 'alpha/one/two', 'alpha-beta', 'mid/x', 'a0', 'b.c', 'b_c', 'b__c'].map((n) => `cat/${n}`);
        for (const n of added) await pushImage(b.url, n, 'v1');
        names = [...existing, ...added].sort();
        return names;
      },
    };
  })();

  test('lists repositories, sorted', async () => {
    const names = await c.seed();
    const res = await fetch(`${b.url}/v2/_catalog`);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as { repositories: string[] };
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.deepEqual(body.repositories, names);
    assert.deepEqual(body.repositories, [...body.repositories].sort(), 'sorted');
    assert.equal(res.headers.get('link'), null);
  });

  test('n and Link walk the whole catalog with no duplicates or gaps', async () => {
    const names = await c.seed();
    for (const n of [1, 3, 4, names.length - 1, names.length, names.length + 1]) {
      const pages = await walk(`${b.url}/v2/_catalog?n=${n}`, 'repositories');
      assert.deepEqual(pages.flat(), names, `n=${n}`);
      assert.equal(pages.length, Math.ceil(names.length / n), `n=${n}: a Link exactly when more follow`);
    }
  });

  test('last and n', async () => {
    const names = await c.seed();
    const i = names.indexOf('cat/alpha/one');
    const res = await fetch(`${b.url}/v2/_catalog?n=2&last=cat/alpha/one`);
    assert.deepEqual(((await res.json()) as { repositories: string[] }).repositories, names.slice(i + 1, i + 3));
    const next = nextUrl(res);
    assert.ok(next);
    assert.equal(new URL(next).pathname, '/v2/_catalog');
    assert.equal(new URL(next).searchParams.get('last'), names[i + 2]);
  });

  test('n=0 → 200 with an empty list and no Link', async () => {
    await c.seed();
    const res = await fetch(`${b.url}/v2/_catalog?n=0`);
    const body = JSON.parse((await expectStatus(res, 200)).toString()) as { repositories: string[] | null };
    assert.deepEqual(body.repositories ?? [], []);
    assert.equal(res.headers.get('link'), null);
  });
});
