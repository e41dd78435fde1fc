/**
 * The discovery operations of the JSON API (discovery.ts), part of the
 * API's suite on every engine (suite.ts): a second HubApi over the same
 * store, given a Discovery built as the server builds it, with images
 * pushed through the real Registry (in-memory blobs) so that sizes,
 * platforms and activity are recorded as at a real push.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Principal } from '../../../access/types.js';
import { CLI, createDiscovery, MAX_DESCRIPTION_CHARS, MAX_README_BYTES, type Discovery, type Hub } from '../../../hub/index.js';
import { Registry } from '../../../registry/registry.js';
import { InMemoryBlobStore } from '../../../storage/index.js';
import { redactWebhookUrl } from './discovery.js';
import { createHubApi, MAX_BODY_BYTES, type ApiResponse, type HubApi } from './index.js';
import type { ApiEngine, Call } from './suite-types.js';

type Errors = { errors: { code: string; message: string; detail?: unknown }[] };
const errorOf = (r: ApiResponse) => (r.body as Errors).errors[0]!;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Page<T> {
  items: T[];
  next: string | null;
  count?: number;
}
type SearchItem = { name: string; namespace: string; short_name: string; description: string; star_count: number; pull_count: number; is_official: boolean; last_updated: string | null; platforms: { os: string; architecture: string; variant: string | null }[] };
type Activity = { id: number; repository: string | null; namespace: string; actor: string | null; action: string; tag: string | null; digest: string | null };

export interface DiscoveryTestContext {
  engine(): ApiEngine;
  hub(): Hub;
  /** The suite's API, without a Discovery. */
  api(): HubApi;
  who: Record<string, Principal>;
  call(method: string, target: string, c?: Call): Promise<ApiResponse>;
}

