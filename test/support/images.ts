// Deterministic test images written as OCI image layouts (skopeo's `oci:` transport),
// generated in-process: a tiny ustar writer, gzip at a fixed level, mtime/uid 0,
// and sha256-counter-mode file contents, so the same inputs give the same bytes.
//
// Docker media types come from skopeo's conversion, found to work with Debian's
// skopeo 1.9.3 against distribution 2.8.2 (`docker-registry`):
//  - `copy --format v2s2` turns an OCI image into a Docker schema2 manifest; config
//    and layer blobs are reused byte-for-byte (only media types change).
//  - `copy --all --format v2s2` turns an OCI index into a Docker manifest list
//    (platforms kept, each child converted as above).
//  - Artifacts (artifactType, empty config, subject) copy verbatim; the digest is kept.
//  - Copying Docker types back to `oci:` converts them to OCI and re-serialises the
//    config from Go structs; see the config key order below for why digests survive.
// What does NOT work in 1.9.3: its `oci:` transport ignores index.json entries with
// Docker media types ("no descriptor found for reference"), so Docker-typed images
// cannot be written into a layout directly; and `oci:dir@sha256:...` is not
// accepted, so buildIndex() also tags each platform image.
//
// Builds into one layout dir must not run concurrently: index.json is read-modify-write.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureTool, run } from './tools.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** The OCI 1.1 "empty" blob `{}`, used as config of artifacts. */
export const EMPTY_DESCRIPTOR = {
  mediaType: MEDIA_TYPES.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** skopeo reference, e.g. "oci:/tmp/x:latest". */
  ref: string;
  mediaType: string;
  manifestDigest: string;
  manifestSize: number;
  /** The manifest's descriptor (usable as an artifact `subject`). */
  descriptor: Descriptor;
  /** Every config and layer blob digest reachable from the manifest, deduplicated, sorted. */
  blobs: string[];
  /** For an index / manifest list: the per-platform images it references, in order. */
  children?: BuiltImage[];
}

export interface ImageOptions {
  tag: string;
  seed: string;
  layers: number;
  /** Uncompressed file payload per layer (default 16 KiB). */
  layerBytes?: number;
  platform?: Platform;
  /**
   * Derive layer 0 from this seed instead of `seed`, so that images built with
   * the same sharedLayerSeed (and layerBytes) share a byte-identical base layer.
   */
  sharedLayerSeed?: string;
}

export interface IndexOptions {
  tag: string;
  seed: string;
  platforms: Platform[];
  /** Layers per platform image (default 1). */
  layers?: number;
  layerBytes?: number;
  sharedLayerSeed?: string;
}

export interface ArtifactOptions {
  tag: string;
  subject: Descriptor;
  artifactType: string;
  content: string;
  /** Media type of the single layer (default "text/plain"). */
  layerMediaType?: string;
}

