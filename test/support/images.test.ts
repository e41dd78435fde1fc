import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  EMPTY_DESCRIPTOR,
  MEDIA_TYPES,
  buildArtifact,
  buildImage,
  buildIndex,
  pullImage,
  pushImage,
  sha256Digest,
  type BuiltImage,
  type Platform,
} from './images.js';
import { startReferenceRegistry, type ReferenceRegistry } from './reference-registry.js';
import { ensureTool, run } from './tools.js';

const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

interface Built {
  image: BuiltImage;
  sibling: BuiltImage;
  index: BuiltImage;
  artifact: BuiltImage;
}

/** Every kind of test image, in one layout. */
async function buildAll(dir: string): Promise<Built> {
  const image = await buildImage(dir, { tag: 'image', seed: 'img', layers: 3, layerBytes: 64 * 1024, sharedLayerSeed: 'base' });
  const sibling = await buildImage(dir, { tag: 'sibling', seed: 'sib', layers: 2, layerBytes: 64 * 1024, sharedLayerSeed: 'base' });
  const index = await buildIndex(dir, { tag: 'index', seed: 'idx', platforms: PLATFORMS, layers: 2, layerBytes: 8 * 1024 });
  const artifact = await buildArtifact(dir, {
    tag: 'artifact',
    subject: image.descriptor,
    artifactType: 'application/vnd.berth.test.signature.v1',
    content: 'signed by nobody',
  });
  return { image, sibling, index, artifact };
}

let scratch: string;
let layoutA: string;
let builtA: Built;
let registry: ReferenceRegistry;

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'berth-images-test-'));
  layoutA = path.join(scratch, 'a');
  [builtA, registry] = await Promise.all([buildAll(layoutA), startReferenceRegistry()]);
});

