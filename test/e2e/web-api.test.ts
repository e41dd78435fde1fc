/**
 * What the JSON API grew for the web UI (issue 17), over HTTP against an
 * in-process Berth with accounts: a manifest described (config summary,
 * layers, history, an index's platforms, referrers), a tag deleted, tags
 * filtered by name, and the session cookie (with its CSRF token) on the
 * older administrators' routes (storage, gc). A private repository's
 * manifests answer as a missing repository's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { basic, pushSmallImage } from '../support/accounts.js';
import { startBerth, type TestBerth } from '../support/berth.js';

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const ALICE = { user: 'alice', password: 'alice-password-1' };
const BOB = { user: 'bob', password: 'bob-password-1' };

const as =
  (who: { user: string; password: string }): typeof fetch =>
  (u, init = {}) =>
    fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basic(who.user, who.password) } });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- checked by the assertions
async function json(res: Response): Promise<{ status: number; body: any }> {
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function putBlob(f: typeof fetch, base: string, repo: string, data: Buffer): Promise<string> {
  const start = await f(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', sha256(data));
  const put = await f(location.toString(), { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: data });
  assert.equal(put.status, 201, await put.text());
  return sha256(data);
}

async function putManifest(f: typeof fetch, base: string, repo: string, ref: string, manifest: unknown, type: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const r = await f(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { 'Content-Type': type }, body });
  assert.equal(r.status, 201, await r.text());
  return sha256(body);
}

describe('the API additions of the web UI', () => {
  let b: TestBerth;
  let image: { manifest: string; layer: string; config: string };
  let richConfig: string;
  let indexDigest: string;
  let signature: string;

  before(async () => {
    b = await startBerth({ REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open', REGISTRY_AUTH_ACCOUNTS_DEFAULTVISIBILITY: 'public' });
    for (const u of [ALICE, BOB]) {
      const r = await fetch(`${b.url}/berth/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: u.user, password: u.password }) });
      assert.equal(r.status, 201, await r.text());
    }
    const alice = as(ALICE);
    image = await pushSmallImage(alice, b.url, 'alice/app', 'v1');
    // An image whose config has what the tag page shows: command, environment, labels, history.
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'arm64',
        variant: 'v8',
        os: 'linux',
        created: '2024-05-01T12:00:00Z',
        config: { Entrypoint: ['/bin/app'], Cmd: ['--serve'], Env: ['PATH=/usr/bin'], WorkingDir: '/srv', User: 'app', ExposedPorts: { '8080/tcp': {} }, Labels: { 'org.opencontainers.image.source': 'https://example.org/app' } },
        rootfs: { type: 'layers', diff_ids: [] },
        history: [
          { created: '2024-05-01T12:00:00Z', created_by: 'ADD rootfs.tar /' },
          { created: '2024-05-01T12:00:01Z', created_by: 'ENV PATH=/usr/bin', empty_layer: true },
          { created: '2024-05-01T12:00:02Z', created_by: 'COPY app /bin/app' },
        ],
      }),
    );
    richConfig = await putBlob(alice, b.url, 'alice/app', config);
    const l1 = Buffer.from('layer one');
    const l2 = Buffer.from('layer two, longer');
    await putBlob(alice, b.url, 'alice/app', l1);
    await putBlob(alice, b.url, 'alice/app', l2);
    const rich = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: richConfig, size: config.byteLength },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l1), size: l1.byteLength },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l2), size: l2.byteLength },
      ],
    };
    const richDigest = await putManifest(alice, b.url, 'alice/app', 'rich', rich, rich.mediaType);
    const richSize = Buffer.byteLength(JSON.stringify(rich));
    indexDigest = await putManifest(
      alice,
      b.url,
      'alice/app',
      'multi',
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: rich.mediaType, digest: richDigest, size: richSize, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
      },
      'application/vnd.oci.image.index.v1+json',
    );
    // A signature-like artifact whose subject is v1.
    const empty = await putBlob(alice, b.url, 'alice/app', Buffer.from('{}'));
    const sig = Buffer.from('signature');
    await putBlob(alice, b.url, 'alice/app', sig);
    const v1Size = Number((await alice(`${b.url}/v2/alice/app/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get('content-length'));
    const artifact = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: sha256(sig), size: sig.byteLength }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.manifest, size: v1Size },
    };
    const body = Buffer.from(JSON.stringify(artifact));
    signature = await putManifest(alice, b.url, 'alice/app', sha256(body), artifact, artifact.mediaType);
    await pushSmallImage(alice, b.url, 'alice/app', 'v1_0');
    await pushSmallImage(alice, b.url, 'alice/app', 'v1x0');
  });

  after(async () => {
    await b?.close();
  });

  it('describes an image: config summary, layers with their history lines, referrers', async () => {
    const { status, body } = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/rich`));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.kind, 'image');
    assert.equal(body.layers.length, 2);
    assert.equal(body.config.digest, richConfig);
    assert.equal(body.config.os, 'linux');
    assert.equal(body.config.architecture, 'arm64');
    assert.equal(body.config.variant, 'v8');
    assert.deepEqual(body.config.entrypoint, ['/bin/app']);
    assert.deepEqual(body.config.cmd, ['--serve']);
    assert.deepEqual(body.config.env, ['PATH=/usr/bin']);
    assert.deepEqual(body.config.exposedPorts, ['8080/tcp']);
    assert.equal(body.config.workingDir, '/srv');
    assert.equal(body.config.user, 'app');
    assert.deepEqual(body.config.labels, { 'org.opencontainers.image.source': 'https://example.org/app' });
    assert.deepEqual(
      body.history.map((h: { created_by: string; empty_layer: boolean }) => [h.created_by, h.empty_layer]),
      [
        ['ADD rootfs.tar /', false],
        ['ENV PATH=/usr/bin', true],
        ['COPY app /bin/app', false],
      ],
    );
    assert.deepEqual(body.referrers, []);

    const v1 = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/v1`));
    assert.equal(v1.body.digest, image.manifest);
    assert.deepEqual(
      v1.body.referrers.map((r: { digest: string; artifactType: string }) => [r.digest, r.artifactType]),
      [[signature, 'application/vnd.example.signature']],
    );
    // By digest too, and the artifact itself is described as one.
    const byDigest = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/${image.manifest}`));
    assert.equal(byDigest.body.digest, image.manifest);
    const sig = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/${signature}`));
    assert.equal(sig.body.kind, 'artifact');
    assert.equal(sig.body.artifactType, 'application/vnd.example.signature');
    assert.equal(sig.body.config, null);
  });

  it("describes an index by its platforms", async () => {
    const { status, body } = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/multi`));
    assert.equal(status, 200);
    assert.equal(body.kind, 'index');
    assert.equal(body.digest, indexDigest);
    assert.equal(body.config, null);
    assert.deepEqual(body.manifests.map((m: { platform: unknown }) => m.platform), [{ os: 'linux', architecture: 'arm64', variant: 'v8' }]);
  });

  it('answers 404 for a missing manifest and 400 for a reference that is neither a tag nor a digest', async () => {
    const missing = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/nope`));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errors[0].code, 'NOT_FOUND');
    const bad = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/${encodeURIComponent('bad tag!')}`));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'INVALID');
    const noRepo = await json(await fetch(`${b.url}/berth/v1/repositories/alice/none/-/manifests/v1`));
    assert.equal(noRepo.status, 404);
    assert.equal(noRepo.body.errors[0].code, 'NAME_UNKNOWN');
  });

  it('filters tags by a part of their name, with % and _ taken literally', async () => {
    const names = async (filter: string) =>
      ((await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/tags?sort=name&filter=${encodeURIComponent(filter)}`))).body.items as { name: string }[]).map((t) => t.name);
    assert.deepEqual(await names('v1'), ['v1', 'v1_0', 'v1x0']);
    // As LIKE wildcards, `1_0` would match v1x0 and `%` every tag.
    assert.deepEqual(await names('1_0'), ['v1_0']);
    assert.deepEqual(await names('%'), []);
    assert.deepEqual(await names('ric'), ['rich']);
    assert.deepEqual(await names('zzz'), []);
    const counted = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/tags?filter=v1`));
    assert.equal(counted.body.count, 3);
    const empty = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/tags?filter=`));
    assert.equal(empty.status, 400);
  });

  it('deletes a tag for whoever may delete in the repository; others are refused', async () => {
    const del = (who: typeof fetch, tag: string) => who(`${b.url}/berth/v1/repositories/alice/app/-/tags/${encodeURIComponent(tag)}`, { method: 'DELETE' });
    const anonymous = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/tags/v1_0`, { method: 'DELETE' }));
    assert.equal(anonymous.status, 401);
    const bob = await json(await del(as(BOB), 'v1_0'));
    assert.equal(bob.status, 403);
    const bad = await json(await del(as(ALICE), 'v1_0%'));
    assert.equal(bad.status, 400, 'a tag cannot hold %');
    const r = await del(as(ALICE), 'rich');
    assert.equal(r.status, 204);
    const again = await json(await del(as(ALICE), 'rich'));
    assert.equal(again.status, 404);
    const tags = (await json(await as(ALICE)(`${b.url}/v2/alice/app/tags/list`))).body.tags as string[];
    assert.ok(!tags.includes('rich'), tags.join());
    // Recorded as the registry's own delete is: in the repository's activity, by alice.
    const activity = (await json(await as(ALICE)(`${b.url}/berth/v1/repositories/alice/app/-/activity`))).body.items as { action: string; tag: string | null; actor: string | null }[];
    assert.ok(activity.some((e) => e.action === 'delete' && e.tag === 'rich' && e.actor === 'alice'), JSON.stringify(activity.slice(0, 3)));
    // The manifest stays while the index refers to it.
    const index = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/multi`));
    const child = await json(await fetch(`${b.url}/berth/v1/repositories/alice/app/-/manifests/${index.body.manifests[0].digest}`));
    assert.equal(child.status, 200);
  });

  it("a private repository's manifests answer as a missing repository's", async () => {
    const patch = await as(ALICE)(`${b.url}/berth/v1/repositories/alice/app`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ visibility: 'private' }) });
    assert.equal(patch.status, 200);
    await patch.arrayBuffer();
    for (const who of [fetch, as(BOB)]) {
      const r = await json(await who(`${b.url}/berth/v1/repositories/alice/app/-/manifests/v1`));
      assert.equal(r.status, 404);
      assert.equal(r.body.errors[0].code, 'NAME_UNKNOWN');
      const d = await json(await who(`${b.url}/berth/v1/repositories/alice/app/-/tags/v1`, { method: 'DELETE' }));
      assert.ok(d.status === 404 || d.status === 401, String(d.status));
    }
    const owner = await json(await as(ALICE)(`${b.url}/berth/v1/repositories/alice/app/-/manifests/v1`));
    assert.equal(owner.status, 200);
  });

  it('tag deletes are refused with 405 when the registry has deletes off', async () => {
    const off = await startBerth({ REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open', REGISTRY_STORAGE_DELETE_ENABLED: 'false' });
    try {
      const r = await fetch(`${off.url}/berth/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: ALICE.user, password: ALICE.password }) });
      assert.equal(r.status, 201);
      await pushSmallImage(as(ALICE), off.url, 'alice/app', 'v1');
      const d = await json(await as(ALICE)(`${off.url}/berth/v1/repositories/alice/app/-/tags/v1`, { method: 'DELETE' }));
      assert.equal(d.status, 405);
      assert.equal(d.body.errors[0].code, 'UNSUPPORTED');
    } finally {
      await off.close();
    }
  });

  it('the session cookie reaches storage and gc for administrators, changes only with the CSRF token', async () => {
    // alice is no administrator: her session is refused as her password would be.
    const login = await fetch(`${b.url}/berth/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: ALICE.user, password: ALICE.password }) });
    assert.equal(login.status, 201);
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const storage = await json(await fetch(`${b.url}/berth/v1/storage`, { headers: { cookie } }));
    assert.equal(storage.status, 403);
    const gc = await json(await fetch(`${b.url}/berth/v1/gc?dryrun=true`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } }));
    assert.equal(gc.status, 403);
    const noCsrf = await json(await fetch(`${b.url}/berth/v1/gc?dryrun=true`, { method: 'POST', headers: { cookie } }));
    assert.equal(noCsrf.status, 403);
    assert.match(noCsrf.body.errors[0].message, /X-CSRF-Token/);
    // Without a cookie: anonymous, as before.
    const anonymous = await json(await fetch(`${b.url}/berth/v1/storage`));
    assert.equal(anonymous.status, 401);
  });
});
