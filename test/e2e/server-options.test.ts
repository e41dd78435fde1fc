/**
 * registry:2's server options, each against a real server: http.tls
 * (certificate, minimumtls, clientcas), http.headers, http.prefix,
 * http.host / http.relativeurls / X-Forwarded-*, health checks and the debug
 * server, Prometheus metrics, upload purging and graceful shutdown with
 * http.draintimeout. Read-only mode and storage.delete.enabled=false are
 * covered by test/protocol/deletes.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { access, mkdtemp, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { sql } from '../../src/metadata/kysely.js';
import YAML from 'yaml';
import { createApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { SAFETY_NET_PAGES } from '../../src/metadata/index.js';
import { purgeUploads } from '../../src/gc/purge.js';
import { CLI_ENTRY, spawnBerth, startBerth, type TestBerth } from '../support/berth.js';
import { buildImage, pseudoRandomBytes, type BuiltImage } from '../support/images.js';
import { createCA, readPair, type KeyPair, type TestCA } from '../support/tls.js';
import { CommandError, ensureTool, freePort, makeImmutable, run, whichTool } from '../support/tools.js';

// ---- helpers -------------------------------------------------------------------

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The negotiated TLS version, for https. */
  protocol?: string | null;
}

type RequestOptions = https.RequestOptions & { body?: Buffer | string };

/**
 * One request on a fresh connection (agent: false, so no TLS session or
 * keep-alive reuse hides what a new client would see). node:http rather
 * than fetch: it lets a test set Host, TLS versions, CAs and client certs.
 */
function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const { body, ...rest } = opts;
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { agent: false, ...rest }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const socket = res.socket as TLSSocket | null;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          protocol: typeof socket?.getProtocol === 'function' ? socket.getProtocol() : undefined,
        });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.end(body);
  });
}

function errorCodes(r: Reply): string[] {
  const parsed = JSON.parse(r.body.toString('utf8')) as { errors: { code: string }[] };
  assert.ok(Array.isArray(parsed.errors), `expected the error envelope, got ${r.body.toString('utf8')}`);
  return parsed.errors.map((e) => e.code);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a truthy value; fails with `what` and the
 * last value otherwise. The deadline only bounds how long a broken server
 * takes to fail: it is far above what a loaded machine needs.
 */
async function eventually<T>(what: string, probe: () => Promise<T>, timeoutMs = 10_000, stepMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(stepMs);
  }
}

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'berth-server-options-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeConfig(name: string, tree: unknown): Promise<string> {
  const file = path.join(work, `${name}.yml`);
  await writeFile(file, YAML.stringify({ version: '0.1', ...(tree as object) }));
  return file;
}

/** Starts an upload with POST; returns its Location as sent. */
async function startUpload(base: string, repo: string, opts: RequestOptions = {}): Promise<string> {
  const r = await request(`${base}/v2/${repo}/blobs/uploads/`, { ...opts, method: 'POST' });
  assert.equal(r.status, 202, r.body.toString());
  const location = r.headers.location;
  assert.ok(location, 'upload Location');
  return location;
}

const withQuery = (url: string, q: string) => `${url}${url.includes('?') ? '&' : '?'}${q}`;

// ---- 1. TLS --------------------------------------------------------------------

describe('http.tls', () => {
  let ca: TestCA;
  let otherCA: TestCA;
  let serverPair: KeyPair;
  let client: { cert: Buffer; key: Buffer };
  let strangerClient: { cert: Buffer; key: Buffer };
  let caPem: Buffer;
  let plain: TestBerth;
  let tls13: TestBerth;
  let mutual: TestBerth;

  before(async () => {
    [ca, otherCA] = await Promise.all([createCA(path.join(work, 'ca')), createCA(path.join(work, 'other-ca'), 'Someone Else CA')]);
    serverPair = await ca.serverCert('server');
    client = await readPair(await ca.clientCert('good-client'));
    strangerClient = await readPair(await otherCA.clientCert('stranger'));
    caPem = await readFile(ca.cert);
    const tlsEnv = { REGISTRY_HTTP_TLS_CERTIFICATE: serverPair.cert, REGISTRY_HTTP_TLS_KEY: serverPair.key };
    [plain, tls13, mutual] = await Promise.all([
      startBerth(tlsEnv),
      startBerth({ ...tlsEnv, REGISTRY_HTTP_TLS_MINIMUMTLS: 'tls1.3' }),
      startBerth({ ...tlsEnv, REGISTRY_HTTP_TLS_CLIENTCAS: `[${JSON.stringify(ca.cert)}]` }),
    ]);
  });
  after(async () => {
    await Promise.all([plain?.close(), tls13?.close(), mutual?.close()]);
  });

  it('serves HTTPS that a client trusting the CA accepts and others refuse', async () => {
    assert.match(plain.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await request(`${plain.server.url}/v2/`, { ca: caPem });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['docker-distribution-api-version'], 'registry/2.0');
    await assert.rejects(request(`${plain.server.url}/v2/`), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
    // A CA that did not sign the server's certificate is no better than none.
    await assert.rejects(request(`${plain.server.url}/v2/`, { ca: await readFile(otherCA.cert) }), /certificate|self.signed|verify/i);
    // Plain HTTP on the TLS port gets no API response.
    const cleartext = await request(`http://127.0.0.1:${plain.server.http.port}/v2/`).then(
      (r) => r.status,
      () => 'failed',
    );
    assert.notEqual(cleartext, 200);
  });

  it('skopeo pushes and pulls over TLS with --dest-cert-dir/--src-cert-dir and fails without the CA', async () => {
    const skopeo = await ensureTool('skopeo');
    const image: BuiltImage = await buildImage(path.join(work, 'tls-layout'), { tag: 'v1', seed: 'tls-image', layers: 2 });
    const certDir = await ca.certDir();
    const host = `127.0.0.1:${plain.server.http.port}`;
    const pushedDigestFile = path.join(work, 'tls-pushed-digest');
    await run(skopeo, ['copy', '--quiet', '--preserve-digests', '--dest-cert-dir', certDir, '--digestfile', pushedDigestFile, image.ref, `docker://${host}/secure/app:v1`], {
      timeoutMs: 120_000,
    });
    assert.equal((await readFile(pushedDigestFile, 'utf8')).trim(), image.manifestDigest);

    const pulledLayout = path.join(work, 'tls-pulled');
    const pulledDigestFile = path.join(work, 'tls-pulled-digest');
    await run(skopeo, ['copy', '--quiet', '--src-cert-dir', certDir, '--digestfile', pulledDigestFile, `docker://${host}/secure/app:v1`, `oci:${pulledLayout}:v1`], {
      timeoutMs: 120_000,
    });
    assert.equal((await readFile(pulledDigestFile, 'utf8')).trim(), image.manifestDigest);
    for (const blob of image.blobs) await access(path.join(pulledLayout, 'blobs', ...blob.split(':')));

    // Verification on (skopeo's default) and no CA: the certificate is refused.
    await assert.rejects(run(skopeo, ['inspect', '--raw', `docker://${host}/secure/app:v1`], { timeoutMs: 60_000 }), /x509|certificate/i);
  });

  it('minimumtls: tls1.3 refuses a TLS 1.2 client and serves a TLS 1.3 one', async () => {
    await assert.rejects(request(`${tls13.server.url}/v2/`, { ca: caPem, maxVersion: 'TLSv1.2' }), /protocol version|wrong version|unsupported protocol|alert/i);
    const ok = await request(`${tls13.server.url}/v2/`, { ca: caPem, minVersion: 'TLSv1.3' });
    assert.equal(ok.status, 200);
    assert.equal(ok.protocol, 'TLSv1.3');
    // The default minimum (tls1.2) lets the same TLS 1.2 client in: the refusal above is the option's doing.
    const old = await request(`${plain.server.url}/v2/`, { ca: caPem, maxVersion: 'TLSv1.2' });
    assert.equal(old.status, 200);
    assert.equal(old.protocol, 'TLSv1.2');
  });

  it('clientcas: requires a client certificate signed by a listed CA', async () => {
    await assert.rejects(request(`${mutual.server.url}/v2/`, { ca: caPem }));
    await assert.rejects(request(`${mutual.server.url}/v2/`, { ca: caPem, ...strangerClient }));
    const ok = await request(`${mutual.server.url}/v2/`, { ca: caPem, ...client });
    assert.equal(ok.status, 200);
    // Both ends of an upload work over mutual TLS.
    const location = await startUpload(mutual.server.url, 'mtls/app', { ca: caPem, ...client });
    const data = Buffer.from('over mutual tls');
    const put = await request(withQuery(new URL(location, mutual.server.url).href, `digest=${sha256(data)}`), {
      method: 'PUT',
      ca: caPem,
      ...client,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.byteLength },
      body: data,
    });
    assert.equal(put.status, 201, put.body.toString());
    assert.ok(put.headers.location?.startsWith('https://127.0.0.1:'), `Location uses https: ${put.headers.location}`);
  });
});

