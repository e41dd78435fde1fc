import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from './kysely.js';
import { WalCheckpointer } from './checkpointer.js';
import { MetadataStore } from './store.js';

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A fresh database whose connection never checkpoints by itself (only the
 * checkpointer can move pages into the database file), with a checkpointer
 * on it; `test` runs, then everything is closed and removed.
 */
async function withCheckpointer(test: (file: string, store: MetadataStore, checkpointer: WalCheckpointer) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-checkpoint-'));
  const file = path.join(dir, 'berth.db');
  const store = await MetadataStore.open({ sqlitePath: file, walAutocheckpoint: 0 });
  const checkpointer = WalCheckpointer.start(file, { intervalMs: 10 });
  try {
    await test(file, store, checkpointer);
  } finally {
    await checkpointer.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('WAL checkpointer', () => {
  it('copies the log into the database file from its own thread, while the writer never checkpoints', () =>
    withCheckpointer(async (file, store, checkpointer) => {
      const setting = await sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`.execute(store.db);
      assert.equal(setting.rows[0]?.wal_autocheckpoint, 0);
      // Let it copy the migrations' pages first, then measure from there.
      await until('the first checkpoint', () => checkpointer.stats.checkpoints > 0);
      await sleep(50);
      const before = statSync(file).size;
      const checkpointsBefore = checkpointer.stats.checkpoints;
      for (let i = 0; i < 2000; i++) await store.registry.linkBlob(`checkpoint/repo-${i % 50}`, `sha256:${i.toString(16).padStart(64, '0')}`, i);
      await until('the new pages in the database file', () => statSync(file).size > before + 100 * 4096 && checkpointer.stats.checkpoints > checkpointsBefore);
      await until('the whole log copied', () => checkpointer.stats.checkpointed === checkpointer.stats.log);
      assert.ok(checkpointer.stats.log > 100, `frames in the log: ${checkpointer.stats.log}`);
      // What was copied is the data: the database file alone, without its
      // log (a new connection would read the log too, and see the data
      // whether or not it was ever checkpointed), comes to hold the last write.
      const alone = path.join(path.dirname(file), 'alone.db');
      const last = `sha256:${(1999).toString(16).padStart(64, '0')}`;
      const deadline = Date.now() + 10_000;
      for (;;) {
        await copyFile(file, alone);
        // The checkpointer may be writing the file while it is copied: a torn
        // copy is not the file's state, so it counts as "not yet". A file that
        // stays corrupt times out below.
        const found = await MetadataStore.open({ sqlitePath: alone })
          .then((other) => other.registry.linkedBlob('checkpoint/repo-49', last).finally(() => other.close()))
          .catch((err: { code?: string }) => {
            if (err.code === 'SQLITE_CORRUPT' || err.code === 'SQLITE_NOTADB') return undefined;
            throw err;
          });
        for (const f of [alone, `${alone}-wal`, `${alone}-shm`]) await rm(f, { force: true });
        if (found) {
          assert.deepEqual(found, { size: 1999 });
          break;
        }
        assert.ok(Date.now() < deadline, 'the database file alone never held the last write');
        await sleep(20);
      }
    }));

  it('stops: its thread ends and checkpoints no more', () =>
    withCheckpointer(async (file, store, checkpointer) => {
      await until('the first checkpoint', () => checkpointer.stats.checkpoints > 0);
      await checkpointer.stop();
      const stopped = { ...checkpointer.stats };
      const size = statSync(file).size;
      for (let i = 0; i < 500; i++) await store.registry.ensureRepository(`stopped/repo-${i}`);
      await sleep(100);
      assert.deepEqual(checkpointer.stats, stopped);
      assert.equal(statSync(file).size, size, 'nothing copied into the database file after stop');
      await checkpointer.stop(); // a second stop is harmless
    }));

  it('reports a database it cannot open instead of crashing the process', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-checkpoint-'));
    try {
      let failure: (Error & { code?: string }) | undefined;
      let ended: boolean | undefined;
      const file = path.join(dir, 'missing', 'berth.db');
      const checkpointer = WalCheckpointer.start(file, {
        onError: (err, fatal) => {
          failure = err;
          ended = fatal;
        },
      });
      await until('the error', () => failure !== undefined);
      assert.ok(failure instanceof Error);
      assert.match(failure.message, new RegExp(`WAL checkpoint of ${file}: .*(unable to open|does not exist|directory)`, 'i'));
      assert.equal(ended, true);
      await checkpointer.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
