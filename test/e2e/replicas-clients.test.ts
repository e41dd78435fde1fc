/**
 * Real clients through HAProxy in front of two replicas over one PostgreSQL
 * and one object store, blob downloads redirected to presigned URLs of the
 * engine (distribution's default for these drivers; the clients follow
 * them): skopeo pushes and pulls (OCI and Docker formats, an index),
 * dockerd pulls and pushes; and a replica killed with -9 in the middle of a
 * push, the client trying again as a client does, and the image complete
 * afterwards through both replicas.
 *
 * On S3 (OpenStack Swift) all of it; on Azure Blob (Azurite) skopeo's and
 * dockerd's push and pull (the kill exercises the replicas, not the driver:
 * once is enough).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDockerd, type Dockerd } from '../support/clients.js';
import { buildImage, buildIndex, pullImage, pushImage, type BuiltImage } from '../support/images.js';
import { createDatabase, startPostgres, type PostgresServer } from '../support/postgres.js';
import { azureEngine } from '../support/azurite.js';
import { replicaStorage, startReplicas, type ReplicaSet, type StorageBlock } from '../support/replicas.js';
import { s3Engine } from '../support/swift.js';
import { CommandError, ensureTool, run } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Requests a replica's access log shows for `repository`, by method. */
function logged(output: string, repository: string): { method: string; status: number; path: string }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as { method: string; status: number; path: string })
    .filter((l) => l.path.startsWith(`/v2/${repository}/`));
}

/** Bytes process `pid` has read so far (sockets included): what grows fastest on the replica receiving a layer. */
async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return Number(/^rchar: (\d+)/m.exec(io)?.[1] ?? 0);
}

interface Variant {
  name: string;
  storage(): Promise<StorageBlock>;
  /** Whether the kill-in-the-middle case runs on this store. */
  kill: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'S3 on Swift', storage: async () => replicaStorage({ s3: await s3Engine(), redirect: true }), kill: true },
  { name: 'Azure Blob on Azurite', storage: async () => replicaStorage({ azure: await azureEngine(), redirect: true }), kill: false },
];

