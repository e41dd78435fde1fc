// Malformed requests, one at a time, to a registry on 127.0.0.1: oversize,
// truncated and deeply nested manifests, bad digests, huge headers, bad
// ranges, bad chunk sequences, broken chunked encoding, garbage bodies.
// Raw node:net, so the bytes on the wire are exactly the ones written here
// (node:http's client refuses to send most of them). Deterministic: the
// same seed sends the same requests in the same order.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { prng } from './prng.mjs';

const MiB = 1024 * 1024;
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;


const OCI = 'application/vnd.oci.image.manifest.v1+json';

/** Bodies built once: the large ones are the same bytes every time. */
function corpus() {
  const okManifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('c'), size: 1 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha('l'), size: 1 }],
    }),
  );
  const just = 4 * MiB - 64; // under a 4 MiB manifest limit, as large as it gets
  const half = just >> 1;
  return {
    okManifest,
    oversize: Buffer.concat([Buffer.from('{"schemaVersion":2,"layers":['), Buffer.alloc(5 * MiB, 0x20), Buffer.from(']}')]),
    deepArrays: Buffer.from('['.repeat(half) + ']'.repeat(half)),
    deepObjects: Buffer.from('{"a":'.repeat(Math.floor(just / 6)) + '1' + '}'.repeat(Math.floor(just / 6))),
    manyObjects: Buffer.from('{"schemaVersion":2,"layers":[' + '{},'.repeat(Math.floor(just / 3) - 20) + '{}]}'),
    manyStrings: Buffer.from('{"schemaVersion":2,"annotations":{' + Array.from({ length: Math.floor(just / 16) }, (_, i) => `"k${i.toString(36)}":"v"`).join(',') + '}}'),
    longString: Buffer.from(`{"schemaVersion":2,"mediaType":"${'x'.repeat(just - 40)}"}`),
  };
}

/**
 * The request for case number `i`: { name, bytes (head and body as sent),
 * endEarly (close our side after writing: a truncated body) }.
 */
