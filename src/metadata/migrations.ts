/**
 * Schema migrations, written once for both dialects. Only the identity
 * column differs (SQLite's INTEGER PRIMARY KEY vs PostgreSQL's identity).
 */
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { sql } from './kysely.js';

export type Dialect = 'sqlite' | 'postgres';

function migrations(dialect: Dialect): Record<string, Migration> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const id = (db: Kysely<any>, table: string) =>
    dialect === 'sqlite'
      ? db.schema.createTable(table).addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      : db.schema.createTable(table).addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity());
  const bigint = 'bigint' as const;

  return {
    '0001_registry_core': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await id(db, 'repositories')
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('blobs')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('size', bigint, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('repository_blobs')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();

        await id(db, 'manifests')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('media_type', 'text', (c) => c.notNull())
          .addColumn('size', bigint, (c) => c.notNull())
          .addColumn('artifact_type', 'text')
          .addColumn('subject_digest', 'text')
          .addColumn('annotations', 'text')
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addUniqueConstraint('manifests_repository_digest', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
        await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();

        await db.schema
          .createTable('manifest_references')
          .addColumn('manifest_id', bigint, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
          .addColumn('repository_id', bigint, (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('manifest_references_manifest').on('manifest_references').column('manifest_id').execute();
        await db.schema.createIndex('manifest_references_digest').on('manifest_references').columns(['digest', 'repository_id']).execute();

        await db.schema
          .createTable('tags')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('manifest_id', bigint, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
          .execute();
        await db.schema.createIndex('tags_manifest').on('tags').column('manifest_id').execute();

        await db.schema
          .createTable('uploads')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        // Text ordering must be byte order in both engines so pagination agrees.
        if (dialect === 'postgres') {
          await sql`ALTER TABLE repositories ALTER COLUMN name TYPE text COLLATE "C"`.execute(db);
          await sql`ALTER TABLE tags ALTER COLUMN name TYPE text COLLATE "C"`.execute(db);
        }
      },
    },
    '0002_gc_and_notifications': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await db.schema.alterTable('blobs').addColumn('last_used_at', bigint, (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('blobs').addColumn('state', 'text', (c) => c.notNull().defaultTo('live')).execute();
        await db.schema.alterTable('blobs').addColumn('deleting_at', bigint).execute();
        await sql`UPDATE blobs SET last_used_at = created_at`.execute(db);
        await db.schema.createIndex('blobs_last_used').on('blobs').column('last_used_at').execute();
        await db.schema.createIndex('manifest_references_kind_digest').on('manifest_references').columns(['kind', 'digest']).execute();

        await id(db, 'notification_queue')
          .addColumn('endpoint', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('notification_queue_endpoint').on('notification_queue').columns(['endpoint', 'id']).execute();
        await db.schema
          .createTable('notification_endpoints')
          .addColumn('endpoint', 'text', (c) => c.primaryKey())
          .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', bigint, (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    '0003_repository_deletions': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        // When each repository was last deleted: an upload started before then belongs to the deleted repository.
        await db.schema
          .createTable('repository_deletions')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('deleted_at', bigint, (c) => c.notNull())
          .execute();
      },
    },
    '0004_gc_runs': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await id(db, 'gc_runs')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('dry_run', 'integer', (c) => c.notNull())
          .addColumn('grace_ms', bigint, (c) => c.notNull())
          .addColumn('delete_untagged', 'integer', (c) => c.notNull())
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('started_at', bigint)
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .addColumn('finished_at', bigint)
          .addColumn('progress', 'text')
          .addColumn('summary', 'text')
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('gc_runs_state').on('gc_runs').columns(['state', 'id']).execute();
      },
    },
    '0005_repository_deleting': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        await db.schema.alterTable('repositories').addColumn('deleting_since', bigint).execute();
      },
    },
    '0010_hub_accounts': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        // Rows that exist before accounts are turned on stay public: nothing changes until someone makes one private.
        await db.schema.alterTable('repositories').addColumn('visibility', 'text', (c) => c.notNull().defaultTo('public')).execute();

        // Users and organizations share one namespace: one table, one unique name.
        await id(db, 'accounts')
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('email', 'text')
          .addColumn('password_hash', 'text')
          .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('disabled_at', bigint)
          .execute();
        await db.schema.createIndex('accounts_email').on('accounts').column('email').execute();

        await db.schema
          .createTable('organization_members')
          .addColumn('organization_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('organization_members_pk', ['organization_id', 'account_id'])
          .execute();
        await db.schema.createIndex('organization_members_account').on('organization_members').column('account_id').execute();

        await id(db, 'teams')
          .addColumn('organization_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addUniqueConstraint('teams_organization_name', ['organization_id', 'name'])
          .execute();
        await db.schema
          .createTable('team_members')
          .addColumn('team_id', bigint, (c) => c.notNull().references('teams.id').onDelete('cascade'))
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addPrimaryKeyConstraint('team_members_pk', ['team_id', 'account_id'])
          .execute();
        await db.schema.createIndex('team_members_account').on('team_members').column('account_id').execute();
        // `repository` is a full name, or '*' for every repository of the team's organization; kept by name so a
        // permission may be granted before the first push.
        await db.schema
          .createTable('team_permissions')
          .addColumn('team_id', bigint, (c) => c.notNull().references('teams.id').onDelete('cascade'))
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('permission', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('team_permissions_pk', ['team_id', 'repository'])
          .execute();
        await db.schema.createIndex('team_permissions_repository').on('team_permissions').column('repository').execute();

        await db.schema
          .createTable('collaborators')
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('permission', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('collaborators_pk', ['repository', 'account_id'])
          .execute();
        await db.schema.createIndex('collaborators_account').on('collaborators').columns(['account_id', 'repository']).execute();

        await id(db, 'robots')
          .addColumn('organization_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('expires_at', bigint)
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('disabled_at', bigint)
          .addUniqueConstraint('robots_organization_name', ['organization_id', 'name'])
          .execute();
        await db.schema
          .createTable('robot_permissions')
          .addColumn('robot_id', bigint, (c) => c.notNull().references('robots.id').onDelete('cascade'))
          .addColumn('repository', 'text', (c) => c.notNull())
          .addColumn('permission', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('robot_permissions_pk', ['robot_id', 'repository'])
          .execute();

        await id(db, 'access_tokens')
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('expires_at', bigint)
          .addColumn('last_used_at', bigint)
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('revoked_at', bigint)
          .execute();
        await db.schema.createIndex('access_tokens_account').on('access_tokens').columns(['account_id', 'id']).execute();

        await id(db, 'refresh_tokens')
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('account_id', bigint, (c) => c.references('accounts.id').onDelete('cascade'))
          .addColumn('access_token_id', bigint, (c) => c.references('access_tokens.id').onDelete('cascade'))
          .addColumn('robot_id', bigint, (c) => c.references('robots.id').onDelete('cascade'))
          .addColumn('client_id', 'text', (c) => c.notNull())
          .addColumn('expires_at', bigint, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('revoked_at', bigint)
          .execute();
        await db.schema.createIndex('refresh_tokens_account').on('refresh_tokens').column('account_id').execute();
        await db.schema.createIndex('refresh_tokens_access_token').on('refresh_tokens').column('access_token_id').execute();
        await db.schema.createIndex('refresh_tokens_robot').on('refresh_tokens').column('robot_id').execute();
        await db.schema.createIndex('refresh_tokens_expires').on('refresh_tokens').column('expires_at').execute();

        await id(db, 'invitations')
          .addColumn('code_hash', 'text', (c) => c.notNull().unique())
          .addColumn('email', 'text')
          .addColumn('created_by', bigint, (c) => c.references('accounts.id').onDelete('set null'))
          .addColumn('expires_at', bigint, (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addColumn('used_at', bigint)
          .addColumn('used_by', bigint, (c) => c.references('accounts.id').onDelete('set null'))
          .execute();
        // Deleting an account sets these to null: without an index, each delete would scan the table.
        await db.schema.createIndex('invitations_created_by').on('invitations').column('created_by').execute();
        await db.schema.createIndex('invitations_used_by').on('invitations').column('used_by').execute();

        // No foreign keys: the log outlives the accounts it names.
        await id(db, 'audit_log')
          .addColumn('at', bigint, (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('actor_id', bigint)
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('request_id', 'text')
          .addColumn('client', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor', 'id']).execute();
        await db.schema.createIndex('audit_log_target').on('audit_log').columns(['target', 'id']).execute();
        await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();

        // Failed logins per key ('account:NAME', 'client:ADDRESS') in a fixed window, shared by every process.
        await db.schema
          .createTable('login_failures')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('window_start', bigint, (c) => c.notNull())
          .addColumn('failures', 'integer', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('login_failures_window').on('login_failures').column('window_start').execute();

        if (dialect === 'postgres') {
          for (const [table, column] of [
            ['accounts', 'name'],
            ['teams', 'name'],
            ['team_permissions', 'repository'],
            ['collaborators', 'repository'],
            ['robots', 'name'],
            ['robot_permissions', 'repository'],
          ] as const) {
            await sql`ALTER TABLE ${sql.table(table)} ALTER COLUMN ${sql.ref(column)} TYPE text COLLATE "C"`.execute(db);
          }
        }
      },
    },
    '0011_signing_keys': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        // The token service's signing keys, shared by every replica (src/auth/token/keys.ts).
        await id(db, 'signing_keys')
          // 1 for the key made at first start, then one more per rotation: unique, so two first starts insert one key.
          .addColumn('ordinal', 'integer', (c) => c.notNull().unique())
          .addColumn('kid', 'text', (c) => c.notNull().unique())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          // PKCS#8 PEM; null for a key whose private half lives in a file (auth.accounts.signingkey).
          .addColumn('private_key', 'text')
          // The key's self-signed certificate, base64 DER, made once so every replica sends the same x5c.
          .addColumn('certificate', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          // Signs from this time on (published before, so verifiers can learn it first); verifies until retired.
          .addColumn('active_at', bigint, (c) => c.notNull())
          .addColumn('retired_at', bigint)
          .execute();
      },
    },
    '0012_hub_discovery': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        if (dialect === 'postgres') {
          // Typo-tolerant name search needs trigram similarity (contrib's pg_trgm, in Debian's postgresql package).
          try {
            await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
          } catch (err) {
            throw new Error(
              `the PostgreSQL extension pg_trgm is needed for repository search and could not be created (${(err as Error).message}); ` +
                'install PostgreSQL\'s contrib modules and run `CREATE EXTENSION pg_trgm` as a superuser in this database, or grant this user CREATE on it',
            );
          }
        }
        await db.schema
          .createTable('repository_info')
          .addColumn('repository_id', bigint, (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text', (c) => c.notNull())
          .addColumn('short_name', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('description_source', 'text', (c) => c.notNull().defaultTo('none'))
          .addColumn('readme', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('readme_source', 'text', (c) => c.notNull().defaultTo('none'))
          .addColumn('official', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('star_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('pull_count', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('pulls_window', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('pulls_current', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('pulls_previous', bigint, (c) => c.notNull().defaultTo(0))
          .addColumn('last_pulled_at', bigint)
          .addColumn('last_pushed_at', bigint)
          .addColumn('updated_at', bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('repository_info_name').on('repository_info').column('name').unique().execute();
        await db.schema.createIndex('repository_info_namespace').on('repository_info').columns(['namespace', 'name']).execute();
        await db.schema.createIndex('repository_info_short_name').on('repository_info').column('short_name').execute();
        await db.schema.createIndex('repository_info_stars').on('repository_info').column('star_count').execute();
        await db.schema.createIndex('repository_info_pushed').on('repository_info').column('last_pushed_at').execute();

        // The search index follows repository_info, kept by the database itself: no code path can forget it.
        // Only the first 100,000 characters of a README are indexed (PostgreSQL's tsvector has a size limit).
        if (dialect === 'sqlite') {
          await sql`CREATE VIRTUAL TABLE repository_text USING fts5(short_name, namespace, description, readme, tokenize = 'unicode61', prefix = '2 3')`.execute(db);
          // Names as words padded like pg_trgm's ('  word '), for typo-tolerant and substring matching of names.
          await sql`CREATE VIRTUAL TABLE repository_words USING fts5(words, tokenize = 'trigram')`.execute(db);
          await sql`CREATE TRIGGER repository_info_index AFTER INSERT ON repository_info BEGIN
            INSERT INTO repository_text (rowid, short_name, namespace, description, readme)
              VALUES (new.repository_id, new.short_name, new.namespace, new.description, substr(new.readme, 1, 100000));
            INSERT INTO repository_words (rowid, words)
              VALUES (new.repository_id, '  ' || replace(replace(replace(replace(new.name, '/', '  '), '-', '  '), '_', '  '), '.', '  ') || ' ');
          END`.execute(db);
          await sql`CREATE TRIGGER repository_info_unindex AFTER DELETE ON repository_info BEGIN
            DELETE FROM repository_text WHERE rowid = old.repository_id;
            DELETE FROM repository_words WHERE rowid = old.repository_id;
          END`.execute(db);
          await sql`CREATE TRIGGER repository_info_reindex AFTER UPDATE OF description, readme ON repository_info BEGIN
            UPDATE repository_text SET description = new.description, readme = substr(new.readme, 1, 100000) WHERE rowid = new.repository_id;
          END`.execute(db);
        } else {
          for (const column of ['name', 'namespace', 'short_name']) {
            await sql`ALTER TABLE repository_info ALTER COLUMN ${sql.ref(column)} TYPE text COLLATE "C"`.execute(db);
          }
          await sql`ALTER TABLE repository_info ADD COLUMN document tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', regexp_replace(short_name, '[^[:alnum:]]+', ' ', 'g')), 'A') ||
            setweight(to_tsvector('simple', regexp_replace(namespace, '[^[:alnum:]]+', ' ', 'g')), 'B') ||
            setweight(to_tsvector('simple', description), 'C') ||
            setweight(to_tsvector('simple', left(readme, 100000)), 'D')) STORED`.execute(db);
          // The name's words alone, small enough never to be stored out of line: the "words of the name" match reads it per candidate.
          await sql`ALTER TABLE repository_info ADD COLUMN names tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', regexp_replace(short_name, '[^[:alnum:]]+', ' ', 'g')), 'A') ||
            setweight(to_tsvector('simple', regexp_replace(namespace, '[^[:alnum:]]+', ' ', 'g')), 'B')) STORED`.execute(db);
          await sql`CREATE INDEX repository_info_document ON repository_info USING gin (document)`.execute(db);
          await sql`CREATE INDEX repository_info_names ON repository_info USING gin (names)`.execute(db);
          await sql`CREATE INDEX repository_info_trigrams ON repository_info USING gin (name gin_trgm_ops)`.execute(db);
        }

        // Existing repositories get their row (and so their place in the index) once, here.
        const created = dialect === 'sqlite'
          ? {
              namespace: sql`CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE '' END`,
              short: sql`CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, instr(r.name, '/') + 1) ELSE r.name END`,
            }
          : {
              namespace: sql`CASE WHEN strpos(r.name, '/') > 0 THEN split_part(r.name, '/', 1) ELSE '' END`,
              short: sql`CASE WHEN strpos(r.name, '/') > 0 THEN substr(r.name, strpos(r.name, '/') + 1) ELSE r.name END`,
            };
        await sql`INSERT INTO repository_info (repository_id, name, namespace, short_name, official, last_pushed_at, updated_at)
          SELECT r.id, r.name, ${created.namespace}, ${created.short}, CASE WHEN substr(r.name, 1, 8) = 'library/' THEN 1 ELSE 0 END,
                 (SELECT max(m.created_at) FROM manifests m WHERE m.repository_id = r.id), r.created_at
          FROM repositories r`.execute(db);
        const newRow = (n: string) =>
          dialect === 'sqlite'
            ? sql.raw(`INSERT INTO repository_info (repository_id, name, namespace, short_name, official, updated_at) VALUES (${n}.id, ${n}.name,
                CASE WHEN instr(${n}.name, '/') > 0 THEN substr(${n}.name, 1, instr(${n}.name, '/') - 1) ELSE '' END,
                CASE WHEN instr(${n}.name, '/') > 0 THEN substr(${n}.name, instr(${n}.name, '/') + 1) ELSE ${n}.name END,
                CASE WHEN substr(${n}.name, 1, 8) = 'library/' THEN 1 ELSE 0 END, ${n}.created_at);`)
            : sql.raw(`INSERT INTO repository_info (repository_id, name, namespace, short_name, official, updated_at) VALUES (${n}.id, ${n}.name,
                CASE WHEN strpos(${n}.name, '/') > 0 THEN split_part(${n}.name, '/', 1) ELSE '' END,
                CASE WHEN strpos(${n}.name, '/') > 0 THEN substr(${n}.name, strpos(${n}.name, '/') + 1) ELSE ${n}.name END,
                CASE WHEN left(${n}.name, 8) = 'library/' THEN 1 ELSE 0 END, ${n}.created_at);`);
        // Every path that creates a repository (a blob claim, a mount, a manifest) inserts its row: the trigger covers them all.
        if (dialect === 'sqlite') {
          await sql`CREATE TRIGGER repository_info_create AFTER INSERT ON repositories BEGIN ${newRow('new')} END`.execute(db);
          // Foreign keys cascade too when enabled (the store enables them); this holds without.
          await sql`CREATE TRIGGER repository_info_drop AFTER DELETE ON repositories BEGIN DELETE FROM repository_info WHERE repository_id = old.id; END`.execute(db);
        } else {
          await sql`CREATE FUNCTION berth_repository_info_create() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${newRow('NEW')} RETURN NULL; END $$`.execute(db);
          await sql`CREATE TRIGGER repository_info_create AFTER INSERT ON repositories FOR EACH ROW EXECUTE FUNCTION berth_repository_info_create()`.execute(db);
        }

        await db.schema
          .createTable('manifest_info')
          .addColumn('manifest_id', bigint, (c) => c.primaryKey().references('manifests.id').onDelete('cascade'))
          .addColumn('total_size', bigint, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('manifest_platforms')
          .addColumn('manifest_id', bigint, (c) => c.notNull().references('manifests.id').onDelete('cascade'))
          .addColumn('position', 'integer', (c) => c.notNull())
          .addColumn('os', 'text', (c) => c.notNull())
          .addColumn('architecture', 'text', (c) => c.notNull())
          .addColumn('variant', 'text')
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('size', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_platforms_pk', ['manifest_id', 'position'])
          .execute();
        await db.schema.createIndex('manifest_platforms_platform').on('manifest_platforms').columns(['os', 'architecture', 'manifest_id']).execute();

        await db.schema
          .createTable('stars')
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('stars_pk', ['account_id', 'repository_id'])
          .execute();
        await db.schema.createIndex('stars_repository').on('stars').column('repository_id').execute();

        await db.schema
          .createTable('follows')
          .addColumn('account_id', bigint, (c) => c.notNull().references('accounts.id').onDelete('cascade'))
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('follows_pk', ['account_id', 'kind', 'target'])
          .execute();
        await db.schema.createIndex('follows_target').on('follows').columns(['kind', 'target']).execute();

        await db.schema
          .createTable('tag_pulls')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('pull_count', bigint, (c) => c.notNull())
          .addColumn('last_pulled_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('tag_pulls_pk', ['repository_id', 'name'])
          .execute();
        await db.schema
          .createTable('manifest_pulls')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('pull_count', bigint, (c) => c.notNull())
          .addColumn('last_pulled_at', bigint, (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_pulls_pk', ['repository_id', 'digest'])
          .execute();

        await id(db, 'activity')
          .addColumn('at', bigint, (c) => c.notNull())
          .addColumn('repository', 'text')
          .addColumn('namespace', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('actor_id', bigint)
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('tag', 'text')
          .addColumn('digest', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('activity_repository').on('activity').columns(['repository', 'id']).execute();
        await db.schema.createIndex('activity_namespace').on('activity').columns(['namespace', 'id']).execute();
        await db.schema.createIndex('activity_actor').on('activity').columns(['actor', 'id']).execute();

        await id(db, 'webhooks')
          .addColumn('repository_id', bigint, (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_by', 'text')
          .addColumn('created_at', bigint, (c) => c.notNull())
          .addUniqueConstraint('webhooks_repository_name', ['repository_id', 'name'])
          .execute();

        if (dialect === 'postgres') {
          for (const [table, column] of [
            ['follows', 'target'],
            ['tag_pulls', 'name'],
            ['activity', 'repository'],
            ['activity', 'namespace'],
            ['activity', 'actor'],
          ] as const) {
            await sql`ALTER TABLE ${sql.table(table)} ALTER COLUMN ${sql.ref(column)} TYPE text COLLATE "C"`.execute(db);
          }
        }
      },
    },
    '0013_search_prefixes': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      async up(db: Kysely<any>) {
        // Browsing by pulls walks this, as by stars and by last push theirs (0012); a namespace's by stars the second.
        await db.schema.createIndex('repository_info_pulls').on('repository_info').column('pull_count').execute();
        await db.schema.createIndex('repository_info_namespace_stars').on('repository_info').columns(['namespace', 'star_count']).execute();
        if (dialect !== 'sqlite') return;
        // The word being typed is matched as a prefix; FTS5 without an index of that prefix length merges the
        // doclists of every word starting so, all of them, before the first row (milliseconds for a common one).
        // Indexed prefixes of up to 6 characters are read like one word. The triggers of 0012 name the table, not
        // its definition, so they keep it current.
        await sql`DROP TABLE repository_text`.execute(db);
        await sql`CREATE VIRTUAL TABLE repository_text USING fts5(short_name, namespace, description, readme, tokenize = 'unicode61', prefix = '2 3 4 5 6')`.execute(db);
        await sql`INSERT INTO repository_text (rowid, short_name, namespace, description, readme)
          SELECT repository_id, short_name, namespace, description, substr(readme, 1, 100000) FROM repository_info`.execute(db);
      },
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
