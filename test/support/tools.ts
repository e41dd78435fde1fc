// Helpers for end-to-end tests that drive real external programs (skopeo,
// PostgreSQL, a reference registry). Missing tools are installed with apt;
// if that fails we throw, because a silently skipped e2e test proves nothing.

import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Error thrown by run(): carries what a failing test needs to diagnose it. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly commandLine: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

/** Runs a program to completion; rejects on non-zero exit, signal, spawn failure or timeout. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const commandLine = formatCommand(cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // EPIPE when the program exits without reading stdin is not the interesting error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(`failed to start \`${commandLine}\`: ${e.message}`, commandLine, null, null, '', ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0 && !timedOut) {
        resolve({ stdout, stderr });
        return;
      }
      const why = timedOut
        ? `timed out after ${opts.timeoutMs} ms`
        : signal !== null
          ? `was killed by ${signal}`
          : `exited with code ${code}`;
      const tail = stderr.trim() || stdout.trim().slice(-2000) || '(no output)';
      reject(new CommandError(`\`${commandLine}\` ${why}:\n${tail}`, commandLine, code, signal, stdout, stderr));
    });
  });
}

/** Absolute path of `bin` on PATH (plus the sbin dirs, which a non-login PATH may lack), or undefined. */
export async function whichTool(bin: string): Promise<string | undefined> {
  if (bin.includes('/')) {
    return (await isExecutable(bin)) ? path.resolve(bin) : undefined;
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const dir of dirs) {
    const candidate = path.join(dir, bin);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const APT_ENV: NodeJS.ProcessEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Parallel test files are separate processes: flock serialises our own apt runs,
// and DPkg::Lock::Timeout waits out anybody else's instead of failing at once.
const APT_LOCK_FILE = '/tmp/berth-test-apt.lock';
const APT_OPTS = ['-o', 'DPkg::Lock::Timeout=600'];
const APT_TIMEOUT_MS = 15 * 60_000;

let aptUpdated: Promise<void> | undefined;
// Serialises installs within this process (apt would otherwise fight itself).
let aptQueue: Promise<unknown> = Promise.resolve();

async function aptGet(args: string[]): Promise<void> {
  const flock = await whichTool('flock');
  const [cmd, argv] = flock
    ? [flock, [APT_LOCK_FILE, 'apt-get', ...APT_OPTS, ...args]]
    : ['apt-get', [...APT_OPTS, ...args]];
  await run(cmd, argv, { env: APT_ENV, timeoutMs: APT_TIMEOUT_MS });
}

/** Installs Debian packages (apt-get update runs once per process first). */
export function aptInstall(packages: string[]): Promise<void> {
  const job = aptQueue.then(async () => {
    aptUpdated ??= aptGet(['update']).catch((e: unknown) => {
      aptUpdated = undefined; // let a later call retry rather than cache the failure
      throw e;
    });
    await aptUpdated;
    await aptGet(['install', '-y', ...packages]);
  });
  aptQueue = job.catch(() => {});
  return job;
}

// Concurrent ensureTool() calls for one package share a single apt run.
const installs = new Map<string, Promise<void>>();

/**
 * Returns the absolute path of `bin`, installing `aptPackage` if it is missing.
 * Throws (never skips) when the tool cannot be made available.
 */
export async function ensureTool(bin: string, aptPackage: string = bin): Promise<string> {
  const found = await whichTool(bin);
  if (found) return found;
  try {
    let install = installs.get(aptPackage);
    if (!install) {
      install = aptInstall([aptPackage]);
      installs.set(aptPackage, install);
      install.catch(() => installs.delete(aptPackage));
    }
    await install;
  } catch (e) {
    throw new Error(
      `required tool \`${bin}\` is missing and installing apt package \`${aptPackage}\` failed: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
  const installed = await whichTool(bin);
  if (!installed) {
    throw new Error(`installed apt package \`${aptPackage}\` but \`${bin}\` is still not on PATH`);
  }
  return installed;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (callers must tolerate the race). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: unexpected server address'));
        return;
      }
      const { port } = addr;
      srv.close((e) => (e ? reject(e) : resolve(port)));
    });
  });
}

/**
 * Makes `dir` immutable with `chattr +i` (which stops root too) and returns
 * the undo, or undefined where the file system cannot (outside CI the
 * caller may then skip). In CI a missing capability fails the test: it must
 * not pass by skipping.
 */
export async function makeImmutable(dir: string): Promise<(() => Promise<void>) | undefined> {
  const chattr = await ensureTool('chattr', 'e2fsprogs');
  try {
    await run(chattr, ['+i', dir]);
  } catch (err) {
    if (process.env.CI) throw new Error(`chattr +i ${dir} failed, and CI must run this test: ${(err as Error).message}`);
    return undefined;
  }
  return async () => {
    await run(chattr, ['-i', dir]);
  };
}