after(async () => {
  await registry?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function blobFile(layout: string, digest: string): Promise<Buffer> {
  return readFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

async function json<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse((await blobFile(layout, digest)).toString('utf8')) as T;
}

interface ManifestJson {
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number }[];
  manifests: { mediaType: string; digest: string; size: number; platform?: Platform }[];
  artifactType?: string;
  subject?: { digest: string };
}

interface ConfigJson {
  architecture: string;
  os: string;
  variant?: string;
  rootfs: { type: string; diff_ids: string[] };
  history: unknown[];
  config: object;
}

test('builds are byte-identical across runs and directories', async () => {
  const layoutB = path.join(scratch, 'b');
  const builtB = await buildAll(layoutB);
  const strip = (b: Built) => JSON.stringify(b).replaceAll(layoutA, '').replaceAll(layoutB, '');
  assert.equal(strip(builtA), strip(builtB));
  const files = async (dir: string) => (await readdir(dir, { recursive: true })).sort();
  const names = await files(layoutA);
  assert.deepEqual(await files(layoutB), names);
  for (const name of names.filter((n) => n.startsWith('blobs/sha256/') || n === 'index.json')) {
    const a = await readFile(path.join(layoutA, name));
    assert.deepEqual(await readFile(path.join(layoutB, name)), a, name);
    if (name.startsWith('blobs/')) assert.equal(sha256Digest(a), `sha256:${path.basename(name)}`);
  }
});

test('images are valid: diff_ids, platforms, shared base layer, incompressible layers', async () => {
  const { image, sibling, index, artifact } = builtA;
  for (const img of [image, sibling, ...(index.children ?? [])]) {
    const m = await json<ManifestJson>(layoutA, img.manifestDigest);
    assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(m.config.mediaType, MEDIA_TYPES.ociConfig);
    const config = await json<ConfigJson>(layoutA, m.config.digest);
    assert.equal(config.rootfs.type, 'layers');
    assert.equal(config.history.length, m.layers.length);
    assert.deepEqual(
      config.rootfs.diff_ids,
      await Promise.all(m.layers.map(async (l) => sha256Digest(gunzipSync(await blobFile(layoutA, l.digest))))),
    );
    assert.deepEqual(img.blobs, [m.config.digest, ...m.layers.map((l) => l.digest)].sort());
  }
  // 64 KiB of sha256 output must not gzip to nothing.
  const first = (await json<ManifestJson>(layoutA, image.manifestDigest)).layers[0]!;
  assert.ok(first.size > 64 * 1024, `layer is ${first.size} bytes`);
  // Layer 0 comes from sharedLayerSeed; the rest from each image's own seed.
  const imageLayers = (await json<ManifestJson>(layoutA, image.manifestDigest)).layers.map((l) => l.digest);
  const siblingLayers = (await json<ManifestJson>(layoutA, sibling.manifestDigest)).layers.map((l) => l.digest);
  assert.equal(imageLayers[0], siblingLayers[0]);
  assert.notEqual(imageLayers[1], siblingLayers[1]);

  const idx = await json<ManifestJson>(layoutA, index.manifestDigest);
  assert.equal(idx.mediaType, MEDIA_TYPES.ociIndex);
  assert.deepEqual(idx.manifests.map((d) => d.platform), PLATFORMS);
  for (const [i, d] of idx.manifests.entries()) {
    const config = await json<ConfigJson>(layoutA, (await json<ManifestJson>(layoutA, d.digest)).config.digest);
    assert.deepEqual({ os: config.os, architecture: config.architecture, variant: config.variant }, { variant: undefined, ...PLATFORMS[i] });
  }

  const art = await json<ManifestJson>(layoutA, artifact.manifestDigest);
  assert.equal(art.artifactType, 'application/vnd.berth.test.signature.v1');
  assert.deepEqual(art.config, EMPTY_DESCRIPTOR);
  assert.equal((await blobFile(layoutA, EMPTY_DESCRIPTOR.digest)).toString(), '{}');
  assert.deepEqual(art.subject, image.descriptor);
  assert.equal((await blobFile(layoutA, art.layers[0]!.digest)).toString(), 'signed by nobody');
});

test('skopeo reads every image in the layout', async () => {
  const skopeo = await ensureTool('skopeo');
  const { image, sibling, index, artifact } = builtA;
  for (const img of [image, sibling, index, ...(index.children ?? []), artifact]) {
    const { stdout } = await run(skopeo, ['inspect', '--raw', img.ref]);
    assert.equal(sha256Digest(stdout), img.manifestDigest, img.ref);
  }
});

// ---------------------------------------------------------------------------
// Round trips through distribution 2.8 (`docker-registry`)

const ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList].join(', ');

/** A manifest as the registry serves it, with its digest checked against the bytes. */
async function registryManifest(repo: string, ref: string): Promise<{ digest: string; contentType: string; body: ManifestJson }> {
  const res = await fetch(`http://${registry.base}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${repo}:${ref}: ${bytes.toString()}`);
  const digest = sha256Digest(bytes);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const body = JSON.parse(bytes.toString('utf8')) as ManifestJson;
  assert.equal(res.headers.get('content-type'), body.mediaType);
  return { digest, contentType: body.mediaType, body };
}

async function assertBlobsPresent(repo: string, digests: string[]): Promise<void> {
  for (const d of digests) {
    const res = await fetch(`http://${registry.base}/v2/${repo}/blobs/${d}`, { method: 'HEAD' });
    assert.equal(res.status, 200, `blob ${d} missing from ${repo}`);
  }
}

async function layersOf(layout: string, digest: string): Promise<string[]> {
  return (await json<ManifestJson>(layout, digest)).layers.map((l) => l.digest);
}

