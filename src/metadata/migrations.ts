/**
 * Schema migrations, written once for both dialects. Only the identity
 * column differs (SQLite's INTEGER PRIMARY KEY vs PostgreSQL's identity).
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

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
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
