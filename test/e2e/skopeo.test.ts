/**
 * Real-client tests: skopeo (containers/image) pushes into Berth and pulls
 * back, byte for byte, every kind of manifest the registry stores.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBerth, type TestBerth } from '../support/berth.js';
import { buildArtifact, buildImage, buildIndex, MEDIA_TYPES, pushImage, type BuiltImage } from '../support/images.js';
import { ensureTool, run } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('skopeo against Berth', () => {
  let berth: TestBerth;
  let skopeo: string;
  let work: string;
  let image: BuiltImage;
  let index: BuiltImage;

  const sk = (...args: string[]) => run(skopeo, args, { timeoutMs: 120_000 });
  const inspectRaw = async (ref: string) => Buffer.from((await sk('inspect', '--raw', '--tls-verify=false', `docker://${berth.host}/${ref}`)).stdout);

  /** Copies `ref` from Berth into a `dir:` layout (kept byte-exact) and checks every file against its digest. */
  async function pullExact(ref: string): Promise<{ manifest: Buffer; files: string[] }> {
    const dir = await mkdtemp(path.join(work, 'dir-'));
    await sk('copy', '--quiet', '--src-tls-verify=false', `docker://${berth.host}/${ref}`, `dir:${dir}`);
    const files = (await readdir(dir)).filter((f) => f !== 'version' && f !== 'manifest.json');
    for (const f of files) {
      const data = await readFile(path.join(dir, f));
      assert.equal(sha256(data), `sha256:${f.replace(/^sha256:/, '')}`, `blob ${f} pulled intact`);
    }
    return { manifest: await readFile(path.join(dir, 'manifest.json')), files };
  }

  /** Request log lines Berth wrote since `from`. */
  const requests = (from: number) =>
    berth.logs
      .slice(from)
      .map((l) => JSON.parse(l) as { msg: string; method: string; route: string; status: number; path: string })
      .filter((l) => l.msg === 'request');

  before(async () => {
    skopeo = await ensureTool('skopeo');
    berth = await startBerth();
    work = await mkdtemp(path.join(tmpdir(), 'berth-skopeo-'));
    image = await buildImage(path.join(work, 'layout-image'), { tag: 'v1', seed: 'multi-layer', layers: 3, layerBytes: 64 * 1024 });
    index = await buildIndex(path.join(work, 'layout-index'), {
      tag: 'multi',
      seed: 'multi-arch',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
  });
  after(async () => {
    await berth?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies a multi-layer OCI image in and out unchanged', async () => {
    const digest = await pushImage(image, `${berth.host}/library/app:v1`);
    assert.equal(digest, image.manifestDigest);
    const raw = await inspectRaw('library/app:v1');
    assert.equal(sha256(raw), image.manifestDigest, 'the manifest is served byte-for-byte');
    const { files } = await pullExact('library/app:v1');
    for (const blob of image.blobs) assert.ok(files.includes(blob.replace('sha256:', '')), `blob ${blob} pulled`);
    const info = JSON.parse((await sk('inspect', '--tls-verify=false', `docker://${berth.host}/library/app:v1`)).stdout) as { Digest: string; Layers: string[] };
    assert.equal(info.Digest, image.manifestDigest);
    assert.equal(info.Layers.length, 3);
  });

  it('pulls by digest', async () => {
    const { manifest } = await pullExact(`library/app@${image.manifestDigest}`);
    assert.equal(sha256(manifest), image.manifestDigest);
  });

  it('copies a multi-arch OCI index with --all', async () => {
    const digest = await pushImage(index, `${berth.host}/multi/arch:latest`);
    assert.equal(digest, index.manifestDigest);
    const raw = await inspectRaw('multi/arch:latest');
    assert.equal(sha256(raw), index.manifestDigest);
    const doc = JSON.parse(raw.toString()) as { mediaType: string; manifests: { digest: string }[] };
    assert.equal(doc.mediaType, MEDIA_TYPES.ociIndex);
    for (const child of doc.manifests) {
      const childRaw = await inspectRaw(`multi/arch@${child.digest}`);
      assert.equal(sha256(childRaw), child.digest, 'each platform manifest is stored');
    }
    const dir = await mkdtemp(path.join(work, 'oci-'));
    await sk('copy', '--quiet', '--all', '--src-tls-verify=false', `docker://${berth.host}/multi/arch:latest`, `oci:${dir}:back`);
    const back = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(back.manifests[0]!.digest, index.manifestDigest, 'round trip keeps the index digest');
  });

  it('copies a Docker manifest list (--all --format v2s2)', async () => {
    const digest = await pushImage(index, `${berth.host}/docker/list:latest`, { format: 'v2s2' });
    const raw = await inspectRaw('docker/list:latest');
    assert.equal(sha256(raw), digest);
    const doc = JSON.parse(raw.toString()) as { mediaType: string; manifests: { digest: string; mediaType: string; platform: { architecture: string } }[] };
    assert.equal(doc.mediaType, MEDIA_TYPES.dockerManifestList);
    assert.deepEqual(doc.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
    for (const child of doc.manifests) {
      assert.equal(child.mediaType, MEDIA_TYPES.dockerManifest);
      const { manifest } = await pullExact(`docker/list@${child.digest}`);
      assert.equal(sha256(manifest), child.digest);
    }
  });

  it('copies a Docker schema2 image (--format v2s2)', async () => {
    const digest = await pushImage(image, `${berth.host}/docker/image:v2s2`, { format: 'v2s2' });
    const { manifest } = await pullExact('docker/image:v2s2');
    assert.equal(sha256(manifest), digest);
    assert.equal((JSON.parse(manifest.toString()) as { mediaType: string }).mediaType, MEDIA_TYPES.dockerManifest);
  });

  it('stores an artifact with a subject and lists it as a referrer', async () => {
    const artifact = await buildArtifact(path.join(work, 'layout-artifact'), {
      tag: 'sig',
      subject: image.descriptor,
      artifactType: 'application/vnd.example.signature.v1',
      content: 'signed by the test suite',
    });
    const digest = await pushImage(artifact, `${berth.host}/library/app:sig`);
    assert.equal(digest, artifact.manifestDigest);
    const res = await fetch(`${berth.url}/v2/library/app/referrers/${image.manifestDigest}`);
    assert.equal(res.status, 200);
    const referrers = (await res.json()) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(
      referrers.manifests.map((m) => [m.digest, m.artifactType]),
      [[artifact.manifestDigest, 'application/vnd.example.signature.v1']],
    );
    const { manifest } = await pullExact(`library/app@${artifact.manifestDigest}`);
    assert.equal(sha256(manifest), artifact.manifestDigest);
  });

  it('lists tags, including nested repository names', async () => {
    await pushImage(image, `${berth.host}/a/b/c/deep:one`);
    await pushImage(image, `${berth.host}/a/b/c/deep:two`);
    const tags = JSON.parse((await sk('list-tags', '--tls-verify=false', `docker://${berth.host}/a/b/c/deep`)).stdout) as { Repository: string; Tags: string[] };
    assert.deepEqual(tags.Tags, ['one', 'two']);
  });

  it('copies between two repositories of the same registry by mounting, not re-uploading', async () => {
    const mark = berth.logs.length;
    await sk('copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${berth.host}/library/app:v1`, `docker://${berth.host}/other/app:copied`);
    const log = requests(mark);
    const mounts = log.filter((l) => l.route === 'upload-start' && l.path.includes('/other/app/') && l.status === 201);
    const sent = log.filter((l) => l.route === 'upload' && l.method === 'PUT').length;
    // Every layer is mounted; containers/image always reads the config and
    // uploads it again itself (it never asks to mount a config), so at most
    // that one small blob travels.
    const layerCount = image.blobs.length - 1;
    assert.equal(mounts.length, layerCount, `every layer mounted: ${mounts.length} of ${layerCount}`);
    assert.ok(sent <= 1, `only the config may be re-sent, saw ${sent} uploads`);
    const raw = await inspectRaw('other/app:copied');
    assert.equal(sha256(raw), image.manifestDigest);
    await pullExact('other/app:copied');
  });

  it('deletes an image by digest', async () => {
    await pushImage(image, `${berth.host}/to/delete:gone`);
    await sk('delete', '--tls-verify=false', `docker://${berth.host}/to/delete@${image.manifestDigest}`);
    await assert.rejects(inspectRaw('to/delete:gone'), /manifest unknown|not found/i);
    // Other repositories holding the same image are untouched.
    assert.equal(sha256(await inspectRaw('library/app:v1')), image.manifestDigest);
  });

  it('re-pushing the same image is a no-op that succeeds', async () => {
    const digest = await pushImage(image, `${berth.host}/library/app:v1`);
    assert.equal(digest, image.manifestDigest);
  });
});
