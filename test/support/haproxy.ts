/**
 * HAProxy from Debian in front of Berth replicas: round robin per request,
 * on a free 127.0.0.1 port, with a generated config. Installs `haproxy`
 * when it is missing and fails loudly when it cannot.
 *
 * Per request, not per connection: `option http-server-close` closes the
 * server side after each response, and every request of a client's
 * keep-alive connection is balanced again, so consecutive requests of one
 * client alternate between replicas. No health check decides where a
 * request goes; a replica that refuses connections (killed) is skipped by
 * `retries` + `option redispatch`, as a production config would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureTool, freePort } from './tools.js';

export interface LoadBalancer {
  url: string;
  /** 127.0.0.1:<port>, for clients that want host:port. */
  host: string;
  port: number;
  /** The generated config (for the README's example and for failures). */
  config: string;
  output(): string;
  stop(): Promise<void>;
}

/** The config `startHaproxy` runs (exported so the docs' example and the test say the same). */
export function haproxyConfig(port: number, backends: { name: string; addr: string }[]): string {
  return [
    'global',
    '  maxconn 4096',
    '',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    // Blob uploads and downloads may stream for minutes.
    '  timeout client 10m',
    '  timeout server 10m',
    '  timeout http-request 60s',
    // Each request is balanced on its own; a server connection serves one request.
    '  option http-server-close',
    // A replica that refuses the connection (stopped, killed) is skipped; the request goes to the next.
    '  retries 3',
    '  option redispatch 1',
    '',
    'frontend registry',
    `  bind 127.0.0.1:${port}`,
    '  default_backend replicas',
    '',
    'backend replicas',
    '  balance roundrobin',
    ...backends.map((b) => `  server ${b.name} ${b.addr}`),
    '',
  ].join('\n');
}

export async function startHaproxy(backends: { name: string; addr: string }[]): Promise<LoadBalancer> {
  const bin = await ensureTool('haproxy');
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  let lastError = '';
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const config = haproxyConfig(port, backends);
    await writeFile(file, config);
    // -db: stay in the foreground, logs to stderr; the test owns the process.
    const child = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    child.stderr!.on('data', (d) => (out += String(d)));
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => process.off('exit', reap));
    if (await listening(port, child)) {
      return {
        url: `http://127.0.0.1:${port}`,
        host: `127.0.0.1:${port}`,
        port,
        config,
        output: () => out,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    await exited;
    lastError = out;
    // A port taken between freePort and the bind: try another.
    if (!/cannot bind|address already in use/i.test(out)) break;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`haproxy did not start:\n${lastError}`);
}

async function listening(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
