/**
 * Blob bodies sent off the event loop by the addon (src/native sendFile,
 * http/v2/blobs.ts), with sendfile(2) (`berth.sendfile: always`) and copied
 * through its small buffer (`auto`, which copies to a client on this host,
 * as every client here is): whole and ranged bodies byte for byte through
 * curl, a raw socket and skopeo; a keep-alive connection goes on after such
 * a body; clients that hang up mid-body leak no descriptor; TLS falls back
 * to the streams.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copiesBody } from '../../src/http/v2/blobs.js';
import { native, type Native } from '../../src/native/index.js';
import { startBerth, type TestBerth } from '../support/berth.js';
import { buildImage, pushImage, pseudoRandomBytes } from '../support/images.js';
import { createCA } from '../support/tls.js';
import { ensureTool, run } from '../support/tools.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function pushBlob(url: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(res.status, 201, `push ${digest}: ${await res.text()}`);
  return digest;
}

/** Counts the calls of the addon's sendFile in this process (the in-process server shares the module), and those that copy. */
function countSendFile(): { readonly calls: number; readonly copies: number; restore(): void } {
  const addon = native() as Native & Record<string, unknown>;
  const original = addon.sendFile;
  let calls = 0;
  let copies = 0;
  addon.sendFile = (...args: Parameters<Native['sendFile']>) => {
    calls++;
    if (args[5]) copies++;
    return original.apply(addon, args);
  };
  return {
    get calls() {
      return calls;
    },
    get copies() {
      return copies;
    },
    restore() {
      addon.sendFile = original;
    },
  };
}

/** One HTTP/1.1 response read off a raw socket: status line, headers, and exactly Content-Length bytes of body. */
function readResponse(socket: net.Socket, buffered: { data: Buffer }): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let head: { status: number; headers: Record<string, string>; length: number } | undefined;
    const chunks: Buffer[] = [buffered.data];
    let have = buffered.data.length;
    const tryParse = () => {
      if (!head) {
        const data = Buffer.concat(chunks);
        chunks.splice(0, chunks.length, data);
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return false;
        const lines = data.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
        }
        head = { status: Number(lines[0]!.split(' ')[1]), headers, length: Number(headers['content-length'] ?? 0) };
        chunks[0] = data.subarray(end + 4);
        have = chunks[0].length;
      }
      if (have < head.length) return false;
      const data = Buffer.concat(chunks);
      buffered.data = data.subarray(head.length);
      resolve({ status: head.status, headers: head.headers, body: data.subarray(0, head.length) });
      return true;
    };
    if (tryParse()) return;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (tryParse()) cleanup();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('connection closed before the response was complete'));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
  });
}

const openDescriptors = () => readdirSync('/proc/self/fd').length;

