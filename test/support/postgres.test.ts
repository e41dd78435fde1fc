import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { startPostgres, startPostgresCluster } from './postgres.js';
import { run } from './tools.js';

test('startPostgresCluster gives each caller its own working cluster', async () => {
  // Two at once: the parallel-safety claim is part of the contract.
  const [a, b] = await Promise.all([startPostgresCluster(), startPostgresCluster()]);
  try {
    assert.notEqual(a.port, b.port);
    for (const pg of [a, b]) {
      assert.match(pg.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/berth$/);
      const { stdout } = await run(path.join(pg.binDir, 'psql'), [pg.url, '-XAtc', 'select 1'], { timeoutMs: 30_000 });
      assert.equal(stdout.trim(), '1');
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  // stop() is idempotent and really shuts the server down.
  await a.stop();
  await assert.rejects(
    run(path.join(a.binDir, 'psql'), [a.url, '-XAtc', 'select 1'], { timeoutMs: 30_000 }),
    /exited with code/,
  );
});

test('startPostgres gives each caller its own empty database, dropped by stop()', async () => {
  const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
  const psql = (url: string, sql: string) => run(path.join(a.binDir, 'psql'), [url, '-XAtc', sql], { timeoutMs: 30_000 });
  try {
    assert.notEqual(a.url, b.url);
    await psql(a.url, 'create table only_in_a (x int)');
    assert.equal((await psql(a.url, "select count(*) from pg_tables where tablename = 'only_in_a'")).stdout.trim(), '1');
    assert.equal((await psql(b.url, "select count(*) from pg_tables where tablename = 'only_in_a'")).stdout.trim(), '0');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  await a.stop();
  await assert.rejects(psql(a.url, 'select 1'), /exited with code/);
});