// ---- 2. http.headers ---------------------------------------------------------

describe('http.headers', () => {
  let b: TestBerth;
  let maintenance: string;
  const auth = { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` };

  before(async () => {
    const htpasswd = path.join(work, 'headers.htpasswd');
    await writeFile(htpasswd, `alice:${await bcrypt.hash('secret', 4)}\n`);
    maintenance = path.join(work, 'headers-maintenance');
    const config = await writeConfig('headers', {
      http: { headers: { 'X-Content-Type-Options': ['nosniff'], 'X-Berth-Test': ['one', 'two'] } },
      auth: { htpasswd: { realm: 'headers-test', path: htpasswd } },
      health: { file: [{ file: maintenance, interval: '100ms' }] },
    });
    b = await startBerth({}, config);
  });
  after(async () => {
    await b?.close();
  });

  function assertHeaders(r: Reply, what: string): void {
    assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
    assert.equal(r.headers['x-berth-test'], 'one, two', `${what}: X-Berth-Test (both values)`);
  }

  it('are sent on successes, errors, 401s, HEADs, probes and 503s', async () => {
    const cases: [string, string, RequestOptions, number][] = [
      ['base', '/v2/', { headers: auth }, 200],
      ['anonymous', '/v2/', {}, 401],
      ['wrong password', '/v2/', { headers: { Authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } }, 401],
      ['manifest unknown', '/v2/h/app/manifests/latest', { headers: auth }, 404],
      ['HEAD blob unknown', `/v2/h/app/blobs/${sha256('nothing')}`, { method: 'HEAD', headers: auth }, 404],
      ['no such endpoint', '/nope', { headers: auth }, 404],
      ['bad digest', '/v2/h/app/blobs/sha256:zz', { headers: auth }, 400],
      ['method not allowed', '/v2/_catalog', { method: 'DELETE', headers: auth }, 405],
      ['upload start', '/v2/h/app/blobs/uploads/', { method: 'POST', headers: auth }, 202],
      ['livez', '/livez', {}, 200],
      ['readyz', '/readyz', {}, 200],
    ];
    for (const [what, p, opts, status] of cases) {
      const r = await request(`${b.url}${p}`, opts);
      assert.equal(r.status, status, `${what}: ${r.body.toString()}`);
      assertHeaders(r, what);
      if (status === 401) assert.equal(r.headers['www-authenticate'], 'Basic realm="headers-test"');
    }
    // Unhealthy: the API's 503 carries them too.
    await writeFile(maintenance, 'down');
    try {
      const r = await eventually('503 while the maintenance file exists', async () => {
        const x = await request(`${b.url}/v2/`, { headers: auth });
        return x.status === 503 ? x : undefined;
      });
      assertHeaders(r, '503');
      assert.deepEqual(errorCodes(r), ['UNAVAILABLE']);
    } finally {
      await unlink(maintenance);
    }
  });
});

// ---- 3. http.prefix ------------------------------------------------------------

describe('http.prefix', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_HTTP_PREFIX: '/registry' });
  });
  after(async () => {
    await b?.close();
  });

  it('serves the API under the prefix and 404s it elsewhere with the error envelope', async () => {
    const ok = await request(`${b.url}/registry/v2/`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['docker-distribution-api-version'], 'registry/2.0');
    for (const p of ['/v2/', '/v2/_catalog', '/other/v2/', '/registryv2/']) {
      const r = await request(`${b.url}${p}`);
      assert.equal(r.status, 404, p);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(errorCodes(r).length, 1, p);
    }
  });

  it('puts the prefix in upload and blob Locations, and they work when followed', async () => {
    const repo = 'prefixed/app';
    const data = pseudoRandomBytes('prefix', 3000);
    const digest = sha256(data);
    const location = await startUpload(`${b.url}/registry`, repo);
    assert.ok(location.startsWith(`${b.url}/registry/v2/${repo}/blobs/uploads/`), location);
    const patch = await request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 1000 }, body: data.subarray(0, 1000) });
    assert.equal(patch.status, 202, patch.body.toString());
    const next = patch.headers.location!;
    assert.ok(next.startsWith(`${b.url}/registry/v2/${repo}/blobs/uploads/`), next);
    const status = await request(next);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-999');
    const put = await request(withQuery(next, `digest=${digest}`), { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 2000 }, body: data.subarray(1000) });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.headers.location, `${b.url}/registry/v2/${repo}/blobs/${digest}`);
    const blob = await request(put.headers.location!);
    assert.equal(blob.status, 200);
    assert.ok(blob.body.equals(data));
    assert.equal((await request(`${b.url}/v2/${repo}/blobs/${digest}`)).status, 404);
  });
});

// ---- 4. Location URLs ------------------------------------------------------------

describe('Location URLs: http.relativeurls, http.host, Host and X-Forwarded-*', () => {
  let relative: TestBerth;
  let hosted: TestBerth;
  let plain: TestBerth;
  before(async () => {
    [relative, hosted, plain] = await Promise.all([
      startBerth({ REGISTRY_HTTP_RELATIVEURLS: 'true' }),
      startBerth({ REGISTRY_HTTP_HOST: 'https://registry.example.com' }),
      startBerth(),
    ]);
  });
  after(async () => {
    await Promise.all([relative?.close(), hosted?.close(), plain?.close()]);
  });

  it('relativeurls: true gives relative paths that resolve against the registry', async () => {
    const location = await startUpload(relative.url, 'rel/app', { headers: { 'X-Forwarded-Host': 'ignored.example', 'X-Forwarded-Proto': 'https' } });
    assert.match(location, /^\/v2\/rel\/app\/blobs\/uploads\/[^/]+$/);
    const data = Buffer.from('relative');
    const put = await request(withQuery(new URL(location, relative.url).href, `digest=${sha256(data)}`), {
      method: 'PUT',
      headers: { 'Content-Length': data.byteLength, 'Content-Type': 'application/octet-stream' },
      body: data,
    });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.headers.location, `/v2/rel/app/blobs/${sha256(data)}`);
  });

  it('http.host: Locations start with the configured base URL, whatever the request says', async () => {
    const location = await startUpload(hosted.url, 'hosted/app', { headers: { Host: 'other.example:1234', 'X-Forwarded-Host': 'fwd.example', 'X-Forwarded-Proto': 'http' } });
    assert.match(location, /^https:\/\/registry\.example\.com\/v2\/hosted\/app\/blobs\/uploads\/[^/]+$/);
    // The path part still names a live upload on this server.
    const status = await request(`${hosted.url}${new URL(location).pathname}`);
    assert.equal(status.status, 204);
  });

  it('by default: absolute from the Host header; X-Forwarded-Proto and X-Forwarded-Host are honoured', async () => {
    const fromSocket = await startUpload(plain.url, 'default/app');
    assert.ok(fromSocket.startsWith(`${plain.url}/v2/default/app/blobs/uploads/`), fromSocket);
    const followed = await request(fromSocket);
    assert.equal(followed.status, 204);

    const fromHost = await startUpload(plain.url, 'default/app', { headers: { Host: 'registry.internal:8443' } });
    assert.match(fromHost, /^http:\/\/registry\.internal:8443\/v2\/default\/app\/blobs\/uploads\/[^/]+$/);

    const forwarded = await startUpload(plain.url, 'default/app', { headers: { Host: 'backend:5000', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'registry.example.org' } });
    assert.match(forwarded, /^https:\/\/registry\.example\.org\/v2\/default\/app\/blobs\/uploads\/[^/]+$/);

    const protoOnly = await startUpload(plain.url, 'default/app', { headers: { Host: 'registry.example.net', 'X-Forwarded-Proto': 'https' } });
    assert.match(protoOnly, /^https:\/\/registry\.example\.net\/v2\/default\/app\/blobs\/uploads\/[^/]+$/);
  });
});

// ---- 5. Health -------------------------------------------------------------------

describe('health checks and the debug server', () => {
  it('health.file: /debug/health, /readyz and the API turn 503 while the file exists; /livez stays 200', async () => {
    const debugPort = await freePort();
    const flag = path.join(work, 'maintenance-flag');
    const config = await writeConfig('health-file', { http: { debug: { addr: `127.0.0.1:${debugPort}` } }, health: { file: [{ file: flag, interval: '100ms' }] } });
    const b = await startBerth({}, config);
    const debug = `http://127.0.0.1:${debugPort}`;
    try {
      const healthy = await request(`${debug}/debug/health`);
      assert.equal(healthy.status, 200);
      assert.deepEqual(JSON.parse(healthy.body.toString()), {});
      assert.equal((await request(`${b.url}/v2/`)).status, 200);

      await writeFile(flag, 'maintenance');
      // Within half the default interval (10 s): the configured 100ms is what runs the check.
      const sick = await eventually('/debug/health 503', async () => {
        const r = await request(`${debug}/debug/health`);
        return r.status === 503 ? r : undefined;
      }, 5000, 20);
      const checks = JSON.parse(sick.body.toString()) as Record<string, string>;
      assert.deepEqual(Object.keys(checks), [flag]);
      assert.match(checks[flag]!, /exists/);
      // The debug server (not public) names the failing checks; the API tells anyone only that it is unhealthy.
      const debugReady = await request(`${debug}/readyz`);
      assert.equal(debugReady.status, 503);
      assert.ok(flag in (JSON.parse(debugReady.body.toString()) as { checks: Record<string, string> }).checks);
      const apiReady = await request(`${b.url}/readyz`);
      assert.equal(apiReady.status, 503);
      assert.deepEqual(JSON.parse(apiReady.body.toString()), { status: 'unhealthy' });
      const api = await request(`${b.url}/v2/`);
      assert.equal(api.status, 503);
      assert.deepEqual(errorCodes(api), ['UNAVAILABLE']);
      const manifest = await request(`${b.url}/v2/x/manifests/latest`);
      assert.equal(manifest.status, 503);
      for (const r of [apiReady, api, manifest]) {
        assert.ok(!r.body.toString().includes(path.basename(flag)), `a public answer shows the check's file: ${r.body.toString()}`);
        assert.ok(!r.body.toString().includes('exists'), r.body.toString());
      }
      for (const url of [`${debug}/livez`, `${b.url}/livez`]) assert.equal((await request(url)).status, 200, url);

      await unlink(flag);
      await eventually('/debug/health back to 200', async () => (await request(`${debug}/debug/health`)).status === 200, 5000, 20);
      assert.deepEqual(JSON.parse((await request(`${debug}/debug/health`)).body.toString()), {});
      assert.equal((await request(`${b.url}/readyz`)).status, 200);
      assert.equal((await request(`${b.url}/v2/`)).status, 200);
    } finally {
      await b.close();
    }
  });

  it('health.tcp: a closed port turns unhealthy (with threshold 1 and 2); an open one stays healthy', async () => {
    const debugPort = await freePort();
    const [closedA, closedB] = [await freePort(), await freePort()];
    const open = net.createServer((s) => s.end());
    await new Promise<void>((r) => open.listen(0, '127.0.0.1', r));
    const openAddr = `127.0.0.1:${(open.address() as net.AddressInfo).port}`;
    const config = await writeConfig('health-tcp', {
      http: { debug: { addr: `127.0.0.1:${debugPort}` } },
      health: {
        tcp: [
          { addr: openAddr, interval: '100ms', threshold: 1, timeout: '500ms' },
          { addr: `127.0.0.1:${closedA}`, interval: '100ms', threshold: 1, timeout: '500ms' },
          { addr: `127.0.0.1:${closedB}`, interval: '600ms', threshold: 2, timeout: '500ms' },
        ],
      },
    });
    const b = await startBerth({}, config);
    const debug = `http://127.0.0.1:${debugPort}/debug/health`;
    try {
      // (That one failure is not enough at threshold 2 is shown with an http check below,
      // whose attempts the test can count and hold; a refused connection cannot be held.)
      const first = await eventually('threshold-1 tcp check failing', async () => {
        const r = await request(debug);
        const body = JSON.parse(r.body.toString()) as Record<string, string>;
        return r.status === 503 && `127.0.0.1:${closedA}` in body ? body : undefined;
      }, 5000, 10);
      assert.match(first[`127.0.0.1:${closedA}`]!, /failed|refused/i);
      const both = await eventually('threshold-2 tcp check failing', async () => {
        const body = JSON.parse((await request(debug)).body.toString()) as Record<string, string>;
        return `127.0.0.1:${closedB}` in body ? body : undefined;
      });
      assert.match(both[`127.0.0.1:${closedB}`]!, /failed|refused/i);
      assert.ok(!(openAddr in both), 'the open port is healthy');
      assert.equal((await request(`${b.url}/v2/`)).status, 503);
    } finally {
      await b.close();
      open.close();
    }
  });

  it('health.http: a URL answering the wrong status turns unhealthy, and healthy again when it answers right', async () => {
    let answer = 204;
    const seen: http.IncomingHttpHeaders[] = [];
    const target = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(answer);
      res.end();
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const uri = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/probe`;
    const debugPort = await freePort();
    const config = await writeConfig('health-http', {
      http: { debug: { addr: `127.0.0.1:${debugPort}` } },
      health: { http: [{ uri, statuscode: 204, headers: { 'X-Probe': ['berth'] }, interval: '100ms', threshold: 1, timeout: '500ms' }] },
    });
    const b = await startBerth({}, config);
    const debug = `http://127.0.0.1:${debugPort}/debug/health`;
    try {
      await eventually('the check has run', async () => seen.length >= 2);
      assert.equal((await request(debug)).status, 200);
      assert.equal(seen[0]!['x-probe'], 'berth', 'configured headers are sent');
      answer = 500;
      const sick = await eventually('unhealthy on a 500', async () => {
        const r = await request(debug);
        return r.status === 503 ? (JSON.parse(r.body.toString()) as Record<string, string>) : undefined;
      }, 5000);
      assert.match(sick[uri]!, /500/);
      const api = await request(`${b.url}/v2/`);
      assert.equal(api.status, 503);
      assert.ok(!api.body.toString().includes('/probe'), `the 503 shows the check's URI: ${api.body.toString()}`);
      assert.deepEqual(JSON.parse((await request(`${b.url}/readyz`)).body.toString()), { status: 'unhealthy' });
      answer = 204;
      await eventually('healthy again', async () => (await request(debug)).status === 200, 5000);
      assert.equal((await request(`${b.url}/v2/`)).status, 200);
    } finally {
      await b.close();
      target.close();
    }
  });

  it('threshold: unhealthy only at the `threshold`-th consecutive failure, and a success starts the count again', async () => {
    // The target holds every probe until the test answers it, so the test knows
    // how many failures the check can have seen: a held probe has no outcome yet.
    const held: http.ServerResponse[] = [];
    let arrived = 0;
    let answerAtOnce: number | undefined;
    const target = http.createServer((req, res) => {
      arrived++;
      if (answerAtOnce !== undefined) res.writeHead(answerAtOnce).end();
      else held.push(res);
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const uri = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/probe`;
    const debugPort = await freePort();
    const config = await writeConfig('health-threshold', {
      http: { debug: { addr: `127.0.0.1:${debugPort}` } },
      // A timeout far above the test's length: a held probe never fails by itself.
      health: { http: [{ uri, statuscode: 204, interval: '100ms', threshold: 2, timeout: '60s' }] },
    });
    const b = await startBerth({}, config);
    const debug = `http://127.0.0.1:${debugPort}/debug/health`;
    const failing = async () => uri in (JSON.parse((await request(debug)).body.toString()) as Record<string, string>);
    /** Waits for the `n`-th probe (counting from 1) to arrive; every probe is held until answered here. */
    const probe = async (n: number) => {
      await eventually(`probe ${n}`, async () => arrived >= n);
      return held[n - 1]!;
    };
    try {
      // The first probe fails; while the second is held, that one failure is all there is.
      (await probe(1)).writeHead(500).end();
      await probe(2);
      await probe(3);
      assert.equal(await failing(), false, 'one failure with threshold 2 is still healthy');
      assert.equal((await request(`${b.url}/v2/`)).status, 200);
      // The second consecutive failure turns it unhealthy.
      (await probe(2)).writeHead(500).end();
      await eventually('unhealthy after the second failure', failing);
      assert.equal((await request(`${b.url}/v2/`)).status, 503);
      // The third probe succeeds: healthy again.
      (await probe(3)).writeHead(204).end();
      await eventually('healthy after a success', async () => !(await failing()));
      // A success resets the count: one more failure is not two in a row.
      const seen = arrived;
      (await probe(seen + 1)).writeHead(500).end();
      await probe(seen + 2);
      await probe(seen + 3);
      // Probes 4…seen came in meanwhile and are still held: they have no outcome either.
      assert.equal(await failing(), false, 'a failure after a success is the first of a new count');
      (await probe(seen + 2)).writeHead(500).end();
      await eventually('unhealthy after two failures in a row again', failing);
    } finally {
      answerAtOnce = 204;
      for (const res of held) if (!res.headersSent) res.writeHead(204).end();
      await b.close();
      target.close();
    }
  });
});

// ---- 6. Metrics --------------------------------------------------------------------

/** Parses Prometheus text into samples; `value(name, labels)` finds the one with exactly those labels. */
function parseMetrics(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const want = Object.entries(labels);
      const s = samples.find((x) => x.name === name && Object.keys(x.labels).length === want.length && want.every(([k, v]) => x.labels[k] === v));
      return s?.value;
    },
  };
}

