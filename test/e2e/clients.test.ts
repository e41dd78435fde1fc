/**
 * Real-client tests beyond skopeo: dockerd + docker, podman and
 * containerd + ctr push to Berth and pull back, each with private state
 * (see test/support/clients.ts). Every client is checked against what
 * Berth stores: the manifest it serves hashes to the digest the client
 * reported, every blob hashes to its digest, and layers unpack to the
 * image config's diff_ids.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { startBerth, type TestBerth } from '../support/berth.js';
import { createPodman, ctrRegistryArgs, startContainerd, startDockerd, type Containerd, type Dockerd, type Podman } from '../support/clients.js';
import { buildImage, buildIndex, MEDIA_TYPES, pushImage, sha256Digest, type BuiltImage } from '../support/images.js';
import { ensureTool, run } from '../support/tools.js';

const ACCEPT_ALL_MANIFESTS = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList].join(', ');
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** The hex part of a sha256 digest: podman prints and accepts image IDs without the algorithm. */
const hex = (digest: string) => digest.slice('sha256:'.length);

interface ManifestDoc {
  mediaType?: string;
  config?: { digest: string; mediaType: string };
  layers?: { digest: string; mediaType: string; size: number }[];
  manifests?: { digest: string; mediaType: string; platform?: { os: string; architecture: string; variant?: string } }[];
}

/** A file's modification time, or null when it does not exist: to show a client left it alone. */
const fileState = (file: string) => stat(file).then((s) => s.mtimeMs, () => null);

interface RequestLog {
  msg: string;
  method: string;
  path: string;
  route: string;
  status: number;
}

