/**
 * Shared helpers for the protocol suite (OCI distribution-spec v1.1 and the
 * Docker Registry HTTP API V2 as Berth implements them). Every test talks to
 * a real in-process Berth over loopback with plain `fetch`, as a client would.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { CLI } from '../../src/hub/index.js';
import { BearerClient } from '../support/bearer.js';
import { spawnBerth, startBerth, type BerthProcess, type TestBerth } from '../support/berth.js';
import { freePort } from '../support/tools.js';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Every manifest type Berth stores: what a modern client sends as Accept. */
export const ACCEPT_ALL = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList].join(', ');

/** The OCI 1.1 empty blob `{}` (image-spec manifest.md, "Guidance for an Empty Descriptor"). */
export const EMPTY_BYTES = Buffer.from('{}');
export const EMPTY_DESCRIPTOR = {
  mediaType: MT.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;

export type { Descriptor } from '../../src/registry/manifests/index.js';
import type { Descriptor } from '../../src/registry/manifests/index.js';

// ---- server ------------------------------------------------------------------

export interface BerthHandle {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly berth: TestBerth;
  /** The data directory (storage.filesystem.rootdirectory). */
  readonly root: string;
}

/**
 * A data directory on tmpfs when the machine has one: the protocol suite
 * tests HTTP behaviour, not durability, and the filesystem store fsyncs
 * every commit, which on a disk dominates the suite's run time.
 */
export async function dataDir(): Promise<{ root: string; remove(): Promise<void> }> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const root = await mkdtemp(path.join(base, 'berth-protocol-'));
  return { root, remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * BERTH_AUTH=accounts (test/protocol-accounts.test.ts): every server runs
 * with `auth: accounts`, an administrator is created in it, and every
 * request of the suite goes through the Bearer flow as the OCI conformance
 * suite's do with credentials: a 401 challenge, a token from the realm with
 * the administrator's Basic credentials and the challenged scope, the
 * request again with the token.
 */
export const TOKEN_AUTH = process.env.BERTH_AUTH === 'accounts';
export const ADMIN = { user: 'operator', password: 'operator-password-1' };
let bearer: BearerClient | undefined;
process.on('exit', () => {
  if (bearer && process.env.BERTH_BEARER_STATS) console.log('bearer flow:', bearer.stats);
});

/** The client doing the Bearer flow for the suite (token auth on only). */
export function bearerClient(): BearerClient | undefined {
  return bearer;
}

function installBearerFlow(): void {
  if (bearer) return;
  bearer = new BearerClient(ADMIN, globalThis.fetch.bind(globalThis));
  globalThis.fetch = bearer.fetch;
}

/**
 * The header line a request written on a socket must carry: with token
 * auth on, `Authorization: Bearer …` for that method and path; otherwise nothing.
 */
export async function authorizationLine(base: string, method: string, path: string): Promise<string> {
  if (!bearer) return '';
  const value = await bearer.authorization(base, method, path);
  return value ? `Authorization: ${value}\r\n` : '';
}

/**
 * Starts one Berth for the enclosing file (or describe) and stops it afterwards.
 * In-process by default; with BERTH_TARGET=process the same tests run against
 * `berth serve` as a real child process (test/protocol-process.test.ts does that).
 */
export function useBerth(env: Record<string, string> = {}): BerthHandle {
  let b: TestBerth | undefined;
  let proc: BerthProcess | undefined;
  let dir: Awaited<ReturnType<typeof dataDir>> | undefined;
  before(async () => {
    dir = await dataDir();
    if (process.env.BERTH_TARGET === 'process') {
      proc = await spawnBerth(await freePort(), {
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir.root,
        REGISTRY_STORAGE_DELETE_ENABLED: 'true',
        REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
        ...env,
      });
    } else if (TOKEN_AUTH) {
      b = await startBerth({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir.root, REGISTRY_AUTH: 'accounts', ...env });
      const hub = b.server.hub!;
      await hub.accounts.create({ name: ADMIN.user, password: ADMIN.password, admin: true }, CLI);
      installBearerFlow();
      // The administrator's personal access token as the password: checked by its SHA-256, where a
      // password costs an scrypt on every token request (a few hundred of them in the suite).
      const pat = await hub.tokens.create(ADMIN.user, { name: 'protocol-suite', scopes: ['read', 'write', 'delete'] }, CLI);
      bearer!.use(new URL(b.url).origin, { user: ADMIN.user, password: pat.secret });
    } else {
      b = await startBerth({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir.root, ...env });
    }
  });
  after(async () => {
    await b?.close();
    if (proc) assert.equal(await proc.stop('SIGTERM'), 0, 'berth exits cleanly on SIGTERM');
    await dir?.remove();
  });
  return {
    get url() {
      const url = b?.url ?? proc?.url;
      assert.ok(url, 'berth not started');
      return url;
    },
    get berth() {
      assert.ok(b, 'berth not started in this process');
      return b;
    },
    get root() {
      assert.ok(dir, 'berth not started');
      return dir.root;
    },
  };
}

let repoCounter = 0;
/** A repository name unused so far in this process, so tests sharing a server do not see each other. */
export function uniqueRepo(prefix = 'repo'): string {
  repoCounter += 1;
  // With accounts on, a one-component name is an alias of library/NAME: the suite names the repository itself.
  return TOKEN_AUTH ? `library/${prefix}-${repoCounter}` : `${prefix}-${repoCounter}`;
}

// ---- digests and bytes ---------------------------------------------------------

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function sha512(data: Uint8Array | string): string {
  return `sha512:${createHash('sha512').update(data).digest('hex')}`;
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

/** A digest nothing in the registry has. */
export function unknownDigest(): string {
  return sha256(randomBytes(32));
}

// ---- requests and assertions -------------------------------------------------------

export interface ErrorBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

/**
 * Asserts an error response: the status, a JSON Content-Type and the spec's
 * `{"errors":[{"code","message","detail"}]}` envelope containing `code`.
 */
export async function expectError(res: Response, status: number, code?: string): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}${code ? ` ${code}` : ''}, got ${res.status}: ${text.slice(0, 500)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/, 'error responses are JSON');
  let body: ErrorBody;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    assert.fail(`error body is not JSON: ${text.slice(0, 200)}`);
  }
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `error envelope has a non-empty "errors" list: ${text.slice(0, 200)}`);
  for (const e of body.errors) {
    assert.equal(typeof e.code, 'string');
    assert.match(e.code, /^[A-Z_]+$/);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, 'error message is not empty');
  }
  if (code) assert.ok(body.errors.some((e) => e.code === code), `expected error code ${code}, got ${body.errors.map((e) => e.code).join(', ')}`);
  return body;
}