for (const mode of ['auto', 'always'] as const) {
  describe(`blob bodies from the addon (berth.sendfile: ${mode})`, () => {
    /** Every body the addon sent went the mode's way: a copy to this host's clients under auto, sendfile under always. */
    const sentTheModesWay = (counter: { calls: number; copies: number }) =>
      assert.equal(counter.copies, mode === 'auto' ? counter.calls : 0, `${counter.copies} of ${counter.calls} bodies copied`);
    let berth: TestBerth;
    let work: string;
    let curl: string;
    // Big enough that the socket's buffer fills many times over (the job waits for writability).
    const big = pseudoRandomBytes('zero-copy big', 48 * 1024 * 1024 + 12345);
    const small = pseudoRandomBytes('zero-copy small', 4096);
    let bigDigest: string;
    let smallDigest: string;

    before(async () => {
      curl = await ensureTool('curl');
      berth = await startBerth({ REGISTRY_BERTH_SENDFILE: mode });
      work = await mkdtemp(path.join(tmpdir(), 'berth-zero-copy-'));
      bigDigest = await pushBlob(berth.url, 'zc/app', big);
      smallDigest = await pushBlob(berth.url, 'zc/app', small);
    });
    after(async () => {
      await berth?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('sends whole and ranged bodies byte for byte to curl, one connection for all of them', async () => {
      const counter = countSendFile();
      try {
        const out = (name: string) => path.join(work, name);
        const blob = (d: string) => `${berth.url}/v2/zc/app/blobs/${d}`;
        // One curl, several URLs: it reuses its connection, so each body must end exactly where node's next response begins.
        // --next keeps the connection but resets per-transfer options such as -r.
        const w = ['-sS', '--fail', '-w', '%{http_code} %{num_connects}\\n'];
        const r = await run(curl, [
          ...w, '-o', out('whole'), blob(bigDigest), '--next',
          ...w, '-o', out('small'), blob(smallDigest), '--next',
          ...w, '-r', '1000-2000999', '-o', out('range'), blob(bigDigest), '--next',
          ...w, '-r', '-70000', '-o', out('suffix'), blob(bigDigest), '--next',
          ...w, '-o', out('again'), blob(smallDigest),
        ]);
        const lines = r.stdout.trim().split('\n');
        assert.deepEqual(lines, ['200 1', '200 0', '206 0', '206 0', '200 0'], 'statuses, and only the first request connected');
        assert.ok((await readFile(out('whole'))).equals(big), 'whole blob intact');
        assert.ok((await readFile(out('small'))).equals(small), 'small blob intact');
        assert.ok((await readFile(out('range'))).equals(big.subarray(1000, 2001000)), 'range intact');
        assert.ok((await readFile(out('suffix'))).equals(big.subarray(big.length - 70000)), 'suffix range intact');
        assert.ok((await readFile(out('again'))).equals(small), 'small blob intact after the others');
        assert.equal(counter.calls, 5, 'every body went through the addon');
        sentTheModesWay(counter);
      } finally {
        counter.restore();
      }
    });

    it('keeps a raw keep-alive connection usable after a zero-copy body, pipelined requests included', async () => {
      const socket = net.connect(berth.server.http.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const buffered = { data: Buffer.alloc(0) };
      try {
        const get = (digest: string, extra = '') => `GET /v2/zc/app/blobs/${digest} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
        socket.write(get(bigDigest));
        const first = await readResponse(socket, buffered);
        assert.equal(first.status, 200);
        assert.equal(first.headers['docker-content-digest'], bigDigest);
        assert.equal(sha256(first.body), bigDigest);
        // Three at once: the second and third wait behind the first's body and must follow it in order.
        socket.write(get(smallDigest) + get(bigDigest, 'Range: bytes=5-9\r\n') + `GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n`);
        const a = await readResponse(socket, buffered);
        const b = await readResponse(socket, buffered);
        const c = await readResponse(socket, buffered);
        assert.equal(a.status, 200);
        assert.ok(a.body.equals(small));
        assert.equal(b.status, 206);
        assert.equal(b.headers['content-range'], `bytes 5-9/${big.length}`);
        assert.ok(b.body.equals(big.subarray(5, 10)));
        assert.equal(c.status, 200);
        assert.equal(c.body.toString(), '{}');
        assert.equal(buffered.data.length, 0, 'no stray bytes after the last response');
      } finally {
        socket.destroy();
      }
    });

    it('leaks no descriptor and stays up when clients hang up mid-body', async () => {
      // Settle the descriptors of the earlier tests (curl's closed connections) first.
      await new Promise((r) => setTimeout(r, 200));
      const before = openDescriptors();
      const counter = countSendFile();
      const aborts = 1000;
      try {
        for (let i = 0; i < aborts; i += 10) {
          await Promise.all(
            Array.from({ length: 10 }, (_, j) =>
              new Promise<void>((resolve, reject) => {
                const socket = net.connect(berth.server.http.port, '127.0.0.1');
                let got = 0;
                socket.on('data', (chunk: Buffer) => {
                  got += chunk.length;
                  // Half of them as soon as the body starts, the others a few MiB in.
                  if (got > ((i + j) % 2 === 0 ? 1024 : 3 * 1024 * 1024)) {
                    socket.resetAndDestroy();
                    resolve();
                  }
                });
                socket.on('error', reject);
                const get = `GET /v2/zc/app/blobs/${bigDigest} HTTP/1.1\r\nHost: x\r\n\r\n`;
                // A third of them pipeline a second GET, whose response waits behind the first when the connection goes.
                socket.write(j % 3 === 0 ? get + get : get);
              }),
            ),
          );
        }
        // A client that sent its request and closed without reading a byte.
        for (let i = 0; i < 20; i++) {
          const socket = net.connect(berth.server.http.port, '127.0.0.1');
          socket.write(`GET /v2/zc/app/blobs/${bigDigest} HTTP/1.1\r\nHost: x\r\n\r\n`);
          await new Promise((r) => setTimeout(r, 5));
          socket.destroy();
        }
        assert.ok(counter.calls >= aborts, `the addon served the aborted pulls (${counter.calls})`);
        sentTheModesWay(counter);
      } finally {
        counter.restore();
      }
      // The server notices each hang-up on its next send; give the last ones a moment.
      let now = openDescriptors();
      for (let i = 0; i < 100 && now > before; i++) {
        await new Promise((r) => setTimeout(r, 50));
        now = openDescriptors();
      }
      assert.ok(now <= before, `descriptors: ${before} before, ${now} after ${aborts + 20} aborted pulls`);
      const res = await fetch(`${berth.url}/v2/zc/app/blobs/${smallDigest}`);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(small), 'still serving after the aborts');
    });

    it('keeps memory flat while 8 clients pull at once', async () => {
      global.gc?.();
      const before = process.memoryUsage().rss;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const res = await run(curl, ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', `${berth.url}/v2/zc/app/blobs/${bigDigest}`]);
          assert.equal(Number(res.stdout), big.length);
        }),
      );
      const grown = process.memoryUsage().rss - before;
      // 8 × 48 MiB went out; streamed through user space without reuse that would be hundreds of MiB.
      assert.ok(grown < 24 * 1024 * 1024, `RSS grew ${(grown / 1048576).toFixed(1)} MiB`);
    });

    it('pulls an image with skopeo byte for byte', async () => {
      const skopeo = await ensureTool('skopeo');
      const image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'zero-copy', layers: 2, layerBytes: 3 * 1024 * 1024 });
      await pushImage(image, `${berth.host}/zc/image:v1`);
      const counter = countSendFile();
      const dir = await mkdtemp(path.join(work, 'dir-'));
      try {
        await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', `docker://${berth.host}/zc/image:v1`, `dir:${dir}`], { timeoutMs: 120_000 });
      } finally {
        counter.restore();
      }
      const files = (await readdir(dir)).filter((f) => f !== 'version' && f !== 'manifest.json');
      for (const blob of image.blobs) {
        const f = blob.replace('sha256:', '');
        assert.ok(files.includes(f), `blob ${blob} pulled`);
        assert.equal(sha256(await readFile(path.join(dir, f))), blob, `blob ${blob} intact`);
      }
      assert.ok(counter.calls >= image.blobs.length, `skopeo's blob GETs went through the addon (${counter.calls})`);
      sentTheModesWay(counter);
    });

    // The same fallback whatever the mode: once.
    if (mode === 'auto')
      it('falls back to the streams over TLS', async () => {
        const ca = await createCA(path.join(work, 'ca'));
        const pair = await ca.serverCert('server');
        const tls = await startBerth({ REGISTRY_HTTP_TLS_CERTIFICATE: pair.cert, REGISTRY_HTTP_TLS_KEY: pair.key });
        const counter = countSendFile();
        try {
          const url = `https://${tls.host}`;
          const body = pseudoRandomBytes('zero-copy tls', 5 * 1024 * 1024 + 7);
          const digest = sha256(body);
          const file = path.join(work, 'tls-body');
          await writeFile(file, body);
          await run(curl, ['-sS', '--fail', '--cacert', ca.cert, '-X', 'POST', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, `${url}/v2/zc/tls/blobs/uploads/?digest=${digest}`]);
          await run(curl, ['-sS', '--fail', '--cacert', ca.cert, '-o', path.join(work, 'tls-whole'), `${url}/v2/zc/tls/blobs/${digest}`, '--next', '-sS', '--fail', '--cacert', ca.cert, '-r', '100-199', '-o', path.join(work, 'tls-range'), `${url}/v2/zc/tls/blobs/${digest}`]);
          assert.ok((await readFile(path.join(work, 'tls-whole'))).equals(body));
          assert.ok((await readFile(path.join(work, 'tls-range'))).equals(body.subarray(100, 200)));
          assert.equal(counter.calls, 0, 'no addon under TLS');
        } finally {
          counter.restore();
          await tls.close();
        }
      });
  });
}

describe('berth.sendfile: which bodies are copied', () => {
  it('copies to a client on this host under auto, to everyone under never, to no one under always', () => {
    const here = [
      { remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' },
      { remoteAddress: '127.3.2.1', localAddress: '127.0.0.1' },
      { remoteAddress: '::1', localAddress: '::1' },
      { remoteAddress: '::ffff:127.0.0.1', localAddress: '::ffff:127.0.0.1' },
      // This host's own network address at both ends: the kernel routes it over loopback.
      { remoteAddress: '192.168.1.10', localAddress: '192.168.1.10' },
    ];
    const elsewhere = [
      { remoteAddress: '192.168.1.11', localAddress: '192.168.1.10' },
      { remoteAddress: '2001:db8::2', localAddress: '2001:db8::1' },
      { remoteAddress: '::ffff:10.0.0.2', localAddress: '::ffff:10.0.0.1' },
      // A socket already closed has no address: zero copy, whose failure falls back to the streams.
      {},
    ];
    for (const socket of here) {
      assert.equal(copiesBody('auto', socket), true, `auto, ${socket.remoteAddress}`);
      assert.equal(copiesBody('always', socket), false, `always, ${socket.remoteAddress}`);
      assert.equal(copiesBody('never', socket), true, `never, ${socket.remoteAddress}`);
    }
    for (const socket of elsewhere) {
      assert.equal(copiesBody('auto', socket), false, `auto, ${socket.remoteAddress}`);
      assert.equal(copiesBody('always', socket), false, `always, ${socket.remoteAddress}`);
      assert.equal(copiesBody('never', socket), true, `never, ${socket.remoteAddress}`);
    }
  });
});
