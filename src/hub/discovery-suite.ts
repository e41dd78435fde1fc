/**
 * The Hub's discovery suite, run on every metadata engine
 * (discovery-sqlite.test.ts, discovery-postgres.test.ts): images pushed
 * through the real Registry (in-memory blobs), then search (ranking over a
 * seeded corpus, typos, filters, readability, an index kept current by
 * pushes, description changes and deletes), `docker search`'s shape, pull
 * counting (what counts, flushes from two processes adding up, nothing lost
 * on close), repository and tag pages (sizes and platforms learnt at push,
 * descriptions and a README from the image), stars, follows and the feed,
 * activity, and repository webhooks delivered to a real HTTP server.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Principal } from '../access/types.js';
import type { RegistryEvent } from '../events/types.js';
import { DiscoveryQueries } from '../metadata/discovery.js';
import type { MetadataStore } from '../metadata/store.js';
import { Registry } from '../registry/registry.js';
import { InMemoryBlobStore } from '../storage/index.js';
import { CLI, createDiscovery, createHub, HubError, type Discovery, type Hub } from './index.js';

export interface DiscoveryEngine {
  store: MetadataStore;
  /** Another handle on the same database (as another process would have). */
  open(): Promise<MetadataStore>;
  cleanup(): Promise<void>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof HubError && err.code === code);
}

