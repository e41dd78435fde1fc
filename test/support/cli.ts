/**
 * Runs the compiled CLI (dist/src/cli/main.js) as a user would: a child
 * process with none of the caller's REGISTRY_* variables, `env` on top, and
 * `stdin` written to it (where passwords go). Killed after 30 s.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './berth.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAIN = path.join(REPO_ROOT, 'dist/src/cli/main.js');

export function runCli(env: NodeJS.ProcessEnv, args: string[], stdin = ''): Promise<CliRun> {
  const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...clean, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}