// ---------------------------------------------------------------------------
// Deterministic bytes

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** `length` pseudo-random bytes: sha256(seed, counter) blocks, so gzip cannot shrink them away. */
export function pseudoRandomBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let counter = 0, off = 0; off < length; counter++, off += 32) {
    createHash('sha256').update(`${seed}\0${counter}`).digest().copy(out, off);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Minimal ustar writer: regular files and directories, everything owned by
// 0:0 with mtime 0, so identical entries give identical archives.

export interface TarEntry {
  /** Path inside the archive, without leading "/"; directories may end in "/". */
  path: string;
  type: 'file' | 'dir';
  /** File content (files only). */
  data?: Uint8Array;
  /** Defaults: 0644 for files, 0755 for directories. */
  mode?: number;
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar: "${value}" does not fit in ${length} bytes`);
  bytes.copy(buf, offset);
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 zero-padded octal digits and a NUL terminator.
  const s = value.toString(8).padStart(length - 1, '0');
  if (s.length > length - 1) throw new Error(`tar: ${value} does not fit in a ${length}-byte octal field`);
  writeString(buf, offset, length, `${s}\0`);
}

function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  // ustar stores long paths as prefix (<=155) + "/" + name (<=100).
  for (let i = name.lastIndexOf('/', name.length - 2); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  throw new Error(`tar: path too long for ustar: ${name}`);
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  let p = entry.path.replace(/^\/+/, '');
  if (entry.type === 'dir' && !p.endsWith('/')) p += '/';
  const { prefix, name } = splitName(p);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644));
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, 0); // mtime
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(h, 156, 1, entry.type === 'dir' ? '5' : '0');
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 265, 32, 'root');
  writeString(h, 297, 32, 'root');
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** A complete ustar archive (entries in the given order, two zero blocks at the end). */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? Buffer.from(e.data ?? new Uint8Array()) : Buffer.alloc(0);
    parts.push(tarHeader(e, data.length), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// OCI layout writing

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function ensureLayout(layoutDir: string): Promise<void> {
  // skopeo splits "oci:<dir>:<tag>" at the first colon after the path.
  if (layoutDir.includes(':')) throw new Error(`layout dir must not contain ":": ${layoutDir}`);
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const marker = path.join(layoutDir, 'oci-layout');
  if (!(await exists(marker))) await writeFile(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

async function writeBlob(layoutDir: string, data: Uint8Array, mediaType: string): Promise<Descriptor> {
  const digest = sha256Digest(data);
  const file = path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  // Content-addressed: an existing file already holds exactly these bytes.
  if (!(await exists(file))) await writeFile(file, data);
  return { mediaType, digest, size: data.length };
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

interface LayoutIndexEntry extends Descriptor {
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

const REF_NAME = 'org.opencontainers.image.ref.name';

/** Points `tag` at `desc` in index.json, replacing an earlier entry for the same tag. */
async function tagInLayout(layoutDir: string, tag: string, desc: Descriptor): Promise<void> {
  const file = path.join(layoutDir, 'index.json');
  let manifests: LayoutIndexEntry[] = [];
  if (await exists(file)) {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { manifests?: LayoutIndexEntry[] };
    manifests = (parsed.manifests ?? []).filter((m) => m.annotations?.[REF_NAME] !== tag);
  }
  manifests.push({ ...desc, annotations: { [REF_NAME]: tag } });
  await writeFile(file, jsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }));
}

function built(
  layoutDir: string,
  tag: string,
  desc: Descriptor,
  blobs: Iterable<string>,
  children?: BuiltImage[],
): BuiltImage {
  return {
    layoutDir,
    tag,
    ref: `oci:${layoutDir}:${tag}`,
    mediaType: desc.mediaType,
    manifestDigest: desc.digest,
    manifestSize: desc.size,
    descriptor: { mediaType: desc.mediaType, digest: desc.digest, size: desc.size },
    blobs: [...new Set(blobs)].sort(),
    ...(children ? { children } : {}),
  };
}

const EPOCH = '1970-01-01T00:00:00Z';

function layerEntries(layerSeed: string, bytes: number): TarEntry[] {
  const dir = `berth-test/${createHash('sha256').update(layerSeed).digest('hex').slice(0, 16)}`;
  // A few files per layer so the tar has some structure; sizes sum to `bytes`.
  const files = Math.max(1, Math.min(4, Math.ceil(bytes / 4096)));
  const entries: TarEntry[] = [
    { path: 'berth-test/', type: 'dir' },
    { path: `${dir}/`, type: 'dir' },
  ];
  let left = bytes;
  for (let i = 0; i < files; i++) {
    const size = i === files - 1 ? left : Math.floor(bytes / files);
    left -= size;
    entries.push({ path: `${dir}/file-${i}.bin`, type: 'file', data: pseudoRandomBytes(`${layerSeed}/file/${i}`, size) });
  }
  entries.push({ path: `${dir}/seed.txt`, type: 'file', data: Buffer.from(`${layerSeed}\n`) });
  return entries;
}

/** Writes an image's blobs and manifest into the layout, without tagging it. */
async function writeImage(layoutDir: string, opts: Omit<ImageOptions, 'tag'>): Promise<{ desc: Descriptor; blobs: string[] }> {
  if (!Number.isInteger(opts.layers) || opts.layers < 0) throw new Error(`layers must be a non-negative integer`);
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layerBytes = opts.layerBytes ?? 16 * 1024;
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  const history: { created: string; created_by: string }[] = [];
  for (let i = 0; i < opts.layers; i++) {
    const layerSeed = `${i === 0 && opts.sharedLayerSeed !== undefined ? opts.sharedLayerSeed : opts.seed}/layer/${i}`;
    const raw = tar(layerEntries(layerSeed, layerBytes));
    diffIds.push(sha256Digest(raw));
    // Fixed level: gzip output is then a pure function of the input (header mtime is 0).
    layers.push(await writeBlob(layoutDir, gzipSync(raw, { level: 6 }), MEDIA_TYPES.ociLayerGzip));
    history.push({ created: EPOCH, created_by: `berth-test layer ${layerSeed}` });
  }
  // Key order matches the Go structs skopeo 1.9 (image-spec 1.0.2) marshals, so a
  // Docker->OCI conversion, which re-serialises the config, reproduces these bytes.
  const config = {
    created: EPOCH,
    architecture: platform.architecture,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    os: platform.os,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Labels: { 'org.berth.test.seed': opts.seed },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
  const configDesc = await writeBlob(layoutDir, jsonBytes(config), MEDIA_TYPES.ociConfig);
  const mediaType = MEDIA_TYPES.ociManifest;
  const manifest = { schemaVersion: 2, mediaType, config: configDesc, layers };
  const desc = await writeBlob(layoutDir, jsonBytes(manifest), mediaType);
  return { desc, blobs: [configDesc.digest, ...layers.map((l) => l.digest)] };
}

/** A single-platform OCI image, tagged `tag` in the layout. */
export async function buildImage(layoutDir: string, opts: ImageOptions): Promise<BuiltImage> {
  layoutDir = path.resolve(layoutDir);
  await ensureLayout(layoutDir);
  const { desc, blobs } = await writeImage(layoutDir, opts);
  await tagInLayout(layoutDir, opts.tag, desc);
  return built(layoutDir, opts.tag, desc, blobs);
}

/**
 * A multi-platform OCI image index, one image per platform; each image is also
 * tagged `<tag>-<os>-<arch>[-<variant>]` so skopeo can address it alone.
 */
export async function buildIndex(layoutDir: string, opts: IndexOptions): Promise<BuiltImage> {
  layoutDir = path.resolve(layoutDir);
  await ensureLayout(layoutDir);
  const children: BuiltImage[] = [];
  const entries: (Descriptor & { platform: Platform })[] = [];
  for (const platform of opts.platforms) {
    const platformKey = [platform.os, platform.architecture, platform.variant ?? ''].join('/');
    const { desc, blobs } = await writeImage(layoutDir, {
      seed: `${opts.seed}/${platformKey}`,
      layers: opts.layers ?? 1,
      ...(opts.layerBytes !== undefined ? { layerBytes: opts.layerBytes } : {}),
      ...(opts.sharedLayerSeed !== undefined ? { sharedLayerSeed: opts.sharedLayerSeed } : {}),
      platform,
    });
    // skopeo 1.9's oci: transport cannot address a manifest by digest, so children get tags too.
    const childTag = `${opts.tag}-${platformKey.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/-+$/, '')}`;
    await tagInLayout(layoutDir, childTag, desc);
    children.push(built(layoutDir, childTag, desc, blobs));
    entries.push({
      ...desc,
      platform: {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
      },
    });
  }
  const mediaType = MEDIA_TYPES.ociIndex;
  const desc = await writeBlob(layoutDir, jsonBytes({ schemaVersion: 2, mediaType, manifests: entries }), mediaType);
  await tagInLayout(layoutDir, opts.tag, desc);
  return built(layoutDir, opts.tag, desc, children.flatMap((c) => c.blobs), children);
}

/** An OCI 1.1 artifact: artifactType, empty config, one layer holding `content`, and a subject. */
export async function buildArtifact(layoutDir: string, opts: ArtifactOptions): Promise<BuiltImage> {
  layoutDir = path.resolve(layoutDir);
  await ensureLayout(layoutDir);
  const empty = await writeBlob(layoutDir, Buffer.from('{}'), MEDIA_TYPES.ociEmpty);
  if (empty.digest !== EMPTY_DESCRIPTOR.digest) throw new Error('empty descriptor digest mismatch');
  const layer = await writeBlob(layoutDir, Buffer.from(opts.content, 'utf8'), opts.layerMediaType ?? 'text/plain');
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: opts.artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size },
  };
  const desc = await writeBlob(layoutDir, jsonBytes(manifest), MEDIA_TYPES.ociManifest);
  await tagInLayout(layoutDir, opts.tag, desc);
  return built(layoutDir, opts.tag, desc, [empty.digest, layer.digest]);
}

// ---------------------------------------------------------------------------
// Moving images in and out of registries with skopeo (plain HTTP, no auth)

export interface PushOptions {
  /**
   * "oci" (default) pushes the layout's bytes unchanged (--preserve-digests makes
   * skopeo fail rather than alter them); "v2s2" converts to Docker schema2 and,
   * for an index, to a Docker manifest list.
   */
  format?: 'oci' | 'v2s2';
}

const SKOPEO_TIMEOUT_MS = 120_000;

async function withDigestFile(fn: (file: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-skopeo-'));
  try {
    const file = path.join(dir, 'digest');
    await fn(file);
    return (await readFile(file, 'utf8')).trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Copies `image` (every platform of an index) to `dest`, "host:port/repo:tag",
 * and returns the digest of the top-level manifest as pushed.
 */
export async function pushImage(image: BuiltImage, dest: string, opts: PushOptions = {}): Promise<string> {
  const skopeo = await ensureTool('skopeo');
  const formatArgs = opts.format === 'v2s2' ? ['--format', 'v2s2'] : ['--preserve-digests'];
  return withDigestFile((file) =>
    run(
      skopeo,
      ['copy', '--quiet', '--all', '--dest-tls-verify=false', ...formatArgs, '--digestfile', file, image.ref, `docker://${dest}`],
      { timeoutMs: SKOPEO_TIMEOUT_MS },
    ).then(() => undefined),
  );
}

/**
 * Copies `src`, "host:port/repo:tag" or "host:port/repo@sha256:...", with every
 * platform into the OCI layout at `layoutDir` as `tag`; returns the manifest digest
 * written there (Docker types arrive converted to OCI).
 */
export async function pullImage(src: string, layoutDir: string, tag: string): Promise<string> {
  const skopeo = await ensureTool('skopeo');
  layoutDir = path.resolve(layoutDir);
  if (layoutDir.includes(':')) throw new Error(`layout dir must not contain ":": ${layoutDir}`);
  return withDigestFile((file) =>
    run(
      skopeo,
      ['copy', '--quiet', '--all', '--src-tls-verify=false', '--digestfile', file, `docker://${src}`, `oci:${layoutDir}:${tag}`],
      { timeoutMs: SKOPEO_TIMEOUT_MS },
    ).then(() => undefined),
  );
}