export function runDiscoverySuite(engine: string, makeEngine: () => Promise<DiscoveryEngine>): void {
  describe(`hub discovery (${engine})`, () => {
    let e: DiscoveryEngine;
    let hub: Hub;
    let d: Discovery;
    let registry: Registry;
    const blobs = new InMemoryBlobStore();
    const log = pino({ level: 'silent' });
    const anonymous: Principal = { kind: 'anonymous' };
    let alice: Principal;
    let bob: Principal;
    let admin: Principal;
    const others: MetadataStore[] = [];

    const blob = async (repository: string, bytes: Buffer) => {
      const digest = sha(bytes);
      await registry.uploads.putWhole(repository, digest, (async function* () {
        yield bytes;
      })());
      return { digest, size: bytes.byteLength };
    };

    /** Pushes an image to `repository` and a README artifact about it whose one layer is `layer`. */
    const pushReadmeArtifact = async (repository: string, layer: Record<string, unknown>) => {
      const img = await pushImage(repository, 'v1');
      const empty = await blob(repository, Buffer.from('{}'));
      const artifact = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType: 'application/vnd.berth.readme',
          config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
          layers: [layer],
          subject: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.bytes },
        }),
      );
      await registry.putManifest(repository, sha(artifact), OCI_MANIFEST, artifact);
    };

    /** Pushes a one-layer image; returns its manifest digest and compressed size (config + layer). */
    const pushImage = async (
      repository: string,
      tag: string | null,
      opts: { os?: string; architecture?: string; variant?: string; labels?: Record<string, string>; annotations?: Record<string, string>; layer?: string } = {},
    ) => {
      const config = await blob(
        repository,
        Buffer.from(JSON.stringify({ architecture: opts.architecture ?? 'amd64', os: opts.os ?? 'linux', ...(opts.variant ? { variant: opts.variant } : {}), config: { Labels: opts.labels ?? {} }, rootfs: { type: 'layers', diff_ids: [] } })),
      );
      const layer = await blob(repository, Buffer.from(opts.layer ?? `layer of ${repository} ${tag} ${opts.architecture ?? 'amd64'}${opts.variant ?? ''}`));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: OCI_CONFIG, ...config },
          layers: [{ mediaType: LAYER, ...layer }],
          ...(opts.annotations ? { annotations: opts.annotations } : {}),
        }),
      );
      const { digest } = await registry.putManifest(repository, tag ?? sha(manifest), OCI_MANIFEST, manifest);
      return { digest, size: config.size + layer.size, bytes: manifest.byteLength };
    };

    const pushIndex = async (repository: string, tag: string, children: { digest: string; bytes: number; platform: Record<string, string> }[]) => {
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.bytes, platform: c.platform })) }),
      );
      return (await registry.putManifest(repository, tag, OCI_INDEX, body)).digest;
    };

    const user = async (name: string, isAdmin = false): Promise<Principal> => {
      const a = await hub.accounts.create({ name, password: 'correct horse battery', admin: isAdmin }, CLI);
      return { kind: 'user', id: a.id, name, admin: isAdmin };
    };
    const names = (r: { results: { name: string }[] }) => r.results.map((x) => x.name);
    const pushEvent = (repository: string, tag: string | undefined, digest: string, actor: string): RegistryEvent => ({
      id: `${repository}-${tag}-${digest}`,
      timestamp: new Date().toISOString(),
      action: 'push',
      target: { repository, tag, digest, mediaType: OCI_MANIFEST, size: 1 },
      actor: { name: actor },
    });

    before(async () => {
      e = await makeEngine();
      hub = createHub(e.store, { registration: 'open' });
      d = createDiscovery(e.store, { mode: 'accounts', blobs, log, baseUrl: 'https://registry.example', pulls: { intervalMs: 3_600_000 } });
      registry = new Registry(e.store, blobs, { deleteEnabled: true });
      registry.manifestObserver = d.images;
      registry.events = d.events;
      alice = await user('alice');
      bob = await user('bob');
      admin = await user('root-admin', true);
    });
    after(async () => {
      await d.close();
      for (const s of others) await s.close();
      await e.store.close();
      await e.cleanup();
    });

    describe('search', () => {
      before(async () => {
        // A corpus where one word ("nginx") matches by exact name, by name prefix, by a word of the name, by description and by README.
        for (const repo of ['library/nginx', 'alice/nginx-proxy', 'bob/tools-nginx', 'bob/webserver', 'alice/docs', 'library/postgres', 'alice/redis-cache', 'bob/redis-cache', 'bob/secret-nginx', 'alice/armthing']) {
          await pushImage(repo, 'latest', repo === 'alice/armthing' ? { architecture: 'arm64', variant: 'v8' } : {});
        }
        for (const repo of ['library/nginx', 'library/postgres', 'alice/nginx-proxy', 'bob/tools-nginx', 'bob/webserver', 'alice/docs', 'alice/redis-cache', 'bob/redis-cache', 'alice/armthing']) {
          await hub.repositories.setVisibility(repo, 'public', CLI);
        }
        await d.pages.setDescription(admin, 'library/nginx', 'Official build of Nginx.', CLI);
        await d.pages.setDescription(bob, 'bob/webserver', 'A small web server built on nginx', CLI);
        await d.pages.setReadme(alice, 'alice/docs', '# Docs\n\nHow we deploy nginx behind a load balancer.', CLI);
        await d.pages.setDescription(alice, 'alice/redis-cache', 'A cache', CLI);
        await d.pages.setDescription(bob, 'bob/redis-cache', 'A cache', CLI);
        // bob/secret-nginx stays private (the default visibility of new repositories with accounts).
      });

      it('ranks an exact name first, then a name prefix, a word of the name, the description, the README', async () => {
        const r = await d.search.search(alice, { query: 'nginx' });
        assert.deepEqual(names(r), ['library/nginx', 'alice/nginx-proxy', 'bob/tools-nginx', 'bob/webserver', 'alice/docs']);
        assert.deepEqual(r.results.map((x) => x.tier), [6, 5, 4, 2, 1]);
        assert.equal(r.total, 5);
      });

      it('ranks more stars higher among equal matches', async () => {
        let r = await d.search.search(anonymous, { query: 'redis-cache' });
        assert.deepEqual(names(r).slice(0, 2), ['alice/redis-cache', 'bob/redis-cache'], 'equal: by name');
        await d.stars.setStar(alice, 'bob/redis-cache', true, CLI);
        r = await d.search.search(anonymous, { query: 'redis-cache' });
        assert.deepEqual(names(r).slice(0, 2), ['bob/redis-cache', 'alice/redis-cache']);
        assert.equal(r.results[0]!.starCount, 1);
      });

      it('finds a name through a typo and by a prefix of a word', async () => {
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'postgress' })), ['library/postgres']);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'postgers' })).slice(0, 1), ['library/postgres']);
        assert.ok(names(await d.search.search(anonymous, { query: 'postg' })).includes('library/postgres'));
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'zzzzqqq' })), []);
      });

      it('shows only what the caller may read, counted inside the query', async () => {
        assert.ok(!names(await d.search.search(anonymous, { query: 'nginx' })).includes('bob/secret-nginx'));
        assert.ok(!names(await d.search.search(alice, { query: 'secret' })).includes('bob/secret-nginx'));
        const mine = await d.search.search(bob, { query: 'secret' });
        assert.deepEqual(names(mine), ['bob/secret-nginx']);
        assert.ok(names(await d.search.search(admin, { query: 'nginx' })).includes('bob/secret-nginx'));
        assert.equal((await d.search.search(anonymous, { query: 'nginx' })).total, 5);
      });

      it('filters by namespace, official, stars and platform, and pages', async () => {
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'nginx', namespace: 'bob' })), ['bob/tools-nginx', 'bob/webserver']);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'nginx', official: true })), ['library/nginx']);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'cache', minStars: 1 })), ['bob/redis-cache']);
        assert.deepEqual(names(await d.search.search(anonymous, { query: '', platform: { architecture: 'arm64' } })), ['alice/armthing']);
        const p1 = await d.search.search(anonymous, { query: 'nginx', pageSize: 2, page: 1 });
        const p3 = await d.search.search(anonymous, { query: 'nginx', pageSize: 2, page: 3 });
        assert.deepEqual([names(p1), names(p3), p1.total, p1.pages], [['library/nginx', 'alice/nginx-proxy'], ['alice/docs'], 5, 3]);
        const past = await d.search.search(anonymous, { query: 'nginx', pageSize: 2, page: 9 });
        assert.deepEqual([past.results.length, past.total], [0, 5]);
        const byStars = await d.search.search(anonymous, { query: 'cache', sort: 'stars' });
        assert.equal(names(byStars)[0], 'bob/redis-cache');
        // Browsing (no words) by stars walks the stars index; private repositories stay out of it and its count.
        const browsed = await d.search.search(anonymous, { query: '', sort: 'stars', pageSize: 100 });
        assert.equal(names(browsed)[0], 'bob/redis-cache');
        assert.ok(!names(browsed).includes('bob/secret-nginx'));
        assert.equal(browsed.total, browsed.results.length);
        assert.deepEqual(names(await d.search.search(anonymous, { query: '', namespace: 'library', sort: 'stars' })), ['library/nginx', 'library/postgres']);
        await rejectsWith(d.search.search(anonymous, { query: 'x', sort: 'bogus' as never }), 'INVALID');
      });

      it('gives each result its platforms, the union over its tags, and filters by os, architecture and variant', async () => {
        // alice/multiarch: an index of linux/amd64 and linux/arm/v7 under one tag, a windows image under another, an untagged arm64 image.
        const amd = await pushImage('alice/multiarch', null);
        const arm = await pushImage('alice/multiarch', null, { architecture: 'arm', variant: 'v7' });
        await pushIndex('alice/multiarch', 'latest', [
          { digest: amd.digest, bytes: amd.bytes, platform: { os: 'linux', architecture: 'amd64' } },
          { digest: arm.digest, bytes: arm.bytes, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
        ]);
        await pushImage('alice/multiarch', 'nano', { os: 'windows' });
        await pushImage('alice/multiarch', null, { architecture: 'arm64' });
        await hub.repositories.setVisibility('alice/multiarch', 'public', CLI);
        try {
          const [found] = (await d.search.search(anonymous, { query: 'multiarch' })).results;
          assert.equal(found!.name, 'alice/multiarch');
          assert.deepEqual(found!.platforms, [
            { os: 'linux', architecture: 'amd64', variant: null },
            { os: 'linux', architecture: 'arm', variant: 'v7' },
            { os: 'windows', architecture: 'amd64', variant: null },
          ]);
          const [arm64] = (await d.search.search(anonymous, { query: 'armthing' })).results;
          assert.deepEqual(arm64!.platforms, [{ os: 'linux', architecture: 'arm64', variant: 'v8' }]);
          const having = async (platform: { os?: string; architecture?: string; variant?: string }) => names(await d.search.search(anonymous, { query: '', platform }));
          assert.deepEqual(await having({ architecture: 'arm', variant: 'v7' }), ['alice/multiarch']);
          assert.deepEqual(await having({ os: 'windows' }), ['alice/multiarch']);
          assert.deepEqual(await having({ os: 'windows', architecture: 'arm' }), [], 'both on one image');
          assert.deepEqual(await having({ variant: 'v8' }), ['alice/armthing']);
          assert.deepEqual(await having({ architecture: 'arm64' }), ['alice/armthing'], 'an untagged image is not offered');
          assert.deepEqual(names(await d.search.search(anonymous, { query: 'multiarch', platform: { os: 'linux', architecture: 'arm' } })), ['alice/multiarch']);
          assert.deepEqual(names(await d.search.search(anonymous, { query: 'multiarch', platform: { architecture: 'ppc64le' } })), []);
        } finally {
          await registry.deleteRepository('alice/multiarch');
        }
      });

      it('treats query syntax as words (no FTS or tsquery injection)', async () => {
        for (const q of ['"nginx', 'nginx*', 'nginx OR', "ngi'nx", 'a:b & !c | (d', 'NEAR(x y)', '{short_name}: x', '\\', '%_']) {
          const r = await d.search.search(anonymous, { query: q });
          assert.ok(Array.isArray(r.results), q);
        }
        assert.equal(names(await d.search.search(anonymous, { query: 'NGINX!' }))[0], 'library/nginx');
      });

      it('keeps the index current: a new push, a description change, a delete', async () => {
        await pushImage('alice/brandnew', 'v1');
        await hub.repositories.setVisibility('alice/brandnew', 'public', CLI);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'brandnew' })), ['alice/brandnew']);
        await d.pages.setDescription(alice, 'alice/brandnew', 'zebra crossing', CLI);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'zebra' })), ['alice/brandnew']);
        await d.pages.setDescription(alice, 'alice/brandnew', 'giraffe', CLI);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'zebra' })), []);
        await registry.deleteRepository('alice/brandnew');
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'brandnew' })), []);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'giraffe' })), []);
      });

      it('answers docker search with Docker Hub fields, library/ names by their alias', async () => {
        const r = await d.search.dockerSearch(anonymous, { q: 'nginx', n: 2 }, true);
        assert.deepEqual(Object.keys(r).sort(), ['num_pages', 'num_results', 'page', 'page_size', 'query', 'results']);
        assert.deepEqual([r.num_results, r.num_pages, r.page, r.page_size, r.query], [5, 3, 1, 2, 'nginx']);
        assert.deepEqual(r.results[0], { name: 'nginx', description: 'Official build of Nginx.', star_count: 0, is_official: true, is_automated: false });
        assert.equal(r.results[1]!.name, 'alice/nginx-proxy');
        const official = await d.search.dockerSearch(anonymous, { q: 'nginx', official: true }, false);
        assert.deepEqual(official.results.map((x) => x.name), ['library/nginx']);
        assert.equal((await d.search.dockerSearch(anonymous, { q: 'nginx', automated: true }, true)).num_results, 0);
        assert.deepEqual((await d.search.dockerSearch(anonymous, { q: 'cache', minStars: 1 }, true)).results.map((x) => x.name), ['bob/redis-cache']);
      });

      it('uses the full-text and trigram indexes, not a scan', async () => {
        const plan = await new DiscoveryQueries(e.store).explainSearch('nginx');
        if (engine === 'postgres') assert.match(plan, /repository_info_document|repository_info_trigrams/);
        else assert.match(plan, /VIRTUAL TABLE INDEX/);
      });
    });

    describe('pull counts', () => {
      let single: { digest: string };
      let amd: { digest: string; size: number; bytes: number };
      let arm: { digest: string; size: number; bytes: number };
      let index: string;
      before(async () => {
        single = await pushImage('alice/pulled', 'v1');
        amd = await pushImage('alice/multi', null, { architecture: 'amd64' });
        arm = await pushImage('alice/multi', null, { architecture: 'arm', variant: 'v7' });
        index = await pushIndex('alice/multi', 'latest', [
          { digest: amd.digest, bytes: amd.bytes, platform: { os: 'linux', architecture: 'amd64' } },
          { digest: arm.digest, bytes: arm.bytes, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
        ]);
      });

      it('counts GETs by tag and by digest, not a platform manifest fetched after its index', async () => {
        for (let i = 0; i < 3; i++) d.pulls.pulled('alice/pulled', 'v1', single.digest);
        d.pulls.pulled('alice/pulled', single.digest, single.digest);
        // A multi-platform pull: the index by tag, then the platform's manifest by digest: one pull.
        d.pulls.pulled('alice/multi', 'latest', index);
        d.pulls.pulled('alice/multi', amd.digest, amd.digest);
        // containerd: HEAD by tag (not counted), then GET of the index by digest, then the platform.
        d.pulls.pulled('alice/multi', index, index);
        d.pulls.pulled('alice/multi', arm.digest, arm.digest);
        assert.equal(d.pulls.unflushed, 8);
        assert.equal((await e.store.db.selectFrom('tag_pulls').selectAll().execute()).length, 0, 'nothing written before a flush');
        await d.pulls.flush();
        assert.equal(d.pulls.unflushed, 0);
        const a = await d.pages.repository(alice, 'alice/pulled');
        assert.equal(a.pull_count, 4);
        assert.ok(a.last_pulled !== null);
        assert.equal((await d.pages.repository(alice, 'alice/multi')).pull_count, 2);
        const tags = await d.pages.tags(alice, 'alice/multi');
        const latest = tags.results.find((t) => t.name === 'latest')!;
        assert.ok(latest.last_pulled !== null);
        assert.deepEqual(latest.images.map((i) => [i.architecture, i.last_pulled !== null]), [['amd64', true], ['arm', true]]);
      });

      it('adds up flushes of several processes and loses nothing on close', async () => {
        const s2 = await e.open();
        others.push(s2);
        const other = createDiscovery(s2, { mode: 'accounts', blobs, log, pulls: { intervalMs: 3_600_000 } });
        const before = (await d.pages.repository(alice, 'alice/pulled')).pull_count;
        for (let i = 0; i < 50; i++) {
          d.pulls.pulled('alice/pulled', 'v1', single.digest);
          other.pulls.pulled('alice/pulled', 'v1', single.digest);
        }
        await Promise.all([d.pulls.flush(), other.pulls.flush()]);
        other.pulls.pulled('alice/pulled', 'v1', single.digest);
        await other.close();
        assert.equal((await d.pages.repository(alice, 'alice/pulled')).pull_count, before + 101);
      });

      it('flushes by itself once maxPending GETs wait', async () => {
        const s3 = await e.open();
        others.push(s3);
        const eager = createDiscovery(s3, { mode: 'accounts', blobs, log, pulls: { intervalMs: 3_600_000, maxPending: 5 } });
        const start = (await d.pages.repository(alice, 'alice/pulled')).pull_count;
        for (let i = 0; i < 5; i++) eager.pulls.pulled('alice/pulled', 'v1', single.digest);
        for (let t = 0; t < 200 && (await d.pages.repository(alice, 'alice/pulled')).pull_count < start + 5; t++) await new Promise((r) => setTimeout(r, 10));
        assert.equal((await d.pages.repository(alice, 'alice/pulled')).pull_count, start + 5);
        await eager.close();
      });
    });

    describe('repository pages', () => {
      it('shapes the repository like Docker Hub, with sizes and platforms learnt at push', async () => {
        const img = await pushImage('bob/app', 'v1', { architecture: 'arm64', variant: 'v8', labels: { 'org.opencontainers.image.description': 'from the label' } });
        const page = await d.pages.repository(bob, 'bob/app');
        assert.equal(page.name, 'app');
        assert.equal(page.namespace, 'bob');
        assert.equal(page.full_name, 'bob/app');
        assert.equal(page.is_private, true);
        assert.equal(page.description, 'from the label');
        assert.equal(page.repository_type, 'image');
        assert.ok(page.last_pushed !== null && page.date_registered);
        const tags = await d.pages.tags(bob, 'bob/app');
        assert.equal(tags.count, 1);
        assert.deepEqual(tags.results[0], {
          name: 'v1',
          digest: img.digest,
          media_type: OCI_MANIFEST,
          full_size: img.size,
          last_updated: tags.results[0]!.last_updated,
          last_pulled: null,
          tag_status: 'active',
          images: [{ architecture: 'arm64', os: 'linux', variant: 'v8', digest: img.digest, size: img.size, status: 'active', last_pulled: null }],
        });
        // Private: alice and anonymous are told it does not exist, exactly as for a missing one.
        await rejectsWith(d.pages.repository(alice, 'bob/app'), 'NOT_FOUND');
        await rejectsWith(d.pages.repository(anonymous, 'bob/app'), 'NOT_FOUND');
        await rejectsWith(d.pages.repository(anonymous, 'bob/nothing'), 'NOT_FOUND');
      });

      it('records, once, the details of manifests pushed before the Hub knew them', async () => {
        const img = await pushImage('alice/legacy', 'v1', { architecture: 's390x' });
        const child = await pushImage('alice/legacy', null, { architecture: 'ppc64le' });
        await pushIndex('alice/legacy', 'multi', [{ digest: child.digest, bytes: child.bytes, platform: { os: 'linux', architecture: 'ppc64le' } }]);
        // As a database from before migration 0012 would have it: no details at all.
        await e.store.db.deleteFrom('manifest_info').execute();
        await e.store.db.deleteFrom('manifest_platforms').execute();
        const before = await d.pages.tags(alice, 'alice/legacy', { sort: 'name' });
        assert.deepEqual(before.results.map((t) => [t.name, t.full_size, t.images.length]), [['multi', null, 0], ['v1', null, 0]]);
        const n = await d.images.backfill(async (repo, digest) => (await registry.getManifest(repo, digest)).body);
        assert.ok(n >= 3, `${n} recorded`);
        const after = await d.pages.tags(alice, 'alice/legacy', { sort: 'name' });
        assert.deepEqual(after.results.map((t) => [t.name, t.full_size, t.images.map((i) => i.architecture)]), [['multi', child.size, ['ppc64le']], ['v1', img.size, ['s390x']]]);
        assert.equal(await d.images.backfill(async (repo, digest) => (await registry.getManifest(repo, digest)).body), 0, 'nothing left to do');
      });

      it('filters tags by a part of their name, wildcard characters taken literally', async () => {
        for (const tag of ['v1_0', 'v1x0', 'V1-beta', 'main']) await pushImage('alice/filtered', tag);
        const names = async (filter: string) => (await d.pages.tags(alice, 'alice/filtered', { sort: 'name', filter })).results.map((t) => t.name);
        assert.deepEqual(await names('1_0'), ['v1_0'], '_ is no wildcard');
        assert.deepEqual(await names('%'), [], '% is no wildcard');
        assert.deepEqual(await names('\\'), []);
        assert.deepEqual(await names('main'), ['main']);
        assert.equal((await d.pages.tags(alice, 'alice/filtered', { filter: 'x' })).count, 1);
      });

      it('gives an index its children as images, sized and with platforms', async () => {
        const tags = await d.pages.tags(alice, 'alice/multi', { sort: 'name' });
        const latest = tags.results.find((t) => t.name === 'latest')!;
        assert.equal(latest.media_type, OCI_INDEX);
        assert.deepEqual(latest.images.map((i) => [i.os, i.architecture, i.variant]), [['linux', 'amd64', null], ['linux', 'arm', 'v7']]);
        assert.equal(latest.full_size, latest.images[0]!.size + latest.images[1]!.size);
        assert.ok(latest.images.every((i) => i.size > 0));
      });

      it('takes the description from an annotation unless one was set by hand; admins only set it', async () => {
        await pushImage('alice/annotated', 'v1', { annotations: { 'org.opencontainers.image.description': 'first' } });
        assert.equal((await d.pages.repository(alice, 'alice/annotated')).description, 'first');
        await d.pages.setDescription(alice, 'alice/annotated', 'by hand', CLI);
        await pushImage('alice/annotated', 'v2', { annotations: { 'org.opencontainers.image.description': 'second' } });
        assert.equal((await d.pages.repository(alice, 'alice/annotated')).description, 'by hand');
        await hub.repositories.setVisibility('alice/annotated', 'public', CLI);
        await rejectsWith(d.pages.setDescription(bob, 'alice/annotated', 'mine now', CLI), 'FORBIDDEN');
        await rejectsWith(d.pages.setDescription(alice, 'alice/annotated', 'x'.repeat(101), CLI), 'INVALID');
        await rejectsWith(d.pages.setReadme(alice, 'alice/annotated', 'x'.repeat(1024 * 1024 + 1), CLI), 'INVALID');
        await d.pages.setDescription(alice, 'alice/annotated', '', CLI);
        await pushImage('alice/annotated', 'v3', { annotations: { 'org.opencontainers.image.description': 'third' } });
        assert.equal((await d.pages.repository(alice, 'alice/annotated')).description, 'third');
      });

      it('takes a README from an artifact attached with the referrers API, and renders it safely', async () => {
        const md = await blob('alice/withreadme', Buffer.from('# Hello\n\n<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)'));
        await pushReadmeArtifact('alice/withreadme', { mediaType: 'text/markdown', ...md });
        const page = await d.pages.repository(alice, 'alice/withreadme');
        assert.match(page.full_description, /^# Hello/);
        assert.match(page.full_description_html, /<h1>Hello<\/h1>/);
        assert.doesNotMatch(page.full_description_html, /<script|javascript:/i);
        assert.match(page.full_description_html, /<a href="https:\/\/example.com" rel="nofollow noopener noreferrer">ok<\/a>/);
      });

      it('reads a README only from a blob of the same repository: an external layer naming another repository’s blob publishes nothing', async () => {
        // Another owner's blob, known by its digest (a digest can leak: CI logs, signatures).
        const secret = await blob('alice/secret-notes', Buffer.from('# classified: the launch codes'));
        // A non-distributable layer with URLs is not required to be in the repository.
        await pushReadmeArtifact('bob/leak', { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar', urls: ['https://example.com/notes'], ...secret });
        const page = await d.pages.repository(bob, 'bob/leak');
        assert.doesNotMatch(page.full_description, /classified/);
        assert.equal(page.full_description, '');
      });

      it('lets administrators mark repositories official; library/ is official', async () => {
        assert.equal((await d.pages.repository(anonymous, 'library/nginx')).is_official, true);
        await rejectsWith(d.pages.setOfficial(alice, 'alice/nginx-proxy', true, CLI), 'FORBIDDEN');
        await d.pages.setOfficial(admin, 'alice/nginx-proxy', true, CLI);
        assert.equal((await d.pages.repository(anonymous, 'alice/nginx-proxy')).is_official, true);
        assert.deepEqual(names(await d.search.search(anonymous, { query: 'nginx', official: true })), ['library/nginx', 'alice/nginx-proxy']);
      });
    });

    describe('stars, follows, activity and the feed', () => {
      it('counts a star once, unstars, and refuses what the user may not read', async () => {
        assert.equal(await d.stars.setStar(bob, 'alice/nginx-proxy', true, CLI), true);
        assert.equal(await d.stars.setStar(bob, 'alice/nginx-proxy', true, CLI), false);
        assert.equal((await d.pages.repository(bob, 'alice/nginx-proxy')).star_count, 1);
        assert.equal((await d.pages.repository(bob, 'alice/nginx-proxy')).has_starred, true);
        assert.deepEqual((await d.stars.starredBy(anonymous, 'bob')).map((s) => s.name), ['alice/nginx-proxy']);
        assert.equal(await d.stars.setStar(bob, 'alice/nginx-proxy', false, CLI), true);
        assert.equal((await d.pages.repository(bob, 'alice/nginx-proxy')).star_count, 0);
        await rejectsWith(d.stars.setStar(alice, 'bob/secret-nginx', true, CLI), 'NOT_FOUND');
        await rejectsWith(d.stars.setStar(anonymous, 'alice/nginx-proxy', true, CLI), 'INVALID');
      });

      it('records pushes, deletes, visibility and README changes per repository and namespace, newest first', async () => {
        const img = await pushImage('alice/active', 'v1');
        await d.events.emit([pushEvent('alice/active', 'v1', img.digest, 'alice')]);
        await hub.repositories.setVisibility('alice/active', 'public', { name: 'alice', id: 1 });
        await d.pages.setReadme(alice, 'alice/active', 'hello', { name: 'alice' });
        await d.stars.setStar(bob, 'alice/active', true, { name: 'bob' });
        const r = await d.activity.read(anonymous, { repository: 'alice/active' });
        assert.deepEqual(
          r.entries.map((x) => [x.action, x.actor, x.tag, x.digest]),
          [
            ['star', 'bob', null, null],
            ['readme', 'alice', null, null],
            ['visibility', 'alice', null, null],
            ['push', 'alice', 'v1', img.digest],
          ],
        );
        assert.ok(r.entries.every((x) => x.at > 0));
        const page = await d.activity.read(anonymous, { repository: 'alice/active' }, { limit: 2 });
        assert.equal(page.entries.length, 2);
        const rest = await d.activity.read(anonymous, { repository: 'alice/active' }, { limit: 2, before: page.next! });
        assert.deepEqual(rest.entries.map((x) => x.action), ['visibility', 'push']);
        assert.ok((await d.activity.read(anonymous, { namespace: 'alice' })).entries.some((x) => x.repository === 'alice/active'));
        // The same manifest under a second tag: a 'tag', not a push; a new manifest under that tag: a push.
        await new Promise((r) => setTimeout(r, 5));
        const body = (await registry.getManifest('alice/active', img.digest)).body;
        await registry.putManifest('alice/active', 'stable', OCI_MANIFEST, body);
        await d.events.emit([pushEvent('alice/active', 'stable', img.digest, 'alice')]);
        const other = await pushImage('alice/active', 'stable', { layer: 'another layer' });
        await d.events.emit([pushEvent('alice/active', 'stable', other.digest, 'alice')]);
        const latest = await d.activity.read(anonymous, { repository: 'alice/active' }, { limit: 2 });
        assert.deepEqual(latest.entries.map((x) => [x.action, x.tag]), [['push', 'stable'], ['tag', 'stable']]);
      });

      it('a repository deleted and made again under its name shows only its own history', async () => {
        const old = await pushImage('alice/reuse', 'internal-codename-x');
        await d.events.emit([pushEvent('alice/reuse', 'internal-codename-x', old.digest, 'alice')]);
        await registry.deleteRepository('alice/reuse');
        await new Promise((r) => setTimeout(r, 5));
        const img = await pushImage('alice/reuse', 'v1');
        await d.events.emit([pushEvent('alice/reuse', 'v1', img.digest, 'alice')]);
        await hub.repositories.setVisibility('alice/reuse', 'public', CLI);
        for (const [who, scope] of [
          [anonymous, { repository: 'alice/reuse' }],
          [alice, { repository: 'alice/reuse' }],
          [anonymous, { namespace: 'alice' }],
        ] as const) {
          const seen = (await d.activity.read(who, scope)).entries.filter((x) => x.repository === 'alice/reuse').map((x) => `${x.action} ${x.tag}`);
          assert.ok(seen.includes('push v1'), seen.join(', '));
          assert.ok(!seen.some((x) => x.includes('internal-codename-x')), `the deleted repository's history: ${seen.join(', ')}`);
        }
      });

      it('feeds a follower what happens in followed accounts and repositories they may read', async () => {
        const carol = await user('carol');
        await d.stars.setFollow(carol, { account: 'bob' }, true);
        await d.stars.setFollow(carol, { repository: 'alice/active' }, true);
        await rejectsWith(d.stars.setFollow(carol, { repository: 'bob/secret-nginx' }, true), 'NOT_FOUND');
        const pub = await pushImage('bob/feedpublic', 'v1');
        await hub.repositories.setVisibility('bob/feedpublic', 'public', CLI);
        const priv = await pushImage('bob/feedprivate', 'v1');
        await d.events.emit([pushEvent('bob/feedpublic', 'v1', pub.digest, 'bob'), pushEvent('bob/feedprivate', 'v1', priv.digest, 'bob')]);
        const feed = await d.activity.read(carol, 'feed');
        const seen = feed.entries.map((x) => `${x.action} ${x.repository}`);
        assert.ok(seen.includes('push bob/feedpublic'), seen.join(', '));
        assert.ok(!seen.some((s) => s.includes('feedprivate')), 'a private repository stays out of the feed');
        assert.ok(seen.includes('star alice/active'), 'bob starred alice/active: followed account and repository');
        assert.ok(!seen.some((s) => s.includes('nginx-proxy')), 'not followed');
        assert.deepEqual((await d.stars.following(carol)).map((f) => `${f.kind}:${f.target}`), ['account:bob', 'repository:alice/active']);
        const bobsFeed = await d.activity.read(bob, 'feed');
        assert.deepEqual(bobsFeed.entries, []);
      });
    });

    describe('repository webhooks', () => {
      it('are managed by repository admins and receive a Hub-style payload on a push', async () => {
        const received: { body: Record<string, unknown>; type: string | undefined }[] = [];
        let fail = 1;
        const server = createServer((req: IncomingMessage, res) => {
          const parts: Buffer[] = [];
          req.on('data', (c: Buffer) => parts.push(c));
          req.on('end', () => {
            // The first attempt fails: delivery retries it, in order.
            if (fail-- > 0) {
              res.writeHead(500).end();
              return;
            }
            received.push({ body: JSON.parse(Buffer.concat(parts).toString()) as Record<string, unknown>, type: req.headers['content-type'] });
            res.writeHead(200).end();
          });
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
        const delivery = d.webhookDelivery('test-process');
        try {
          const img = await pushImage('alice/hooked', 'v1');
          await rejectsWith(d.webhooks.create(bob, 'alice/hooked', { name: 'ci', url }, CLI), 'NOT_FOUND');
          await hub.repositories.setVisibility('alice/hooked', 'public', CLI);
          await rejectsWith(d.webhooks.create(bob, 'alice/hooked', { name: 'ci', url }, CLI), 'FORBIDDEN');
          await rejectsWith(d.webhooks.create(alice, 'alice/hooked', { name: 'ci', url: 'file:///etc/passwd' }, CLI), 'INVALID');
          const hook = await d.webhooks.create(alice, 'alice/hooked', { name: 'ci', url }, { name: 'alice' });
          await rejectsWith(d.webhooks.create(alice, 'alice/hooked', { name: 'ci', url }, CLI), 'NAME_TAKEN');
          assert.deepEqual((await d.webhooks.list(alice, 'alice/hooked')).map((h) => [h.name, h.url, h.events, h.active]), [['ci', url, ['push'], true]]);
          await d.events.emit([pushEvent('alice/hooked', 'v1', img.digest, 'alice'), pushEvent('alice/hooked', 'v2', img.digest, 'alice')]);
          delivery.start();
          for (let t = 0; t < 500 && received.length < 2; t++) await new Promise((r) => setTimeout(r, 20));
          assert.equal(received.length, 2);
          assert.equal(received[0]!.type, 'application/json');
          const first = received[0]!.body as { repository: Record<string, unknown>; push_data: Record<string, unknown>; callback_url: string };
          assert.deepEqual([first.repository.repo_name, first.repository.namespace, first.repository.name], ['alice/hooked', 'alice', 'hooked']);
          assert.deepEqual([first.push_data.tag, first.push_data.pusher], ['v1', 'alice']);
          assert.equal(typeof first.push_data.pushed_at, 'number');
          assert.match(first.callback_url, /^https:\/\/registry\.example\//);
          assert.equal((received[1]!.body as { push_data: { tag: string } }).push_data.tag, 'v2');
          // The loop removes a delivered event after its 200: wait for that, so what follows counts only new events.
          const queued = async () => (await e.store.db.selectFrom('notification_queue').select('id').where('endpoint', '=', `webhook:${hook.id}`).execute()).length;
          for (let t = 0; t < 500 && (await queued()) > 0; t++) await new Promise((r) => setTimeout(r, 20));
          await d.webhooks.update(alice, 'alice/hooked', hook.id, { active: false }, CLI);
          await d.events.emit([pushEvent('alice/hooked', 'v3', img.digest, 'alice')]);
          assert.equal(await queued(), 0);
          await d.webhooks.delete(alice, 'alice/hooked', hook.id, CLI);
          assert.deepEqual(await d.webhooks.list(alice, 'alice/hooked'), []);
        } finally {
          await delivery.close();
          await new Promise((r) => server.close(r));
        }
      });
    });
  });
}