function makeCase(i, rnd, c, host, exclude) {
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const repo = `fuzz/r${i % 50}`;
  const req = (method, path, headers = {}, body) => {
    const h = { Host: host, 'User-Agent': 'berth-bench-fuzz', ...headers };
    if (body !== undefined && !('Content-Length' in h) && !('Transfer-Encoding' in h)) h['Content-Length'] = String(body.byteLength);
    const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(h)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]);
  };
  const putManifest = (body, headers = {}) => req('PUT', `/v2/${repo}/manifests/t${i}`, { 'Content-Type': OCI, ...headers }, body);
  const chunked = (body, size = 64 * 1024) => {
    const parts = [];
    for (let at = 0; at < body.byteLength; at += size) {
      const part = body.subarray(at, at + size);
      parts.push(Buffer.from(`${part.byteLength.toString(16)}\r\n`), part, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  };
  const cases = [
    ['manifest over the size limit', () => putManifest(c.oversize)],
    ['manifest over the size limit, chunked', () => putManifest(chunked(c.oversize), { 'Transfer-Encoding': 'chunked' })],
    ['manifest of deeply nested arrays', () => putManifest(c.deepArrays)],
    ['manifest of deeply nested objects', () => putManifest(c.deepObjects)],
    ['manifest of a million empty objects', () => putManifest(c.manyObjects)],
    ['manifest of 260k annotations', () => putManifest(c.manyStrings)],
    ['manifest with a 4 MiB string', () => putManifest(c.longString)],
    ['truncated manifest JSON', () => putManifest(c.okManifest.subarray(0, Math.floor(rnd() * c.okManifest.byteLength)))],
    ['manifest body cut short on the wire', () => ({ bytes: putManifest(c.okManifest, { 'Content-Length': String(c.okManifest.byteLength + 100) }), endEarly: true })],
    ['garbage manifest body', () => putManifest(Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 4096) }, () => Math.floor(rnd() * 256))))],
    ['manifest with bad digests', () => putManifest(Buffer.from(c.okManifest.toString().replaceAll('sha256:', pick(['sha256:zz', 'md5:', 'sha256:', 'SHA256:']))))],
    ['manifest under a bad digest', () => req('PUT', `/v2/${repo}/manifests/sha256:${'0'.repeat(64)}`, { 'Content-Type': OCI }, c.okManifest)],
    ['manifest GET by a malformed digest', () => req('GET', `/v2/${repo}/manifests/${pick(['sha256:abc', 'sha256:' + 'g'.repeat(64), 'foo:bar', 'sha512:' + '0'.repeat(10)])}`)],
    ['a 100 KiB header', () => req('GET', '/v2/', { 'X-Big': 'a'.repeat(100 * 1024) })],
    ['2000 headers', () => req('GET', '/v2/', Object.fromEntries(Array.from({ length: 2000 }, (_, k) => [`X-H${k}`, 'v'])))],
    ['a 64 KiB URL', () => req('GET', `/v2/${'a/'.repeat(32 * 1024)}manifests/latest`)],
    ['bad percent-encoding and dot segments', () => req('GET', pick(['/v2/%zz/tags/list', '/v2/../../etc/passwd', '/v2/a/%2e%2e/b/tags/list', '/v2/_catalog?n=%ff%fe', '/v2/_catalog?n=-1', '/v2/_catalog?n=99999999999999999999', '/v2/_catalog?last=%00']))],
    ['bad Range on a blob', () => req('GET', `/v2/${repo}/blobs/${sha('l')}`, { Range: pick(['bytes=abc', 'bytes=5-1', 'bytes=99999999999-', 'bytes=-0', 'bytes=0-1,2-3,4-5', 'bytes=' + '0-1,'.repeat(5000) + '0-1', 'items=0-1']) })],
    ['blob GET by a malformed digest', () => req('GET', `/v2/${repo}/blobs/${pick(['sha256:', 'sha256:xyz', 'nope', 'sha256:' + '0'.repeat(65)])}`)],
    ['PATCH to an upload that does not exist', () => req('PATCH', `/v2/${repo}/blobs/uploads/${pick(['00000000-0000-0000-0000-000000000000', 'not-a-uuid', '..', 'x'.repeat(300)])}`, { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-3' }, Buffer.from('abcd'))],
    ['PUT an upload that does not exist with a bad digest', () => req('PUT', `/v2/${repo}/blobs/uploads/${pick(['00000000-0000-0000-0000-000000000000', 'zzz'])}?digest=${pick(['sha256:zz', '', 'md5:00'])}`, {}, Buffer.from('abcd'))],
    ['bad Content-Range on a new upload', () => ({ upload: pick(['5-9', '0-', 'bytes=0-3', '3-0', '0-99999999999999', 'abc']) })],
    ['upload finished with a wrong digest', () => ({ upload: '0-3', digest: sha('other') })],
    // Some of these leave the server waiting for more body: the client then goes (endEarly).
    ['broken chunked encoding', () => ({ bytes: req('PUT', `/v2/${repo}/manifests/t${i}`, { 'Content-Type': OCI, 'Transfer-Encoding': 'chunked' }, Buffer.from(pick(['zz\r\nabc\r\n0\r\n\r\n', 'ffffffffffffffff\r\nabc', '5\r\nab\r\n0\r\n\r\n', '-1\r\n\r\n']))), endEarly: true })],
    ['Content-Length and Transfer-Encoding both', () => req('PUT', `/v2/${repo}/manifests/t${i}`, { 'Content-Type': OCI, 'Content-Length': '5', 'Transfer-Encoding': 'chunked' }, Buffer.from('0\r\n\r\n'))],
    ['a bad request line', () => Buffer.from(pick(['GET\r\n\r\n', 'G ET /v2/ HTTP/1.1\r\n\r\n', 'GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n', '\x00\x01\x02\r\n\r\n', `GET /v2/ HTTP/1.1\r\nHost: ${host}\r\nBad Header\r\n\r\n`]), 'latin1')],
    ['a bad repository name', () => req('GET', `/v2/${pick(['UPPER', 'a//b', '-a', 'a'.repeat(300), 'a/_b', 'a/b.'])}/tags/list`)],
    ['a huge catalog page request', () => req('GET', `/v2/_catalog?n=${pick(['1000000000', '1e9', 'NaN', '0'])}`)],
  ];
  const kept = exclude ? cases.filter(([name]) => !exclude.test(name)) : cases;
  const [name, build] = kept[i % kept.length];
  const made = build();
  return Buffer.isBuffer(made) ? { name, bytes: made } : { name, ...made };
}

/** Reads one response off a socket: resolves { status } or { status: 0 } when the server closes first. */
function oneResponse(sock, isHead, timeoutMs) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let status = 0;
    let need = -1;
    let chunked = false;
    const finish = (r) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve(r);
    };
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (need === -1) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        status = Number(head.slice(9, 12));
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
        need = isHead || status === 204 || status === 304 ? 0 : cl ? Number(cl[1]) : chunked ? Infinity : 0;
        buf = buf.subarray(end + 4);
      }
      if (chunked ? buf.indexOf('0\r\n\r\n') !== -1 : buf.byteLength >= need) finish({ status, close: false });
    };
    const onClose = () => finish({ status, close: true });
    const timer = setTimeout(() => finish({ status, timeout: true }), timeoutMs);
    sock.on('data', onData);
    sock.once('close', onClose);
  });
}

