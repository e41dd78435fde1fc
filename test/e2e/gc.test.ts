/**
 * Deletes and online garbage collection: no read-only mode, no restart,
 * and pushing the same image right after a collection just works.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_ENTRY } from '../support/berth.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { buildImage as buildLayout, MEDIA_TYPES, pushImage as skopeoPush } from '../support/images.js';
import { CommandError, ensureTool, freePort, makeImmutable, run, whichTool } from '../support/tools.js';
import {
  EMPTY_BYTES,
  MT,
  expectError,
  getBlob,
  getManifest,
  pushArtifact,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  sha256,
  uniqueRepo,
  useBerth,
  type Descriptor,
} from '../protocol/helpers.js';

interface GcSummary {
  blobsMarked: number;
  blobsEligible: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  manifestsDeleted: number;
  linksPruned: number;
  orphanFilesDeleted: number;
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  plan?: { manifests: { repository: string; digest: string; size: number }[]; blobs: { digest: string; size: number }[]; orphans: { digest: string; size: number }[] };
}

interface GcRun {
  id: number;
  state: 'queued' | 'running' | 'finished' | 'failed';
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  summary: GcSummary | null;
  error: string | null;
}

/** Runs a collection and waits for its summary (POST ?wait=true answers 200 once the run finished). */
async function collect(base: string, query = ''): Promise<GcSummary> {
  const r = await fetch(`${base}/berth/v1/gc${query ? `${query}&` : '?'}wait=true`, { method: 'POST' });
  assert.equal(r.status, 200, await r.clone().text());
  const run = (await r.json()) as GcRun;
  assert.equal(run.state, 'finished');
  assert.match(r.headers.get('location') ?? '', new RegExp(`/berth/v1/gc/runs/${run.id}$`));
  return run.summary!;
}