/** Asserts a status, with the body in the failure message. Consumes the body. */
export async function expectStatus(res: Response, status: number): Promise<Buffer> {
  const buf = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${buf.toString('utf8').slice(0, 500)}`);
  return buf;
}

/** Fails if the server answered a client mistake with a 5xx. */
export async function expectClientError(res: Response, what: string): Promise<void> {
  const text = await res.text();
  assert.ok(res.status < 500, `${what}: got ${res.status} ${text.slice(0, 300)}`);
}

/** Resolves a Location (absolute or relative) the way a client does. */
export function resolve(base: string, location: string | null): URL {
  assert.ok(location, 'response has a Location header');
  return new URL(location, base);
}

/** The upload Location with `digest` added, keeping any query it already has. */
export function withDigest(base: string, location: string, digest: string): string {
  const u = resolve(base, location);
  u.searchParams.append('digest', digest);
  return u.toString();
}

/** POST /v2/<repo>/blobs/uploads/ and returns the upload's Location (absolute). */
export async function startUpload(base: string, repo: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(res, 202);
  return resolve(base, res.headers.get('location')).toString();
}

/** Pushes a blob with POST then PUT ?digest= (the common monolithic flow). */
export async function pushBlob(base: string, repo: string, data: Uint8Array | string, mediaType = 'application/octet-stream', algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<Descriptor> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  const digest = algorithm === 'sha256' ? sha256(bytes) : sha512(bytes);
  const location = await startUpload(base, repo);
  const res = await fetch(withDigest(base, location, digest), {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  await expectStatus(res, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return { mediaType, digest, size: bytes.byteLength };
}

export async function getBlob(base: string, repo: string, digest: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v2/${repo}/blobs/${digest}`, { headers });
}

// ---- manifests -----------------------------------------------------------------------

export interface PushedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  /** The manifest as a descriptor, for indexes and `subject`. */
  descriptor: Descriptor;
  /** The PUT response. */
  response: Response;
}

export function toBody(manifest: object | Buffer | string): Buffer {
  if (Buffer.isBuffer(manifest)) return manifest;
  return Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
}

export async function putManifest(base: string, repo: string, reference: string, manifest: object | Buffer | string, contentType?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['Content-Type'] = contentType;
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers, body: toBody(manifest) });
}

