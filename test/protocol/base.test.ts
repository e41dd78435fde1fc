/**
 * The API base (end-1), the error envelope, routing (404 / 405), repository
 * name validation and a little fuzzing: client mistakes are 4xx, never 5xx.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { authorizationLine, expectClientError, expectError, expectStatus, pushBlob, pushImage, rawErrorCodes, rawRequest, sha256, startUpload, uniqueRepo, useBerth, MT } from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

describe('GET /v2/ (end-1)', parallel, () => {
  test('answers 200 with the API version header', async () => {
    const res = await fetch(`${b.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.deepEqual(await res.json(), {});
  });

  test('HEAD /v2/ and /v2 without the slash also answer 200', async () => {
    const head = await fetch(`${b.url}/v2/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const noSlash = await fetch(`${b.url}/v2`);
    assert.equal(noSlash.status, 200);
    await noSlash.arrayBuffer();
  });

  test('every response, errors included, carries Docker-Distribution-Api-Version', async () => {
    const res = await fetch(`${b.url}/v2/${uniqueRepo()}/manifests/latest`);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    await expectError(res, 404, 'MANIFEST_UNKNOWN');
  });
});

describe('routing errors', parallel, () => {
  for (const p of ['/v2/foo/bar', '/v2/foo/blobs', '/v2/foo/manifests', '/v2/foo/tags', '/v3/', '/', '/favicon.ico', '/v2/foo/manifests/latest/extra']) {
    test(`unknown endpoint ${p} is 404 with the error envelope`, async () => {
      await expectError(await fetch(`${b.url}${p}`), 404);
    });
  }

  const wrongMethods: [string, string][] = [
    ['POST', '/v2/'],
    ['DELETE', '/v2/'],
    ['POST', '/v2/foo/tags/list'],
    ['PUT', '/v2/_catalog'],
    ['POST', '/v2/foo/manifests/latest'],
    ['PATCH', '/v2/foo/manifests/latest'],
    ['PUT', `/v2/foo/blobs/${sha256('x')}`],
    ['POST', `/v2/foo/blobs/${sha256('x')}`],
    ['GET', '/v2/foo/blobs/uploads/'],
    ['POST', `/v2/foo/referrers/${sha256('x')}`],
  ];
  for (const [method, p] of wrongMethods) {
    test(`${method} ${p} is 405 UNSUPPORTED`, async () => {
      await expectError(await fetch(`${b.url}${p}`, { method }), 405, 'UNSUPPORTED');
    });
  }

  test('a 405 says which methods are allowed', async () => {
    const res = await fetch(`${b.url}/v2/foo/tags/list`, { method: 'POST' });
    assert.match(res.headers.get('allow') ?? '', /\bGET\b/);
    await expectError(res, 405, 'UNSUPPORTED');
  });

  test('error responses are JSON with a Content-Length that matches the body', async () => {
    const res = await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/${sha256('nothing')}`);
    const len = Number(res.headers.get('content-length'));
    const body = await expectError(res.clone(), 404, 'BLOB_UNKNOWN');
    assert.equal(len, Buffer.byteLength(JSON.stringify(body)));
  });
});

describe('repository names', parallel, () => {
  const longName = `${'a'.repeat(200)}/${'b'.repeat(55)}`; // 256 characters
  const invalid: [string, string][] = [
    ['upper case', 'UPPER'],
    ['upper case component', 'library/Ubuntu'],
    ['empty component', 'a//b'],
    ['leading separator', '-a'],
    ['trailing separator', 'a-'],
    ['trailing slash', 'a/'],
    ['leading slash', '/a'],
    ['256 characters', longName],
    ['dot-dot', '..'],
    ['dot', '.'],
    ['dot-dot component', 'a/../b'],
    ['dot component', 'a/./b'],
    ['percent-encoded slash', 'a%2Fb'],
    ['percent-encoded dot-dot', '%2E%2E'],
    ['space', 'a%20b'],
    ['triple underscore', 'a___b'],
    ['colon', 'a:b'],
  ];
  assert.equal(longName.length, 256);

  const endpoints = (name: string): [string, string][] => [
    ['GET', `/v2/${name}/tags/list`],
    ['GET', `/v2/${name}/manifests/latest`],
    ['HEAD', `/v2/${name}/manifests/latest`],
    ['PUT', `/v2/${name}/manifests/latest`],
    ['DELETE', `/v2/${name}/manifests/latest`],
    ['GET', `/v2/${name}/blobs/${sha256('x')}`],
    ['DELETE', `/v2/${name}/blobs/${sha256('x')}`],
    ['POST', `/v2/${name}/blobs/uploads/`],
    ['POST', `/v2/${name}/blobs/uploads/?digest=${sha256('x')}`],
    ['GET', `/v2/${name}/blobs/uploads/0123456789abcdef`],
    ['PATCH', `/v2/${name}/blobs/uploads/0123456789abcdef`],
    ['GET', `/v2/${name}/referrers/${sha256('x')}`],
  ];

  for (const [why, name] of invalid) {
    test(`${why} (${name.length > 40 ? `${name.slice(0, 20)}…` : name}) is 400 NAME_INVALID on every endpoint`, async () => {
      for (const [method, p] of endpoints(name)) {
        const body = method === 'PUT' || method === 'POST' || method === 'PATCH' ? 'x' : undefined;
        const res = await rawRequest(b.url, method, p, body ? { 'Content-Type': 'application/octet-stream' } : {}, body);
        assert.equal(res.status, 400, `${method} ${p}: ${res.status} ${res.body.toString().slice(0, 200)}`);
        if (method !== 'HEAD') assert.deepEqual(rawErrorCodes(res), ['NAME_INVALID'], `${method} ${p}`);
      }
    });
  }

  test('the longest valid name (255 characters) and nested names work', async () => {
    const name = `${'a'.repeat(200)}/${'b'.repeat(54)}`;
    assert.equal(name.length, 255);
    await pushImage(b.url, name, 'v1');
    const res = await fetch(`${b.url}/v2/${name}/tags/list`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name, tags: ['v1'] });
  });

  test('separators: ".", "_", "__" and runs of "-" are allowed inside a component', async () => {
    for (const name of ['a.b', 'a_b', 'a__b', 'a--b', 'a-b/c.d/e__f', '0/1/2']) {
      await pushBlob(b.url, name, 'x');
    }
  });
});

describe('client mistakes never cause a 5xx', parallel, () => {
  const garbagePaths = [
    '/v2/%',
    '/v2/%ZZ/tags/list',
    '/v2/foo/manifests/%E0%A4%A',
    '/v2/foo/manifests/%00',
    '/v2/foo/manifests/a%2Fb',
    '/v2/foo/manifests/',
    '/v2/foo/blobs/',
    '/v2/foo/blobs/sha256:%00',
    '/v2/foo/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd',
    '/v2/foo/blobs/uploads/..%2F..%2Fberth.db',
    '/v2/foo/blobs/uploads/%2e%2e',
    '/v2/foo/referrers/',
    '/v2/foo/referrers/latest',
    '/v2//tags/list',
    '//v2/',
    '/v2/_catalog?n=%',
    '/v2/_catalog?n=99999999999999999999',
    '/v2/_catalog?n=1e3',
    '/v2/_catalog?last=%00',
    `/v2/${'a/'.repeat(2000)}tags/list`,
    `/v2/foo/manifests/${'x'.repeat(5000)}`,
    `/v2/foo/blobs/sha256:${'0'.repeat(5000)}`,
  ];
  for (const p of garbagePaths) {
    test(`GET ${p.length > 60 ? `${p.slice(0, 60)}…` : p}`, async () => {
      const res = await rawRequest(b.url, 'GET', p);
      assert.ok(res.status < 500, `${p}: ${res.status} ${res.body.toString().slice(0, 200)}`);
      if (res.status >= 400) rawErrorCodes(res);
    });
  }

  test('huge and odd n on tags/list and _catalog', async () => {
    const repo = uniqueRepo();
    await pushImage(b.url, repo, 'v1');
    for (const n of ['99999999999999999999', '1e3', '0x10', ' 1', '1.5', '+1', '-0', '9007199254740993']) {
      for (const p of [`/v2/${repo}/tags/list`, '/v2/_catalog']) {
        const res = await fetch(`${b.url}${p}?n=${encodeURIComponent(n)}`);
        if (res.status === 200) await res.arrayBuffer();
        else await expectError(res, 400, 'PAGINATION_NUMBER_INVALID');
      }
    }
  });

  test('broken Content-Range headers on PATCH', async () => {
    const repo = uniqueRepo();
    for (const range of ['abc', '5-2', '-1-3', '0-', '-5', 'bytes=0-99999999999999999999999', '0-99999999999999999999999', '1-2-3', 'bytes */*', '']) {
      const location = await startUpload(b.url, repo);
      const res = await fetch(location, { method: 'PATCH', headers: { 'Content-Range': range, 'Content-Type': 'application/octet-stream' }, body: 'hello' });
      await expectClientError(res, `Content-Range ${JSON.stringify(range)}`);
    }
  });

  test('broken Range headers on blob GET are ignored or refused, never a 5xx', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, 'hello world');
    for (const range of ['abc', 'bytes=', 'bytes=-', 'bytes=5-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=99999999999999999999-', 'bytes=--1']) {
      const res = await fetch(`${b.url}/v2/${repo}/blobs/${blob.digest}`, { headers: { Range: range } });
      await expectClientError(res, `Range ${range}`);
    }
  });

  test('non-JSON and malformed manifest bodies are MANIFEST_INVALID', async () => {
    const repo = uniqueRepo();
    const cfg = await pushBlob(b.url, repo, '{}', MT.ociConfig);
    const bodies: (string | Buffer)[] = [
      '',
      'not json',
      Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]),
      'null',
      '[]',
      '"a string"',
      '42',
      '{',
      '{"schemaVersion":2}',
      '{"schemaVersion":"2","config":{}}',
      '{"schemaVersion":2,"config":"x","layers":[]}',
      `{"schemaVersion":2,"config":{"mediaType":"${MT.ociConfig}","digest":"${cfg.digest}","size":-1},"layers":[]}`,
      `{"schemaVersion":2,"config":{"mediaType":"${MT.ociConfig}","digest":"sha256:nothex","size":2},"layers":[]}`,
      `{"schemaVersion":2,"config":{"mediaType":"${MT.ociConfig}","digest":"${cfg.digest}","size":2},"layers":{}}`,
      `{"schemaVersion":2,"config":{"mediaType":"${MT.ociConfig}","digest":"${cfg.digest}","size":2},"layers":[null]}`,
      `{"schemaVersion":2,"config":{"mediaType":"${MT.ociConfig}","digest":"${cfg.digest}","size":2},"annotations":{"a":1}}`,
      `{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":null}`,
      `{"schemaVersion":2,"mediaType":"${MT.ociIndex}","manifests":[{"digest":5}]}`,
      '['.repeat(100_000) + ']'.repeat(100_000),
    ];
    for (const body of bodies) {
      for (const ct of [MT.ociManifest, 'application/json', undefined]) {
        const res = await fetch(`${b.url}/v2/${repo}/manifests/latest`, { method: 'PUT', headers: ct ? { 'Content-Type': ct } : {}, body });
        await expectError(res, 400, 'MANIFEST_INVALID');
      }
    }
  });

  test('an unknown manifest Content-Type is MANIFEST_INVALID', async () => {
    const res = await fetch(`${b.url}/v2/${uniqueRepo()}/manifests/latest`, { method: 'PUT', headers: { 'Content-Type': 'application/x-garbage' }, body: '{"schemaVersion":2}' });
    await expectError(res, 400, 'MANIFEST_INVALID');
  });
});