// The three clients run side by side (each one's tests in order): each has its
// own daemon and repositories, and every log check filters on its own repositories.
describe('real clients against Berth', { concurrency: true }, () => {
  let berth: TestBerth;
  let work: string;
  let image: BuiltImage;
  let imageConfig: string;
  let index: BuiltImage;
  let amd64Config: string;
  let arm64Config: string;
  let dockerArchive: string;

  // -------------------------------------------------------------------------
  // What Berth holds

  async function berthManifest(repo: string, ref: string): Promise<{ bytes: Buffer; doc: ManifestDoc; contentType: string }> {
    const res = await fetch(`${berth.url}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT_ALL_MANIFESTS } });
    assert.equal(res.status, 200, `GET manifest ${repo}:${ref}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    return { bytes, doc: JSON.parse(bytes.toString('utf8')) as ManifestDoc, contentType: res.headers.get('content-type') ?? '' };
  }

  async function berthBlob(repo: string, digest: string): Promise<Buffer> {
    const res = await fetch(`${berth.url}/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200, `GET blob ${repo}@${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256Digest(bytes), digest, `blob ${digest} in ${repo} hashes to its digest`);
    return bytes;
  }

  /**
   * Checks an image manifest in Berth: its bytes hash to `digest`, and every
   * blob is there and intact, layers unpacking to the config's diff_ids.
   */
  async function assertImageInBerth(repo: string, ref: string, digest: string): Promise<ManifestDoc> {
    const { bytes, doc, contentType } = await berthManifest(repo, ref);
    assert.equal(sha256Digest(bytes), digest, `${repo}:${ref} is served byte for byte as pushed`);
    assert.equal(contentType, doc.mediaType, 'Content-Type is the manifest media type');
    assert.ok(doc.config && doc.layers, `${repo}:${ref} is an image manifest`);
    const config = JSON.parse((await berthBlob(repo, doc.config.digest)).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    assert.equal(config.rootfs.diff_ids.length, doc.layers.length);
    for (const [i, layer] of doc.layers.entries()) {
      const blob = await berthBlob(repo, layer.digest);
      assert.equal(blob.length, layer.size, `layer ${i} size`);
      const tar = layer.mediaType.endsWith('gzip') ? gunzipSync(blob) : blob;
      assert.equal(sha256Digest(tar), config.rootfs.diff_ids[i], `layer ${i} unpacks to its diff_id`);
    }
    return doc;
  }

  /** Request log lines Berth wrote since `mark` (an index into berth.logs). */
  const requestsSince = (mark: number): RequestLog[] =>
    berth.logs
      .slice(mark)
      .map((l) => JSON.parse(l) as RequestLog)
      .filter((l) => l.msg === 'request');

  /** Asserts that Berth served `repo`'s manifest and each blob with 200 since `mark` (the client really downloaded). */
  function assertDownloaded(mark: number, repo: string, blobs: string[]): void {
    const log = requestsSince(mark).filter((l) => l.method === 'GET' && l.status === 200);
    assert.ok(
      log.some((l) => l.route === 'manifest' && l.path.startsWith(`/v2/${repo}/manifests/`)),
      `a GET of a ${repo} manifest was answered 200`,
    );
    for (const blob of blobs) {
      assert.ok(
        log.some((l) => l.path === `/v2/${repo}/blobs/${blob}`),
        `blob ${blob} was downloaded from ${repo}`,
      );
    }
  }

  // -------------------------------------------------------------------------
  // Test images

  /** The config digest of a manifest stored in an OCI layout. */
  async function layoutConfigDigest(layoutDir: string, manifestDigest: string): Promise<string> {
    const file = path.join(layoutDir, 'blobs', 'sha256', hex(manifestDigest));
    return (JSON.parse(await readFile(file, 'utf8')) as ManifestDoc).config!.digest;
  }

  /** An OCI layout as a tar archive (what `ctr images import` reads). */
  async function layoutTar(layoutDir: string, file: string): Promise<string> {
    await run(await ensureTool('tar'), ['-C', layoutDir, '-cf', file, '.']);
    return file;
  }

  before(async () => {
    berth = await startBerth();
    // Lower case only: `podman pull oci:<dir>` names the image after the path.
    work = path.join(tmpdir(), `berth-clients-${randomBytes(8).toString('hex')}`);
    await mkdir(work);
    image = await buildImage(path.join(work, 'layout-image'), { tag: 'v1', seed: 'clients', layers: 2, layerBytes: 32 * 1024 });
    imageConfig = await layoutConfigDigest(image.layoutDir, image.manifestDigest);
    index = await buildIndex(path.join(work, 'layout-index'), {
      tag: 'multi',
      seed: 'clients-multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    amd64Config = await layoutConfigDigest(index.layoutDir, index.children![0]!.manifestDigest);
    arm64Config = await layoutConfigDigest(index.layoutDir, index.children![1]!.manifestDigest);
    // A docker-archive (what `docker save` writes) of the same image; skopeo
    // keeps the config bytes, so the image ID stays the config digest.
    dockerArchive = path.join(work, 'image.tar');
    await run(await ensureTool('skopeo'), ['copy', '--quiet', image.ref, `docker-archive:${dockerArchive}:berth-test/clients:v1`], {
      timeoutMs: 120_000,
    });
  });

  after(async () => {
    await berth?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  // -------------------------------------------------------------------------
  describe('docker (dockerd with vfs storage)', { concurrency: 1 }, () => {
    let dockerd: Dockerd;
    const docker = (...args: string[]) => dockerd.docker(args);
    const inspect = async (ref: string) =>
      JSON.parse((await docker('image', 'inspect', '--format', '{{json .}}', ref)).stdout) as { Id: string; RepoDigests: string[] };

    before(async () => {
      dockerd = await startDockerd();
    });
    after(async () => {
      await dockerd?.stop();
    });

    it('loads an archive, pushes it, and pulls it back after rmi', async () => {
      await dockerd.removeAllImages();
      const loaded = await docker('load', '--input', dockerArchive);
      assert.match(loaded.stdout, /Loaded image: berth-test\/clients:v1/);
      assert.equal((await inspect('berth-test/clients:v1')).Id, imageConfig, 'the image ID is the config digest');

      const ref = `${berth.host}/docker/app:v1`;
      await docker('tag', 'berth-test/clients:v1', ref);
      const pushed = await docker('push', ref);
      const m = /v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(pushed.stdout);
      assert.ok(m, `docker push reports a digest:\n${pushed.stdout}`);
      const digest = m[1]!;
      const doc = await assertImageInBerth('docker/app', 'v1', digest);
      assert.equal(doc.mediaType, MEDIA_TYPES.dockerManifest);
      assert.equal(doc.config!.digest, imageConfig);
      assert.equal((await berthManifest('docker/app', digest)).bytes.length, Number(m[2]), 'pushed size');

      await dockerd.removeAllImages();
      await assert.rejects(docker('image', 'inspect', ref), /No such image/);
      const mark = berth.logs.length;
      await docker('pull', ref);
      const info = await inspect(ref);
      assert.equal(info.Id, imageConfig, 'pulled image has the same ID');
      assert.ok(info.RepoDigests.includes(`${berth.host}/docker/app@${digest}`), `RepoDigests ${info.RepoDigests}`);
      assertDownloaded(mark, 'docker/app', [doc.config!.digest, ...doc.layers!.map((l) => l.digest)]);
    });

    it('pushes to a second repository by mounting the layers from the first', async () => {
      await docker('pull', `${berth.host}/docker/app:v1`);
      const ref = `${berth.host}/docker/mounted:v1`;
      await docker('tag', `${berth.host}/docker/app:v1`, ref);
      const mark = berth.logs.length;
      const pushed = await docker('push', ref);
      assert.equal(pushed.stdout.match(/Mounted from docker\/app/g)?.length, 2, `both layers mounted:\n${pushed.stdout}`);
      const mounts = requestsSince(mark).filter((l) => l.route === 'upload-start' && l.path === '/v2/docker/mounted/blobs/uploads/' && l.status === 201);
      assert.equal(mounts.length, 2, 'Berth answered both mount requests with 201 Created');
      const digest = /v1: digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)![1]!;
      await assertImageInBerth('docker/mounted', 'v1', digest);
    });

    it('pulls by digest an OCI image that skopeo pushed', async () => {
      await dockerd.removeAllImages();
      const digest = await pushImage(image, `${berth.host}/docker/from-skopeo:v1`);
      assert.equal(digest, image.manifestDigest);
      const mark = berth.logs.length;
      await docker('pull', `${berth.host}/docker/from-skopeo@${digest}`);
      const info = await inspect(`${berth.host}/docker/from-skopeo@${digest}`);
      assert.equal(info.Id, imageConfig);
      assert.deepEqual(info.RepoDigests, [`${berth.host}/docker/from-skopeo@${digest}`]);
      assert.ok(
        requestsSince(mark).some((l) => l.method === 'GET' && l.path === `/v2/docker/from-skopeo/manifests/${digest}` && l.status === 200),
        'the manifest was fetched by digest',
      );
      assertDownloaded(mark, 'docker/from-skopeo', image.blobs);
    });

    it('picks its platform from an OCI index and from a Docker manifest list', async () => {
      const ociDigest = await pushImage(index, `${berth.host}/docker/multi:oci`);
      const listDigest = await pushImage(index, `${berth.host}/docker/multi:list`, { format: 'v2s2' });
      for (const [tag, digest] of [['oci', ociDigest], ['list', listDigest]] as const) {
        await dockerd.removeAllImages();
        await docker('pull', `${berth.host}/docker/multi:${tag}`);
        const info = await inspect(`${berth.host}/docker/multi:${tag}`);
        assert.equal(info.Id, amd64Config, `${tag}: linux/amd64 chosen`);
        assert.ok(info.RepoDigests.includes(`${berth.host}/docker/multi@${digest}`), `${tag}: RepoDigests ${info.RepoDigests}`);
      }
      const arm64 = index.children![1]!.manifestDigest;
      await docker('pull', '--platform', 'linux/arm64/v8', `${berth.host}/docker/multi@${arm64}`);
      assert.equal((await inspect(`${berth.host}/docker/multi@${arm64}`)).Id, arm64Config, 'linux/arm64 by digest');
    });

    it('login stores credentials only in the private DOCKER_CONFIG', async () => {
      // Berth has no authentication yet: /v2/ answers 200, which docker takes as a successful login.
      const userConfig = path.join(homedir(), '.docker', 'config.json');
      const before = await fileState(userConfig);
      await dockerd.login(berth.host, { username: 'tester', password: 'secret' });
      assert.equal(await fileState(userConfig), before, `${userConfig} untouched`);
      const config = JSON.parse(await readFile(path.join(dockerd.configDir, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
      assert.ok(config.auths[berth.host], `credentials for ${berth.host} in ${dockerd.configDir}`);
      await docker('logout', berth.host);
    });
  });

  // -------------------------------------------------------------------------
  describe('podman (vfs storage, private configuration)', { concurrency: 1 }, () => {
    let pm: Podman;
    const podman = (...args: string[]) => pm.podman(args);
    const inspect = async (ref: string) =>
      (JSON.parse((await podman('image', 'inspect', ref)).stdout) as { Id: string; Digest: string; RepoDigests: string[] }[])[0]!;
    const pullId = async (...args: string[]) => (await podman('pull', '--quiet', ...args)).stdout.trim();

    before(async () => {
      pm = await createPodman({ insecureRegistries: [berth.host] });
    });
    after(async () => {
      await pm?.close();
    });

    for (const format of ['v2s2', 'oci'] as const) {
      it(`pushes with --format ${format} and pulls back by tag and by digest`, async () => {
        await pm.removeAllImages();
        assert.equal(await pullId(image.ref), hex(imageConfig));
        const repo = `podman/app-${format}`;
        const digestFile = path.join(work, `podman-${format}.digest`);
        await podman('push', '--quiet', '--format', format, '--digestfile', digestFile, hex(imageConfig), `${berth.host}/${repo}:v1`);
        const digest = (await readFile(digestFile, 'utf8')).trim();
        const doc = await assertImageInBerth(repo, 'v1', digest);
        assert.equal(doc.mediaType, format === 'v2s2' ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest);
        assert.equal(doc.config!.digest, imageConfig);

        await pm.removeAllImages();
        const mark = berth.logs.length;
        assert.equal(await pullId(`${berth.host}/${repo}:v1`), hex(imageConfig));
        const info = await inspect(`${berth.host}/${repo}:v1`);
        assert.equal(info.Digest, digest, 'podman records the pushed manifest digest');
        assert.ok(info.RepoDigests.includes(`${berth.host}/${repo}@${digest}`));
        assertDownloaded(mark, repo, [doc.config!.digest, ...doc.layers!.map((l) => l.digest)]);

        await pm.removeAllImages();
        assert.equal(await pullId(`${berth.host}/${repo}@${digest}`), hex(imageConfig), 'pull by digest');
      });
    }

    it('pulls either platform of a multi-arch index that skopeo pushed', async () => {
      await pm.removeAllImages();
      await pushImage(index, `${berth.host}/podman/multi:oci`);
      assert.equal(await pullId(`${berth.host}/podman/multi:oci`), hex(amd64Config));
      assert.equal(await pullId('--arch', 'arm64', '--variant', 'v8', `${berth.host}/podman/multi:oci`), hex(arm64Config));
    });

    it('publishes a multi-arch list built with `podman manifest`', async () => {
      await pm.removeAllImages();
      const [amd64, arm64] = [index.children![0]!, index.children![1]!];
      await podman('pull', '--quiet', amd64.ref);
      await podman('pull', '--quiet', '--arch', 'arm64', '--variant', 'v8', arm64.ref);
      await podman('manifest', 'create', 'localhost/berth-list');
      await podman('manifest', 'add', 'localhost/berth-list', `containers-storage:${hex(amd64Config)}`);
      await podman('manifest', 'add', 'localhost/berth-list', `containers-storage:${hex(arm64Config)}`);
      const digestFile = path.join(work, 'podman-list.digest');
      await podman('manifest', 'push', '--quiet', '--all', '--digestfile', digestFile, 'localhost/berth-list', `docker://${berth.host}/podman/list:v1`);
      const digest = (await readFile(digestFile, 'utf8')).trim();

      const { bytes, doc } = await berthManifest('podman/list', 'v1');
      assert.equal(sha256Digest(bytes), digest, 'the list is served byte for byte as pushed');
      assert.ok(doc.manifests, 'an index or manifest list');
      assert.deepEqual(
        doc.manifests.map((m) => [m.platform?.architecture, m.platform?.variant]),
        [['amd64', undefined], ['arm64', 'v8']],
      );
      for (const child of doc.manifests) await assertImageInBerth('podman/list', child.digest, child.digest);

      await pm.removeAllImages();
      assert.equal(await pullId('--arch', 'arm64', '--variant', 'v8', `${berth.host}/podman/list:v1`), hex(arm64Config));
    });

    it('searches the catalog and lists tags', async () => {
      const names = (await podman('search', '--limit', '1000', '--format', '{{.Name}}', `${berth.host}/podman`)).stdout.split('\n').filter(Boolean);
      for (const repo of ['podman/app-v2s2', 'podman/app-oci', 'podman/multi', 'podman/list']) {
        assert.ok(names.includes(`${berth.host}/${repo}`), `${repo} found by podman search: ${names}`);
      }
      // podman 4.3 ignores a Go template with --list-tags, but honours json.
      const listed = JSON.parse((await podman('search', '--list-tags', '--format', 'json', `${berth.host}/podman/app-oci`)).stdout) as { Name: string; Tags: string[] }[];
      assert.deepEqual(listed, [{ Name: `${berth.host}/podman/app-oci`, Tags: ['v1'] }]);
    });

    it('login stores credentials only in the private auth file', async () => {
      // Berth has no authentication yet: /v2/ answers 200, which podman takes as a successful login.
      // podman's default for root; the private REGISTRY_AUTH_FILE must win over it.
      const systemAuth = '/run/containers/0/auth.json';
      const before = await fileState(systemAuth);
      await pm.login(berth.host, { username: 'tester', password: 'secret' });
      assert.equal(await fileState(systemAuth), before, `${systemAuth} untouched`);
      const auth = JSON.parse(await readFile(pm.authFile, 'utf8')) as { auths: Record<string, unknown> };
      assert.ok(auth.auths[berth.host], `credentials for ${berth.host} in ${pm.authFile}`);
      await podman('logout', berth.host);
    });
  });

  // -------------------------------------------------------------------------
  describe('containerd + ctr (native snapshotter)', { concurrency: 1 }, () => {
    let containerd: Containerd;
    const ctr = (...args: string[]) => containerd.ctr(args);
    const registry = () => ctrRegistryArgs({ host: berth.host });
    /** REF → DIGEST from `ctr images ls` in the default namespace (or `namespace`). */
    const listImages = async (namespace?: string) => {
      const out = (await containerd.ctr(['images', 'ls'], namespace ? { namespace } : {})).stdout;
      return new Map(
        out
          .split('\n')
          .slice(1)
          .filter(Boolean)
          .map((line) => {
            const [ref, , digest] = line.split(/\s+/);
            return [ref!, digest!] as const;
          }),
      );
    };
    const contentDigests = async (namespace?: string) =>
      (await containerd.ctr(['content', 'ls', '--quiet'], namespace ? { namespace } : {})).stdout.split('\n').filter(Boolean);

    before(async () => {
      containerd = await startContainerd();
    });
    after(async () => {
      await containerd?.stop();
    });

    it('imports an OCI archive, pushes it unchanged, and pulls it back', async () => {
      const archive = await layoutTar(image.layoutDir, path.join(work, 'image-oci.tar'));
      const ref = `${berth.host}/ctr/app:v1`;
      await ctr('images', 'import', '--base-name', `${berth.host}/ctr/app`, archive);
      assert.equal((await listImages()).get(ref), image.manifestDigest);
      await ctr('images', 'push', ...registry(), ref);

      const doc = await assertImageInBerth('ctr/app', 'v1', image.manifestDigest);
      for (const blob of [doc.config!.digest, ...doc.layers!.map((l) => l.digest)]) {
        const local = await readFile(path.join(image.layoutDir, 'blobs', 'sha256', hex(blob)));
        assert.ok(local.equals(await berthBlob('ctr/app', blob)), `blob ${blob} byte-identical to the layout's`);
      }

      await ctr('images', 'rm', '--sync', ref);
      const left = await contentDigests();
      for (const blob of image.blobs) assert.ok(!left.includes(blob), `${blob} garbage-collected before the pull`);
      const mark = berth.logs.length;
      await ctr('images', 'pull', ...registry(), ref);
      assert.equal((await listImages()).get(ref), image.manifestDigest);
      const have = await contentDigests();
      for (const blob of [image.manifestDigest, ...image.blobs]) assert.ok(have.includes(blob), `${blob} pulled`);
      assertDownloaded(mark, 'ctr/app', image.blobs);
    });

    it('pulls by digest into a fresh namespace', async () => {
      const ref = `${berth.host}/ctr/app@${image.manifestDigest}`;
      const mark = berth.logs.length;
      await containerd.ctr(['images', 'pull', ...registry(), ref], { namespace: 'by-digest' });
      assert.equal((await listImages('by-digest')).get(ref), image.manifestDigest);
      assertDownloaded(mark, 'ctr/app', image.blobs);
    });

    it('pushes a Docker archive with uncompressed layers', async () => {
      // Its own namespace: in one that already holds the gzip layers of the same
      // diff_ids, ctr's import would reuse those and no uncompressed layer would travel.
      const ns = 'docker-archive';
      const ctrNs = (...args: string[]) => containerd.ctr(args, { namespace: ns });
      await ctrNs('images', 'import', dockerArchive);
      const ref = `${berth.host}/ctr/docker:v1`;
      await ctrNs('images', 'tag', 'docker.io/berth-test/clients:v1', ref);
      const digest = (await listImages(ns)).get(ref)!;
      await ctrNs('images', 'push', ...registry(), ref);
      const doc = await assertImageInBerth('ctr/docker', 'v1', digest);
      assert.equal(doc.mediaType, MEDIA_TYPES.dockerManifest);
      assert.equal(doc.config!.digest, imageConfig);
      assert.deepEqual(doc.layers!.map((l) => l.mediaType), [DOCKER_LAYER_TAR, DOCKER_LAYER_TAR]);

      await ctrNs('images', 'rm', '--sync', ref, 'docker.io/berth-test/clients:v1');
      assert.deepEqual(await contentDigests(ns), [], 'nothing left before the pull');
      const mark = berth.logs.length;
      await ctrNs('images', 'pull', ...registry(), ref);
      assert.equal((await listImages(ns)).get(ref), digest);
      assertDownloaded(mark, 'ctr/docker', [doc.config!.digest, ...doc.layers!.map((l) => l.digest)]);
    });

    it('pushes and pulls every platform of a multi-arch OCI index', async () => {
      const ns = 'multi';
      const archive = await layoutTar(index.layoutDir, path.join(work, 'index-oci.tar'));
      const ref = `${berth.host}/ctr/multi:multi`;
      await containerd.ctr(['images', 'import', '--all-platforms', '--base-name', `${berth.host}/ctr/multi`, archive], { namespace: ns });
      await containerd.ctr(['images', 'push', ...registry(), ref], { namespace: ns });

      const { bytes, doc } = await berthManifest('ctr/multi', 'multi');
      assert.equal(sha256Digest(bytes), index.manifestDigest, 'the index is pushed unchanged');
      for (const child of doc.manifests!) await assertImageInBerth('ctr/multi', child.digest, child.digest);

      const all = [...(await listImages(ns)).keys()];
      await containerd.ctr(['images', 'rm', '--sync', ...all], { namespace: ns });
      assert.deepEqual(await contentDigests(ns), [], 'nothing left before the pull');
      const mark = berth.logs.length;
      await containerd.ctr(['images', 'pull', '--all-platforms', ...registry(), ref], { namespace: ns });
      assert.equal((await listImages(ns)).get(ref), index.manifestDigest);
      const have = await contentDigests(ns);
      const expected = [index.manifestDigest, ...index.children!.map((c) => c.manifestDigest), ...index.blobs];
      for (const d of expected) assert.ok(have.includes(d), `${d} pulled`);
      assertDownloaded(mark, 'ctr/multi', index.blobs);
    });
  });
});
