/**
 * Real-client tests beyond skopeo: dockerd + docker, podman and
 * containerd + ctr push to Berth and pull back, each with private state
 * (see test/support/clients.ts). Every client is checked against what
 * Berth stores: the manifest it serves hashes to the digest the client
 * reported, every blob hashes to its digest, and layers unpack to the
 * image config's diff_ids.
 *
 * Each client also meets Berth with htpasswd authentication (a wrong
 * password and no credentials are refused, the right ones push and pull),
 * over TLS with a test CA (refused while the client does not trust the CA,
 * working once it does), and with both at once. The TLS Berths listen on
 * an address outside 127.0.0.0/8: dockerd never verifies certificates on
 * loopback (see clients.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { startBerth } from '../support/berth.js';
import {
  createPodman,
  ctrRegistryArgs,
  externalIPv4,
  startContainerd,
  startDockerd,
  type Containerd,
  type Dockerd,
  type Podman,
  type RegistryCredentials,
} from '../support/clients.js';
import { buildImage, buildIndex, MEDIA_TYPES, pushImage, sha256Digest, type BuiltImage } from '../support/images.js';
import { createCA, type KeyPair, type TestCA } from '../support/tls.js';
import { CommandError, ensureTool, run } from '../support/tools.js';

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

/** A running Berth as these tests see it. */
interface Registry {
  /** "<ip>:<port>", as clients name it. */
  host: string;
  /** http://host or https://host */
  url: string;
  /** Berth's log lines (JSON). */
  logs: string[];
  /** When it serves TLS: the CA that signed its certificate (PEM bytes and file). */
  ca?: Buffer;
  caFile?: string;
  /** When it has htpasswd authentication: the account these tests use. */
  credentials?: RegistryCredentials;
  close(): Promise<void>;
}

