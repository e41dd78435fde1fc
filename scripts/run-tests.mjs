// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring filter...]
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { processTree } from '../bench/lib/proc.mjs';

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = [...walk('dist/src', []), ...walk('dist/test', [])]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}

// Engines are started once per run, not once per file, and handed to the
// test processes in environment variables; each support module starts an
// engine of its own when run alone.
// - PostgreSQL: a file that imports test/support/postgres.js gets a fresh
//   database on the run's cluster (BERTH_TEST_POSTGRES_URL).
// - S3 (OpenStack Swift's s3api): files that import test/support/swift.js
//   (BERTH_TEST_S3_*).
// - Azure Blob (Azurite): files that import test/support/azurite.js
//   (BERTH_TEST_AZURE_*).
const uses = (module) => files.some((f) => readFileSync(f, 'utf8').includes(module));
const env = { ...process.env };
const engines = [];
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

if (uses('support/postgres.js') && !env.BERTH_TEST_POSTGRES_URL) {
  const { startPostgresCluster, SHARED_URL_VARIABLE } = await import('../dist/test/support/postgres.js');
  // Parallel files each open pools of their own, several servers at a time.
  const pg = await startPostgresCluster({ maxConnections: 1000 });
  env[SHARED_URL_VARIABLE] = pg.url;
  engines.push(pg);
}
if (!env.BERTH_TEST_S3_ENDPOINT && uses('support/swift.js')) {
  const { startSwift, engineEnv } = await import(path.resolve('dist/test/support/swift.js'));
  console.error('run-tests: starting OpenStack Swift (s3api) for the object-store tests');
  const engine = await startSwift();
  engines.push(engine);
  Object.assign(env, engineEnv(engine));
}
if (!env.BERTH_TEST_AZURE_SERVICE_URL && uses('support/azurite.js')) {
  const { startAzurite, azureEnv } = await import(path.resolve('dist/test/support/azurite.js'));
  console.error('run-tests: starting Azurite for the Azure tests');
  const engine = await startAzurite();
  engines.push(engine);
  Object.assign(env, azureEnv(engine));
}

const concurrency = process.env.BERTH_TEST_CONCURRENCY ?? '2';
const child = spawn(process.execPath, ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit', env });

// A test file whose thread is stuck in native code (a deadlock seen once inside node's crypto) never
// reaches its own timeouts: past this limit the run is stopped, naming the files still running.
const limitMinutes = Number(process.env.BERTH_TEST_LIMIT_MINUTES ?? 45);
const watchdog = setTimeout(() => {
  const running = processTree(child.pid); // the runner first, then its test files' processes
  const stuck = running.slice(1).map((pid) => cmdline(pid).find((a) => a.endsWith('.test.js'))).filter(Boolean);
  console.error(`run-tests: the run passed ${limitMinutes} minutes (BERTH_TEST_LIMIT_MINUTES); still running: ${stuck.join(', ') || 'no test file'}; stopping it`);
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}, limitMinutes * 60_000);
const status = await new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
clearTimeout(watchdog);
for (const engine of engines) await engine.stop().catch((e) => console.error(`run-tests: stopping an engine: ${e.message}`));
process.exit(status);

function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}