describe('Prometheus metrics (http.debug.prometheus)', () => {
  let b: TestBerth;
  let metricsUrl: string;
  before(async () => {
    const debugPort = await freePort();
    b = await startBerth({
      REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}`,
      REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: 'true',
      REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH: '/custom-metrics',
    });
    metricsUrl = `http://127.0.0.1:${debugPort}/custom-metrics`;
  });
  after(async () => {
    await b?.close();
  });

  const scrape = async () => {
    const r = await request(metricsUrl);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    return parseMetrics(r.body.toString());
  };

  it('counts requests by route/method/status, times them, counts bytes and tracks open uploads', async () => {
    const repo = 'metrics/app';
    const data = pseudoRandomBytes('metrics', 100);
    const digest = sha256(data);
    assert.equal((await request(`${b.url}/v2/`)).status, 200);
    assert.equal((await request(`${b.url}/v2/`)).status, 200);
    assert.equal((await request(`${b.url}/v2/${repo}/manifests/missing`)).status, 404);
    const location = await startUpload(b.url, repo);
    const patch = await request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 100 }, body: data });
    assert.equal(patch.status, 202);

    let m = await eventually('PATCH counted', async () => {
      const s = await scrape();
      return s.value('berth_http_requests_total', { route: 'upload', method: 'PATCH', status: '202' }) === 1 ? s : undefined;
    });
    assert.equal(m.value('berth_http_requests_total', { route: 'base', method: 'GET', status: '200' }), 2);
    assert.equal(m.value('berth_http_requests_total', { route: 'manifest', method: 'GET', status: '404' }), 1);
    assert.equal(m.value('berth_http_requests_total', { route: 'upload-start', method: 'POST', status: '202' }), 1);
    assert.equal(m.value('berth_http_request_duration_seconds_count', { route: 'base', method: 'GET' }), 2);
    assert.equal(m.value('berth_http_request_duration_seconds_bucket', { route: 'base', method: 'GET', le: '+Inf' }), 2);
    assert.ok(m.value('berth_http_request_duration_seconds_sum', { route: 'base', method: 'GET' })! > 0);
    assert.equal(m.value('berth_http_request_bytes_total', { route: 'upload' }), 100);
    assert.ok(m.value('berth_http_response_bytes_total', { route: 'manifest' })! > 0, 'the 404 body is counted');
    assert.equal(m.value('berth_uploads_in_progress'), 1, 'one upload open');
    assert.ok(m.value('berth_process_cpu_user_seconds_total') !== undefined, 'default process metrics');

    const put = await request(withQuery(location, `digest=${digest}`), { method: 'PUT', headers: { 'Content-Length': 0 } });
    assert.equal(put.status, 201, put.body.toString());
    const blob = await request(`${b.url}/v2/${repo}/blobs/${digest}`);
    assert.equal(blob.status, 200);
    m = await eventually('blob GET counted', async () => {
      const s = await scrape();
      return s.value('berth_http_requests_total', { route: 'blob', method: 'GET', status: '200' }) === 1 ? s : undefined;
    });
    assert.equal(m.value('berth_http_requests_total', { route: 'upload', method: 'PUT', status: '201' }), 1);
    assert.equal(m.value('berth_http_response_bytes_total', { route: 'blob' }), 100);
    assert.equal(m.value('berth_uploads_in_progress'), 0, 'no upload open after completing');

    // The same requests under distribution's names, handler labels and lower-case methods.
    assert.equal(m.value('registry_http_requests_total', { handler: 'base', code: '200', method: 'get' }), 2);
    assert.equal(m.value('registry_http_requests_total', { handler: 'manifest', code: '404', method: 'get' }), 1);
    assert.equal(m.value('registry_http_requests_total', { handler: 'blob_upload', code: '202', method: 'post' }), 1);
    assert.equal(m.value('registry_http_requests_total', { handler: 'blob_upload_chunk', code: '202', method: 'patch' }), 1);
    assert.equal(m.value('registry_http_requests_total', { handler: 'blob_upload_chunk', code: '201', method: 'put' }), 1);
    assert.equal(m.value('registry_http_requests_total', { handler: 'blob', code: '200', method: 'get' }), 1);
    assert.equal(m.value('registry_http_request_duration_seconds_count', { handler: 'base', method: 'get' }), 2);
    assert.equal(m.value('registry_http_request_duration_seconds_bucket', { handler: 'base', method: 'get', le: '+Inf' }), 2);
    assert.equal(m.value('registry_http_request_size_bytes_sum', { handler: 'blob_upload_chunk' }), 100, 'the PATCH body');
    assert.equal(m.value('registry_http_request_size_bytes_count', { handler: 'blob_upload_chunk' }), 2);
    assert.equal(m.value('registry_http_response_size_bytes_sum', { handler: 'blob' }), 100);
    // distribution's storage timer, by driver operation: the append wrote, the commit moved, the GET read.
    for (const action of ['Writer', 'Move', 'Reader', 'Stat']) {
      assert.ok(m.value('registry_storage_action_seconds_count', { driver: 'filesystem', action })! >= 1, action);
      assert.equal(m.value('registry_storage_action_seconds_bucket', { driver: 'filesystem', action, le: '+Inf' }), m.value('registry_storage_action_seconds_count', { driver: 'filesystem', action }));
    }
    // The scrape goes to the debug server: no API request is in flight.
    for (const handler of ['base', 'manifest', 'tags', 'catalog', 'blob', 'blob_upload', 'blob_upload_chunk']) {
      assert.equal(m.value('registry_http_in_flight_requests', { handler }), 0, handler);
    }
  });

  it('registry_http_in_flight_requests counts a request while it runs', async () => {
    const location = await startUpload(b.url, 'metrics/inflight');
    // A PATCH whose body has not all arrived is in flight until it does.
    const url = new URL(location);
    const socket = net.connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PATCH ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nhello`);
    try {
      await eventually('the PATCH in flight', async () => (await scrape()).value('registry_http_in_flight_requests', { handler: 'blob_upload_chunk' }) === 1);
      const answer = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (d) => {
          text += String(d);
          if (text.includes('\r\n\r\n')) resolve(text);
        });
      });
      socket.write('world');
      assert.match(await answer, /^HTTP\/1\.1 202 /);
      await eventually('the PATCH done', async () => (await scrape()).value('registry_http_in_flight_requests', { handler: 'blob_upload_chunk' }) === 0);
    } finally {
      socket.destroy();
    }
  });

  it('is served only on the debug server at the configured path', async () => {
    assert.equal((await request(`${b.url}/custom-metrics`)).status, 404);
    assert.equal((await request(metricsUrl.replace('/custom-metrics', '/metrics'))).status, 404);
  });
});

// ---- 6b. Logs ---------------------------------------------------------------------

describe('logs', () => {
  it('the access log line: level by name, the query with secrets redacted, and why a 401 was refused while the answers stay identical', async () => {
    const htpasswd = path.join(work, 'logs.htpasswd');
    await writeFile(htpasswd, `alice:${await bcrypt.hash('s3cret-pw', 4)}\n`);
    const config = await writeConfig('logs', { auth: { htpasswd: { realm: 'logs-test', path: htpasswd } } });
    const b = await startBerth({}, config);
    try {
      const basic = (userPass: string) => ({ Authorization: `Basic ${Buffer.from(userPass).toString('base64')}` });
      const refusals: [string, Record<string, string>, string, string | undefined][] = [
        ['no credentials', {}, 'no credentials', undefined],
        ['a bearer token to a Basic realm', { Authorization: 'Bearer tok-in-header-9' }, 'malformed credentials', undefined],
        ['unknown user', basic('bob:bobs-pw-1'), 'unknown user', 'bob'],
        ['wrong password', basic('alice:wrong-pw-2'), 'wrong password', 'alice'],
      ];
      const answers: unknown[] = [];
      const ids: string[] = [];
      for (const [what, headers] of refusals) {
        const r = await request(`${b.url}/v2/_catalog?n=5`, { headers });
        assert.equal(r.status, 401, what);
        ids.push(String(r.headers['x-request-id']));
        const { date: _date, 'x-request-id': _id, ...rest } = r.headers;
        answers.push({ status: r.status, headers: rest, body: r.body.toString() });
      }
      for (let i = 1; i < answers.length; i++) assert.deepEqual(answers[i], answers[0], `${refusals[i]![0]}: the client is told exactly what it is told without credentials`);

      const ok = await request(`${b.url}/v2/_catalog?n=5&token=tok-value-1&_state=state-value-1&X-Amz-Signature=sig-value-1`, { headers: basic('alice:s3cret-pw') });
      assert.equal(ok.status, 200);

      const lines = await eventually('the access log lines', async () => {
        const parsed = b.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
        return parsed.length >= 5 ? parsed : undefined;
      });
      const byId = (id: string) => lines.find((l) => l.reqId === id) ?? assert.fail(`no access log line for ${id}`);
      refusals.forEach(([what, , authError, authUser], i) => {
        const line = byId(ids[i]!);
        assert.equal(line.status, 401, what);
        assert.equal(line.authError, authError, what);
        assert.equal(line.authUser, authUser, what);
        assert.equal(line.user, undefined, `${what}: nobody was authenticated`);
        assert.equal(line.query, 'n=5', what);
      });
      const good = byId(String(ok.headers['x-request-id']));
      assert.equal(good.level, 'info', 'the level is a name, as logrus writes it');
      assert.equal(good.user, 'alice');
      assert.equal(good.authError, undefined);
      assert.equal(good.path, '/v2/_catalog');
      assert.equal(good.query, 'n=5&token=REDACTED&_state=REDACTED&X-Amz-Signature=REDACTED');

      const all = b.logs.join('\n');
      for (const secret of ['s3cret-pw', 'wrong-pw-2', 'bobs-pw-1', 'tok-in-header-9', 'tok-value-1', 'state-value-1', 'sig-value-1', Buffer.from('alice:s3cret-pw').toString('base64'), 'Basic ']) {
        assert.ok(!all.includes(secret), `the logs never hold ${JSON.stringify(secret)}`);
      }
    } finally {
      await b.close();
    }
  });

  it('the start-up line names the configuration file (or defaults) and the REGISTRY_* variables applied, never their values', async () => {
    const root = await mkdtemp(path.join(work, 'startup-'));
    const config = await writeConfig('startup', { storage: { filesystem: { rootdirectory: root } } });
    const env = { REGISTRY_BERTH_WORKERS: '1', REGISTRY_HTTP_SECRET: 'http-secret-value-7', REGISTRY_LOG_FIELDS_ENVIRONMENT: 'startup-test' };
    const started = (berth: { output(): string }) =>
      eventually('the start-up line', async () => {
        const line = berth
          .output()
          .split('\n')
          .find((l) => l.includes('berth listening'));
        return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      });

    const withFile = await spawnBerth(await freePort(), env, ['serve', config]);
    try {
      const line = await started(withFile);
      assert.equal(line.level, 'info');
      assert.equal(line.config, config);
      assert.ok(Array.isArray(line.env), JSON.stringify(line));
      for (const name of ['REGISTRY_BERTH_WORKERS', 'REGISTRY_HTTP_ADDR', 'REGISTRY_HTTP_SECRET', 'REGISTRY_LOG_FIELDS_ENVIRONMENT']) {
        assert.ok((line.env as string[]).includes(name), `${name} in ${JSON.stringify(line.env)}`);
      }
      assert.ok(!withFile.output().includes('http-secret-value-7'), 'no variable value is logged');
    } finally {
      await withFile.stop();
    }

    const withoutFile = await spawnBerth(await freePort(), { ...env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
    try {
      const line = await started(withoutFile);
      assert.equal(line.config, 'defaults');
      assert.ok((line.env as string[]).includes('REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY'));
    } finally {
      await withoutFile.stop();
    }
  });
});

// ---- 7. Upload purging ---------------------------------------------------------------

/**
 * Whether some process holds a flock on `file` (as the filesystem store does
 * on an upload while a request writes to it), read from /proc/locks so that
 * looking takes no lock of its own.
 */
async function uploadLocked(file: string): Promise<boolean> {
  const { ino } = await stat(file);
  const locks = await readFile('/proc/locks', 'utf8');
  return locks.split('\n').some((l) => /\bFLOCK\s+ADVISORY\s+WRITE\b/.test(l) && new RegExp(`\\s[0-9a-f]+:[0-9a-f]+:${ino}\\s`).test(l));
}

describe('storage.maintenance.uploadpurging', () => {
  it('removes an abandoned upload but not a completed blob, one being written or one written since; dryrun keeps it', async () => {
    // Age 1h, and the files the test wants old are dated back two hours: which
    // upload is old is the test's doing, never how fast the machine runs.
    const purging = (dryrun: boolean) => ({ storage: { maintenance: { uploadpurging: { enabled: true, age: '1h', interval: '1s', dryrun } } } });
    const [live, dry] = await Promise.all([
      writeConfig('purge', purging(false)).then((f) => startBerth({}, f)),
      writeConfig('purge-dry', purging(true)).then((f) => startBerth({}, f)),
    ]);
    const twoHoursAgo = () => new Date(Date.now() - 2 * 3_600_000);
    const age = (file: string) => utimes(file, twoHoursAgo(), twoHoursAgo());
    const agent = new http.Agent({ keepAlive: false });
    try {
      const repo = 'purge/app';
      const uploadFile = (b: TestBerth, location: string) => path.join(b.root, 'uploads', new URL(location).pathname.split('/').pop()!);
      const patch = (location: string, bytes: Buffer) =>
        request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.byteLength }, body: bytes });
      /** Dates an abandoned upload back and waits until a purge has removed it: a purge ran after this call began. */
      const purged = async (location: string) => {
        await age(uploadFile(live, location));
        const gone = await eventually('the abandoned upload to be purged', async () => {
          const r = await request(location);
          return r.status === 404 ? r : undefined;
        }, 20_000, 100);
        assert.deepEqual(errorCodes(gone), ['BLOB_UPLOAD_UNKNOWN']);
        await assert.rejects(access(uploadFile(live, location)), /ENOENT/);
      };
      const abandoned = await Promise.all([1, 2, 3].map(() => startUpload(live.url, repo)));
      for (const a of abandoned) assert.equal((await patch(a, Buffer.from('half a layer'))).status, 202);
      const dryAbandoned = await startUpload(dry.url, repo);

      // A blob completed meanwhile.
      const data = pseudoRandomBytes('purge-complete', 5000);
      const done = await request(`${live.url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.byteLength },
        body: data,
      });
      assert.equal(done.status, 201);

      // An upload with a PATCH in flight: the server holds its lock while the body comes in.
      // Only the headers are sent, so the server has written nothing and the file keeps its date.
      const active = await startUpload(live.url, repo);
      const activeFile = uploadFile(live, active);
      const chunk = pseudoRandomBytes('purge-active', 64 * 1024);
      const { req, reply } = slowPatch(active, chunk.byteLength, agent);
      req.flushHeaders();
      await eventually('the server to lock the upload for the PATCH', () => uploadLocked(activeFile));
      // Old by its date, but being written: a purge must leave it.
      await age(activeFile);
      // The second purge that removes an abandoned upload began after the first had
      // ended, so it listed the active upload with its old date.
      await purged(abandoned[0]!);
      await purged(abandoned[1]!);
      await access(activeFile);

      // The chunk: the append dates the file now, so it stays once the lock is gone.
      req.end(chunk);
      const r = await within(reply, 20_000, 'the PATCH response');
      assert.equal(r.status, 202, r.body.toString());
      await purged(abandoned[2]!);
      const activeStatus = await request(active);
      assert.equal(activeStatus.status, 204);
      assert.equal(activeStatus.headers.range, `0-${chunk.byteLength - 1}`);
      const finished = await request(withQuery(active, `digest=${sha256(chunk)}`), { method: 'PUT', headers: { 'Content-Length': 0 } });
      assert.equal(finished.status, 201, 'the active upload is whole');

      const blob = await request(`${live.url}/v2/${repo}/blobs/${sha256(data)}`);
      assert.equal(blob.status, 200);
      assert.ok(blob.body.equals(data));
      assert.ok(live.logs.some((l) => l.includes('upload purge: removed abandoned uploads')));

      // Dry run: it found the old upload (and said so), and left it there.
      await age(uploadFile(dry, dryAbandoned));
      await eventually('the dry run to report', async () => dry.logs.some((l) => l.includes('upload purge (dry run)')), 20_000, 100);
      assert.equal((await request(dryAbandoned)).status, 204);
      await access(uploadFile(dry, dryAbandoned));
    } finally {
      agent.destroy();
      await Promise.all([live.close(), dry.close()]);
    }
  });

  it('purgeUploads: uploads untouched for longer than the age go, fresher ones stay, dryRun counts without removing', async () => {
    const root = await mkdtemp(path.join(work, 'purge-unit-'));
    const { config } = parseConfig('', { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
    const app = await createApp(config);
    try {
      const fresh = await app.registry.uploads.start('unit/app');
      const old = await app.registry.uploads.start('unit/app');
      const leftover = randomUUID(); // a file no session was ever issued for (an older version's, say)
      await writeFile(path.join(root, 'uploads', leftover), 'left by a crash');
      const anHourAgo = new Date(Date.now() - 3_600_000);
      await utimes(path.join(root, 'uploads', old.id), anHourAgo, anHourAgo);
      await utimes(path.join(root, 'uploads', leftover), anHourAgo, anHourAgo);

      // age 1 minute: only the hour-old files qualify.
      assert.deepEqual(await purgeUploads(app.store, 60_000, true), { uploads: 2, dryRun: true });
      await access(path.join(root, 'uploads', old.id));
      assert.deepEqual(await purgeUploads(app.store, 60_000, false), { uploads: 2, dryRun: false });
      await assert.rejects(access(path.join(root, 'uploads', old.id)), /ENOENT/);
      await assert.rejects(access(path.join(root, 'uploads', leftover)), /ENOENT/);
      await assert.rejects(app.registry.uploads.status('unit/app', old.id), /blob upload unknown/);
      assert.equal((await app.registry.uploads.status('unit/app', fresh.id)).size, 0, 'the fresh upload stays');

      await sleep(30);
      // age 10 ms: the fresh upload is stale now.
      assert.deepEqual(await purgeUploads(app.store, 10, false), { uploads: 1, dryRun: false });
      await assert.rejects(access(path.join(root, 'uploads', fresh.id)), /ENOENT/);
    } finally {
      await app.close();
    }
  });
});

