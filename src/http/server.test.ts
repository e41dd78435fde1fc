import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCA } from '../../test/support/tls.js';
import { DEFAULT_TIMEOUTS, listen, serveHandedConnections, type TlsOptions } from './server.js';

/** TCP_NODELAY as the kernel holds it for `socket`, read by a child process that shares the socket as its descriptor 3. */
async function noDelayOf(socket: net.Socket): Promise<boolean> {
  const child = spawn('python3', ['-c', 'import socket; s = socket.socket(fileno=3); print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)); s.detach()'], {
    stdio: ['ignore', 'pipe', 'inherit', socket],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  assert.equal(code, 0, 'python3 read the socket option');
  return out.trim() !== '0';
}

describe('serveHandedConnections', () => {
  it('turns Nagle’s algorithm off on a connection it is handed, as a listening node:http server does on accept', async () => {
    // A plain net server (the multi-threaded primary's balancer) accepts without TCP_NODELAY.
    const balancer = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => balancer.once('connection', resolve));
    const client = net.connect((balancer.address() as net.AddressInfo).port, '127.0.0.1');
    const socket = await accepted;
    const served = serveHandedConnections(() => {}, 0);
    try {
      assert.equal(await noDelayOf(socket), false, 'the balancer’s accepted socket starts with Nagle on');
      served.accept(socket);
      assert.equal(await noDelayOf(socket), true);
    } finally {
      client.destroy();
      socket.destroy();
      balancer.close();
      await served.close(0);
    }
  });
});

describe('closing a TLS server', () => {
  let dir: string;
  let tls: TlsOptions;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-drain-tls-'));
    const ca = await createCA(dir);
    const pair = await ca.serverCert('server');
    tls = { certificate: pair.cert, key: pair.key, clientcas: [], minimumtls: 'tls1.2' };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A TCP connection to `port` that never starts its TLS handshake, and a promise of its end. */
  async function silentClient(port: number): Promise<{ ended: Promise<number>; destroy(): void }> {
    const client = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    const started = Date.now();
    const ended = new Promise<number>((resolve) => client.once('close', () => resolve(Date.now() - started)));
    client.on('error', () => {});
    return { ended, destroy: () => client.destroy() };
  }

  /** Closes `served` with 300 ms to drain while a client that never starts its handshake is connected to `port`. */
  async function drainPastSilentClient(served: { close(drainMs: number): Promise<void> }, port: number): Promise<void> {
    const client = await silentClient(port);
    try {
      const t0 = Date.now();
      await served.close(300);
      const took = Date.now() - t0;
      // Before, the close waited for TLS's own handshake timeout: two minutes.
      assert.ok(took >= 250 && took < 5000, `closed in ${took} ms`);
      assert.ok((await client.ended) < 5000);
    } finally {
      client.destroy();
    }
  }

  it('cuts a connection still before its handshake when the drain time is up (listening)', async () => {
    const served = await listen(() => {}, '127.0.0.1', 0, tls);
    await drainPastSilentClient(served, served.port);
  });

  it('cuts a handed connection still before its handshake when the drain time is up (a worker thread)', async () => {
    const balancer = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const served = serveHandedConnections(() => {}, 0, tls);
    balancer.on('connection', (socket) => served.accept(socket));
    try {
      await drainPastSilentClient(served, (balancer.address() as net.AddressInfo).port);
    } finally {
      balancer.close();
    }
  });

  it('a handshake gets the header timeout, not two minutes', async () => {
    const served = await listen(() => {}, '127.0.0.1', 0, tls, { ...DEFAULT_TIMEOUTS, header: 400 });
    const client = await silentClient(served.port);
    try {
      const lasted = await client.ended;
      assert.ok(lasted >= 300 && lasted < 5000, `the server cut the silent connection after ${lasted} ms`);
    } finally {
      client.destroy();
      await served.close(0);
    }
  });
});
