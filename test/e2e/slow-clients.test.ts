/**
 * Slow clients (issue 14): http.timeouts.header, .idle and .read, each
 * against a real server, and a slow-loris crowd against the real process
 * (bin/berth serve with its default threads) while skopeo and fetch push
 * and pull.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, startBerth, type TestBerth } from '../support/berth.js';
import { buildImage, pullImage, pushImage } from '../support/images.js';
import { freePort } from '../support/tools.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw connection that records what arrives and when it closes. */
interface Raw {
  socket: net.Socket;
  opened: number;
  received(): string;
  /** Resolves with the time the connection closed. */
  closed: Promise<number>;
  /** Resolves once `text` has arrived. */
  waitFor(text: RegExp, ms?: number): Promise<string>;
}

function connect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const waiters: (() => void)[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
      for (const w of waiters.splice(0)) w();
    });
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    socket.once('connect', () =>
      resolve({
        socket,
        opened: Date.now(),
        received: () => data,
        closed,
        waitFor(text, ms = 5000) {
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`waited ${ms} ms for ${text}; got ${JSON.stringify(data)}`)), ms);
            const check = () => {
              if (text.test(data)) {
                clearTimeout(timer);
                res(data);
              } else waiters.push(check);
            };
            check();
          });
        },
      }),
    );
    socket.once('error', reject);
  });
}

describe('http.timeouts against an in-process server', () => {
  let b: TestBerth;
  let port: number;
  before(async () => {
    b = await startBerth({ REGISTRY_HTTP_TIMEOUTS_HEADER: '1s', REGISTRY_HTTP_TIMEOUTS_IDLE: '3s', REGISTRY_HTTP_TIMEOUTS_READ: '1s' });
    port = b.server.http.port;
  });
  after(() => b?.close());

  it('header: headers still arriving after the timeout get 408 and the connection is closed within about a second', async () => {
    const c = await connect(port);
    c.socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    // A byte every 200 ms: the connection is never silent, yet its headers never end.
    const drip = setInterval(() => c.socket.writable && c.socket.write('X'), 200);
    try {
      const closedAt = await c.closed;
      const held = closedAt - c.opened;
      assert.match(c.received(), /^HTTP\/1\.1 408 /);
      assert.ok(held >= 900 && held < 2600, `held ${held} ms with a 1 s header timeout`);
    } finally {
      clearInterval(drip);
    }
  });

  it('idle: a keep-alive connection outlives the header timeout between requests and is closed after the idle one', async () => {
    const c = await connect(port);
    const get = 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n';
    c.socket.write(get);
    await c.waitFor(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/);
    // Longer than the header timeout (1 s), shorter than the idle one (3 s).
    await sleep(1800);
    assert.ok(!c.socket.destroyed && !c.socket.readableEnded, 'closed between requests before the idle timeout');
    c.socket.write(get);
    await c.waitFor(/^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 200 /);
    const answered = Date.now();
    const closedAt = await c.closed;
    // node:http adds a second to the keep-alive timeout it advertises.
    assert.ok(closedAt - answered >= 2900 && closedAt - answered < 5500, `idle connection closed after ${closedAt - answered} ms with a 3 s idle timeout`);
  });

  it('read: a body that keeps arriving is taken however long it takes; one that pauses longer than the timeout is cut', async () => {
    const start = await fetch(`${b.url}/v2/slow/body/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, b.url);
    const total = 24_000;
    const c = await connect(port);
    c.socket.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`);
    // 1000 bytes every 150 ms: 3.6 s in all, three times the read timeout, never silent for long.
    for (let sent = 0; sent < total; sent += 1000) {
      c.socket.write(Buffer.alloc(1000, 3));
      await sleep(150);
    }
    const answer = await c.waitFor(/\r\n\r\n/);
    assert.match(answer, /^HTTP\/1\.1 202 /);
    assert.match(answer, /\r\nRange: 0-23999\r\n/i);
    c.socket.destroy();

    const stalled = await connect(port);
    stalled.socket.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000\r\n\r\n`);
    stalled.socket.write(Buffer.alloc(1000, 4));
    const sentAt = Date.now();
    const closedAt = await stalled.closed;
    assert.ok(closedAt - sentAt >= 900 && closedAt - sentAt < 2500, `stalled body cut after ${closedAt - sentAt} ms with a 1 s read timeout`);
    assert.equal(stalled.received(), '', 'no answer to a request cut mid-body');
    // The cut request left the upload usable.
    const status = await fetch(location);
    assert.equal(status.status, 204);
  });
});

describe('slow loris against bin/berth serve', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-loris-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('300 connections sending a header a byte a second do not stop skopeo and fetch, and are cut after the header timeout', async () => {
    const headerTimeout = 5000;
    const port = await freePort();
    const image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'loris', layers: 2, layerBytes: 256 * 1024 });
    const berth = await spawnBerth(port, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(work, 'data'), REGISTRY_HTTP_TIMEOUTS_HEADER: `${headerTimeout / 1000}s`, REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' });
    const loris: Raw[] = [];
    let drip: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 300; i++) {
        const c = await connect(port);
        c.socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\nX');
        loris.push(c);
      }
      drip = setInterval(() => {
        for (const c of loris) if (c.socket.writable) c.socket.write('x');
      }, 1000);
      const crowdReady = Date.now();

      // Real clients, meanwhile.
      const digest = await pushImage(image, `${berth.host}/loris/app:v1`);
      assert.equal(digest, image.manifestDigest);
      const pulled = await pullImage(`${berth.host}/loris/app:v1`, path.join(work, 'pulled'), 'v1');
      assert.equal(pulled, image.manifestDigest);
      const manifest = await fetch(`${berth.url}/v2/loris/app/manifests/v1`, { headers: { Accept: image.mediaType } });
      assert.equal(manifest.status, 200);
      assert.equal(manifest.headers.get('docker-content-digest'), image.manifestDigest);
      const tags = (await (await fetch(`${berth.url}/v2/loris/app/tags/list`)).json()) as { tags: string[] };
      assert.deepEqual(tags.tags, ['v1']);
      const busyFor = Date.now() - crowdReady;

      const closedAt = await Promise.all(loris.map((c) => c.closed));
      const held = closedAt.map((t, i) => t - loris[i]!.opened);
      const longest = Math.max(...held);
      const shortest = Math.min(...held);
      assert.ok(shortest >= headerTimeout - 200, `a slow connection was cut after ${shortest} ms, before the ${headerTimeout} ms header timeout`);
      assert.ok(longest < headerTimeout + 2500, `a slow connection was held ${longest} ms with a ${headerTimeout} ms header timeout`);
      for (const c of loris) assert.match(c.received(), /^HTTP\/1\.1 408 /);
      // Not a check on speed: a note of how the real clients fared beside the crowd.
      console.log(`# real clients took ${busyFor} ms beside 300 slow connections; those were held ${shortest}–${longest} ms`);
    } finally {
      clearInterval(drip);
      for (const c of loris) c.socket.destroy();
      await berth.stop();
    }
  });
});
