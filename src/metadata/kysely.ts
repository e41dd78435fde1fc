/**
 * Kysely's values, from its CommonJS build. Its ESM build is 144 modules,
 * which node 20's ESM loader takes about 100 ms of a thread's start to load
 * (every serving thread loads its own); the CommonJS build about 60. Every
 * module of Berth, tests included, takes Kysely's values from here, so
 * there is one copy of its classes in a thread; its types still come from
 * 'kysely' (erased when compiled).
 */
import { createRequire } from 'node:module';
import type * as K from 'kysely';

const kysely = createRequire(import.meta.url)('kysely') as typeof K;

export const sql: typeof K.sql = kysely.sql;
export const Kysely: typeof K.Kysely = kysely.Kysely;
export type Kysely<DB> = K.Kysely<DB>;
export const Migrator: typeof K.Migrator = kysely.Migrator;
export type Migrator = K.Migrator;
export const SqliteDialect: typeof K.SqliteDialect = kysely.SqliteDialect;
export type SqliteDialect = K.SqliteDialect;
export const PostgresDialect: typeof K.PostgresDialect = kysely.PostgresDialect;
export type PostgresDialect = K.PostgresDialect;
