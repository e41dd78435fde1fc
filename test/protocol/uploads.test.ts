/**
 * Pushing blobs (end-4a/4b, end-5, end-6, end-11, end-13): monolithic,
 * single POST, chunked, streamed, status, cancel, mount. Every step follows
 * the Location the previous response gave, as a client must.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { authorizationLine, expectError, expectStatus, getBlob, pushBlob, randomData, resolve, sha256, startUpload, uniqueRepo, unknownDigest, useBerth, withDigest } from './helpers.js';

/** The tests use repositories of their own, so they run side by side. */
const parallel = { concurrency: true };

const b = useBerth();

const octet = { 'Content-Type': 'application/octet-stream' };

/** PATCH a chunk with a Content-Range to `location`. */
function patch(location: string, chunk: Buffer, range?: string): Promise<Response> {
  const headers: Record<string, string> = { ...octet };
  if (range !== undefined) headers['Content-Range'] = range;
  return fetch(location, { method: 'PATCH', headers, body: chunk });
}

/** A request body sent with Transfer-Encoding: chunked (no Content-Length). */
function streamed(...parts: Buffer[]): { body: ReadableStream<Uint8Array>; duplex: 'half' } {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(new Uint8Array(p));
      controller.close();
    },
  });
  return { body, duplex: 'half' };
}

async function expectBlob(repo: string, digest: string, data: Buffer): Promise<void> {
  const res = await getBlob(b.url, repo, digest);
  assert.deepEqual(await expectStatus(res, 200), data);
}

describe('starting an upload (end-4a)', parallel, () => {
  test('POST answers 202 with an absolute Location, Docker-Upload-UUID and Range 0-0', async () => {
    const repo = uniqueRepo();
    const res = await fetch(`${b.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await expectStatus(res, 202);
    const location = res.headers.get('location') ?? '';
    const uuid = res.headers.get('docker-upload-uuid') ?? '';
    assert.ok(uuid.length > 0, 'Docker-Upload-UUID is set');
    assert.ok(location.startsWith(`${b.url}/v2/${repo}/blobs/uploads/`), `Location is absolute under the repository: ${location}`);
    assert.ok(new URL(location).pathname.endsWith(uuid), 'the upload URL names the session');
    assert.equal(res.headers.get('range'), '0-0');
    assert.equal(res.headers.get('content-length'), '0');
  });

  test('POST without the trailing slash also starts an upload', async () => {
    const res = await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/uploads`, { method: 'POST' });
    await expectStatus(res, 202);
    assert.ok(res.headers.get('location'));
  });

  test('every POST starts a different session', async () => {
    const repo = uniqueRepo();
    const a = await startUpload(b.url, repo);
    const c = await startUpload(b.url, repo);
    assert.notEqual(a, c);
  });
});