function blobFile(root: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(root, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

const GC_ENV = { REGISTRY_BERTH_GC_GRACE: '0s', REGISTRY_BERTH_GC_INTERVAL: '1h' };

describe('delete and collect with skopeo, then push again without a restart', () => {
  const b = useBerth(GC_ENV);

  it('runs the classic flow end to end', async () => {
    const skopeo = await ensureTool('skopeo');
    const work = await mkdtemp(path.join(tmpdir(), 'berth-gc-'));
    try {
      const image = await buildLayout(path.join(work, 'layout'), { tag: 'v1', seed: 'gc-classic', layers: 3 });
      const host = b.berth.host;
      await skopeoPush(image, `${host}/classic/app:v1`, { format: 'v2s2' });
      const head = await fetch(`${b.url}/v2/classic/app/manifests/v1`, { method: 'HEAD', headers: { Accept: MEDIA_TYPES.dockerManifest } });
      const digest = head.headers.get('docker-content-digest')!;
      assert.equal((await fetch(`${b.url}/v2/classic/app/manifests/${digest}`, { method: 'DELETE' })).status, 202);

      for (const blob of image.blobs) assert.ok(existsSync(blobFile(b.root, blob)), 'blob on disk before collection');
      const summary = await collect(b.url);
      assert.ok(summary.blobsDeleted >= image.blobs.length, `blobs deleted: ${JSON.stringify(summary)}`);
      for (const blob of image.blobs) assert.ok(!existsSync(blobFile(b.root, blob)), `blob ${blob} removed from storage`);
      assert.ok(!existsSync(blobFile(b.root, digest)), 'manifest bytes removed from storage');

      // The complaint every registry:2 operator knows: push again at once, no restart.
      await skopeoPush(image, `${host}/classic/app:v1`, { format: 'v2s2' });
      const dir = path.join(work, 'pulled');
      await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/classic/app:v1`, `dir:${dir}`]);
      for (const blob of image.blobs) assert.ok(existsSync(path.join(dir, blob.slice('sha256:'.length))), `blob ${blob} pulled`);
      for (const blob of image.blobs) assert.ok(existsSync(blobFile(b.root, blob)), 'blob stored again');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('repository delete', () => {
  const b = useBerth(GC_ENV);

  it('removes the repository, its tags and its unshared blobs; shared blobs stay served elsewhere', async () => {
    const shared = await pushBlob(b.url, 'keep/other', randomBytes(5000), MT.ociLayer);
    await pushBlob(b.url, 'doomed/repo', randomBytes(1), MT.ociLayer); // a stray blob, never referenced
    // The same layer in both repositories, plus one layer only the doomed repo has.
    await fetch(`${b.url}/v2/doomed/repo/blobs/uploads/?mount=${shared.digest}&from=keep/other`, { method: 'POST' });
    const own = await pushBlob(b.url, 'doomed/repo', randomBytes(7000), MT.ociLayer);
    const config = await pushBlob(b.url, 'doomed/repo', Buffer.from('{"doomed":true}'), MT.ociConfig);
    const doomed = await pushManifest(b.url, 'doomed/repo', 'latest', { schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [shared, own] }, MT.ociManifest);
    const keepConfig = await pushBlob(b.url, 'keep/other', Buffer.from('{"keep":true}'), MT.ociConfig);
    await pushManifest(b.url, 'keep/other', 'latest', { schemaVersion: 2, mediaType: MT.ociManifest, config: keepConfig, layers: [shared] }, MT.ociManifest);

    // An upload in progress in each repository.
    const startUpload = async (repo: string) => (await fetch(`${b.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    const doomedUpload = await startUpload('doomed/repo');
    const keptUpload = await startUpload('keep/other');

    const before = (await (await fetch(`${b.url}/berth/v1/repositories/doomed/repo`)).json()) as { sizeBytes: number; tags: number };
    assert.equal(before.tags, 1);
    assert.ok(before.sizeBytes >= shared.size + own.size + config.size + doomed.body.byteLength);

    const del = await fetch(`${b.url}/berth/v1/repositories/doomed/repo`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    assert.deepEqual(await del.json(), { repository: 'doomed/repo', manifestsDeleted: 1, tagsDeleted: 1 });
    const catalog = (await (await fetch(`${b.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['keep/other']);
    assert.equal((await fetch(`${b.url}/v2/doomed/repo/tags/list`)).status, 404);
    assert.equal((await getManifest(b.url, 'doomed/repo', 'latest')).status, 404);
    assert.equal((await fetch(`${b.url}/berth/v1/repositories/doomed/repo`, { method: 'DELETE' })).status, 404);
    assert.equal((await fetch(doomedUpload)).status, 404, 'the deleted repository’s upload is cancelled');
    assert.equal((await fetch(keptUpload)).status, 204, 'another repository’s upload stays');

    await collect(b.url);
    assert.ok(!existsSync(blobFile(b.root, own.digest)), 'unshared layer collected');
    assert.ok(!existsSync(blobFile(b.root, config.digest)), 'unshared config collected');
    assert.ok(existsSync(blobFile(b.root, shared.digest)), 'shared layer kept');
    const served = await getBlob(b.url, 'keep/other', shared.digest);
    assert.equal(served.status, 200);
    assert.equal(sha256(Buffer.from(await served.arrayBuffer())), shared.digest);
  });

  it('is refused when deletes are disabled', async () => {
    // A second server with deletes off shares nothing with the first.
    const { startBerth } = await import('../support/berth.js');
    const off = await startBerth({ REGISTRY_STORAGE_DELETE_ENABLED: 'false' });
    try {
      await pushImage(off.url, 'cannot/delete', 'v1');
      const r = await fetch(`${off.url}/berth/v1/repositories/cannot/delete`, { method: 'DELETE' });
      assert.equal(r.status, 405);
      assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
      assert.equal((await fetch(`${off.url}/berth/v1/gc`, { method: 'POST' })).status, 405);
    } finally {
      await off.close();
    }
  });
});

describe('collection policies', () => {
  const b = useBerth(GC_ENV);

  it('a dry run deletes nothing and reports what would go', async () => {
    const repo = uniqueRepo('dry');
    const img = await pushImage(b.url, repo, 'v1', { layers: 2 });
    await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    const summary = await collect(b.url, '?dryrun=true');
    assert.equal(summary.dryRun, true);
    assert.ok(summary.blobsEligible >= 4, `eligible: config, 2 layers, manifest bytes: ${JSON.stringify(summary)}`);
    assert.equal(summary.blobsDeleted, 0);
    for (const l of img.layers) assert.ok(existsSync(blobFile(b.root, l.digest)), 'dry run kept the layer');
    await collect(b.url);
    for (const l of img.layers) assert.ok(!existsSync(blobFile(b.root, l.digest)), 'a real run removed it');
  });

  it('untagged manifests are kept unless delete-untagged is asked for', async () => {
    const repo = uniqueRepo('untagged');
    const old = await pushImage(b.url, repo, 'latest');
    const current = await pushImage(b.url, repo, 'latest'); // `old` is now untagged
    await collect(b.url);
    assert.equal((await getManifest(b.url, repo, old.digest)).status, 200, 'kept by default');

    const summary = await collect(b.url, '?deleteuntagged=true');
    assert.ok(summary.manifestsDeleted >= 1);
    assert.equal((await getManifest(b.url, repo, old.digest)).status, 404, 'untagged manifest collected');
    assert.ok(!existsSync(blobFile(b.root, old.layers[0]!.digest)), 'its layer collected');
    assert.equal((await getManifest(b.url, repo, 'latest')).status, 200, 'the tagged one stays');
    assert.ok(existsSync(blobFile(b.root, current.layers[0]!.digest)));
  });

  it('never collects children of a kept index, nor subjects of referrers and their referrers', async () => {
    const repo = uniqueRepo('protected');
    const amd = await pushImage(b.url, repo);
    const arm = await pushImage(b.url, repo);
    await pushIndex(b.url, repo, 'multi', [amd.descriptor, arm.descriptor]);
    const signed = await pushImage(b.url, repo); // untagged, but signed
    const sig = await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: signed.descriptor });
    const loose = await pushImage(b.url, repo); // untagged and unreferenced: goes

    await collect(b.url, '?deleteuntagged=true');
    for (const kept of [amd, arm, signed]) assert.equal((await getManifest(b.url, repo, kept.digest)).status, 200);
    assert.equal((await getManifest(b.url, repo, sig.digest)).status, 200, 'a referrer of a present subject stays');
    assert.equal((await getManifest(b.url, repo, loose.digest)).status, 404);

    // Untagging the index frees its children in the same collection.
    await fetch(`${b.url}/v2/${repo}/manifests/multi`, { method: 'DELETE' });
    await collect(b.url, '?deleteuntagged=true');
    for (const gone of [amd, arm]) assert.equal((await getManifest(b.url, repo, gone.digest)).status, 404);
    assert.equal((await getManifest(b.url, repo, signed.digest)).status, 200, 'still signed');
  });
});

describe('storage accounting', () => {
  const b = useBerth(GC_ENV);

  it('counts shared blobs once per repository and once in the total', async () => {
    const layer = randomBytes(10_000);
    const cfg = Buffer.from('{"a":1}');
    const descs: Descriptor[] = [];
    for (const repo of ['acct/a', 'acct/b']) {
      const l = await pushBlob(b.url, repo, layer, MT.ociLayer);
      const c = await pushBlob(b.url, repo, cfg, MT.ociConfig);
      const m = await pushManifest(b.url, repo, 'v1', { schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: [l, l] }, MT.ociManifest);
      descs.push(m.descriptor);
    }
    const usage = (await (await fetch(`${b.url}/berth/v1/storage`)).json()) as { totalBytes: number; repositories: { name: string; bytes: number }[]; reclaimableBytes: number };
    const perRepo = layer.byteLength + cfg.byteLength + descs[0]!.size;
    assert.deepEqual(
      usage.repositories.map((r) => [r.name, r.bytes]),
      [
        ['acct/a', perRepo],
        ['acct/b', perRepo],
      ],
    );
    assert.equal(usage.totalBytes, perRepo, 'identical content is stored and counted once');
    assert.equal(usage.reclaimableBytes, 0);
    await fetch(`${b.url}/berth/v1/repositories/acct/a`, { method: 'DELETE' });
    await fetch(`${b.url}/berth/v1/repositories/acct/b`, { method: 'DELETE' });
    const after = (await (await fetch(`${b.url}/berth/v1/storage`)).json()) as { reclaimableBytes: number };
    assert.equal(after.reclaimableBytes, perRepo);
    assert.equal(EMPTY_BYTES.byteLength, 2);
  });
});

describe('offline garbage-collect command', () => {
  it('prints the summary line, honours --dry-run and --delete-untagged', async () => {
    const { startBerth } = await import('../support/berth.js');
    const server = await startBerth({ REGISTRY_BERTH_GC_INTERVAL: '1h' });
    const repo = 'offline/repo';
    const old = await pushImage(server.url, repo, 'latest', { layers: 2 });
    await pushImage(server.url, repo, 'latest');
    const root = server.root;
    await server.server.close(100);
    const env = { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true' };
    try {
      const dry = await run(process.execPath, [CLI_ENTRY, 'garbage-collect', '--dry-run', '--delete-untagged'], { env });
      assert.match(dry.stdout, /^\d+ blobs marked, \d+ blobs eligible for deletion$/m);
      assert.match(dry.stdout, /dry run: nothing deleted/);
      for (const l of old.layers) assert.ok(existsSync(blobFile(root, l.digest)));
      const number = (out: string, re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      const listed = (out: string, what: string) => [...out.matchAll(new RegExp(`^${what} eligible for deletion: (\\S+)$`, 'gm'))].map((m) => m[1]!).sort();
      // The untagged image's manifest, config and two layers: what deleting it frees, not only what is unreferenced now.
      assert.deepEqual(listed(dry.stdout, 'manifest'), [`${repo}@${old.digest}`]);
      assert.deepEqual(listed(dry.stdout, 'blob'), [old.digest, old.config.digest, ...old.layers.map((l) => l.digest)].sort());

      const plain = await run(process.execPath, [CLI_ENTRY, 'garbage-collect'], { env });
      assert.match(plain.stdout, /blobs marked, 0 blobs eligible for deletion/, 'untagged manifests are kept without -m');

      const real = await run(process.execPath, [CLI_ENTRY, 'garbage-collect', '-m'], { env });
      assert.match(real.stdout, /1 untagged manifests deleted/);
      assert.match(real.stdout, /reclaimed/);
      for (const l of old.layers) assert.ok(!existsSync(blobFile(root, l.digest)), 'untagged image layers removed');
      for (const digest of listed(dry.stdout, 'blob')) assert.ok(!existsSync(blobFile(root, digest)), `${digest}, listed by the dry run, removed`);
      // The dry run's numbers are the real run's.
      assert.equal(number(dry.stdout, /^(\d+) untagged manifests eligible for deletion$/m), number(real.stdout, /^(\d+) untagged manifests deleted$/m));
      assert.equal(number(dry.stdout, /^(\d+) blobs marked/m), number(real.stdout, /^(\d+) blobs marked/m));
      assert.equal(number(dry.stdout, /blobs marked, (\d+) blobs eligible/), number(real.stdout, /^(\d+) blobs deleted/m));
      assert.equal(number(dry.stdout, /\((\d+) bytes\)/), number(real.stdout, /\((\d+) bytes\)/));
      assert.equal(number(dry.stdout, /\((\d+) bytes\)/), old.body.byteLength + old.config.size + old.layers.reduce((n, l) => n + l.size, 0));

      const du = await run(process.execPath, [CLI_ENTRY, 'du'], { env });
      assert.match(du.stdout, /offline\/repo/);
      assert.match(du.stdout, /total/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('offline garbage-collect on a blob it cannot remove', () => {
  it('names the file, exits 1 without a stack trace, and the next run takes it up', async (t) => {
    const { startBerth } = await import('../support/berth.js');
    const server = await startBerth({ REGISTRY_BERTH_GC_INTERVAL: '1h' });
    const img = await pushImage(server.url, 'stuck/repo', 'v1', { layers: 1 });
    await fetch(`${server.url}/v2/stuck/repo/manifests/${img.digest}`, { method: 'DELETE' });
    const root = server.root;
    await server.server.close(100);
    const env = { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true' };
    const layer = blobFile(root, img.layers[0]!.digest);
    try {
      const undo = await makeImmutable(path.dirname(layer));
      if (!undo) {
        t.skip('chattr +i is not available on this file system or to this user');
        return;
      }
      let failed: CommandError | undefined;
      try {
        await run(process.execPath, [CLI_ENTRY, 'garbage-collect'], { env });
      } catch (err) {
        failed = err as CommandError;
      } finally {
        await undo();
      }
      assert.equal(failed?.exitCode, 1);
      assert.match(failed.stderr, new RegExp(`^berth: garbage-collect: cannot unlink ${root}/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}: operation not permitted`, 'm'));
      assert.doesNotMatch(failed.stderr, /\n\s+at /);
      await run(process.execPath, [CLI_ENTRY, 'garbage-collect'], { env });
      assert.ok(!existsSync(layer), 'removed by the next run');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('collection metrics', () => {
  let debugPort = 0;
  // Registered before useBerth's hook, so the port is chosen before the server starts.
  before(async () => {
    debugPort = await freePort();
  });
  const b = useBerth({
    ...GC_ENV,
    get REGISTRY_HTTP_DEBUG_ADDR() {
      return `127.0.0.1:${debugPort}`;
    },
    REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'true',
  });

  it('counts collections, deleted blobs and reclaimed bytes', async () => {
    assert.ok(debugPort > 0);
    const repo = uniqueRepo('metrics');
    const img = await pushImage(b.url, repo, 'v1', { layers: 2 });
    await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    const summary = await collect(b.url);
    assert.ok(summary.blobsDeleted >= 3);
    const text = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('berth_gc_runs_total'), 1);
    assert.equal(value('berth_gc_blobs_deleted_total'), summary.blobsDeleted);
    assert.equal(value('berth_gc_bytes_reclaimed_total'), summary.bytesReclaimed);
  });
});

describe('POST /berth/v1/gc query parameters', () => {
  // The server's own grace period is a day: only ?grace= can collect what was just deleted.
  const b = useBerth({ REGISTRY_BERTH_GC_INTERVAL: '1h', REGISTRY_BERTH_GC_GRACE: '24h' });

  it('grace is honoured, and reported back', async () => {
    const repo = uniqueRepo('grace');
    const img = await pushImage(b.url, repo, 'v1');
    await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    const kept = await collect(b.url);
    assert.equal(kept.graceMs, 86_400_000);
    assert.equal(kept.blobsDeleted, 0, 'inside the configured day of grace');
    assert.ok(existsSync(blobFile(b.root, img.layers[0]!.digest)));

    await new Promise((r) => setTimeout(r, 5)); // strictly older than a 0s cutoff
    const dry = await collect(b.url, '?grace=0s&dryrun=true');
    assert.equal(dry.graceMs, 0);
    assert.equal(dry.dryRun, true);
    const now = await collect(b.url, '?grace=0s');
    assert.equal(now.graceMs, 0);
    assert.equal(now.blobsDeleted, dry.blobsEligible);
    assert.ok(now.blobsDeleted >= 3, JSON.stringify(now));
    assert.ok(!existsSync(blobFile(b.root, img.layers[0]!.digest)));
  });

  it('a bad value or an unknown parameter is a 400 with the error JSON, and nothing runs', async () => {
    const repo = uniqueRepo('params');
    const img = await pushImage(b.url, repo, 'v1');
    await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    for (const query of ['?grace=soon', '?grace=10', '?grace=-1s', '?dryrun=maybe', '?deleteuntagged=2', '?dryRun=true&grace=0s', '?dry-run&grace=0s', '?grace=0s&force=1']) {
      const body = await expectError(await fetch(`${b.url}/berth/v1/gc${query}`, { method: 'POST' }), 400, 'UNSUPPORTED');
      assert.match(body.errors[0]!.message, /query parameter/, query);
    }
    assert.ok(existsSync(blobFile(b.root, img.layers[0]!.digest)), 'a misspelt dry run did not collect');
  });
});

describe('POST /berth/v1/gc runs outside the request', () => {
  const b = useBerth(GC_ENV);

  it('answers 202 with the Location of the run, which reports running, then finished with the summary', async () => {
    const repo = uniqueRepo('async');
    const img = await pushImage(b.url, repo, 'v1', { layers: 2 });
    await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    await new Promise((r) => setTimeout(r, 5));
    const started = await fetch(`${b.url}/berth/v1/gc`, { method: 'POST' });
    assert.equal(started.status, 202, await started.clone().text());
    const run = (await started.json()) as GcRun;
    assert.ok(['queued', 'running'].includes(run.state), run.state);
    assert.equal(run.summary, null);
    const location = started.headers.get('location')!;
    assert.match(location, new RegExp(`^/berth/v1/gc/runs/${run.id}$`));

    let seen: GcRun | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      seen = (await (await fetch(new URL(location, b.url))).json()) as GcRun;
      if (seen.state === 'finished' || seen.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen?.state, 'finished', JSON.stringify(seen));
    assert.ok(seen.summary!.blobsDeleted >= 4, JSON.stringify(seen.summary));
    for (const l of img.layers) assert.ok(!existsSync(blobFile(b.root, l.digest)));
    const latest = (await (await fetch(`${b.url}/berth/v1/gc/runs/latest`)).json()) as GcRun;
    assert.equal(latest.id, run.id);
    assert.deepEqual(latest.summary, seen.summary);

    // Another run is another resource.
    const second = await collect(b.url);
    assert.equal(second.blobsDeleted, 0);
    const newest = (await (await fetch(`${b.url}/berth/v1/gc/runs/latest`)).json()) as GcRun;
    assert.ok(newest.id > run.id);
  });

  it('unknown runs are 404, a bad or too long wait is 400', async () => {
    for (const id of ['999999999', 'abc', '0', '-1']) await expectError(await fetch(`${b.url}/berth/v1/gc/runs/${id}`), 404, 'UNSUPPORTED');
    for (const query of ['?wait=soon', '?wait=1h', '?wait=-1s']) {
      const body = await expectError(await fetch(`${b.url}/berth/v1/gc${query}`, { method: 'POST' }), 400, 'UNSUPPORTED');
      assert.match(body.errors[0]!.message, /query parameter wait/, query);
    }
    assert.equal((await fetch(`${b.url}/berth/v1/gc/runs/latest`, { method: 'POST' })).status, 405);
  });

  it('a short wait that runs out answers 202 with the run still going, or 200 once it is done', async () => {
    const r = await fetch(`${b.url}/berth/v1/gc?wait=1ms&dryrun=true`, { method: 'POST' });
    const run = (await r.json()) as GcRun;
    assert.equal(r.status, run.state === 'finished' ? 200 : 202);
    assert.equal(run.dryRun, true);
  });
});

describe('dry run with delete-untagged reports what the real run frees', () => {
  const b = useBerth(GC_ENV);
  it('over several passes: an untagged index frees its children, deleted images free their blobs, shared blobs stay', () => dryRunMatchesRealRun(b));
});

describe('dry run with delete-untagged reports what the real run frees, on PostgreSQL', () => {
  let pg: PostgresServer | undefined;
  // Registered before useBerth's hook, so the database is up before the server starts.
  before(async () => {
    pg = await startPostgres();
  });
  const b = useBerth({
    ...GC_ENV,
    get REGISTRY_BERTH_DATABASE_URL() {
      return pg!.url;
    },
  });
  // After the server's own hook, which closes its connections first.
  after(async () => {
    await pg?.stop();
  });
  it('the same scenario, the same numbers', () => dryRunMatchesRealRun(b));
});

async function dryRunMatchesRealRun(b: { url: string; root: string }): Promise<void> {
  {
    const repo = uniqueRepo('plan');
    const amd = await pushImage(b.url, repo, undefined, { layers: 2 });
    const arm = await pushImage(b.url, repo, undefined, { layers: 2 });
    const index = await pushIndex(b.url, repo, 'multi', [amd.descriptor, arm.descriptor]);
    await fetch(`${b.url}/v2/${repo}/manifests/multi`, { method: 'DELETE' }); // the index is untagged; its children go in the next pass
    const loose = await pushImage(b.url, repo, undefined, { layers: 1 });
    const kept = await pushImage(b.url, repo, 'kept', { layers: 1 });
    // A layer of the loose image also used by a tagged image elsewhere: not freed.
    const sharedRepo = uniqueRepo('plan-shared');
    await fetch(`${b.url}/v2/${sharedRepo}/blobs/uploads/?mount=${loose.layers[0]!.digest}&from=${repo}`, { method: 'POST' });
    const sharedCfg = await pushBlob(b.url, sharedRepo, Buffer.from('{"shared":true}'), MT.ociConfig);
    await pushManifest(b.url, sharedRepo, 'v1', { schemaVersion: 2, mediaType: MT.ociManifest, config: sharedCfg, layers: [loose.layers[0]!] }, MT.ociManifest);
    const signed = await pushImage(b.url, repo); // untagged but signed: kept, with its signature
    await pushArtifact(b.url, repo, { artifactType: 'application/vnd.example.sig', subject: signed.descriptor });
    await pushBlob(b.url, repo, randomBytes(300), MT.ociLayer); // never referenced
    // With grace 0 the cutoff is the run's start in ms: let everything above be strictly older than both runs.
    await new Promise((r) => setTimeout(r, 5));

    const dry = await collect(b.url, '?dryrun=true&deleteuntagged=true');
    const gone = [index, amd, arm, loose];
    assert.deepEqual(dry.plan!.manifests.map((m) => m.digest).sort(), gone.map((m) => m.digest).sort());
    const present = (digest: string) => existsSync(blobFile(b.root, digest));
    const planned = dry.plan!.blobs.map((x) => x.digest);
    for (const d of planned) assert.ok(present(d), 'a dry run deletes nothing');

    const real = await collect(b.url, '?deleteuntagged=true');
    assert.equal(real.dryRun, false);
    for (const field of ['manifestsDeleted', 'blobsMarked', 'bytesReclaimed', 'linksPruned', 'orphanFilesDeleted'] as const) {
      assert.equal(dry[field], real[field], `${field}: dry ${JSON.stringify(dry)} real ${JSON.stringify(real)}`);
    }
    assert.equal(dry.blobsEligible, real.blobsDeleted);
    assert.equal(dry.manifestsDeleted, 4);
    for (const m of gone) assert.equal((await getManifest(b.url, repo, m.digest)).status, 404);
    for (const d of planned) assert.ok(!present(d), `${d} listed and removed`);
    // Every freed blob was listed: manifests' bytes, configs and layers of the deleted images, the stray blob.
    const freed = [index.digest, ...[amd, arm, loose].flatMap((i) => [i.digest, i.config.digest, ...i.layers.map((l) => l.digest)])].filter((d) => d !== loose.layers[0]!.digest);
    for (const d of freed) assert.ok(planned.includes(d), `${d} in the dry run's list`);
    assert.ok(present(loose.layers[0]!.digest), 'the shared layer stays');
    assert.equal(planned.length, freed.length + 1, 'and the stray blob');
    for (const k of [kept, signed]) assert.equal((await getManifest(b.url, repo, k.digest)).status, 200);
  }
}

describe('a repository whose last manifest is deleted', () => {
  const b = useBerth(GC_ENV);

  interface Views {
    catalog: boolean;
    tags: number | string[];
    tagsN0: number;
    api: number;
    storage: boolean;
    du: boolean;
  }

  async function views(repo: string): Promise<Views> {
    const catalog = (await (await fetch(`${b.url}/v2/_catalog`)).json()) as { repositories: string[] };
    const tagsRes = await fetch(`${b.url}/v2/${repo}/tags/list`);
    const tags = tagsRes.status === 200 ? ((await tagsRes.json()) as { tags: string[] }).tags : (await expectError(tagsRes, 404, 'NAME_UNKNOWN'), 404);
    const n0 = await fetch(`${b.url}/v2/${repo}/tags/list?n=0`);
    await n0.arrayBuffer();
    const api = await fetch(`${b.url}/berth/v1/repositories/${repo}`);
    if (api.status === 404) await expectError(api, 404, 'NAME_UNKNOWN');
    else await api.arrayBuffer();
    const storage = (await (await fetch(`${b.url}/berth/v1/storage`)).json()) as { repositories: { name: string }[] };
    // `berth du` beside the running server, on the same data.
    const du = await run(process.execPath, [CLI_ENTRY, 'du', '--json'], { env: { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: b.root } });
    const duRepos = (JSON.parse(du.stdout) as { repositories: { name: string }[] }).repositories;
    return {
      catalog: catalog.repositories.includes(repo),
      tags,
      tagsN0: n0.status,
      api: api.status,
      storage: storage.repositories.some((r) => r.name === repo),
      du: duRepos.some((r) => r.name === repo),
    };
  }

  const listed = (tags: string[]): Views => ({ catalog: true, tags, tagsN0: 200, api: 200, storage: true, du: true });
  const gone: Views = { catalog: false, tags: 404, tagsN0: 404, api: 404, storage: false, du: false };

  it('is listed while it holds a manifest (tagged or not) and gone from every view after, until a push brings it back', async () => {
    const repo = uniqueRepo('last');
    await pushImage(b.url, uniqueRepo('neighbour'), 'v1');
    const img = await pushImage(b.url, repo, 'v1');
    assert.deepEqual(await views(repo), listed(['v1']));

    // Untagged, the manifest is still there (pullable by digest): the repository stays.
    assert.equal((await fetch(`${b.url}/v2/${repo}/manifests/v1`, { method: 'DELETE' })).status, 202);
    assert.deepEqual(await views(repo), listed([]));

    assert.equal((await fetch(`${b.url}/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' })).status, 202);
    assert.deepEqual(await views(repo), gone);
    await collect(b.url);
    assert.deepEqual(await views(repo), gone, 'the same after a collection');

    await pushImage(b.url, repo, 'v2');
    assert.deepEqual(await views(repo), listed(['v2']));
  });

  it('the same when delete-untagged collects its last manifest; a repository holding only blobs is not listed either', async () => {
    const repo = uniqueRepo('last-gc');
    await pushImage(b.url, repo, 'v1');
    await pushImage(b.url, repo, 'v1'); // the first is untagged now
    await fetch(`${b.url}/v2/${repo}/manifests/v1`, { method: 'DELETE' });
    assert.deepEqual(await views(repo), listed([]));
    await collect(b.url, '?deleteuntagged=true');
    assert.deepEqual(await views(repo), gone);

    const half = uniqueRepo('half-pushed');
    await pushBlob(b.url, half, randomBytes(100), MT.ociLayer);
    assert.deepEqual(await views(half), gone, 'layers without a manifest yet');
    // Its leftovers can still be cleared, once.
    assert.equal((await fetch(`${b.url}/berth/v1/repositories/${half}`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${b.url}/berth/v1/repositories/${half}`, { method: 'DELETE' })).status, 404);
  });
});

describe('berth.gc.interval below what the scheduler runs', () => {
  it('is refused at start-up naming the key, with no stack trace', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-gc-interval-'));
    try {
      const port = await freePort();
      const env = { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_BERTH_GC_INTERVAL: '500ms' };
      const failed = await run(process.execPath, [CLI_ENTRY, 'serve'], { env, timeoutMs: 20_000 }).then(
        () => assert.fail('berth started with a 500ms interval'),
        (err: CommandError) => err,
      );
      assert.equal(failed.exitCode, 1);
      assert.match(failed.stderr, /^berth: configuration error: berth\.gc\.interval: must be at least 1s \(or 0 for no scheduled collection\), got 500ms$/m);
      assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
