/**
 * A refused request whose body is still arriving (issue 14): the server
 * answers at once with `Connection: close` and closes with a bounded
 * lingering close. A client that is still sending reads the whole error
 * instead of a reset, and the server reads at most a few MiB of a body it
 * has refused (it used to read up to 64 MiB before answering).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { startBerth, type TestBerth } from '../support/berth.js';

const MiB = 1024 * 1024;

interface Outcome {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Bytes the client handed to its socket (request line, headers and body) before the connection ended. */
  written: number;
  /** The error the client's writes ended with, if any (a reset once the server has stopped lingering). */
  writeError?: string;
  /** Milliseconds from the answer's arrival to the connection's close. */
  closedAfterMs: number;
}

/**
 * Sends a request with a `total`-byte body on a raw connection, as fast as
 * the connection takes it (or `trickle` bytes every 100 ms), reading the
 * answer as it comes, as Go's and node's clients do. The connection is
 * half-open: the server's FIN does not stop the writes (node's net default
 * would), so what the server lets through is what is measured. Resolves once
 * the connection has closed.
 */
function sendBody(url: string, method: string, headers: Record<string, string>, total: number, trickle?: number): Promise<Outcome> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port), allowHalfOpen: true });
    const head = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, `Content-Length: ${total}`, 'Content-Type: application/octet-stream'];
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
    const chunk = Buffer.alloc(trickle ?? 256 * 1024, 7);
    let sent = 0;
    let stopped = false;
    let answeredAt = 0;
    const received: Buffer[] = [];
    let writeError: string | undefined;
    const pump = () => {
      while (!stopped && sent < total) {
        const n = Math.min(chunk.byteLength, total - sent);
        sent += n;
        const more = socket.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n));
        if (trickle) {
          setTimeout(pump, 100);
          return;
        }
        if (!more) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.on('data', (d: Buffer) => {
      answeredAt ||= Date.now();
      received.push(d);
      // An accepted request leaves the connection open for the next one: hang up once it is answered.
      const text = Buffer.concat(received).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split))?.[1];
      if (sent >= total && split >= 0 && length !== undefined && Buffer.byteLength(text) - split - 4 >= Number(length)) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      writeError = err.code ?? err.message;
    });
    socket.once('close', () => {
      stopped = true;
      const text = Buffer.concat(received).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (!answeredAt || split < 0) {
        reject(new Error(`connection closed without an answer after ${socket.bytesWritten} bytes (${writeError ?? 'no error'})`));
        return;
      }
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const resHeaders: http.IncomingHttpHeaders = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        resHeaders[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = text.slice(split + 4);
      assert.equal(Buffer.byteLength(body), Number(resHeaders['content-length']), `a truncated answer: ${text}`);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers: resHeaders, body, written: socket.bytesWritten, writeError, closedAfterMs: Date.now() - answeredAt });
    });
    socket.setTimeout(30_000, () => socket.destroy(new Error('timed out')));
    pump();
  });
}

function errorCodes(body: string): string[] {
  const parsed = JSON.parse(body) as { errors: { code: string }[] };
  return parsed.errors.map((e) => e.code);
}

async function startUpload(base: string, repo: string, auth: Record<string, string> = {}): Promise<string> {
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(r.status, 202);
  return new URL(r.headers.get('location')!, base).toString();
}

