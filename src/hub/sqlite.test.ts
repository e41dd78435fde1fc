import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import Sqlite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from '../metadata/kysely.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrationProvider } from '../metadata/migrations.js';
import type { Database } from '../metadata/schema.js';
import { MetadataStore } from '../metadata/store.js';
import { createHub } from './index.js';
import { runHubSuite } from './suite.js';

runHubSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-hub-'));
  const file = path.join(dir, 'berth.db');
  return {
    store: await MetadataStore.open({ sqlitePath: file }),
    open: (opts = {}) => MetadataStore.open({ ...opts, sqlitePath: file }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('migration 0010_hub_accounts', () => {
  it('keeps repositories that existed before it public', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-hub-migrate-'));
    const file = path.join(dir, 'berth.db');
    try {
      // A database as the release before the Hub left it.
      const database = new Sqlite(file);
      const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
      const migrator = new Migrator({ db, provider: migrationProvider('sqlite'), migrationTableName: 'berth_migrations', migrationLockTableName: 'berth_migrations_lock' });
      assert.equal((await migrator.migrateTo('0003_repository_deletions')).error, undefined);
      await sql`INSERT INTO repositories (name, created_at) VALUES ('old/repo', 1)`.execute(db);
      await db.destroy();

      const store = await MetadataStore.open({ sqlitePath: file, newRepositoryVisibility: 'private' });
      try {
        const hub = createHub(store);
        assert.equal(await hub.repositories.visibility('old/repo'), 'public');
        await store.registry.ensureRepository('new/repo');
        assert.equal(await hub.repositories.visibility('new/repo'), 'private');
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
