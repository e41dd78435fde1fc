import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import { serveHandedConnections } from './server.js';

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