function connect(u) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(sock));
    sock.once('error', reject);
  });
}

/** Writes bytes, ignoring a reset (the server may answer and close before it has read them all). */
function send(sock, bytes) {
  return new Promise((resolve) => {
    sock.on('error', () => {});
    sock.write(bytes, () => resolve());
  });
}

/**
 * Sends `count` malformed requests one at a time, each on a fresh
 * connection. Returns { statuses: {status: n}, byCase: {name: {status: n}},
 * slowest: {name: ms}, fiveXX: [{name, status}], seconds }. `exclude`: a
 * RegExp of case names not to send. `onEach(i)` lets the caller sample memory.
 */
export async function runFuzz({ base, count, seed = 1, timeoutMs = 15_000, exclude, onEach = () => {} }) {
  const u = new URL(base);
  if (u.hostname !== '127.0.0.1') throw new Error('loopback only');
  const rnd = prng(seed);
  const c = corpus();
  const statuses = {};
  const byCase = {};
  const fiveXX = [];
  const slowest = {};
  const t0 = process.hrtime.bigint();
  let caseStarted = 0n;
  const count1 = (name, status) => {
    const key = status === 0 ? 'closed' : String(status);
    const ms = Number(process.hrtime.bigint() - caseStarted) / 1e6;
    slowest[name] = Math.max(slowest[name] ?? 0, ms);
    statuses[key] = (statuses[key] ?? 0) + 1;
    byCase[name] ??= {};
    byCase[name][key] = (byCase[name][key] ?? 0) + 1;
    if (status >= 500) fiveXX.push({ name, status });
  };
  for (let i = 0; i < count; i++) {
    const k = makeCase(i, rnd, c, u.host, exclude);
    caseStarted = process.hrtime.bigint();
    const sock = await connect(u);
    sock.setNoDelay(true);
    try {
      if (k.upload !== undefined) {
        // A real upload first, then the malformed step on it.
        await send(sock, Buffer.from(`POST /v2/fuzz/up/blobs/uploads/ HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 0\r\n\r\n`));
        const started = await oneResponseWithHead(sock, timeoutMs);
        const location = /\r\nlocation:\s*([^\r]*)/i.exec(started.head ?? '')?.[1];
        if (started.status !== 202 || !location) {
          count1(k.name + ' (upload start)', started.status);
          continue;
        }
        const target = new URL(location, base);
        if (target.host !== u.host) throw new Error(`upload Location ${location} leaves ${u.host}`);
        await send(sock, Buffer.from(`PATCH ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Range: ${k.upload}\r\nContent-Length: 4\r\n\r\nabcd`));
        const patched = await oneResponseWithHead(sock, timeoutMs);
        if (k.digest === undefined || patched.status >= 400) {
          count1(k.name, patched.status);
          continue;
        }
        const next = new URL(/\r\nlocation:\s*([^\r]*)/i.exec(patched.head ?? '')?.[1] ?? location, base);
        next.searchParams.set('digest', k.digest);
        await send(sock, Buffer.from(`PUT ${next.pathname}${next.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 0\r\n\r\n`));
        count1(k.name, (await oneResponse(sock, false, timeoutMs)).status);
        continue;
      }
      const answer = oneResponse(sock, false, timeoutMs);
      await send(sock, k.bytes);
      if (k.endEarly) sock.end();
      const r = await answer;
      // A body cut short on the wire has no answer to wait for: the server sees the client go.
      count1(k.name, r.status);
    } finally {
      sock.destroy();
    }
    onEach(i);
  }
  return { statuses, byCase, slowest, fiveXX, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** oneResponse that also returns the head, for the upload cases. */
function oneResponseWithHead(sock, timeoutMs) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.toString('latin1', 0, end);
      const cl = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.byteLength < end + 4 + cl) return;
      done({ status: Number(head.slice(9, 12)), head });
    };
    const onClose = () => done({ status: 0 });
    const timer = setTimeout(() => done({ status: 0 }), timeoutMs);
    const done = (r) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve(r);
    };
    sock.on('data', onData);
    sock.once('close', onClose);
  });
}
