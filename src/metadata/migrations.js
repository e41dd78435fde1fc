/**
 * Schema migrations, written once for both dialects. Only the identity
 * column differs (SQLite's INTEGER PRIMARY KEY vs PostgreSQL's identity).
 */
import { sql } from 'kysely';
function migrations(dialect) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const id = (db, table) => dialect === 'sqlite'
        ? db.schema.createTable(table).addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        : db.schema.createTable(table).addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity());
    const bigint = 'bigint';
    return {
        '0001_registry_core': {
            // eslint-disable-next-line @typescript-eslint/no-explicit-any
            async up(db) {
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
                    await sql `ALTER TABLE repositories ALTER COLUMN name TYPE text COLLATE "C"`.execute(db);
                    await sql `ALTER TABLE tags ALTER COLUMN name TYPE text COLLATE "C"`.execute(db);
                }
            },
        },
    };
}
export function migrationProvider(dialect) {
    return { getMigrations: async () => migrations(dialect) };
}
