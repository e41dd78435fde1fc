/**
 * Kysely's values, from its CommonJS build bundled into one file
 * (src/vendor.ts). Its ESM build is 144 modules, which node 20's ESM loader
 * takes about 100 ms of a thread's start to load (every serving thread
 * loads its own); the CommonJS build, 262 files, about 60–80; the bundle
 * about 28. Every module of Berth, tests included, takes Kysely's values
 * from here, so there is one copy of its classes in a thread; its types
 * still come from 'kysely' (erased when compiled).
 */
import type * as K from 'kysely';
import { vendored } from '../vendor.js';

const kysely = vendored<typeof K>('kysely');

export const sql: typeof K.sql = kysely.sql;
export const Kysely: typeof K.Kysely = kysely.Kysely;
export type Kysely<DB> = K.Kysely<DB>;
export const Migrator: typeof K.Migrator = kysely.Migrator;
export type Migrator = K.Migrator;
export const SqliteDialect: typeof K.SqliteDialect = kysely.SqliteDialect;
export type SqliteDialect = K.SqliteDialect;
export const PostgresDialect: typeof K.PostgresDialect = kysely.PostgresDialect;
export type PostgresDialect = K.PostgresDialect;
