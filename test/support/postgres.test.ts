import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { startPostgres } from './postgres.js';
import { run } from './tools.js';

test('startPostgres gives each caller its own working cluster', async () => {
  // Two at once: the parallel-safety claim is part of the contract.
  const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
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
