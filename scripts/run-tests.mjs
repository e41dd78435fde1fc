// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring filter...]
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
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
// Test files that need a real S3 engine (by name: `s3` or `object-store`)
// share one engine per run: started here once, handed to them in
// BERTH_TEST_S3_* variables, stopped at the end (test/support/swift.ts).
const env = { ...process.env };
const engines = [];
if (!env.BERTH_TEST_S3_ENDPOINT && files.some((f) => /s3|object-store/.test(path.basename(f)))) {
  const { startSwift, engineEnv } = await import(path.resolve('dist/test/support/swift.js'));
  console.error('run-tests: starting OpenStack Swift (s3api) for the object-store tests');
  const engine = await startSwift();
  engines.push(engine);
  Object.assign(env, engineEnv(engine));
}
// The same for Azure Blob (Azurite) and files named `azure` (test/support/azurite.ts).
if (!env.BERTH_TEST_AZURE_SERVICE_URL && files.some((f) => /azure/.test(path.basename(f)))) {
  const { startAzurite, azureEnv } = await import(path.resolve('dist/test/support/azurite.js'));
  console.error('run-tests: starting Azurite for the Azure tests');
  const engine = await startAzurite();
  engines.push(engine);
  Object.assign(env, azureEnv(engine));
}
const concurrency = process.env.BERTH_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit', env });
for (const engine of engines) await engine.stop();
process.exit(r.status ?? 1);