// ---- 8. Graceful shutdown --------------------------------------------------------------

/** Resolves true once a new TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A PATCH whose body the test writes by hand; `reply` settles when the response ends or the connection fails. */
function slowPatch(location: string, total: number, agent: http.Agent) {
  let req!: http.ClientRequest;
  const reply = new Promise<Reply>((resolve, reject) => {
    req = http.request(location, {
      method: 'PATCH',
      agent,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': total, 'Content-Range': `0-${total - 1}` },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
  });
  reply.catch(() => {});
  return { req, reply };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

describe('graceful shutdown (SIGTERM)', () => {
  it('stops accepting connections, lets an in-flight upload finish, then exits 0', async () => {
    const root = await mkdtemp(path.join(work, 'drain-'));
    const port = await freePort();
    const berth = await spawnBerth(port, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const location = await startUpload(berth.url, 'drain/app');
      const payload = pseudoRandomBytes('drain', 256 * 1024);
      const half = payload.byteLength / 2;
      const { req, reply } = slowPatch(location, payload.byteLength, agent);
      req.write(payload.subarray(0, half));
      // In flight for the server, not only sent: it holds the upload's lock while it reads the body.
      await eventually('the server to take the PATCH', () => uploadLocked(path.join(root, 'uploads', new URL(location).pathname.split('/').pop()!)));

      const exited = berth.stop('SIGTERM');
      await eventually('new connections to be refused', () => connectionRefused(port), 10_000, 20);
      assert.equal(berth.child.exitCode, null, 'still running while a request is in flight');
      await sleep(200);
      assert.equal(berth.child.exitCode, null, 'still running while a request is in flight');

      req.end(payload.subarray(half));
      const r = await within(reply, 20_000, 'the in-flight PATCH response');
      assert.equal(r.status, 202, r.body.toString());
      assert.equal(r.headers.range, `0-${payload.byteLength - 1}`);
      // A keep-alive client must not hold the process open once its request is done.
      // Held open by it, the process would wait out http.draintimeout (30 s by default).
      assert.equal(await within(exited, 15_000, 'process exit'), 0, berth.output());
      assert.match(berth.output(), /shutting down/);
    } finally {
      agent.destroy();
      await berth.stop('SIGKILL');
    }
  });

  it('http.draintimeout: cuts a request that never finishes and still exits 0', async () => {
    const root = await mkdtemp(path.join(work, 'drain-timeout-'));
    const port = await freePort();
    const berth = await spawnBerth(port, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_HTTP_DRAINTIMEOUT: '1s' });
    const agent = new http.Agent({ keepAlive: false });
    try {
      const location = await startUpload(berth.url, 'drain/stuck');
      const { req, reply } = slowPatch(location, 100_000, agent);
      req.write(Buffer.alloc(10_000, 1));
      await eventually('the server to take the PATCH', () => uploadLocked(path.join(root, 'uploads', new URL(location).pathname.split('/').pop()!)));
      const signalled = Date.now();
      const exited = berth.stop('SIGTERM');
      await eventually('new connections to be refused', () => connectionRefused(port), 10_000, 20);
      await assert.rejects(within(reply, 15_000, 'the stuck request to be cut'), /socket hang up|ECONNRESET|aborted/i);
      const code = await within(exited, 15_000, 'process exit');
      const elapsed = Date.now() - signalled;
      assert.equal(code, 0, berth.output());
      // The timer starts when the signal arrives, after `signalled` (less a timer's coarseness).
      assert.ok(elapsed >= 900, `waited for the drain timeout before cutting (${elapsed} ms)`);
      // Well short of the default 30 s: the configured 1 s cut it.
      assert.ok(elapsed < 15_000, `exited soon after the drain timeout (${elapsed} ms)`);
    } finally {
      agent.destroy();
      await berth.stop('SIGKILL');
    }
  });
});

describe('a second signal', () => {
  it('during the drain, exits at once with 1 instead of waiting out http.draintimeout', async () => {
    const root = await mkdtemp(path.join(work, 'drain-second-'));
    const port = await freePort();
    const berth = await spawnBerth(port, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_HTTP_DRAINTIMEOUT: '60s' });
    const agent = new http.Agent({ keepAlive: false });
    try {
      const location = await startUpload(berth.url, 'drain/second');
      const { req, reply } = slowPatch(location, 100_000, agent);
      reply.catch(() => {}); // cut when the process exits
      req.write(Buffer.alloc(10_000, 1));
      await eventually('the server to take the PATCH', () => uploadLocked(path.join(root, 'uploads', new URL(location).pathname.split('/').pop()!)));
      const exited = berth.stop('SIGTERM');
      await eventually('new connections to be refused', () => connectionRefused(port), 10_000, 20);
      assert.equal(berth.child.exitCode, null, 'draining: the PATCH is still in flight');
      const second = Date.now();
      berth.child.kill('SIGINT');
      assert.equal(await within(exited, 10_000, 'process exit'), 1, berth.output());
      assert.ok(Date.now() - second < 5000, `exited ${Date.now() - second} ms after the second signal`);
      assert.match(berth.output(), /second signal: exiting without waiting for the drain/);
    } finally {
      agent.destroy();
      await berth.stop('SIGKILL');
    }
  });
});

describe('SQLite WAL checkpoints', () => {
  const autocheckpoint = async (app: Awaited<ReturnType<typeof createApp>>) =>
    (await sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`.execute(app.meta.db)).rows[0]?.wal_autocheckpoint;

  it('a server checkpoints on a thread of its own; its threads commit without checkpointing until the safety net', async () => {
    const root = await mkdtemp(path.join(work, 'checkpoints-'));
    const { config } = parseConfig('', { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
    const here = await createApp(config, undefined, { checkpoints: 'here' });
    const elsewhere = await createApp(config, undefined, { checkpoints: 'elsewhere' });
    const cli = await createApp(config);
    try {
      assert.equal(await autocheckpoint(here), SAFETY_NET_PAGES);
      assert.equal(await autocheckpoint(elsewhere), SAFETY_NET_PAGES);
      assert.equal(await autocheckpoint(cli), 1000, "a short-lived command keeps SQLite's own checkpoints");
      const db = path.join(root, 'berth.db');
      const before = (await stat(db)).size;
      // Far fewer pages than the safety net: only the checkpoint thread can move them into the database file.
      for (let i = 0; i < 1500; i++) await elsewhere.meta.registry.ensureRepository(`checkpoints/repository-${i}`);
      await eventually('the checkpoint thread to copy the log into the database file', async () => (await stat(db)).size > before + 16 * 4096, 10_000, 20);
    } finally {
      await Promise.all([here.close(), elsewhere.close(), cli.close()]);
    }
  });
});

// ---- start-up checks -------------------------------------------------------------

describe('keys Berth accepts but does not act on, at start-up', () => {
  it('a real server logs one warning per key that changes what a user gets, and an info line for redis', async () => {
    const root = await mkdtemp(path.join(work, 'unsupported-'));
    const config = await writeConfig('unsupported', {
      proxy: { remoteurl: 'https://registry-1.docker.io' },
      middleware: { storage: [{ name: 'cloudfront', options: { baseurl: 'https://d111111abcdef8.cloudfront.net/' } }] },
      redis: { addr: '127.0.0.1:6379' },
      storage: { cache: { blobdescriptor: 'redis' } },
    });
    const p = await spawnBerth(await freePort(), { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_BERTH_WORKERS: '1' }, ['serve', config]);
    try {
      const lines = p
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string });
      const at = (level: string) => lines.filter((l) => l.level === level).map((l) => l.msg);
      const warnings = at('warning');
      assert.equal(warnings.filter((m) => m.startsWith('proxy.remoteurl is not supported')).length, 1, warnings.join('\n'));
      assert.match(warnings.join('\n'), /proxy\.remoteurl .*no pull-through cache.*https:\/\/registry-1\.docker\.io/);
      assert.match(warnings.join('\n'), /middleware\.storage\[0\] \(cloudfront\) .*not redirected to https:\/\/d111111abcdef8\.cloudfront\.net\//);
      assert.equal(warnings.length, 2, `nothing about the blob-descriptor cache: ${warnings.join('\n')}`);
      assert.deepEqual(
        at('info').filter((m) => m.startsWith('redis')),
        ['redis is not used: Berth keeps blob descriptors in its metadata database (SQLite, or PostgreSQL with berth.database.url), which is also what replicas share'],
      );
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

describe('a data directory Berth cannot write', () => {
  /** Runs the CLI, expecting it to fail; returns its exit code and stderr. */
  async function failing(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const r = await run(process.execPath, [CLI_ENTRY, ...args], { env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${await freePort()}`, REGISTRY_BERTH_WORKERS: '2', ...env }, timeoutMs: 20_000 }).then(
      (ok) => assert.fail(`berth ${args.join(' ')} succeeded: ${ok.stdout}${ok.stderr}`),
      (err: CommandError) => err,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    return { code: r.exitCode, stderr: r.stderr };
  }

  it('under a regular file: serve, garbage-collect and du exit 1 naming the path', async () => {
    const file = path.join(work, 'a-file');
    await writeFile(file, 'not a directory');
    const root = path.join(file, 'data');
    for (const args of [['serve'], ['garbage-collect'], ['garbage-collect', '--dry-run'], ['du']]) {
      const r = await failing(args, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr.trim(), `berth: storage.filesystem.rootdirectory: cannot create ${root}: ${file} is a file, not a directory`);
    }
  });

  it('immutable (chattr +i, which stops root too): names the directory; a read-only SQLite registry says why it needs it', async (t) => {
    const root = await mkdtemp(path.join(work, 'immutable-'));
    // Data first: a database and a blob directory, as a registry that ran here leaves them.
    const seeded = await run(process.execPath, [CLI_ENTRY, 'du'], { env: { ...process.env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root } });
    assert.match(seeded.stdout, /total/);
    const undo = await makeImmutable(root);
    if (!undo) {
      t.skip('chattr +i is not available on this file system or to this user');
      return;
    }
    try {
      for (const args of [['serve'], ['garbage-collect']]) {
        const r = await failing(args, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`^berth: storage\\.filesystem\\.rootdirectory: cannot write to ${root}: operation not permitted .*storage\\.maintenance\\.readonly\\.enabled`, 'm'));
      }
      const ro = await failing(['serve'], { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'true' });
      assert.equal(ro.code, 1);
      assert.match(ro.stderr, new RegExp(`cannot write to ${root}: .*SQLite database there .*berth\\.database\\.url`));
    } finally {
      await undo();
    }
  });
});

