/**
 * The data directory's check at start-up runs in every serving thread,
 * while another thread's SQLite connection is open: it must leave that
 * connection's locks alone. A raw open and close of berth.db-shm dropped
 * them (closing any descriptor of a file drops all of a process's locks on
 * it), and a `berth` command run beside the server then took itself for the
 * last connection and deleted the log the server was still writing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MetadataStore } from '../metadata/index.js';
import { checkDataDirectory } from './datadir.js';

describe('checking the data directory beside an open database', () => {
  it('keeps SQLite’s locks: another process that opens and closes the database leaves its log in place', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-datadir-'));
    const file = path.join(root, 'berth.db');
    const store = await MetadataStore.open({ sqlitePath: file });
    try {
      await store.registry.ensureRepository('datadir/before');
      const wal = statSync(`${file}-wal`);
      await checkDataDirectory(root, { databaseOnly: true });
      // Another process, as a `berth` command run beside the server: it opens the database, reads and closes it.
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
      const command = `const db = new (require(${JSON.stringify(sqlite)}))(${JSON.stringify(file)}); db.prepare('SELECT count(*) FROM repositories').get(); db.close();`;
      execFileSync(process.execPath, ['-e', command]);
      assert.ok(existsSync(`${file}-wal`), 'the log the server writes is still there');
      assert.equal(statSync(`${file}-wal`).ino, wal.ino, 'the same file');
      await store.registry.ensureRepository('datadir/after');
    } finally {
      await store.close();
    }
    // What the server wrote, before and after, is in the database.
    const again = await MetadataStore.open({ sqlitePath: file });
    try {
      assert.notEqual(await again.registry.repositoryId('datadir/before'), null);
      assert.notEqual(await again.registry.repositoryId('datadir/after'), null);
    } finally {
      await again.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