let work: string;
let b: TestBerth;
const alice = { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` };

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'berth-refused-'));
  const htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `alice:${bcrypt.hashSync('secret', 4)}\n`);
  b = await startBerth({ REGISTRY_AUTH_HTPASSWD_PATH: htpasswd, REGISTRY_AUTH_HTPASSWD_REALM: 'test' });
});

after(async () => {
  await b?.close();
  await rm(work, { recursive: true, force: true });
});

/** The answer arrived whole, with Connection: close, and the server took no more than a bounded share of the body. */
function assertRefused(o: Outcome, status: number, code: string, bodySize: number): void {
  assert.equal(o.status, status, o.body);
  assert.deepEqual(errorCodes(o.body), [code]);
  assert.equal(o.headers.connection, 'close');
  // 4 MiB read while lingering, plus what the two kernels' socket buffers hold on loopback.
  assert.ok(o.written < 24 * MiB, `the client managed to write ${(o.written / MiB).toFixed(1)} MiB of a ${bodySize / MiB} MiB body`);
}

describe('a refused request with a body still arriving', () => {
  it('401 without credentials: the whole error arrives, and the server reads a bounded part of a 48 MiB body (it used to read all of it)', async () => {
    const upload = await startUpload(b.url, 'refused/auth', alice);
    const o = await sendBody(upload, 'PATCH', {}, 48 * MiB);
    assertRefused(o, 401, 'UNAUTHORIZED', 48 * MiB);
    assert.match(String(o.headers['www-authenticate']), /^Basic realm="test"/);
  });

  it('401 for a 1 GiB body (the old drain answered such a body at once and reset the sender)', async () => {
    const o = await sendBody(`${b.url}/v2/refused/auth/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, 'POST', {}, 1024 * MiB);
    assertRefused(o, 401, 'UNAUTHORIZED', 1024 * MiB);
  });

  it('416: a chunk that does not start where the upload ends, refused before any of it is read', async () => {
    const upload = await startUpload(b.url, 'refused/range', alice);
    const o = await sendBody(upload, 'PATCH', { ...alice, 'Content-Range': `${10 * MiB}-${58 * MiB - 1}` }, 48 * MiB);
    assertRefused(o, 416, 'BLOB_UPLOAD_INVALID', 48 * MiB);
    // The upload itself is untouched and still takes its first chunk.
    const ok = await fetch(upload, { method: 'PATCH', headers: { ...alice, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1000, 1) });
    assert.equal(ok.status, 202);
    assert.equal(ok.headers.get('range'), '0-999');
  });

  it('409: a chunk sent while another request writes the same upload', async () => {
    // Within one thread a second chunk waits its turn; a second server on the same root holds the upload's lock apart, as another thread or replica does.
    const other = await startBerth({ REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: b.root, REGISTRY_AUTH_HTPASSWD_PATH: path.join(work, 'htpasswd') });
    try {
      const upload = await startUpload(b.url, 'refused/busy', alice);
      // The first chunk trickles in and holds the upload.
      const first = sendBody(upload, 'PATCH', alice, 30_000, 1000);
      await new Promise((r) => setTimeout(r, 500));
      const o = await sendBody(upload.replace(b.url, other.url), 'PATCH', alice, 48 * MiB);
      assertRefused(o, 409, 'BLOB_UPLOAD_INVALID', 48 * MiB);
      const done = await first;
      assert.equal(done.status, 202, done.body);
    } finally {
      await other.server.close(1000);
    }
  });

  it('a refused client that keeps trickling is cut within a couple of seconds of the answer', async () => {
    const upload = await startUpload(b.url, 'refused/trickle', alice);
    const o = await sendBody(upload, 'PATCH', {}, 10 * MiB, 4096);
    assert.equal(o.status, 401);
    assert.deepEqual(errorCodes(o.body), ['UNAUTHORIZED']);
    assert.ok(o.closedAfterMs < 4000, `closed ${o.closedAfterMs} ms after the answer`);
    assert.ok(o.closedAfterMs >= 1500, `closed ${o.closedAfterMs} ms after the answer: no lingering`);
    assert.ok(o.written < 200_000, `${o.written} bytes written`);
  });

  it('a refused request without a body keeps its keep-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = () =>
        new Promise<{ status: number; port: number }>((resolve, reject) => {
          const req = http.get(`${b.url}/v2/`, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, port: req.socket!.localPort! }));
          });
          req.on('error', reject);
        });
      const first = await get();
      const second = await get();
      assert.equal(first.status, 401);
      assert.equal(second.status, 401);
      assert.equal(first.port, second.port, 'the same connection served both');
    } finally {
      agent.destroy();
    }
  });
});