describe('auth.htpasswd file disappearing while the server runs', () => {
  it('is logged once as an error, refuses everyone meanwhile, and is used again with an info line when back', async () => {
    const file = path.join(work, 'vanishing.htpasswd');
    const entry = `alice:${await bcrypt.hash('secret', 4)}\n`;
    await writeFile(file, entry);
    const b = await startBerth({}, await writeConfig('vanishing', { auth: { htpasswd: { realm: 'vanishing', path: file } } }));
    const alice = { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` };
    const logged = (level: string, re: RegExp) =>
      b.logs
        .flatMap((l) => l.split('\n'))
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string; path?: string })
        .filter((l) => l.level === level && re.test(l.msg) && l.path === file);
    try {
      assert.equal((await request(`${b.url}/v2/`, { headers: alice })).status, 200);
      await unlink(file);
      await eventually('401 once the file is gone', async () => (await request(`${b.url}/v2/`, { headers: alice })).status === 401, 5000);
      // Several requests across several re-checks of the file (one a second).
      for (let i = 0; i < 3; i++) {
        await sleep(1100);
        for (let j = 0; j < 5; j++) assert.equal((await request(`${b.url}/v2/`, { headers: alice })).status, 401);
      }
      assert.equal(logged('error', /^htpasswd file cannot be read/).length, 1, 'one error, not one per request or per check');
      assert.equal(logged('info', /^htpasswd file is back/).length, 0);

      await writeFile(file, entry);
      await eventually('200 once the file is back', async () => (await request(`${b.url}/v2/`, { headers: alice })).status === 200, 5000);
      assert.equal(logged('info', /^htpasswd file is back and in use again$/).length, 1);
      assert.equal(logged('error', /^htpasswd file cannot be read/).length, 1);
    } finally {
      await b.close();
    }
  });
});