for (const variant of VARIANTS) describe(`real clients through HAProxy in front of two replicas on ${variant.name}`, { timeout: 900_000, concurrency: 1 }, () => {
  let pg: PostgresServer;
  let storage: StorageBlock;
  let set: ReplicaSet;
  let work: string;
  let skopeo: string;
  let dockerd: Dockerd | undefined;

  const sk = (...args: string[]) => run(skopeo, args, { timeoutMs: 300_000 });

  /** Copies `ref` out through `host` into a dir: layout and checks every file against its digest. */
  async function pullExact(host: string, ref: string): Promise<Buffer> {
    const dir = await mkdtemp(path.join(work, 'dir-'));
    await sk('copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${ref}`, `dir:${dir}`);
    for (const f of (await readdir(dir)).filter((f) => f !== 'version' && f !== 'manifest.json')) {
      assert.equal(sha256(await readFile(path.join(dir, f))), `sha256:${f}`, `blob ${f} intact`);
    }
    return readFile(path.join(dir, 'manifest.json'));
  }

  before(async () => {
    skopeo = await ensureTool('skopeo');
    pg = await startPostgres();
    storage = await variant.storage();
    set = await startReplicas({ count: 2, databaseUrl: await createDatabase(pg, 'replicas_clients'), storage });
    work = await mkdtemp(path.join(tmpdir(), 'berth-replicas-clients-'));
  });
  after(async () => {
    await dockerd?.stop();
    await set?.stop();
    await storage?.stop();
    await pg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('skopeo pushes an image and an index through the balancer and pulls them back from each replica', async () => {
    const image = await buildImage(path.join(work, 'layout-image'), { tag: 'v1', seed: 'replicas-image', layers: 3, layerBytes: 256 * 1024 });
    const index = await buildIndex(path.join(work, 'layout-index'), {
      tag: 'multi',
      seed: 'replicas-index',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    assert.equal(await pushImage(image, `${set.host}/lb/app:v1`), image.manifestDigest);
    assert.equal(await pushImage(index, `${set.host}/lb/multi:latest`), index.manifestDigest);
    // The push's requests went to both replicas.
    for (let slot = 0; slot < 2; slot++) assert.ok(logged(set.output(slot), 'lb/app').length > 0, `replica ${slot} took part of the push`);
    for (const host of [set.host, ...set.urls.map((u) => new URL(u).host)]) {
      assert.equal(sha256(await pullExact(host, 'lb/app:v1')), image.manifestDigest, `pulled through ${host}`);
      const out = path.join(work, `oci-${host.replace(/[^0-9]/g, '')}`);
      assert.equal(await pullImage(`${host}/lb/multi:latest`, out, 'back'), index.manifestDigest);
    }
    // The blobs came from the engine: every blob GET was a redirect the client followed (the files were checked above).
    const blobGets = [0, 1].flatMap((slot) => logged(set.output(slot), 'lb/app')).filter((l) => l.method === 'GET' && l.path.includes('/blobs/'));
    assert.ok(blobGets.length >= image.blobs.length, `blob downloads asked of Berth: ${blobGets.length}`);
    assert.deepEqual(blobGets.filter((l) => l.status !== 307), [], 'every blob GET answered with a redirect');
  });

  it('dockerd pulls through the balancer and pushes to another repository (mounting)', async () => {
    const image = await buildImage(path.join(work, 'layout-docker'), { tag: 'v1', seed: 'replicas-docker', layers: 2, layerBytes: 128 * 1024, platform: { os: 'linux', architecture: 'amd64' } });
    const digest = await pushImage(image, `${set.host}/docker/src:v1`, { format: 'v2s2' });
    dockerd = await startDockerd();
    const docker = (...args: string[]) => dockerd!.docker(args);
    await docker('pull', `${set.host}/docker/src:v1`);
    const info = JSON.parse((await docker('image', 'inspect', '--format', '{{json .RepoDigests}}', `${set.host}/docker/src:v1`)).stdout) as string[];
    assert.ok(info.includes(`${set.host}/docker/src@${digest}`), `RepoDigests ${info.join(', ')}`);
    await docker('tag', `${set.host}/docker/src:v1`, `${set.host}/docker/copy:v1`);
    const pushed = await docker('push', `${set.host}/docker/copy:v1`);
    assert.equal(pushed.stdout.match(/Mounted from docker\/src/g)?.length, 2, `both layers mounted:\n${pushed.stdout}`);
    // dockerd writes the manifest its own way: its digest is the one it reports.
    const copied = /v1: digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(copied, pushed.stdout);
    // Every replica serves the copy.
    for (const url of set.urls) {
      const r = await fetch(`${url}/v2/docker/copy/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('docker-content-digest'), copied);
    }
    await dockerd.removeAllImages();
    await docker('pull', `${set.host}/docker/copy:v1`);
  });

  if (variant.kill) it('a replica killed in the middle of a push: the client tries again and the image is complete', async (t) => {
    const image = await buildImage(path.join(work, 'layout-big'), { tag: 'v1', seed: 'replicas-killed', layers: 3, layerBytes: 24 * 1024 * 1024 });
    const repo = 'killed/app';
    const first = pushImage(image, `${set.host}/${repo}:v1`).then(
      () => null,
      (err: unknown) => err,
    );
    // Kill a replica that is receiving a layer right now: once the first upload has started, the one reading bytes fastest.
    const deadline = Date.now() + 120_000;
    let victim = -1;
    while (victim < 0) {
      assert.ok(Date.now() < deadline, 'no replica was ever seen receiving a layer');
      if (![0, 1].some((slot) => logged(set.output(slot), repo).some((l) => l.method === 'POST'))) {
        await sleep(5);
        continue;
      }
      const pids = set.replicas.map((r) => r.child.pid!);
      const before = await Promise.all(pids.map(bytesRead));
      await sleep(50);
      const grown = (await Promise.all(pids.map(bytesRead))).map((n, i) => n - before[i]!);
      // More than 1 MiB in 50 ms: layer bytes, not requests.
      const fastest = grown[0]! >= grown[1]! ? 0 : 1;
      if (grown[fastest]! > 1024 * 1024) victim = fastest;
    }
    await set.kill(victim);
    t.diagnostic(`killed replica ${victim} while it was receiving a layer`);
    const failed = await first;
    let attempts = 1;
    if (failed) {
      assert.ok(failed instanceof CommandError, String(failed));
      // As a client does after a dropped connection: push again (what reached the store is not sent twice).
      for (;;) {
        attempts++;
        try {
          await pushImage(image, `${set.host}/${repo}:v1`);
          break;
        } catch (err) {
          if (attempts >= 4) throw err;
        }
      }
    }
    t.diagnostic(`push with a replica killed in the middle: ${attempts} attempt(s)${failed ? `; the first failed: ${String((failed as Error).message).split('\n')[0]}` : ' (the balancer sent what followed to the live replica)'}`);
    assert.equal(sha256(await pullExact(set.host, `${repo}:v1`)), image.manifestDigest);
    await set.restart(victim);
    for (const url of set.urls) assert.equal(sha256(await pullExact(new URL(url).host, `${repo}:v1`)), image.manifestDigest);
    // Nothing of the killed push is left half-done: each layer is one committed blob, whole.
    for (const blob of image.blobs) {
      const head = await fetch(`${set.urls[0]}/v2/${repo}/blobs/${blob}`, { method: 'HEAD' });
      assert.equal(head.status, 200, blob);
    }
  });
});