export function runDiscoveryApiTests(t: DiscoveryTestContext): void {
  describe('discovery', () => {
    let d: Discovery;
    let api: HubApi;
    let registry: Registry;
    const blobs = new InMemoryBlobStore();
    const sizes = new Map<string, number>();

    const call = (method: string, target: string, principal: Principal | null, body?: unknown) =>
      t.call(method, target, { via: api, ...(principal ? { principal } : {}), ...(body === undefined ? {} : { body }) });
    const get = <T>(target: string, principal: Principal | null = null) => call('GET', target, principal).then((r) => r.body as T);
    const page = <T>(target: string, principal: Principal | null = null) => get<Page<T>>(target, principal);
    const names = (p: Page<{ name: string }>) => p.items.map((x) => x.name);

    const blob = async (repository: string, bytes: Buffer) => {
      const digest = sha(bytes);
      await registry.uploads.putWhole(repository, digest, (async function* () {
        yield bytes;
      })());
      return { digest, size: bytes.byteLength };
    };
    /** The push event the edge emits after a manifest PUT (activity and webhooks come from it). */
    const pushed = (repository: string, tag: string, digest: string, mediaType: string) =>
      d.events.emit([{ id: `${repository}:${tag}:${digest}`, timestamp: new Date().toISOString(), action: 'push', target: { repository, tag, digest, mediaType, size: 1 }, actor: { name: 'alice' } }]);
    const pushImage = async (repository: string, tag: string, platform: { os: string; architecture: string; variant?: string } = { os: 'linux', architecture: 'amd64' }) => {
      const config = await blob(repository, Buffer.from(JSON.stringify({ ...platform, config: {}, rootfs: { type: 'layers', diff_ids: [] } })));
      const layer = await blob(repository, Buffer.from(`layer of ${repository}:${tag} ${JSON.stringify(platform)}`));
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }] }),
      );
      const { digest } = await registry.putManifest(repository, tag, OCI_MANIFEST, body);
      await pushed(repository, tag, digest, OCI_MANIFEST);
      sizes.set(digest, config.size + layer.size);
      return { digest, bytes: body.byteLength, platform };
    };

    before(async () => {
      const e = t.engine();
      d = createDiscovery(e.store, { mode: 'accounts', blobs, log: pino({ level: 'silent' }), pulls: { intervalMs: 3_600_000 } });
      api = createHubApi({ hub: t.hub(), store: e.store, discovery: d, deleteRepository: async () => ({ manifests: 0, tags: 0 }) });
      registry = new Registry(e.store, blobs, { deleteEnabled: true });
      registry.manifestObserver = d.images;
      registry.events = d.events;
      // alice/web: a two-platform index and an older single image; alice/hidden: private; alice/tool-1…5: "toolkit" in the description.
      const amd = await pushImage('alice/web', 'amd64-only');
      const arm = await pushImage('alice/web', 'arm-only', { os: 'linux', architecture: 'arm64', variant: 'v8' });
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [amd, arm].map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.bytes, platform: m.platform })),
        }),
      );
      await pushed('alice/web', 'latest', (await registry.putManifest('alice/web', 'latest', OCI_INDEX, index)).digest, OCI_INDEX);
      await pushImage('alice/hidden', 'v1');
      await t.hub().repositories.setVisibility('alice/hidden', 'private', CLI);
      for (let i = 1; i <= 5; i++) {
        await pushImage(`alice/tool-${i}`, 'v1');
        await d.pages.setDescription(t.who.alice!, `alice/tool-${i}`, `toolkit number ${i}`, CLI);
      }
    });
    after(async () => {
      await d.close();
    });

    it('is served only by an API given a Discovery, and documented so', async () => {
      const without = await t.call('GET', 'berth/v1/search?q=web');
      assert.equal(without.status, 404);
      assert.equal(errorOf(without).code, 'NOT_FOUND');
      const plain = await t.call('GET', 'berth/v1/repositories/alice/web');
      assert.equal(plain.status, 200);
      assert.equal((plain.body as Record<string, unknown>).star_count, undefined);
      const paths = (a: HubApi) => Object.keys(a.document().paths as object);
      assert.ok(paths(api).includes('/berth/v1/search') && paths(api).includes('/berth/v1/repositories/{name}/-/webhooks/{id}'));
      assert.ok(!paths(t.api()).some((p) => p.includes('search') || p.includes('/-/star')));
    });

    describe('search', () => {
      it('finds by the words of names and descriptions, in the shape documented, only what the caller may read', async () => {
        const r = await call('GET', 'berth/v1/search?q=web', null);
        assert.equal(r.status, 200);
        const body = r.body as Page<SearchItem> & { query: string };
        assert.equal(body.query, 'web');
        assert.equal(body.items[0]!.name, 'alice/web');
        assert.deepEqual(Object.keys(body.items[0]!).sort(), ['description', 'is_official', 'last_pulled', 'last_updated', 'name', 'namespace', 'platforms', 'pull_count', 'short_name', 'star_count']);
        // Its tags' platforms together: the index's two children and the single images (the same two).
        assert.deepEqual(body.items[0]!.platforms, [
          { os: 'linux', architecture: 'amd64', variant: null },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ]);
        assert.equal(body.items[0]!.short_name, 'web');
        assert.match(body.items[0]!.last_updated!, /^\d{4}-\d\d-\d\dT/);
        const hidden = await page<SearchItem>('berth/v1/search?q=hidden');
        assert.deepEqual([hidden.items, hidden.count], [[], 0], 'a private repository shows nowhere, not even in the count');
        assert.deepEqual(names(await page('berth/v1/search?q=hidden', t.who.bob!)), []);
        assert.deepEqual(names(await page('berth/v1/search?q=hidden', t.who.alice!)), ['alice/hidden']);
        assert.ok(names(await page('berth/v1/search?q=hidden', t.who['root-admin']!)).includes('alice/hidden'));
      });

      it('pages with n and last (a position), a Link header, and any n on the way', async () => {
        const all = names(await page('berth/v1/search?q=toolkit&n=100'));
        assert.equal(all.length, 5);
        const first = await call('GET', 'berth/v1/search?q=toolkit&n=2', null);
        const p1 = first.body as Page<SearchItem>;
        assert.deepEqual([names(p1), p1.next, p1.count], [all.slice(0, 2), '2', 5]);
        assert.equal(first.headers.Link, '</berth/v1/search?q=toolkit&n=2&last=2>; rel="next"');
        const p3 = await page<SearchItem>('berth/v1/search?q=toolkit&n=2&last=4');
        assert.deepEqual([names(p3), p3.next], [all.slice(4), null]);
        assert.equal((await call('GET', 'berth/v1/search?q=toolkit&n=2&last=4', null)).headers.Link, undefined);
        // A position that is no multiple of n (n changed between pages).
        const odd = await page<SearchItem>('berth/v1/search?q=toolkit&n=2&last=1');
        assert.deepEqual([names(odd), odd.next], [all.slice(1, 3), '3']);
        assert.deepEqual(names(await page('berth/v1/search?q=toolkit&n=2&last=9')), []);
        for (const [q, field] of [
          ['last=abc', 'query.last'],
          ['n=0', 'query.n'],
          ['n=101', 'query.n'],
          ['sort=bogus', 'query.sort'],
          ['official=yes', 'query.official'],
          ['min_stars=-1', 'query.min_stars'],
          ['page=2', 'query.page'],
        ] as const) {
          const r = await call('GET', `berth/v1/search?q=toolkit&${q}`, null);
          assert.equal(r.status, 400, q);
          assert.ok(errorOf(r).message.startsWith(`${field}:`), `${q}: ${errorOf(r).message}`);
        }
      });

      it('filters by namespace, official, stars and platform, and sorts', async () => {
        assert.deepEqual(names(await page('berth/v1/search?q=&architecture=arm64')), ['alice/web']);
        assert.deepEqual(names(await page('berth/v1/search?q=web&os=windows')), []);
        assert.deepEqual(names(await page('berth/v1/search?q=web&os=linux&architecture=arm64&variant=v8')), ['alice/web']);
        assert.deepEqual(names(await page('berth/v1/search?q=web&architecture=arm64&variant=v7')), []);
        assert.deepEqual(names(await page('berth/v1/search?q=toolkit&namespace=bob')), []);
        assert.equal((await page('berth/v1/search?q=toolkit&namespace=alice')).count, 5);
        assert.deepEqual(names(await page('berth/v1/search?q=toolkit&official=true')), []);
        assert.deepEqual(names(await page('berth/v1/search?q=toolkit&min_stars=1')), []);
        const sorted = names(await page('berth/v1/search?q=toolkit&sort=updated'));
        assert.deepEqual(sorted, ['alice/tool-5', 'alice/tool-4', 'alice/tool-3', 'alice/tool-2', 'alice/tool-1'].filter((n) => sorted.includes(n)));
      });
    });

    describe('repository pages', () => {
      it("answers the repository with Docker Hub's fields besides its own; a private one is a missing one", async () => {
        const r = await call('GET', 'berth/v1/repositories/alice/web', null);
        assert.equal(r.status, 200);
        const b = r.body as Record<string, unknown>;
        for (const k of ['owner', 'visibility', 'createdAt', 'tags', 'blobs', 'sizeBytes', 'permission']) assert.ok(k in b, `keeps ${k}`);
        assert.equal(b.name, 'alice/web', 'the full name, as the rest of the API');
        assert.equal(b.full_name, 'alice/web');
        assert.equal(b.namespace, 'alice');
        assert.equal(b.tags, 3);
        assert.deepEqual([b.repository_type, b.status, b.is_private, b.is_official, b.star_count, b.pull_count, b.has_starred], ['image', 1, false, false, 0, 0, false]);
        assert.match(b.date_registered as string, /^\d{4}-/);
        assert.match(b.last_pushed as string, /^\d{4}-/);
        const hidden = await call('GET', 'berth/v1/repositories/alice/hidden', t.who.bob!);
        const missing = await call('GET', 'berth/v1/repositories/alice/nothing', t.who.bob!);
        assert.deepEqual([hidden.status, errorOf(hidden).code, errorOf(hidden).message], [missing.status, errorOf(missing).code, errorOf(missing).message]);
        assert.equal(hidden.status, 404);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/hidden', t.who.alice!)).status, 200);
        const patched = await call('PATCH', 'berth/v1/repositories/alice/tool-5', t.who.alice!, { visibility: 'public' });
        assert.equal(patched.status, 200);
        assert.equal((patched.body as { description: string }).description, 'toolkit number 5');
      });

      it("answers the tags in Docker Hub's shape: sizes and every platform, sorted and paged", async () => {
        const r = await call('GET', 'berth/v1/repositories/alice/web/-/tags?sort=name', null);
        assert.equal(r.status, 200);
        type Tag = { name: string; digest: string; full_size: number | null; media_type: string; images: { architecture: string; os: string; variant: string | null; size: number }[] };
        const tags = r.body as Page<Tag>;
        assert.equal(tags.count, 3);
        assert.deepEqual(names(tags), ['amd64-only', 'arm-only', 'latest']);
        const latest = tags.items[2]!;
        assert.equal(latest.media_type, OCI_INDEX);
        assert.deepEqual(latest.images.map((i) => [i.os, i.architecture, i.variant]).sort(), [['linux', 'amd64', null], ['linux', 'arm64', 'v8']]);
        assert.equal(latest.full_size, latest.images.reduce((n, i) => n + i.size, 0));
        assert.equal(tags.items[0]!.full_size, sizes.get(tags.items[0]!.digest));
        const p1 = await call('GET', 'berth/v1/repositories/alice/web/-/tags?sort=name&n=2', null);
        assert.deepEqual([names(p1.body as Page<Tag>), (p1.body as Page<Tag>).next], [['amd64-only', 'arm-only'], '2']);
        assert.equal(p1.headers.Link, '</berth/v1/repositories/alice/web/-/tags?sort=name&n=2&last=2>; rel="next"');
        assert.deepEqual(names(await page('berth/v1/repositories/alice/web/-/tags?sort=name&n=2&last=2')), ['latest']);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/hidden/-/tags', t.who.bob!)).status, 404);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/web/-/tags?sort=size', null)).status, 400);
      });

      it('sets the description and README for admins of the repository, within the limits, rendered safely', async () => {
        const anon = await call('PUT', 'berth/v1/repositories/alice/web/-/description', null, { description: 'x' });
        assert.equal(anon.status, 401);
        const reader = await call('PUT', 'berth/v1/repositories/alice/web/-/description', t.who.bob!, { description: 'x' });
        assert.equal(reader.status, 403);
        assert.equal(errorOf(reader).code, 'DENIED');
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/hidden/-/description', t.who.bob!, { description: 'x' })).status, 404);
        let r = await call('PUT', 'berth/v1/repositories/alice/web/-/description', t.who.alice!, { description: 'é'.repeat(MAX_DESCRIPTION_CHARS + 1) });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.description: at most 100 characters/);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/web/-/description', t.who.alice!, { description: 'é'.repeat(MAX_DESCRIPTION_CHARS) })).status, 204);
        r = await call('PUT', 'berth/v1/repositories/alice/web/-/description', t.who.alice!, { description: 'A web server' });
        assert.equal(r.status, 204);
        r = await call('PUT', 'berth/v1/repositories/alice/web/-/readme', t.who.alice!, { readme: 'a'.repeat(MAX_README_BYTES + 1) });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.readme: /);
        r = await call('PUT', 'berth/v1/repositories/alice/web/-/readme', t.who.alice!, { readme: '# Web\n\n<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>' });
        assert.equal(r.status, 204);
        const b = await get<{ description: string; full_description: string; full_description_html: string }>('berth/v1/repositories/alice/web');
        assert.equal(b.description, 'A web server');
        assert.match(b.full_description, /^# Web/);
        assert.match(b.full_description_html, /<h1>Web<\/h1>/);
        assert.doesNotMatch(b.full_description_html, /<script|<img|href="javascript:/i);
        assert.deepEqual(names(await page('berth/v1/search?q=server')), ['alice/web'], 'the search follows the new description');
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/web/-/readme', t.who.alice!, { readme: 'x', extra: 1 })).status, 400);
        // A README's body may pass the API's 64 KiB (the edge reads up to the route's maxBodyBytes), up to 2 MiB.
        assert.equal(api.route('PUT', 'berth/v1/repositories/alice/web/-/readme')!.maxBodyBytes, 2 * MAX_README_BYTES);
        assert.equal(api.route('PUT', 'berth/v1/repositories/alice/web/-/description')!.maxBodyBytes, MAX_BODY_BYTES);
        r = await call('PUT', 'berth/v1/repositories/alice/web/-/readme', t.who.alice!, { readme: 'b'.repeat(2 * MAX_README_BYTES) });
        assert.equal(r.status, 413);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/web/-/description', t.who.alice!, { description: 'd'.repeat(MAX_BODY_BYTES) })).status, 413);
      });

      it('marks repositories official for administrators only', async () => {
        const r = await call('PUT', 'berth/v1/repositories/alice/tool-1/-/official', t.who.alice!, { official: true });
        assert.equal(r.status, 403);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/hidden/-/official', t.who.bob!, { official: true })).status, 404, 'invisible first');
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/nothing/-/official', t.who['root-admin']!, { official: true })).status, 404);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/tool-1/-/official', t.who['root-admin']!, { official: true })).status, 204);
        assert.deepEqual(names(await page('berth/v1/search?q=toolkit&official=true')), ['alice/tool-1']);
        assert.equal((await get<{ is_official: boolean }>('berth/v1/repositories/alice/tool-1')).is_official, true);
      });
    });

    describe('stars and follows', () => {
      it('stars and unstars for the caller; counts, stargazers and what a user starred, as the reader may see', async () => {
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/web/-/star', null)).status, 401);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/hidden/-/star', t.who.bob!)).status, 404);
        for (const who of ['alice', 'alice', 'bob']) assert.equal((await call('PUT', 'berth/v1/repositories/alice/web/-/star', t.who[who]!)).status, 204);
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/hidden/-/star', t.who.alice!)).status, 204);
        const page1 = await get<{ star_count: number; has_starred: boolean }>('berth/v1/repositories/alice/web', t.who.alice!);
        assert.deepEqual([page1.star_count, page1.has_starred], [2, true], 'starring twice counts once');
        assert.equal((await get<{ has_starred: boolean }>('berth/v1/repositories/alice/web', t.who.carol!)).has_starred, false);
        assert.deepEqual(names(await page('berth/v1/search?q=web&min_stars=2')), ['alice/web']);
        // Stargazers, newest first (ties by name), paged by MS:NAME.
        const gazers = await page<{ name: string; starredAt: number }>('berth/v1/repositories/alice/web/-/stargazers');
        assert.deepEqual(new Set(names(gazers)), new Set(['alice', 'bob']));
        const first = await call('GET', 'berth/v1/repositories/alice/web/-/stargazers?n=1', null);
        const p1 = first.body as Page<{ name: string; starredAt: number }>;
        assert.equal(p1.next, `${p1.items[0]!.starredAt}:${p1.items[0]!.name}`);
        assert.match(first.headers.Link!, /rel="next"$/);
        const p2 = await page<{ name: string }>(`berth/v1/repositories/alice/web/-/stargazers?n=1&last=${encodeURIComponent(p1.next!)}`);
        assert.deepEqual([...names(p1), ...names(p2)], names(gazers));
        assert.equal(p2.next, null);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/web/-/stargazers?last=nonsense', null)).status, 400);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/hidden/-/stargazers', t.who.bob!)).status, 404);
        // What alice starred: the private one only to whoever may read it.
        assert.deepEqual(names(await page('berth/v1/accounts/alice/starred')), ['alice/web']);
        assert.deepEqual(new Set(names(await page('berth/v1/accounts/alice/starred', t.who.alice!))), new Set(['alice/web', 'alice/hidden']));
        assert.equal((await call('GET', 'berth/v1/accounts/nobody-here/starred', null)).status, 404);
        // Unstar.
        assert.equal((await call('DELETE', 'berth/v1/repositories/alice/web/-/star', t.who.bob!)).status, 204);
        assert.equal((await get<{ star_count: number }>('berth/v1/repositories/alice/web')).star_count, 1);
      });

      it('follows namespaces (library too) and repositories; the feed leaves out what the reader may not read', async () => {
        const carol = t.who.carol!;
        assert.equal((await call('PUT', 'berth/v1/namespaces/alice/follow', null)).status, 401);
        assert.equal((await call('PUT', 'berth/v1/namespaces/nobody-here/follow', carol)).status, 404);
        assert.equal((await call('PUT', 'berth/v1/namespaces/Bad!/follow', carol)).status, 400);
        assert.equal((await call('PUT', 'berth/v1/namespaces/alice/follow', t.who.alice!)).status, 400, 'not oneself');
        assert.equal((await call('PUT', 'berth/v1/repositories/alice/hidden/-/follow', carol)).status, 404);
        for (const target of ['berth/v1/namespaces/alice/follow', 'berth/v1/namespaces/library/follow', 'berth/v1/repositories/alice/web/-/follow']) {
          assert.equal((await call('PUT', target, carol)).status, 204, target);
        }
        const following = await page<{ kind: string; target: string }>('berth/v1/me/following', carol);
        assert.deepEqual(following.items.map((f) => `${f.kind}:${f.target}`), ['account:alice', 'account:library', 'repository:alice/web']);
        const p1 = await page<{ kind: string; target: string }>('berth/v1/me/following?n=2', carol);
        assert.equal(p1.next, 'account:library');
        assert.deepEqual((await page<{ target: string }>('berth/v1/me/following?n=2&last=account%3Alibrary', carol)).items.map((f) => f.target), ['alice/web']);
        await pushImage('alice/hidden', 'v2');
        await pushImage('alice/web', 'v2');
        const feed = await page<Activity>('berth/v1/me/feed?n=100', carol);
        assert.ok(feed.items.some((a) => a.repository === 'alice/web' && a.action === 'push' && a.tag === 'v2'));
        assert.ok(!feed.items.some((a) => a.repository === 'alice/hidden'), 'a private repository stays out of the feed');
        assert.ok((await page<Activity>('berth/v1/me/feed?n=100', t.who['root-admin']!)).items.length === 0, 'following nothing, seeing nothing');
        const ids = feed.items.map((a) => a.id);
        assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
        assert.equal((await call('GET', 'berth/v1/me/feed', null)).status, 401);
        assert.equal((await call('DELETE', 'berth/v1/namespaces/alice/follow', carol)).status, 204);
        assert.equal((await call('DELETE', 'berth/v1/repositories/alice/web/-/follow', carol)).status, 204);
        assert.deepEqual((await page<{ target: string }>('berth/v1/me/following', carol)).items.map((f) => f.target), ['library']);
      });
    });

    describe('activity', () => {
      it("reads a repository's activity newest first, paged by id; a private one is a missing one", async () => {
        const all = await page<Activity>('berth/v1/repositories/alice/web/-/activity?n=100');
        const actions = all.items.map((a) => a.action);
        for (const a of ['push', 'description', 'readme', 'star', 'unstar']) assert.ok(actions.includes(a), `records ${a}`);
        assert.ok(all.items.every((a) => a.repository === 'alice/web'));
        const p1 = await call('GET', 'berth/v1/repositories/alice/web/-/activity?n=2', null);
        const b1 = p1.body as Page<Activity>;
        assert.deepEqual([b1.items.map((a) => a.id), b1.next], [all.items.slice(0, 2).map((a) => a.id), String(all.items[1]!.id)]);
        const b2 = await page<Activity>(`berth/v1/repositories/alice/web/-/activity?n=2&last=${b1.next}`);
        assert.deepEqual(b2.items.map((a) => a.id), all.items.slice(2, 4).map((a) => a.id));
        assert.equal((await call('GET', 'berth/v1/repositories/alice/hidden/-/activity', t.who.bob!)).status, 404);
        assert.ok((await page<Activity>('berth/v1/repositories/alice/hidden/-/activity', t.who.alice!)).items.length > 0);
      });

      it("reads a namespace's activity without the entries about repositories the reader may not read", async () => {
        const anonymous = await page<Activity>('berth/v1/namespaces/alice/activity?n=100');
        assert.ok(anonymous.items.some((a) => a.repository === 'alice/web'));
        assert.ok(!anonymous.items.some((a) => a.repository === 'alice/hidden'));
        const owner = await page<Activity>('berth/v1/namespaces/alice/activity?n=100', t.who.alice!);
        assert.ok(owner.items.some((a) => a.repository === 'alice/hidden'));
        assert.deepEqual((await page<Activity>('berth/v1/namespaces/nobody-here/activity')).items, []);
        assert.equal((await call('GET', 'berth/v1/namespaces/alice/activity?last=x', null)).status, 400);
      });
    });

    describe('repository webhooks', () => {
      const base = 'berth/v1/repositories/alice/web/-/webhooks';
      const secretUrl = 'https://ci:s3cret@hooks.example.org/build?token=abc&project=web';

      it('are managed by admins of the repository; a reader is refused, a private repository is a missing one', async () => {
        assert.equal((await call('GET', base, null)).status, 401);
        assert.equal((await call('GET', base, t.who.bob!)).status, 403);
        assert.equal((await call('POST', base, t.who.bob!, { name: 'x', url: 'https://example.org/' })).status, 403);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/hidden/-/webhooks', t.who.bob!)).status, 404);
      });

      it('are created, listed, changed and deleted, URLs validated and shown without their credentials', async () => {
        const alice = t.who.alice!;
        let r = await call('POST', base, alice, { name: 'ci', url: 'ftp://hooks.example.org/' });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.url: /);
        r = await call('POST', base, alice, { name: 'ci', url: 'https://example.org/', events: ['pull'] });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.events\.0: /);
        r = await call('POST', base, alice, { name: 'ci', url: secretUrl });
        assert.equal(r.status, 201);
        const hook = r.body as { id: number; name: string; url: string; events: string[]; active: boolean; createdBy: string };
        assert.equal(hook.url, 'https://ci:***@hooks.example.org/build?token=***&project=***');
        assert.deepEqual([hook.name, hook.events, hook.active, hook.createdBy], ['ci', ['push'], true, 'alice']);
        assert.doesNotMatch(JSON.stringify(r.body), /s3cret|abc/);
        assert.equal((await call('POST', base, alice, { name: 'ci', url: 'https://example.org/' })).status, 409);
        const second = (await call('POST', base, alice, { name: 'chat', url: 'https://chat.example.org/hook' })).body as { id: number; url: string };
        assert.equal(second.url, 'https://chat.example.org/hook');
        const list = await page<{ id: number }>(base, alice);
        assert.deepEqual(list.items.map((h) => h.id), [hook.id, second.id]);
        const p1 = await page<{ id: number }>(`${base}?n=1`, alice);
        assert.equal(p1.next, String(hook.id));
        assert.doesNotMatch(JSON.stringify(list), /s3cret|token=abc/);
        // The stored URL is the one given: a push is queued to it.
        const stored = await d.webhooks.list(alice, 'alice/web');
        assert.equal(stored.find((h) => h.id === hook.id)!.url, secretUrl);
        r = await call('PATCH', `${base}/${hook.id}`, alice, { active: false });
        assert.equal(r.status, 200);
        assert.equal((r.body as { active: boolean }).active, false);
        r = await call('PATCH', `${base}/${hook.id}`, alice, { url: 'javascript:alert(1)' });
        assert.equal(r.status, 400);
        assert.equal((await call('PATCH', `${base}/999999`, alice, { active: true })).status, 404);
        assert.equal((await call('PATCH', `berth/v1/repositories/alice/tool-2/-/webhooks/${hook.id}`, alice, { active: true })).status, 404, 'another repository\'s id');
        assert.equal((await call('DELETE', `${base}/${hook.id}`, t.who.bob!)).status, 403);
        assert.equal((await call('DELETE', `${base}/${hook.id}`, alice)).status, 204);
        assert.equal((await call('DELETE', `${base}/${hook.id}`, alice)).status, 404);
        assert.deepEqual((await page<{ id: number }>(base, alice)).items.map((h) => h.id), [second.id]);
      });

      it('redacts what a URL may carry as credentials, and nothing else', () => {
        assert.equal(redactWebhookUrl('https://hooks.example.org/a/b'), 'https://hooks.example.org/a/b');
        assert.equal(redactWebhookUrl('https://user@hooks.example.org/'), 'https://user@hooks.example.org/');
        assert.equal(redactWebhookUrl('http://u:p@h.example:8080/x?a=1&a=2'), 'http://u:***@h.example:8080/x?a=***&a=***');
      });
    });

    describe('without accounts (mode open)', () => {
      let od: Discovery;
      let open: HubApi;
      before(() => {
        od = createDiscovery(t.engine().store, { mode: 'open', blobs, log: pino({ level: 'silent' }), pulls: { intervalMs: 3_600_000 } });
        open = createHubApi({ mode: 'open', hub: t.hub(), store: t.engine().store, discovery: od, deleteRepository: async () => ({ manifests: 0, tags: 0 }) });
      });
      after(() => od.close());
      const via = (target: string, principal?: Principal) => t.call('GET', target, { via: open, ...(principal ? { principal } : {}) });

      it('reads every repository as the registry does: anyone, or any htpasswd user; a private one too (its /v2/ is open as well)', async () => {
        for (const who of [undefined, { kind: 'htpasswd', name: 'carol' } as Principal]) {
          const found = await via('berth/v1/search?q=hidden', who);
          assert.equal(found.status, 200);
          assert.deepEqual((found.body as Page<SearchItem>).items.map((i) => i.name), ['alice/hidden']);
          const repo = await via('berth/v1/repositories/alice/hidden', who);
          assert.equal(repo.status, 200);
          assert.equal((repo.body as { permission: string }).permission, 'read');
          // What its owner sees with accounts.
          const tags = await via('berth/v1/repositories/alice/web/-/tags', who);
          assert.equal(tags.status, 200);
          assert.deepEqual(tags.body, await get('berth/v1/repositories/alice/web/-/tags', t.who.alice!));
          const listed = (await via('berth/v1/repositories?namespace=alice', who)).body as Page<{ name: string }>;
          assert.ok(listed.items.some((r) => r.name === 'alice/hidden') && listed.items.some((r) => r.name === 'alice/web'));
          const activity = (await via('berth/v1/repositories/alice/web/-/activity', who)).body as Page<Activity>;
          assert.ok(activity.items.some((e) => e.action === 'push' && e.tag === 'amd64-only'));
        }
      });

      it('takes a name as itself (no library/ alias), and routes no change, star, account or session', async () => {
        const missing = await via('berth/v1/repositories/web');
        assert.equal(missing.status, 404);
        assert.equal(errorOf(missing).code, 'NAME_UNKNOWN');
        assert.deepEqual(errorOf(missing).detail, { name: 'web' });
        for (const [method, path] of [
          ['PUT', 'berth/v1/repositories/alice/web/-/star'],
          ['PUT', 'berth/v1/repositories/alice/web/-/description'],
          ['GET', 'berth/v1/repositories/alice/web/-/webhooks'],
          ['GET', 'berth/v1/me'],
          ['POST', 'berth/v1/sessions'],
          ['GET', 'berth/v1/accounts/alice/starred'],
        ] as const) {
          const r = open.route(method, path);
          assert.ok(r === null || r.route === 'api-method-not-allowed', `${method} ${path}: ${r?.route}`);
        }
        // A cookie is nobody's session here.
        assert.equal(await open.sessionPrincipal({ cookie: 'berth_session=whatever' }, 'GET'), null);
      });
    });
  });
}
