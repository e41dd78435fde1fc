/**
 * A real Azure Blob API for tests: Azurite (npm `azurite` 3.35, the last
 * release for Node 20), its blob service alone on a free 127.0.0.1 port with
 * its data in a temporary directory. Account `devstoreaccount1` with
 * Azurite's published development key.
 *
 * scripts/run-tests.mjs starts one per test run for test files named
 * `*azure*` and passes it on in BERTH_TEST_AZURE_* variables; `azureEngine`
 * uses those when set and otherwise starts its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './tools.js';

export interface AzureEngine {
  /** The blob service URL, account included: http://127.0.0.1:<port>/devstoreaccount1 */
  serviceUrl: string;
  accountName: string;
  accountKey: string;
  stop(): Promise<void>;
}

/** Azurite's well-known development account (documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export async function startAzurite(): Promise<AzureEngine> {
  const bin = path.join(REPO_ROOT, 'node_modules/.bin/azurite-blob');
  if (!existsSync(bin)) throw new Error(`Azurite is needed for the Azure tests and ${bin} is missing: run npm ci (azurite is a devDependency)`);
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-azurite-'));
  const port = await freePort();
  const logs = path.join(dir, 'azurite.log');
  const fd = openSync(logs, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, ['--skipApiVersionCheck', '--disableTelemetry', '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', path.join(dir, 'data'), '--silent'], {
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const atExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', atExit);
  const serviceUrl = `http://127.0.0.1:${port}/${ACCOUNT}`;
  const stop = async () => {
    process.removeListener('exit', atExit);
    if (child.exitCode === null && child.signalCode === null) {
      const keepAlive = setInterval(() => {}, 1000);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      clearInterval(keepAlive);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = await readFile(logs, 'utf8').catch(() => '');
      await stop();
      throw new Error(`azurite-blob exited with ${child.exitCode}: ${log.slice(-2000)}`);
    }
    try {
      // Any HTTP answer (400 or 403 for an unsigned request) means it listens.
      await fetch(`${serviceUrl}?comp=list`);
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('azurite-blob did not listen within 60s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { serviceUrl, accountName: ACCOUNT, accountKey: KEY, stop };
}

let shared: Promise<AzureEngine> | undefined;

/** The engine scripts/run-tests.mjs started (BERTH_TEST_AZURE_*), or one of this process's own. */
export function azureEngine(): Promise<AzureEngine> {
  const serviceUrl = process.env.BERTH_TEST_AZURE_SERVICE_URL;
  if (serviceUrl) {
    return Promise.resolve({
      serviceUrl,
      accountName: process.env.BERTH_TEST_AZURE_ACCOUNT_NAME ?? ACCOUNT,
      accountKey: process.env.BERTH_TEST_AZURE_ACCOUNT_KEY ?? KEY,
      stop: async () => {},
    });
  }
  shared ??= startAzurite().then((engine) => ({ ...engine, stop: async () => {} }));
  return shared;
}

export function azureEnv(engine: AzureEngine): Record<string, string> {
  return { BERTH_TEST_AZURE_SERVICE_URL: engine.serviceUrl, BERTH_TEST_AZURE_ACCOUNT_NAME: engine.accountName, BERTH_TEST_AZURE_ACCOUNT_KEY: engine.accountKey };
}