/** PUTs a manifest and asserts 201; the reference defaults to the manifest's digest. */
export async function pushManifest(base: string, repo: string, reference: string | undefined, manifest: object | Buffer, contentType: string): Promise<PushedManifest> {
  const body = toBody(manifest);
  const digest = sha256(body);
  const res = await putManifest(base, repo, reference ?? digest, body, contentType);
  await expectStatus(res, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return { digest, mediaType: contentType, body, descriptor: { mediaType: contentType, digest, size: body.byteLength }, response: res };
}

export async function getManifest(base: string, repo: string, reference: string, accept: string = ACCEPT_ALL, method: 'GET' | 'HEAD' = 'GET'): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, { method, headers: { Accept: accept } });
}

export interface ImageOptions {
  /** 'oci' (default) or 'docker' schema2. */
  kind?: 'oci' | 'docker';
  layers?: number;
  layerSize?: number;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface PushedImage extends PushedManifest {
  config: Descriptor;
  layers: Descriptor[];
  manifest: Record<string, unknown>;
}

/** Builds an image manifest (OCI or Docker schema2) over random blobs, without pushing anything. */
export async function buildImage(base: string, repo: string, opts: ImageOptions = {}): Promise<{ manifest: Record<string, unknown>; config: Descriptor; layers: Descriptor[]; mediaType: string }> {
  const docker = opts.kind === 'docker';
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const config = await pushBlob(base, repo, configBytes, docker ? MT.dockerConfig : MT.ociConfig);
  const layers: Descriptor[] = [];
  for (let i = 0; i < (opts.layers ?? 1); i++) layers.push(await pushBlob(base, repo, randomData(opts.layerSize ?? 64), docker ? MT.dockerLayer : MT.ociLayer));
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const manifest: Record<string, unknown> = { schemaVersion: 2, mediaType, config, layers };
  if (opts.artifactType) manifest.artifactType = opts.artifactType;
  if (opts.subject) manifest.subject = opts.subject;
  if (opts.annotations) manifest.annotations = opts.annotations;
  return { manifest, config, layers, mediaType };
}

/** Pushes config and layer blobs, then the manifest under `reference` (default: by digest). */
export async function pushImage(base: string, repo: string, reference?: string, opts: ImageOptions = {}): Promise<PushedImage> {
  const { manifest, config, layers, mediaType } = await buildImage(base, repo, opts);
  const pushed = await pushManifest(base, repo, reference, manifest, mediaType);
  return { ...pushed, config, layers, manifest };
}

/** Pushes an OCI index or a Docker manifest list over already-pushed children. */
export async function pushIndex(base: string, repo: string, reference: string | undefined, children: Descriptor[], kind: 'oci' | 'docker' = 'oci', extra: Record<string, unknown> = {}): Promise<PushedManifest> {
  const mediaType = kind === 'docker' ? MT.dockerManifestList : MT.ociIndex;
  const archs = ['amd64', 'arm64', 'ppc64le', 's390x', '386'];
  const manifests = children.map((c, i) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: { os: 'linux', architecture: archs[i % archs.length] } }));
  return pushManifest(base, repo, reference, { schemaVersion: 2, mediaType, manifests, ...extra }, mediaType);
}

/**
 * Pushes an OCI 1.1 artifact: an image manifest with `artifactType`, the
 * empty config and one layer, optionally pointing at `subject`.
 */
export async function pushArtifact(base: string, repo: string, opts: { artifactType: string; subject?: Descriptor; annotations?: Record<string, string>; reference?: string }): Promise<PushedManifest> {
  await pushBlob(base, repo, EMPTY_BYTES, MT.ociEmpty);
  const layer = await pushBlob(base, repo, randomData(32), 'application/vnd.example.payload');
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: opts.artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
  };
  if (opts.subject) manifest.subject = { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size };
  if (opts.annotations) manifest.annotations = opts.annotations;
  return pushManifest(base, repo, opts.reference, manifest, MT.ociManifest);
}

// ---- raw HTTP ---------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request with the path sent byte for byte: fetch normalises `..` and
 * percent-encodes, and some tests need what a hostile client would send.
 */
export async function rawRequest(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<RawResponse> {
  const u = new URL(base);
  const authorization = bearer ? await bearer.authorization(base, method, path) : '';
  if (authorization) headers = { Authorization: authorization, ...headers };
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers: { Connection: 'close', ...headers }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The error codes in a raw response body (asserting it is the spec's envelope). */
export function rawErrorCodes(res: RawResponse): string[] {
  assert.match(String(res.headers['content-type'] ?? ''), /^application\/json\b/, `raw ${res.status} response is JSON`);
  const parsed = JSON.parse(res.body.toString('utf8')) as ErrorBody;
  assert.ok(Array.isArray(parsed.errors) && parsed.errors.length > 0);
  return parsed.errors.map((e) => e.code);
}
