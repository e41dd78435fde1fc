// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring filter...]
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';

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

// Engines are started once per run, not once per file: a file that needs
// PostgreSQL gets a fresh database on the run's cluster (see
// test/support/postgres.ts, which starts its own cluster when run alone).
const uses = (module) => files.some((f) => readFileSync(f, 'utf8').includes(module));
const env = { ...process.env };
const engines = [];
if (uses('support/postgres.js') && !env.BERTH_TEST_POSTGRES_URL) {
  const { startPostgresCluster, SHARED_URL_VARIABLE } = await import('../dist/test/support/postgres.js');
  // Parallel files each open pools of their own, several servers at a time.
  const pg = await startPostgresCluster({ maxConnections: 1000 });
  env[SHARED_URL_VARIABLE] = pg.url;
  engines.push(pg);
}
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

const concurrency = process.env.BERTH_TEST_CONCURRENCY ?? '2';
const child = spawn(process.execPath, ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit', env });
const status = await new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 1))));
for (const engine of engines) await engine.stop().catch((e) => console.error(`run-tests: stopping an engine: ${e.message}`));
process.exit(status);
