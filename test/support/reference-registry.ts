// Debian's `docker-registry` (CNCF distribution 2.8.x) as a reference
// implementation: e2e tests push the same content to it and to Berth and compare.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureTool, freePort } from './tools.js';

export interface ReferenceRegistry {
  /** host:port, e.g. "127.0.0.1:41234" (plain HTTP: use --tls-verify=false / --dest-tls-verify=false). */
  base: string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** distribution's `auth.token` keys, for a registry that trusts a token server (Berth, in the interop tests). */
export interface ReferenceTokenAuth {
  realm: string;
  service: string;
  issuer: string;
  /** PEM text of the certificates to trust (written to a file for `rootcertbundle`). */
  rootCertBundle: string;
}

export interface ReferenceRegistryOptions {
  tokenAuth?: ReferenceTokenAuth;
}

function configYaml(rootDir: string, port: number, auth?: Record<string, unknown>): string {
  // JSON is valid YAML, and avoids hand-indenting.
  return JSON.stringify({
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: rootDir }, delete: { enabled: true } },
    http: { addr: `127.0.0.1:${port}` },
    ...(auth ? { auth } : {}),
  });
}

async function waitReady(base: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before serving:\n${output()}`);
    }
    try {
      const res = await fetch(`http://${base}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      // 401: serving, and asking for credentials (token auth).
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${base} within 20 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startReferenceRegistry(opts: ReferenceRegistryOptions = {}): Promise<ReferenceRegistry> {
  const bin = await ensureTool('docker-registry');
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-refreg-'));
  try {
    let auth: Record<string, unknown> | undefined;
    if (opts.tokenAuth) {
      const { realm, service, issuer, rootCertBundle } = opts.tokenAuth;
      const bundle = path.join(dir, 'token-roots.pem');
      await writeFile(bundle, rootCertBundle);
      auth = { token: { realm, service, issuer, rootcertbundle: bundle } };
    }
    // freePort() races with other processes; a lost race shows up as an early exit, so retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const base = `127.0.0.1:${port}`;
      const configFile = path.join(dir, 'config.yml');
      await writeFile(configFile, configYaml(path.join(dir, 'storage'), port, auth));
      const child = spawn(bin, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      live.add(child);
      let out = '';
      const collect = (b: Buffer) => {
        out = (out + b.toString('utf8')).slice(-8000);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
      child.once('error', () => {}); // surfaced by waitReady via exitCode/output
      try {
        await waitReady(base, child, () => out);
      } catch (e) {
        child.kill('SIGKILL');
        await exited;
        live.delete(child);
        if (attempt < 5 && /address already in use/i.test(out)) continue;
        throw e;
      }

      let stopped: Promise<void> | undefined;
      const stop = (): Promise<void> =>
        (stopped ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(timer);
          }
          live.delete(child);
          await rm(dir, { recursive: true, force: true });
        })());
      return { base, stop };
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