/** One request written byte for byte on a socket (fetch only sends origin-form targets); the answer's status, headers and body. */
async function socketRequest(head: string): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  const u = new URL(b.url);
  // With token auth on (the accounts run), the request carries a token for what it asks.
  const [method, target] = head.split(' ');
  const path = target!.replace(/^https?:\/\/[^/]*/i, '') || '/';
  head += await authorizationLine(b.url, method!, path);
  const sock = net.connect(Number(u.port), u.hostname);
  let raw = '';
  sock.on('data', (d: Buffer) => (raw += d.toString('latin1')));
  const closed = new Promise<void>((done, fail) => {
    sock.on('close', () => done());
    sock.on('error', fail);
  });
  sock.write(`${head}Connection: close\r\n\r\n`);
  await closed;
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `a whole response head: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, split).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '');
  assert.ok(m, `a status line: ${statusLine}`);
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(m[1]), headers, body: raw.slice(split + 4) };
}

describe('absolute-form request targets (RFC 9112 §3.2.2)', parallel, () => {
  test('GET http://host/v2/ is served as /v2/', async () => {
    const host = new URL(b.url).host;
    const res = await socketRequest(`GET http://${host}/v2/ HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.equal(res.body, '{}');
  });

  test('a blob GET and HEAD by absolute URL answer as by path, the scheme in any case', async () => {
    const repo = uniqueRepo();
    const blob = await pushBlob(b.url, repo, 'absolute');
    const host = new URL(b.url).host;
    const get = await socketRequest(`GET http://${host}/v2/${repo}/blobs/${blob.digest} HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('docker-content-digest'), blob.digest);
    assert.equal(get.body, 'absolute');
    const head = await socketRequest(`HEAD HTTP://${host}/v2/${repo}/blobs/${blob.digest} HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '8');
  });

  test('the query is taken from the target, and the URLs handed out name its authority, not Host', async () => {
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    const blob = await pushBlob(b.url, from, 'mount me');
    // RFC 9112 §3.2.2: with an absolute-form target the Host header is ignored.
    const res = await socketRequest(`POST http://registry.example:8443/v2/${to}/blobs/uploads/?mount=${blob.digest}&from=${from} HTTP/1.1\r\nHost: elsewhere.invalid\r\nContent-Length: 0\r\n`);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `http://registry.example:8443/v2/${to}/blobs/${blob.digest}`);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal((await expectStatus(await fetch(`${b.url}/v2/${to}/blobs/${blob.digest}`), 200)).toString(), 'mount me');
  });

  test('errors by absolute URL are the same envelope', async () => {
    const host = new URL(b.url).host;
    const res = await socketRequest(`GET http://${host}/v2/${uniqueRepo()}/manifests/latest HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
    const root = await socketRequest(`GET http://${host} HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(root.status, 404);
  });
});

// Runs last: after every hostile name and path above.
describe('afterwards', () => {
  test('the server still answers after all of the above', async () => {
    const res = await fetch(`${b.url}/v2/`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  test('nothing outside blobs/, uploads/ and the database is created under the data directory', async () => {
    const entries = await readdir(b.root);
    for (const e of entries) assert.match(e, /^(blobs|uploads|berth\.db(-wal|-shm|-journal)?)$/, `unexpected entry ${e} in the data directory`);
    for (const e of await readdir(path.join(b.root, 'blobs')).catch(() => [] as string[])) {
      assert.match(e, /^(sha256|sha512)$/, `unexpected entry blobs/${e}`);
    }
  });
});