const USER: RegistryCredentials = { username: 'tester', password: 'correct horse battery' };
const WRONG_PASSWORD: RegistryCredentials = { username: USER.username, password: 'correct horse staple' };
const REALM = 'Berth client tests';
const basic = (c: RegistryCredentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

/** How a client says the registry refused its credentials (or their absence). */
const UNAUTHORIZED = /unauthorized|authentication required|no basic auth credentials|invalid username\/password/i;
/** How a client says it does not trust the registry's certificate. */
const UNTRUSTED = /x509: certificate signed by unknown authority/;

/**
 * Asserts that a client command fails, exits non-zero, and says `reason` on
 * its own output (not in the command line, which may hold a password);
 * returns that output.
 */
async function refused(command: Promise<unknown>, reason: RegExp, what: string): Promise<string> {
  try {
    await command;
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    assert.ok(e.exitCode !== null && e.exitCode !== 0, `${what}: exits non-zero (${e.message})`);
    const output = `${e.stderr}\n${e.stdout}`;
    assert.match(output, reason, `${what}: fails for the expected reason`);
    return output;
  }
  assert.fail(`${what}: succeeded, but should have been refused`);
}

/** One GET on a fresh connection, trusting the registry's CA and (unless `anonymous`) sending its credentials. */
function httpGet(
  at: Registry,
  urlPath: string,
  headers: Record<string, string> = {},
  anonymous = false,
): Promise<{ status: number; contentType: string; body: Buffer }> {
  const url = new URL(urlPath, at.url);
  const options: https.RequestOptions = {
    agent: false,
    headers: { ...(at.credentials && !anonymous ? { Authorization: basic(at.credentials) } : {}), ...headers },
    ...(at.ca ? { ca: at.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The three clients run side by side (each one's tests in order): each has its
// own daemon and repositories, and every log check filters on its own repositories.
describe('real clients against Berth', { concurrency: true }, () => {
  /** Plain HTTP, anonymous. */
  let berth: Registry;
  const registries: Registry[] = [];
  let work: string;
  let htpasswdFile: string;
  let ca: TestCA;
  /** A CA that signed nothing Berth serves. */
  let otherCA: TestCA;
  let serverPair: KeyPair;
  let externalAddress: string;
  let image: BuiltImage;
  let imageConfig: string;
  let index: BuiltImage;
  let amd64Config: string;
  let arm64Config: string;
  let dockerArchive: string;

  // -------------------------------------------------------------------------
  // What Berth holds

  /**
   * Starts a Berth for one client's tests (closed in the outer after()):
   * `auth` adds htpasswd with USER; `tls` serves HTTPS with a certificate from
   * `ca`, at the machine's external address.
   */
  async function startRegistry(opts: { auth?: boolean; tls?: boolean } = {}): Promise<Registry> {
    const env: Record<string, string> = {};
    if (opts.auth) {
      Object.assign(env, { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: REALM, REGISTRY_AUTH_HTPASSWD_PATH: htpasswdFile });
    }
    if (opts.tls) {
      Object.assign(env, {
        REGISTRY_HTTP_ADDR: `${externalAddress}:0`,
        REGISTRY_HTTP_TLS_CERTIFICATE: serverPair.cert,
        REGISTRY_HTTP_TLS_KEY: serverPair.key,
      });
    }
    const b = await startBerth(env);
    const host = opts.tls ? `${externalAddress}:${b.server.http.port}` : b.host;
    const registry: Registry = {
      host,
      url: `${opts.tls ? 'https' : 'http'}://${host}`,
      logs: b.logs,
      ...(opts.tls ? { ca: await readFile(ca.cert), caFile: ca.cert } : {}),
      ...(opts.auth ? { credentials: USER } : {}),
      close: () => b.close(),
    };
    registries.push(registry);
    // What the client tests below take for granted.
    const anonymous = await httpGet(registry, '/v2/', {}, true);
    assert.equal(anonymous.status, opts.auth ? 401 : 200, `${registry.url}/v2/ anonymously`);
    if (opts.auth) assert.equal((await httpGet(registry, '/v2/')).status, 200, `${registry.url}/v2/ with ${USER.username}'s password`);
    return registry;
  }

  async function berthManifest(repo: string, ref: string, at: Registry = berth): Promise<{ bytes: Buffer; doc: ManifestDoc; contentType: string }> {
    const res = await httpGet(at, `/v2/${repo}/manifests/${ref}`, { Accept: ACCEPT_ALL_MANIFESTS });
    assert.equal(res.status, 200, `GET manifest ${repo}:${ref} from ${at.url}`);
    return { bytes: res.body, doc: JSON.parse(res.body.toString('utf8')) as ManifestDoc, contentType: res.contentType };
  }

  /** Asserts that `at` has no manifest `repo:ref` (what a refused push must leave behind). */
  async function assertNoManifest(repo: string, ref: string, at: Registry): Promise<void> {
    const res = await httpGet(at, `/v2/${repo}/manifests/${ref}`, { Accept: ACCEPT_ALL_MANIFESTS });
    assert.equal(res.status, 404, `${repo}:${ref} is not in ${at.url}`);
  }

  async function berthBlob(repo: string, digest: string, at: Registry = berth): Promise<Buffer> {
    const res = await httpGet(at, `/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200, `GET blob ${repo}@${digest} from ${at.url}`);
    assert.equal(sha256Digest(res.body), digest, `blob ${digest} in ${repo} hashes to its digest`);
    return res.body;
  }

  /**
   * Checks an image manifest in Berth: its bytes hash to `digest`, and every
   * blob is there and intact, layers unpacking to the config's diff_ids.
   */
  async function assertImageInBerth(repo: string, ref: string, digest: string, at: Registry = berth): Promise<ManifestDoc> {
    const { bytes, doc, contentType } = await berthManifest(repo, ref, at);
    assert.equal(sha256Digest(bytes), digest, `${repo}:${ref} is served byte for byte as pushed`);
    assert.equal(contentType, doc.mediaType, 'Content-Type is the manifest media type');
    assert.ok(doc.config && doc.layers, `${repo}:${ref} is an image manifest`);
    const config = JSON.parse((await berthBlob(repo, doc.config.digest, at)).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    assert.equal(config.rootfs.diff_ids.length, doc.layers.length);
    for (const [i, layer] of doc.layers.entries()) {
      const blob = await berthBlob(repo, layer.digest, at);
      assert.equal(blob.length, layer.size, `layer ${i} size`);
      const tar = layer.mediaType.endsWith('gzip') ? gunzipSync(blob) : blob;
      assert.equal(sha256Digest(tar), config.rootfs.diff_ids[i], `layer ${i} unpacks to its diff_id`);
    }
    return doc;
  }

  /** Request log lines Berth wrote since `mark` (an index into its logs). */
  const requestsSince = (mark: number, at: Registry = berth): RequestLog[] =>
    at.logs
      .slice(mark)
      .map((l) => JSON.parse(l) as RequestLog)
      .filter((l) => l.msg === 'request');

  /**
   * Asserts that Berth served `repo`'s manifest and each blob with 200 since
   * `mark` (the client really downloaded). `manifestHead` also accepts a HEAD
   * for the manifest: docker 20.10 resolves a tag with HEAD and reuses a
   * manifest it still holds in containerd's content store (the same image
   * pushed earlier from the same daemon), so it may never GET it.
   */
  function assertDownloaded(mark: number, repo: string, blobs: string[], at: Registry = berth, opts: { manifestHead?: boolean } = {}): void {
    const seen = requestsSince(mark, at).filter((l) => l.path.startsWith(`/v2/${repo}/`));
    const why = `; ${at.url} saw:\n${seen.map((l) => `${l.method} ${l.path} ${l.status}`).join('\n')}`;
    const ok = seen.filter((l) => l.status === 200);
    const methods = opts.manifestHead ? ['GET', 'HEAD'] : ['GET'];
    assert.ok(
      ok.some((l) => l.route === 'manifest' && methods.includes(l.method)),
      `a ${methods.join(' or ')} of a ${repo} manifest was answered 200${why}`,
    );
    for (const blob of blobs) {
      assert.ok(
        ok.some((l) => l.method === 'GET' && l.path === `/v2/${repo}/blobs/${blob}`),
        `blob ${blob} was downloaded from ${repo}${why}`,
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

  /** Asserts that Berth answered 401 to some request since `mark`: the refusal was Berth's. */
  function assertChallenged(mark: number, at: Registry): void {
    assert.ok(requestsSince(mark, at).some((l) => l.status === 401), `${at.url} answered 401 since the mark`);
  }

  before(async () => {
    // Lower case only: `podman pull oci:<dir>` names the image after the path.
    work = path.join(tmpdir(), `berth-clients-${randomBytes(8).toString('hex')}`);
    await mkdir(work);
    const b = await startBerth();
    berth = { host: b.host, url: b.url, logs: b.logs, close: () => b.close() };
    registries.push(berth);
    externalAddress = externalIPv4();
    htpasswdFile = path.join(work, 'htpasswd');
    const htpasswd = await ensureTool('htpasswd', 'apache2-utils');
    await writeFile(htpasswdFile, (await run(htpasswd, ['-Bbn', USER.username, USER.password])).stdout);
    [ca, otherCA] = await Promise.all([createCA(path.join(work, 'ca')), createCA(path.join(work, 'other-ca'), 'Someone Else CA')]);
    serverPair = await ca.serverCert('berth', [externalAddress]);
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
    await Promise.all(registries.map((r) => r.close()));
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

    // ---- authentication and TLS

    /** `docker load`s the test image and tags it `ref`. */
    async function loadAs(ref: string): Promise<void> {
      await docker('load', '--input', dockerArchive);
      await docker('tag', 'berth-test/clients:v1', ref);
    }

    /** Pushes `<at.host>/<repo>:v1` and checks what Berth stored. */
    async function pushChecked(at: Registry, repo: string): Promise<{ digest: string; doc: ManifestDoc }> {
      const pushed = await docker('push', `${at.host}/${repo}:v1`);
      const m = /v1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(pushed.stdout);
      assert.ok(m, `docker push reports a digest:\n${pushed.stdout}`);
      const doc = await assertImageInBerth(repo, 'v1', m[1]!, at);
      assert.equal(doc.config!.digest, imageConfig);
      return { digest: m[1]!, doc };
    }

    /** Removes every local image, pulls `<at.host>/<repo>:v1` and checks that it really came from Berth. */
    async function pullChecked(at: Registry, repo: string, pushed: { digest: string; doc: ManifestDoc }): Promise<void> {
      await dockerd.removeAllImages();
      const ref = `${at.host}/${repo}:v1`;
      const mark = at.logs.length;
      await docker('pull', ref);
      const info = await inspect(ref);
      assert.equal(info.Id, imageConfig, 'pulled image has the same ID');
      assert.ok(info.RepoDigests.includes(`${at.host}/${repo}@${pushed.digest}`), `RepoDigests ${info.RepoDigests}`);
      assertDownloaded(mark, repo, [pushed.doc.config!.digest, ...pushed.doc.layers!.map((l) => l.digest)], at, { manifestHead: true });
    }

    /** The registries docker has credentials for, in its private DOCKER_CONFIG. */
    async function storedLogins(): Promise<string[]> {
      const text = await readFile(path.join(dockerd.configDir, 'config.json'), 'utf8').catch(() => '{}');
      return Object.keys((JSON.parse(text) as { auths?: Record<string, unknown> }).auths ?? {});
    }

    it('htpasswd: refuses a wrong password and anonymous push and pull; pushes and pulls after docker login', async () => {
      const at = await startRegistry({ auth: true });
      const repo = 'docker/auth';
      const ref = `${at.host}/${repo}:v1`;
      const userConfig = path.join(homedir(), '.docker', 'config.json');
      const userConfigBefore = await fileState(userConfig);

      let mark = at.logs.length;
      await refused(dockerd.login(at.host, WRONG_PASSWORD), UNAUTHORIZED, 'docker login with a wrong password');
      assertChallenged(mark, at);
      assert.ok(!(await storedLogins()).includes(at.host), 'a failed login stores nothing');

      await loadAs(ref);
      mark = at.logs.length;
      await refused(docker('push', ref), UNAUTHORIZED, 'docker push without login');
      assertChallenged(mark, at);
      await assertNoManifest(repo, 'v1', at);

      await dockerd.login(at.host, USER);
      assert.ok((await storedLogins()).includes(at.host), `credentials for ${at.host} in ${dockerd.configDir}`);
      assert.equal(await fileState(userConfig), userConfigBefore, `${userConfig} untouched`);
      const pushed = await pushChecked(at, repo);

      await docker('logout', at.host);
      await dockerd.removeAllImages();
      mark = at.logs.length;
      await refused(docker('pull', ref), UNAUTHORIZED, 'docker pull after logout');
      assertChallenged(mark, at);
      await dockerd.login(at.host, USER);
      await pullChecked(at, repo, pushed);
      await docker('logout', at.host);
    });

    it('TLS: refuses an untrusted certificate; pushes and pulls once /etc/docker/certs.d holds the CA', async () => {
      const at = await startRegistry({ tls: true });
      const repo = 'docker/tls';
      const ref = `${at.host}/${repo}:v1`;
      await loadAs(ref);
      const mark = at.logs.length;
      await refused(docker('push', ref), UNTRUSTED, 'docker push before the CA is trusted');
      assert.deepEqual(requestsSince(mark, at), [], 'no request got past the TLS handshake');
      await assertNoManifest(repo, 'v1', at);

      await dockerd.trustCA(at.host, at.caFile!);
      const pushed = await pushChecked(at, repo);
      await pullChecked(at, repo, pushed);
    });

    it('TLS + htpasswd: docker login over HTTPS refuses a wrong password, then pushes and pulls', async () => {
      const at = await startRegistry({ tls: true, auth: true });
      const repo = 'docker/tls-auth';
      await dockerd.trustCA(at.host, at.caFile!);
      const mark = at.logs.length;
      await refused(dockerd.login(at.host, WRONG_PASSWORD), UNAUTHORIZED, 'docker login with a wrong password');
      assertChallenged(mark, at);
      await dockerd.login(at.host, USER);
      await loadAs(`${at.host}/${repo}:v1`);
      const pushed = await pushChecked(at, repo);
      await pullChecked(at, repo, pushed);
      await docker('logout', at.host);
    });
  });

  // -------------------------------------------------------------------------
  describe('podman (vfs storage, private configuration)', { concurrency: 1 }, () => {
    let pm: Podman;
    /** Plain HTTP with htpasswd: listed as insecure in podman's registries.conf, like `berth`. */
    let auth: Registry;
    const podman = (...args: string[]) => pm.podman(args);
    const inspect = async (ref: string) =>
      (JSON.parse((await podman('image', 'inspect', ref)).stdout) as { Id: string; Digest: string; RepoDigests: string[] }[])[0]!;
    const pullId = async (...args: string[]) => (await podman('pull', '--quiet', ...args)).stdout.trim();

    before(async () => {
      auth = await startRegistry({ auth: true });
      pm = await createPodman({ insecureRegistries: [berth.host, auth.host] });
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

    // ---- authentication and TLS

    /** Makes sure the test image is in local storage (as ID `hex(imageConfig)`). */
    async function haveImage(): Promise<void> {
      assert.equal(await pullId(image.ref), hex(imageConfig));
    }

    /** Pushes the test image as `<at.host>/<repo>:v1` (with `flags`, e.g. --cert-dir) and checks what Berth stored. */
    async function pushChecked(at: Registry, repo: string, flags: string[] = []): Promise<{ digest: string; doc: ManifestDoc }> {
      const digestFile = path.join(work, `${repo.replace(/\//g, '-')}.digest`);
      await podman('push', '--quiet', '--format', 'v2s2', ...flags, '--digestfile', digestFile, hex(imageConfig), `${at.host}/${repo}:v1`);
      const digest = (await readFile(digestFile, 'utf8')).trim();
      const doc = await assertImageInBerth(repo, 'v1', digest, at);
      assert.equal(doc.config!.digest, imageConfig);
      return { digest, doc };
    }

    /** Removes every local image, pulls `<at.host>/<repo>:v1` and checks that it really came from Berth. */
    async function pullChecked(at: Registry, repo: string, pushed: { digest: string; doc: ManifestDoc }, flags: string[] = []): Promise<void> {
      await pm.removeAllImages();
      const ref = `${at.host}/${repo}:v1`;
      const mark = at.logs.length;
      assert.equal(await pullId(...flags, ref), hex(imageConfig));
      const info = await inspect(ref);
      assert.equal(info.Digest, pushed.digest, 'podman records the pushed manifest digest');
      assertDownloaded(mark, repo, [pushed.doc.config!.digest, ...pushed.doc.layers!.map((l) => l.digest)], at);
    }

    /** The registries podman has credentials for, in its private auth file. */
    const storedLogins = async () => Object.keys((JSON.parse(await readFile(pm.authFile, 'utf8')) as { auths?: Record<string, unknown> }).auths ?? {});

    it('htpasswd: refuses a wrong password and anonymous push and pull; pushes and pulls after podman login', async () => {
      const at = auth;
      const repo = 'podman/auth';
      const ref = `${at.host}/${repo}:v1`;
      // podman's default for root; the private REGISTRY_AUTH_FILE must win over it.
      const systemAuth = '/run/containers/0/auth.json';
      const systemAuthBefore = await fileState(systemAuth);

      let mark = at.logs.length;
      await refused(pm.login(at.host, WRONG_PASSWORD), UNAUTHORIZED, 'podman login with a wrong password');
      assertChallenged(mark, at);
      assert.ok(!(await storedLogins()).includes(at.host), 'a failed login stores nothing');

      await pm.removeAllImages();
      await haveImage();
      mark = at.logs.length;
      await refused(podman('push', '--quiet', hex(imageConfig), ref), UNAUTHORIZED, 'podman push without login');
      assertChallenged(mark, at);
      await assertNoManifest(repo, 'v1', at);

      await pm.login(at.host, USER);
      assert.ok((await storedLogins()).includes(at.host), `credentials for ${at.host} in ${pm.authFile}`);
      assert.equal(await fileState(systemAuth), systemAuthBefore, `${systemAuth} untouched`);
      const pushed = await pushChecked(at, repo);

      await podman('logout', at.host);
      await pm.removeAllImages();
      mark = at.logs.length;
      await refused(podman('pull', '--quiet', ref), UNAUTHORIZED, 'podman pull after logout');
      assertChallenged(mark, at);
      await pm.login(at.host, USER);
      await pullChecked(at, repo, pushed);
      await podman('logout', at.host);
    });

    it('TLS: refuses an untrusted certificate; pushes and pulls with --cert-dir holding the CA', async () => {
      const at = await startRegistry({ tls: true });
      const repo = 'podman/tls';
      const ref = `${at.host}/${repo}:v1`;
      const trusted = ['--tls-verify=true', '--cert-dir', await ca.certDir()];
      await pm.removeAllImages();
      await haveImage();
      const mark = at.logs.length;
      await refused(podman('push', '--quiet', '--tls-verify=true', hex(imageConfig), ref), UNTRUSTED, 'podman push without the CA');
      await refused(
        podman('push', '--quiet', '--tls-verify=true', '--cert-dir', await otherCA.certDir(), hex(imageConfig), ref),
        UNTRUSTED,
        'podman push trusting only another CA',
      );
      assert.deepEqual(requestsSince(mark, at), [], 'no request got past the TLS handshake');
      await assertNoManifest(repo, 'v1', at);

      const pushed = await pushChecked(at, repo, trusted);
      await pm.removeAllImages();
      await refused(podman('pull', '--quiet', '--tls-verify=true', ref), UNTRUSTED, 'podman pull without the CA');
      await pullChecked(at, repo, pushed, trusted);
    });

    it('TLS + htpasswd: podman login checks the certificate and the password, then pushes and pulls', async () => {
      const at = await startRegistry({ tls: true, auth: true });
      const repo = 'podman/tls-auth';
      const trusted = ['--tls-verify=true', '--cert-dir', await ca.certDir()];
      const login = (c: RegistryCredentials, flags: string[]) =>
        pm.podman(['login', ...flags, '--username', c.username, '--password-stdin', at.host], { input: `${c.password}\n` });
      await refused(login(USER, ['--tls-verify=true']), UNTRUSTED, 'podman login with the right password but without the CA');
      const mark = at.logs.length;
      await refused(login(WRONG_PASSWORD, trusted), UNAUTHORIZED, 'podman login with the CA and a wrong password');
      assertChallenged(mark, at);
      assert.ok(!(await storedLogins()).includes(at.host), 'failed logins store nothing');
      await login(USER, trusted);
      await pm.removeAllImages();
      await haveImage();
      const pushed = await pushChecked(at, repo, trusted);
      await pullChecked(at, repo, pushed, trusted);
      await podman('logout', at.host);
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

    // ---- authentication and TLS

    /**
     * Imports the test image into namespace `ns` as `<at.host>/<repo>:v1`
     * and returns a ctr runner for that namespace.
     */
    async function importInto(ns: string, at: Registry, repo: string): Promise<(...args: string[]) => Promise<unknown>> {
      const ctrNs = (...args: string[]) => containerd.ctr(args, { namespace: ns });
      const archive = await layoutTar(image.layoutDir, path.join(work, `ctr-${ns}.tar`));
      await ctrNs('images', 'import', '--base-name', `${at.host}/${repo}`, archive);
      assert.equal((await listImages(ns)).get(`${at.host}/${repo}:v1`), image.manifestDigest);
      return ctrNs;
    }

    /** Removes the image (and, with --sync, its content) from `ns`, so that the next pull downloads. */
    async function removeImage(ns: string, ref: string): Promise<void> {
      await containerd.ctr(['images', 'rm', '--sync', ref], { namespace: ns });
      assert.deepEqual(await contentDigests(ns), [], `nothing left in ${ns} before the pull`);
    }

    /** Pulls `ref` into `ns` with `flags` and checks that it really came from Berth. */
    async function pullChecked(ns: string, at: Registry, repo: string, flags: string[]): Promise<void> {
      const ref = `${at.host}/${repo}:v1`;
      const mark = at.logs.length;
      await containerd.ctr(['images', 'pull', ...flags, ref], { namespace: ns });
      assert.equal((await listImages(ns)).get(ref), image.manifestDigest);
      assertDownloaded(mark, repo, image.blobs, at);
    }

    it('htpasswd: refuses no credentials and a wrong password; pushes and pulls with --user', async () => {
      const ns = 'auth';
      const at = await startRegistry({ auth: true });
      const repo = 'ctr/auth';
      const ref = `${at.host}/${repo}:v1`;
      const ctrNs = await importInto(ns, at, repo);
      const anonymous = ctrRegistryArgs({ host: at.host });
      const wrong = ctrRegistryArgs({ host: at.host, credentials: WRONG_PASSWORD });
      const right = ctrRegistryArgs({ host: at.host, credentials: USER });

      let mark = at.logs.length;
      await refused(ctrNs('images', 'push', ...anonymous, ref), UNAUTHORIZED, 'ctr push without --user');
      await refused(ctrNs('images', 'push', ...wrong, ref), UNAUTHORIZED, 'ctr push with a wrong password');
      assertChallenged(mark, at);
      await assertNoManifest(repo, 'v1', at);

      await ctrNs('images', 'push', ...right, ref);
      await assertImageInBerth(repo, 'v1', image.manifestDigest, at);

      await removeImage(ns, ref);
      mark = at.logs.length;
      await refused(ctrNs('images', 'pull', ...anonymous, ref), UNAUTHORIZED, 'ctr pull without --user');
      await refused(ctrNs('images', 'pull', ...wrong, ref), UNAUTHORIZED, 'ctr pull with a wrong password');
      assertChallenged(mark, at);
      await pullChecked(ns, at, repo, right);
    });

    it('TLS: refuses an untrusted certificate; pushes and pulls with --tlscacert', async () => {
      const ns = 'tls';
      const at = await startRegistry({ tls: true });
      const repo = 'ctr/tls';
      const ref = `${at.host}/${repo}:v1`;
      const ctrNs = await importInto(ns, at, repo);
      const trusted = ctrRegistryArgs({ host: at.host, caFile: at.caFile! });

      const mark = at.logs.length;
      // No --plain-http and no CA: HTTPS verified against the system's roots.
      await refused(ctrNs('images', 'push', ref), UNTRUSTED, 'ctr push without the CA');
      await refused(ctrNs('images', 'push', '--tlscacert', otherCA.cert, ref), UNTRUSTED, 'ctr push trusting only another CA');
      assert.deepEqual(requestsSince(mark, at), [], 'no request got past the TLS handshake');
      await assertNoManifest(repo, 'v1', at);

      await ctrNs('images', 'push', ...trusted, ref);
      await assertImageInBerth(repo, 'v1', image.manifestDigest, at);
      await removeImage(ns, ref);
      await refused(ctrNs('images', 'pull', ref), UNTRUSTED, 'ctr pull without the CA');
      await pullChecked(ns, at, repo, trusted);
    });

    it('TLS + htpasswd: refuses a wrong password over HTTPS; pushes and pulls with --tlscacert and --user', async () => {
      const ns = 'tls-auth';
      const at = await startRegistry({ tls: true, auth: true });
      const repo = 'ctr/tls-auth';
      const ref = `${at.host}/${repo}:v1`;
      const ctrNs = await importInto(ns, at, repo);
      const right = ctrRegistryArgs({ host: at.host, caFile: at.caFile!, credentials: USER });
      const mark = at.logs.length;
      await refused(
        ctrNs('images', 'push', ...ctrRegistryArgs({ host: at.host, caFile: at.caFile!, credentials: WRONG_PASSWORD }), ref),
        UNAUTHORIZED,
        'ctr push with the CA and a wrong password',
      );
      assertChallenged(mark, at);
      await ctrNs('images', 'push', ...right, ref);
      await assertImageInBerth(repo, 'v1', image.manifestDigest, at);
      await removeImage(ns, ref);
      await pullChecked(ns, at, repo, right);
    });
  });
});