test('OCI image, index and artifact round-trip with digests unchanged', async () => {
  const { image, index, artifact } = builtA;
  const back = path.join(scratch, 'back-oci');
  for (const [img, repo] of [
    [image, 'oci/image'],
    [index, 'oci/index'],
    [artifact, 'oci/image'], // next to its subject
  ] as const) {
    assert.equal(await pushImage(img, `${registry.base}/${repo}:${img.tag}`), img.manifestDigest);
    const served = await registryManifest(repo, img.tag);
    assert.equal(served.digest, img.manifestDigest);
    assert.equal(served.contentType, img.mediaType);
    await assertBlobsPresent(repo, img.blobs);
    for (const child of img.children ?? []) {
      assert.equal((await registryManifest(repo, child.manifestDigest)).digest, child.manifestDigest);
    }
    assert.equal(await pullImage(`${registry.base}/${repo}:${img.tag}`, back, img.tag), img.manifestDigest);
  }
});

test('skopeo --format v2s2 yields a Docker schema2 image that keeps its blobs', async () => {
  const { image } = builtA;
  const digest = await pushImage(image, `${registry.base}/docker/image:v2s2`, { format: 'v2s2' });
  const served = await registryManifest('docker/image', 'v2s2');
  assert.equal(served.digest, digest);
  assert.equal(served.contentType, MEDIA_TYPES.dockerManifest);
  assert.equal(served.body.config.mediaType, MEDIA_TYPES.dockerConfig);
  assert.ok(served.body.layers.every((l) => l.mediaType === MEDIA_TYPES.dockerLayerGzip));
  // Conversion relabels; it must not touch config or layer bytes.
  const original = await json<ManifestJson>(layoutA, image.manifestDigest);
  assert.equal(served.body.config.digest, original.config.digest);
  assert.deepEqual(served.body.layers.map((l) => l.digest), original.layers.map((l) => l.digest));
  await assertBlobsPresent('docker/image', image.blobs);

  // Back to OCI: skopeo converts again; layers survive whatever it does to the manifest.
  const back = path.join(scratch, 'back-docker-image');
  const pulled = await pullImage(`${registry.base}/docker/image@${digest}`, back, 'x');
  assert.deepEqual(await layersOf(back, pulled), original.layers.map((l) => l.digest));
});

test('skopeo --all --format v2s2 turns an OCI index into a Docker manifest list', async () => {
  const { index } = builtA;
  const digest = await pushImage(index, `${registry.base}/docker/list:v2s2`, { format: 'v2s2' });
  const served = await registryManifest('docker/list', 'v2s2');
  assert.equal(served.digest, digest);
  assert.equal(served.contentType, MEDIA_TYPES.dockerManifestList);
  assert.deepEqual(served.body.manifests.map((d) => d.platform), PLATFORMS);
  for (const [i, d] of served.body.manifests.entries()) {
    assert.equal(d.mediaType, MEDIA_TYPES.dockerManifest);
    const child = await registryManifest('docker/list', d.digest);
    assert.equal(child.contentType, MEDIA_TYPES.dockerManifest);
    assert.deepEqual(child.body.layers.map((l) => l.digest), await layersOf(layoutA, index.children![i]!.manifestDigest));
  }
  await assertBlobsPresent('docker/list', index.blobs);

  const back = path.join(scratch, 'back-docker-list');
  const pulled = await pullImage(`${registry.base}/docker/list:v2s2`, back, 'x');
  const pulledIndex = await json<ManifestJson>(back, pulled);
  assert.equal(pulledIndex.mediaType, MEDIA_TYPES.ociIndex);
  assert.deepEqual(pulledIndex.manifests.map((d) => d.platform), PLATFORMS);
  for (const [i, d] of pulledIndex.manifests.entries()) {
    assert.deepEqual(await layersOf(back, d.digest), await layersOf(layoutA, index.children![i]!.manifestDigest));
  }
});

test('sha256Digest matches node:crypto', () => {
  assert.equal(sha256Digest('{}'), EMPTY_DESCRIPTOR.digest);
  assert.equal(sha256Digest(''), `sha256:${createHash('sha256').digest('hex')}`);
});
