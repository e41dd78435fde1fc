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
import { InMemoryBlobStore } from '../storage/index.js';
import { createDiscovery } from './discovery.js';
import { runDiscoverySuite } from './discovery-suite.js';

runDiscoverySuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-discovery-'));
  const file = path.join(dir, 'berth.db');
  return {
    store: await MetadataStore.open({ sqlitePath: file, newRepositoryVisibility: 'private' }),
    open: () => MetadataStore.open({ sqlitePath: file, newRepositoryVisibility: 'private' }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('migration 0012_hub_discovery', () => {
  it('indexes the repositories that existed before it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-discovery-migrate-'));
    const file = path.join(dir, 'berth.db');
    try {
      const database = new Sqlite(file);
      const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
      const migrator = new Migrator({ db, provider: migrationProvider('sqlite'), migrationTableName: 'berth_migrations', migrationLockTableName: 'berth_migrations_lock' });
      assert.equal((await migrator.migrateTo('0011_signing_keys')).error, undefined);
      await sql`INSERT INTO repositories (name, created_at) VALUES ('library/oldimage', 1), ('acme/oldtool', 2)`.execute(db);
      await sql`INSERT INTO manifests (repository_id, digest, media_type, size, created_at) SELECT id, 'sha256:' || id, 'x', 1, 5 FROM repositories`.execute(db);
      await db.destroy();

      const store = await MetadataStore.open({ sqlitePath: file });
      try {
        const d = createDiscovery(store, { mode: 'open', blobs: new InMemoryBlobStore() });
        const found = await d.search.search({ kind: 'anonymous' }, { query: 'oldimage' });
        assert.deepEqual(found.results.map((r) => [r.name, r.official, r.lastPushedAt]), [['library/oldimage', true, 5]]);
        assert.deepEqual((await d.search.search({ kind: 'anonymous' }, { query: 'oldtool' })).results.map((r) => r.name), ['acme/oldtool']);
        await d.close();
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
