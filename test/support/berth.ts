/**
 * Starting Berth for tests: in-process (fast, same code path as `serve`)
 * or as a real child process through bin/berth's compiled entry point.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.js';
import { createLogger, startServer, type Server } from '../../src/app.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_ENTRY = path.join(REPO_ROOT, 'dist/src/cli/main.js');

export interface TestBerth {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port>, for clients that want host:port */
  host: string;
  root: string;
  server: Server;
  logs: string[];
  close(): Promise<void>;
}

/**
 * Starts Berth in this process on a free loopback port with its data in a
 * fresh temporary directory. `env` holds REGISTRY_* overrides.
 */
export async function startBerth(env: Record<string, string> = {}, configFile?: string): Promise<TestBerth> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-test-'));
  const { config } = await loadConfig(configFile, {
    REGISTRY_HTTP_ADDR: '127.0.0.1:0',
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      if (logs.length > 5000) logs.splice(0, 1000);
      cb();
    },
  });
  const server = await startServer(config, createLogger(config, sink));
  const host = `127.0.0.1:${server.http.port}`;
  return {
    url: server.url.replace(/\/\/[^/]+$/, `//${host}`),
    host,
    root,
    server,
    logs,
    async close() {
      await server.close(1000);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface BerthProcess {
  url: string;
  host: string;
  child: ChildProcess;
  output(): string;
  /** Sends a signal and waits for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `berth serve` as a real process and waits until /v2/ answers. */
export async function spawnBerth(port: number, env: Record<string, string>, args: string[] = ['serve']): Promise<BerthProcess> {
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
    env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // If the test process ends first (a crash, a timeout), take the server with it.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  void exited.then(() => process.off('exit', reap));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`berth exited with ${child.exitCode} before listening:\n${out}`);
    try {
      const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200 || r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`berth did not start within 20s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