describe('monolithic upload', parallel, () => {
  test('POST then PUT <location>?digest= with the whole blob → 201 with Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo();
    const data = randomData(4096);
    const digest = sha256(data);
    const location = await startUpload(b.url, repo);
    const res = await fetch(withDigest(b.url, location, digest), { method: 'PUT', headers: octet, body: data });
    await expectStatus(res, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const blobUrl = resolve(b.url, res.headers.get('location'));
    assert.equal(blobUrl.pathname, `/v2/${repo}/blobs/${digest}`);
    assert.deepEqual(await expectStatus(await fetch(blobUrl), 200), data);
  });

  test('single POST ?digest= with the body → 201 (end-4b)', async () => {
    const repo = uniqueRepo();
    const data = randomData(2048);
    const digest = sha256(data);
    const res = await fetch(`${b.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: octet, body: data });
    await expectStatus(res, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(resolve(b.url, res.headers.get('location')).pathname, `/v2/${repo}/blobs/${digest}`);
    await expectBlob(repo, digest, data);
  });

  test('single POST with a wrong digest → 400 DIGEST_INVALID and nothing visible', async () => {
    const repo = uniqueRepo();
    const data = randomData(100);
    const wrong = sha256(randomData(100));
    await expectError(await fetch(`${b.url}/v2/${repo}/blobs/uploads/?digest=${wrong}`, { method: 'POST', headers: octet, body: data }), 400, 'DIGEST_INVALID');
    await expectError(await getBlob(b.url, repo, wrong), 404, 'BLOB_UNKNOWN');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
  });

  test('single POST with a malformed digest → 400 DIGEST_INVALID', async () => {
    await expectError(await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/uploads/?digest=sha256:nothex`, { method: 'POST', headers: octet, body: 'x' }), 400, 'DIGEST_INVALID');
  });

  test('a zero-length blob: POST then PUT ?digest= with an empty body, and single POST', async () => {
    const repo = uniqueRepo();
    const empty = Buffer.alloc(0);
    const digest = sha256(empty);
    const location = await startUpload(b.url, repo);
    await expectStatus(await fetch(withDigest(b.url, location, digest), { method: 'PUT', headers: octet, body: empty }), 201);
    const res = await getBlob(b.url, repo, digest);
    assert.equal((await expectStatus(res, 200)).byteLength, 0);
    assert.equal(res.headers.get('content-length'), '0');

    const other = uniqueRepo();
    await expectStatus(await fetch(`${b.url}/v2/${other}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: octet, body: empty }), 201);
    await expectBlob(other, digest, empty);
  });

  test('pushing a blob that already exists succeeds again', async () => {
    const repo = uniqueRepo();
    const data = randomData(50);
    await pushBlob(b.url, repo, data);
    await pushBlob(b.url, repo, data);
    await expectBlob(repo, sha256(data), data);
  });
});

describe('chunked upload (end-5)', parallel, () => {
  test('PATCH 0-999 then 1000-1999 → 202 with Range 0-1999, then PUT ?digest= → 201', async () => {
    const repo = uniqueRepo();
    const data = randomData(2000);
    let location = await startUpload(b.url, repo);

    const r1 = await patch(location, data.subarray(0, 1000), '0-999');
    await expectStatus(r1, 202);
    assert.equal(r1.headers.get('range'), '0-999');
    assert.ok(r1.headers.get('docker-upload-uuid'));
    location = resolve(b.url, r1.headers.get('location')).toString();

    const r2 = await patch(location, data.subarray(1000), '1000-1999');
    await expectStatus(r2, 202);
    assert.equal(r2.headers.get('range'), '0-1999');
    location = resolve(b.url, r2.headers.get('location')).toString();
    assert.ok(location.startsWith(`${b.url}/v2/${repo}/blobs/uploads/`));

    const done = await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT' });
    await expectStatus(done, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha256(data));
    await expectBlob(repo, sha256(data), data);
  });

  test('GET on the upload URL → 204 with Range, Location and Docker-Upload-UUID', async () => {
    const repo = uniqueRepo();
    const location = await startUpload(b.url, repo);
    const s0 = await fetch(location);
    await expectStatus(s0, 204);
    assert.equal(s0.headers.get('range'), '0-0');
    assert.equal(resolve(b.url, s0.headers.get('location')).toString(), location);

    await expectStatus(await patch(location, randomData(1500), '0-1499'), 202);
    const s1 = await fetch(location);
    await expectStatus(s1, 204);
    assert.equal(s1.headers.get('range'), '0-1499');
    assert.equal(resolve(b.url, s1.headers.get('location')).toString(), location);
    assert.ok(location.endsWith(s1.headers.get('docker-upload-uuid') ?? '<none>'));
  });

  test('PATCH without Content-Range streams and appends (Transfer-Encoding: chunked)', async () => {
    const repo = uniqueRepo();
    const parts = [randomData(700), randomData(1), randomData(3000)];
    let location = await startUpload(b.url, repo);

    const r1 = await fetch(location, { method: 'PATCH', headers: octet, ...streamed(parts[0]!, parts[1]!) });
    await expectStatus(r1, 202);
    assert.equal(r1.headers.get('range'), '0-700');
    location = resolve(b.url, r1.headers.get('location')).toString();

    const r2 = await fetch(location, { method: 'PATCH', headers: octet, ...streamed(parts[2]!) });
    await expectStatus(r2, 202);
    assert.equal(r2.headers.get('range'), '0-3700');
    location = resolve(b.url, r2.headers.get('location')).toString();

    const all = Buffer.concat(parts);
    await expectStatus(await fetch(withDigest(b.url, location, sha256(all)), { method: 'PUT' }), 201);
    await expectBlob(repo, sha256(all), all);
  });

  test('PATCH with a Content-Length but no Content-Range appends too', async () => {
    const repo = uniqueRepo();
    const data = randomData(300);
    const location = await startUpload(b.url, repo);
    const r1 = await patch(location, data.subarray(0, 100));
    await expectStatus(r1, 202);
    assert.equal(r1.headers.get('range'), '0-99');
    const r2 = await patch(resolve(b.url, r1.headers.get('location')).toString(), data.subarray(100));
    await expectStatus(r2, 202);
    assert.equal(r2.headers.get('range'), '0-299');
    await expectStatus(await fetch(withDigest(b.url, r2.headers.get('location')!, sha256(data)), { method: 'PUT' }), 201);
    await expectBlob(repo, sha256(data), data);
  });

  test('an out-of-order chunk → 416 with the current Range and Location; the upload continues', async () => {
    const repo = uniqueRepo();
    const data = randomData(2000);
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data.subarray(0, 1000), '0-999'), 202);

    const skip = await patch(location, data.subarray(1500), '1500-1999');
    assert.equal(skip.status, 416);
    assert.equal(skip.headers.get('range'), '0-999');
    assert.equal(resolve(b.url, skip.headers.get('location')).toString(), location);
    // The spec's error table has no RANGE_INVALID: a 416 for an upload says BLOB_UPLOAD_INVALID.
    await expectError(skip, 416, 'BLOB_UPLOAD_INVALID');

    // 416 is not fatal: the client resumes from the last valid range.
    const status = await fetch(location);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), '0-999');
    const next = await patch(location, data.subarray(1000), '1000-1999');
    await expectStatus(next, 202);
    assert.equal(next.headers.get('range'), '0-1999');
    await expectStatus(await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT' }), 201);
    await expectBlob(repo, sha256(data), data);
  });

  test('an overlapping chunk → 416 and nothing is appended', async () => {
    const repo = uniqueRepo();
    const data = randomData(2000);
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data.subarray(0, 1000), '0-999'), 202);
    const overlap = await patch(location, data.subarray(500, 1500), '500-1499');
    assert.equal(overlap.status, 416);
    assert.equal(overlap.headers.get('range'), '0-999');
    await expectError(overlap, 416, 'BLOB_UPLOAD_INVALID');
    const again = await patch(location, data.subarray(0, 1000), '0-999');
    await expectError(again, 416, 'BLOB_UPLOAD_INVALID');
    const status = await fetch(location);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), '0-999');
  });

  test('a first chunk that does not start at 0 → 416', async () => {
    const location = await startUpload(b.url, uniqueRepo());
    const res = await patch(location, randomData(100), '100-199');
    assert.equal(res.status, 416);
    assert.ok(res.headers.get('location'));
    await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
  });

  test('a refused chunk is answered at once and its connection closed with a linger, so a client still sending reads the 416', async () => {
    // The 416 is known before the body is read: it goes out at once with Connection: close; the
    // server then half-closes and reads what still comes for a while (a bounded lingering close)
    // instead of resetting a connection that is still receiving.
    const location = new URL(await startUpload(b.url, uniqueRepo()));
    const half = randomData(1024 * 1024);
    // Half-open: the server's FIN does not end this side, which goes on sending as a busy client would.
    const sock = net.connect({ port: Number(location.port), host: location.hostname, allowHalfOpen: true });
    let answer = '';
    sock.on('data', (d) => (answer += d.toString('latin1')));
    sock.on('error', () => {});
    const closed = new Promise((done) => sock.on('close', done));
    const auth = await authorizationLine(location.origin, 'PATCH', `${location.pathname}${location.search}`);
    sock.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: ${location.host}\r\n${auth}Content-Type: application/octet-stream\r\nContent-Range: 1-${2 * half.byteLength}\r\nContent-Length: ${2 * half.byteLength}\r\n\r\n`);
    sock.write(half);
    const deadline = Date.now() + 5000;
    while (!answer.includes('BLOB_UPLOAD_INVALID') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(answer, /^HTTP\/1\.1 416 /, 'answered while the body is still coming');
    assert.match(answer, /\r\nConnection: close\r\n/i);
    sock.end(half);
    await closed;
    // However the close ends, the whole answer was read first.
    const [head, body] = answer.split('\r\n\r\n');
    assert.equal(Buffer.byteLength(body!, 'latin1'), Number(/\r\nContent-Length: (\d+)/i.exec(head!)![1]));
    assert.equal((JSON.parse(body!) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_INVALID');
  });

  test('a malformed Content-Range → 416', async () => {
    const location = await startUpload(b.url, uniqueRepo());
    await expectError(await patch(location, randomData(10), 'ten bytes please'), 416, 'BLOB_UPLOAD_INVALID');
  });

  test('a final chunk out of order on PUT ?digest= → 416 BLOB_UPLOAD_INVALID with the current Range', async () => {
    const repo = uniqueRepo();
    const data = randomData(1500);
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data.subarray(0, 1000), '0-999'), 202);
    const res = await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT', headers: { ...octet, 'Content-Range': '1100-1599' }, body: data.subarray(1000) });
    assert.equal(res.headers.get('range'), '0-999');
    await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
  });

  test('PUT ?digest= can carry the final chunk', async () => {
    const repo = uniqueRepo();
    const data = randomData(1500);
    const location = await startUpload(b.url, repo);
    const r1 = await patch(location, data.subarray(0, 1000), '0-999');
    await expectStatus(r1, 202);
    const done = await fetch(withDigest(b.url, r1.headers.get('location')!, sha256(data)), {
      method: 'PUT',
      headers: { ...octet, 'Content-Range': '1000-1499' },
      body: data.subarray(1000),
    });
    await expectStatus(done, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha256(data));
    await expectBlob(repo, sha256(data), data);
  });

  test('PUT ?digest= with a final chunk and no Content-Range appends it', async () => {
    const repo = uniqueRepo();
    const data = randomData(1200);
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data.subarray(0, 200), '0-199'), 202);
    await expectStatus(await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT', headers: octet, body: data.subarray(200) }), 201);
    await expectBlob(repo, sha256(data), data);
  });

  test('the upload URL is bound to its repository: another name → 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const other = uniqueRepo();
    const location = await startUpload(b.url, repo);
    const foreign = location.replace(`/v2/${repo}/`, `/v2/${other}/`);
    assert.notEqual(foreign, location);
    await expectError(await fetch(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(foreign, randomData(10), '0-9'), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(withDigest(b.url, foreign, sha256('')), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    // The real one is untouched.
    const status = await fetch(location);
    await expectStatus(status, 204);
    assert.equal(status.headers.get('range'), '0-0');
  });

  test('an upload id that was not issued (one character changed, or made up) → 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo();
    const location = await startUpload(b.url, repo);
    const url = new URL(location);
    const id = url.pathname.split('/').pop()!;
    const last = id.at(-1) === 'A' ? 'B' : 'A';
    for (const forged of [id.slice(0, -1) + last, 'A'.repeat(id.length), `${id.slice(0, 22)}${'A'.repeat(22)}`]) {
      const other = new URL(location);
      other.pathname = url.pathname.replace(id, forged);
      await expectError(await fetch(other), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await patch(other.href, randomData(10), '0-9'), 404, 'BLOB_UPLOAD_UNKNOWN');
    }
    await expectStatus(await fetch(location), 204);
  });
});

describe('completing and failing uploads (end-6)', parallel, () => {
  test('a wrong digest at PUT → 400 DIGEST_INVALID, nothing visible, and the upload is gone', async () => {
    const repo = uniqueRepo();
    const data = randomData(1000);
    const wrong = sha256(randomData(1000));
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data, '0-999'), 202);
    await expectError(await fetch(withDigest(b.url, location, wrong), { method: 'PUT' }), 400, 'DIGEST_INVALID');
    await expectError(await getBlob(b.url, repo, wrong), 404, 'BLOB_UNKNOWN');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('a wrong digest on a monolithic PUT → 400 DIGEST_INVALID and nothing visible', async () => {
    const repo = uniqueRepo();
    const data = randomData(64);
    const wrong = unknownDigest();
    const location = await startUpload(b.url, repo);
    await expectError(await fetch(withDigest(b.url, location, wrong), { method: 'PUT', headers: octet, body: data }), 400, 'DIGEST_INVALID');
    await expectError(await getBlob(b.url, repo, wrong), 404, 'BLOB_UNKNOWN');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('PUT without ?digest= → 400 and the blob is not created', async () => {
    const repo = uniqueRepo();
    const data = randomData(10);
    const location = await startUpload(b.url, repo);
    await expectError(await fetch(location, { method: 'PUT', headers: octet, body: data }), 400, 'DIGEST_INVALID');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
  });

  test('PUT with a malformed ?digest= → 400 DIGEST_INVALID', async () => {
    const location = await startUpload(b.url, uniqueRepo());
    await expectError(await fetch(withDigest(b.url, location, 'sha256:1234'), { method: 'PUT', headers: octet, body: 'x' }), 400, 'DIGEST_INVALID');
  });

  test('a completed upload URL is gone', async () => {
    const repo = uniqueRepo();
    const data = randomData(10);
    const location = await startUpload(b.url, repo);
    await expectStatus(await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT', headers: octet, body: data }), 201);
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(location, data, '10-19'), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('DELETE cancels an upload: 204, then 404 BLOB_UPLOAD_UNKNOWN everywhere', async () => {
    const repo = uniqueRepo();
    const data = randomData(100);
    const location = await startUpload(b.url, repo);
    await expectStatus(await patch(location, data, '0-99'), 202);
    await expectStatus(await fetch(location, { method: 'DELETE' }), 204);
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(location, data, '100-199'), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(location, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await getBlob(b.url, repo, sha256(data)), 404, 'BLOB_UNKNOWN');
  });

  // (`..` is covered with raw requests in base.test.ts: fetch would normalise it away.)
  for (const id of ['0123456789abcdef0123', '00000000-0000-0000-0000-000000000000', 'x', 'not.an_upload-id~']) {
    test(`an unknown upload id (${id}) → 404 BLOB_UPLOAD_UNKNOWN`, async () => {
      const u = `${b.url}/v2/${uniqueRepo()}/blobs/uploads/${id}`;
      await expectError(await fetch(u), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await patch(u, randomData(5), '0-4'), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await fetch(`${u}?digest=${sha256('')}`, { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await fetch(u, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    });
  }
});

describe('cross-repository mount (end-11)', parallel, () => {
  test('?mount=<digest>&from=<repo> → 201 with Location and Docker-Content-Digest when the blob is in from', async () => {
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    const data = randomData(333);
    const blob = await pushBlob(b.url, from, data);
    const res = await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${blob.digest}&from=${from}`, { method: 'POST' });
    await expectStatus(res, 201);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    const blobUrl = resolve(b.url, res.headers.get('location'));
    assert.equal(blobUrl.pathname, `/v2/${to}/blobs/${blob.digest}`);
    assert.deepEqual(await expectStatus(await fetch(blobUrl), 200), data);
    // Still in the source.
    await expectBlob(from, blob.digest, data);
  });

  test('mounting a blob that is not in from falls back to an upload: 202 with Location', async () => {
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    await pushBlob(b.url, from, 'unrelated');
    const data = randomData(42);
    const digest = sha256(data);
    const res = await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' });
    await expectStatus(res, 202);
    assert.ok(res.headers.get('docker-upload-uuid'));
    assert.equal(res.headers.get('range'), '0-0');
    const location = resolve(b.url, res.headers.get('location')).toString();
    assert.ok(location.startsWith(`${b.url}/v2/${to}/blobs/uploads/`));
    // The fallback session is a working upload.
    await expectStatus(await fetch(withDigest(b.url, location, digest), { method: 'PUT', headers: octet, body: data }), 201);
    await expectBlob(to, digest, data);
  });

  test('mounting from a repository that does not exist → 202', async () => {
    const res = await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/uploads/?mount=${unknownDigest()}&from=${uniqueRepo('ghost')}`, { method: 'POST' });
    await expectStatus(res, 202);
    assert.ok(res.headers.get('location'));
  });

  test('mount without from finds the blob in another repository: 201 with Location and Docker-Content-Digest', async () => {
    // OCI dist-spec: automatic content discovery (the conformance suite's OCI_AUTOMATIC_CROSSMOUNT=1).
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    const data = randomData(10);
    const blob = await pushBlob(b.url, from, data);
    const res = await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${blob.digest}`, { method: 'POST' });
    await expectStatus(res, 201);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    const blobUrl = resolve(b.url, res.headers.get('location'));
    assert.equal(blobUrl.pathname, `/v2/${to}/blobs/${blob.digest}`);
    assert.deepEqual(await expectStatus(await fetch(blobUrl), 200), data);
    // Mounting again, now that the target holds it, is 201 too.
    await expectStatus(await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${blob.digest}`, { method: 'POST' }), 201);
  });

  test('mount without from of a blob that exists nowhere → 202 and a working upload', async () => {
    const to = uniqueRepo('to');
    const data = randomData(50);
    const digest = sha256(data);
    const res = await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    await expectStatus(res, 202);
    assert.ok(res.headers.get('docker-upload-uuid'));
    const location = resolve(b.url, res.headers.get('location')).toString();
    assert.ok(location.startsWith(`${b.url}/v2/${to}/blobs/uploads/`));
    await expectStatus(await fetch(withDigest(b.url, location, digest), { method: 'PUT', headers: octet, body: data }), 201);
    await expectBlob(to, digest, data);
  });

  test('mount without from of a blob whose bytes remain but that no repository links any more → 202', async () => {
    const from = uniqueRepo('from');
    const blob = await pushBlob(b.url, from, randomData(30));
    await expectStatus(await fetch(`${b.url}/v2/${from}/blobs/${blob.digest}`, { method: 'DELETE' }), 202);
    const to = uniqueRepo('to');
    await expectStatus(await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${blob.digest}`, { method: 'POST' }), 202);
    await expectError(await getBlob(b.url, to, blob.digest), 404, 'BLOB_UNKNOWN');
  });

  test('mount without from with a malformed digest → 400 DIGEST_INVALID', async () => {
    await expectError(await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/uploads/?mount=sha256:nothex`, { method: 'POST' }), 400, 'DIGEST_INVALID');
  });

  test('mounting from an invalid repository name → 400 NAME_INVALID', async () => {
    for (const from of ['UPPER', 'a//b', '-a', '..']) {
      const res = await fetch(`${b.url}/v2/${uniqueRepo()}/blobs/uploads/?mount=${unknownDigest()}&from=${encodeURIComponent(from)}`, { method: 'POST' });
      await expectError(res, 400, 'NAME_INVALID');
    }
  });

  test('a mounted blob is independent of its source: deleting it in from leaves it in to', async () => {
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    const data = randomData(20);
    const blob = await pushBlob(b.url, from, data);
    await expectStatus(await fetch(`${b.url}/v2/${to}/blobs/uploads/?mount=${blob.digest}&from=${from}`, { method: 'POST' }), 201);
    await expectStatus(await fetch(`${b.url}/v2/${from}/blobs/${blob.digest}`, { method: 'DELETE' }), 202);
    await expectError(await getBlob(b.url, from, blob.digest), 404, 'BLOB_UNKNOWN');
    await expectBlob(to, blob.digest, data);
  });
});

describe('automatic mount: the readable-repositories filter', { ...parallel, skip: process.env.BERTH_TARGET === 'process' ? 'calls the registry of the in-process server' : false }, () => {
  // Until Berth has private repositories the edge passes a filter that
  // accepts every repository; these call the registry with others.
  const registry = () => b.berth.server.app.registry;

  test('a blob only unreadable repositories hold is neither mounted nor revealed', async () => {
    const secret = uniqueRepo('secret');
    const to = uniqueRepo('to');
    const blob = await pushBlob(b.url, secret, randomData(40));
    const asked: string[] = [];
    const mounted = await registry().mountBlobFromAnywhere(to, blob.digest, (repo) => {
      asked.push(repo);
      return false;
    });
    assert.equal(mounted, null);
    assert.deepEqual(asked, [secret], 'the filter was asked about the one holder');
    await expectError(await getBlob(b.url, to, blob.digest), 404, 'BLOB_UNKNOWN');
    // The same answer as for a blob that exists nowhere.
    assert.equal(await registry().mountBlobFromAnywhere(to, unknownDigest(), () => true), null);
    // With a filter that accepts it, the same blob mounts.
    assert.deepEqual(await registry().mountBlobFromAnywhere(to, blob.digest, async (repo) => repo === secret), { digest: blob.digest, size: 40 });
    await expectStatus(await getBlob(b.url, to, blob.digest), 200);
  });

  test('holders are read a page at a time until a readable one is found', async () => {
    const base = uniqueRepo('holders');
    const data = randomData(25);
    const first = `${base}/r000`;
    const blob = await pushBlob(b.url, first, data);
    const holders = [first];
    for (let i = 1; i < 130; i++) {
      const name = `${base}/r${String(i).padStart(3, '0')}`;
      assert.ok(await registry().mountBlob(name, blob.digest, first));
      holders.push(name);
    }
    const readable = holders[holders.length - 1]!;
    const to = uniqueRepo('to');
    const asked: string[] = [];
    const mounted = await registry().mountBlobFromAnywhere(to, blob.digest, (repo) => {
      asked.push(repo);
      return repo === readable;
    });
    assert.deepEqual(mounted, { digest: blob.digest, size: data.byteLength });
    assert.deepEqual(asked, holders, 'every holder asked once, in order, up to the readable one');
    assert.deepEqual(await expectStatus(await getBlob(b.url, to, blob.digest), 200), data);
  });
});

describe('a larger blob', parallel, () => {
  test('8 MiB in 1 MiB chunks, following Location each time', async () => {
    const repo = uniqueRepo();
    const data = randomData(8 * 1024 * 1024);
    let location = await startUpload(b.url, repo);
    const chunk = 1024 * 1024;
    for (let off = 0; off < data.length; off += chunk) {
      const res = await patch(location, data.subarray(off, off + chunk), `${off}-${off + chunk - 1}`);
      await expectStatus(res, 202);
      assert.equal(res.headers.get('range'), `0-${off + chunk - 1}`);
      location = resolve(b.url, res.headers.get('location')).toString();
    }
    await expectStatus(await fetch(withDigest(b.url, location, sha256(data)), { method: 'PUT' }), 201);
    const res = await getBlob(b.url, repo, sha256(data));
    const body = await expectStatus(res, 200);
    assert.equal(body.byteLength, data.byteLength);
    assert.equal(sha256(body), sha256(data));
  });
});
