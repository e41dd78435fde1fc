import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RegistryResponse } from './response.js';

describe('RegistryResponse', () => {
  let server: http.Server;
  let base: string;
  const ended: string[] = [];
  let handler: (req: http.IncomingMessage, res: RegistryResponse) => void;

  before(async () => {
    server = http.createServer({ ServerResponse: RegistryResponse as typeof http.ServerResponse }, (req, res) => handler(req, res as RegistryResponse));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the common headers with the handler’s own, in one writeHead', async () => {
    handler = (_req, res) => {
      res.requestId = 'req-1';
      res.fixedHeaders = { 'X-Extra': ['yes'] };
      res.writeHead(201, { 'Content-Length': 2, 'Docker-Content-Digest': 'sha256:x' });
      res.end('ok');
    };
    const r = await fetch(base);
    assert.equal(r.status, 201);
    assert.equal(await r.text(), 'ok');
    assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.equal(r.headers.get('x-request-id'), 'req-1');
    assert.equal(r.headers.get('x-extra'), 'yes');
    assert.equal(r.headers.get('docker-content-digest'), 'sha256:x');
  });

  it('writes a response ended in a batch only after the batch, with its body and callback', async () => {
    let writtenAtEnd: boolean | undefined;
    const done = new Promise<void>((resolve) => {
      handler = (_req, res) => {
        res.writeHead(200, { 'Content-Length': 5 });
        res.end('hello', () => {
          ended.push('callback');
          resolve();
        });
        // Batched: nothing has gone to the socket yet.
        writtenAtEnd = res.writableEnded;
      };
    });
    const r = await fetch(base);
    assert.equal(await r.text(), 'hello');
    await done;
    assert.equal(writtenAtEnd, false);
    assert.deepEqual(ended, ['callback']);
  });

  it('answers every one of many concurrent requests with its own body', async () => {
    handler = (req, res) => {
      const body = `you asked for ${req.url}`;
      // Some end at once, some after a turn of the event loop: batches of several responses.
      const send = () => {
        res.writeHead(200, { 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.url!.endsWith('0')) setImmediate(send);
      else send();
    };
    const paths = Array.from({ length: 50 }, (_, i) => `/r${i}`);
    const bodies = await Promise.all(paths.map(async (p) => (await fetch(base + p)).text()));
    assert.deepEqual(bodies, paths.map((p) => `you asked for ${p}`));
  });

  it('cuts off only the response whose end fails, not the rest of its batch', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'Content-Length': 2 });
      // A number is not a body: node throws, now in the batch rather than in the handler.
      res.end(req.url === '/bad' ? (42 as unknown as string) : 'ok');
    };
    const [bad, good] = await Promise.allSettled([fetch(`${base}/bad`).then((r) => r.text()), fetch(`${base}/good`).then((r) => r.text())]);
    assert.equal(bad.status, 'rejected');
    assert.deepEqual(good, { status: 'fulfilled', value: 'ok' });
  });

  it('survives a client that hangs up before its batch is written', async () => {
    let ending: Promise<void> | undefined;
    handler = (_req, res) => {
      ending = new Promise((resolve) => res.once('close', () => resolve()));
      res.socket!.destroy();
      res.writeHead(200, { 'Content-Length': 1 });
      res.end('x');
    };
    const sock = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => sock.once('close', resolve));
    await ending;
    // The server still serves.
    handler = (_req, res) => {
      res.writeHead(204);
      res.end();
    };
    assert.equal((await fetch(base)).status, 204);
  });
});
