// A real PostgreSQL from Debian's packages, for tests.
// startPostgres() gives each caller a fresh, empty database of its own. When
// the test runner (scripts/run-tests.mjs) has started one cluster for the
// whole run, its URL is in BERTH_TEST_POSTGRES_URL and each call creates a
// database there; a file run alone starts a throwaway cluster of its own.
// The server refuses to run as root, hence the chown + runuser dance.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aptInstall, ensureTool, freePort, run } from './tools.js';

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/<database> (trust auth, no password). */
  url: string;
  port: number;
  /** Directory holding this server's psql, pg_dump, ... */
  binDir: string;
  stop(): Promise<void>;
}

const PG_USER = 'postgres';
const PG_ROOT = '/usr/lib/postgresql';

async function findBinDir(): Promise<string | undefined> {
  let versions: string[];
  try {
    versions = await readdir(PG_ROOT);
  } catch {
    return undefined;
  }
  // Newest major version first, compared numerically ("9.6" < "15").
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const v of versions) {
    const bin = path.join(PG_ROOT, v, 'bin');
    if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/** The bin dir of the newest installed PostgreSQL, installing `postgresql` if there is none. */
export async function postgresBinDir(): Promise<string> {
  const found = await findBinDir();
  if (found) return found;
  try {
    await aptInstall(['postgresql']);
  } catch (e) {
    throw new Error(`PostgreSQL is not installed and \`apt-get install postgresql\` failed: ${(e as Error).message}`);
  }
  const installed = await findBinDir();
  if (!installed) throw new Error(`installed apt package postgresql but found no ${PG_ROOT}/*/bin/initdb`);
  return installed;
}

async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const ids = async (flag: string): Promise<number> => Number((await run('id', [flag, user])).stdout.trim());
  try {
    return { uid: await ids('-u'), gid: await ids('-g') };
  } catch (e) {
    throw new Error(`the \`${user}\` system user is missing (it comes with the postgresql package): ${(e as Error).message}`);
  }
}

// Servers still running when the process exits (a test crashed before stop()):
// SIGQUIT is PostgreSQL's "immediate shutdown", and it must be synchronous here.
const live = new Set<string>();
process.once('exit', () => {
  for (const dataDir of live) {
    try {
      const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // Already gone.
    }
  }
});

async function tail(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-30).join('\n');
  } catch {
    return '(no server log)';
  }
}

/** The run's shared cluster, when the test runner started one. */
export const SHARED_URL_VARIABLE = 'BERTH_TEST_POSTGRES_URL';

/**
 * A fresh database for this caller: on the run's shared cluster when there is
 * one, otherwise on a cluster of its own. stop() drops the database (or stops
 * the private cluster); it is idempotent.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const shared = process.env[SHARED_URL_VARIABLE];
  if (!shared) return startPostgresCluster();
  const binDir = await postgresBinDir();
  const name = `t_${process.pid}_${randomBytes(6).toString('hex')}`;
  const pg = (await import('pg')).default;
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: shared });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  return { url: shared.replace(/\/[^/]*$/, `/${name}`), port: Number(new URL(shared).port), binDir, stop };
}

/** A throwaway cluster of its own, with a database `berth`; stop() shuts it down and removes it. */
export async function startPostgresCluster(opts: { maxConnections?: number } = {}): Promise<PostgresServer> {
  const binDir = await postgresBinDir();
  const runuser = await ensureTool('runuser', 'util-linux');
  const { uid, gid } = await userIds(PG_USER);
  const asPostgres = (bin: string, args: string[], cwd: string) =>
    run(runuser, ['-u', PG_USER, '--', path.join(binDir, bin), ...args], {
      cwd, // postgres must be able to chdir here
      env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' },
      timeoutMs: 120_000,
    });

  // Short base dir: the socket path (<base>/.s.PGSQL.<port>) must fit in 107 bytes.
  const base = await mkdtemp(path.join(tmpdir(), 'berth-pg-'));
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  let started = false;
  try {
    await chown(base, uid, gid);
    await asPostgres(
      'initdb',
      ['-D', dataDir, '-A', 'trust', '-U', PG_USER, '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
      base,
    );

    // freePort() races with other processes; retry with a fresh port if the bind loses.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const serverOpts = `-p ${port} -k '${base}' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=${opts.maxConnections ?? 100}`;
      try {
        live.add(dataDir);
        await asPostgres('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOpts, '-w', '-t', '60', 'start'], base);
        started = true;
        break;
      } catch (e) {
        live.delete(dataDir);
        const log = await tail(logFile);
        if (attempt < 5 && /already in use|could not (create|bind)/i.test(log)) continue;
        throw new Error(`${(e as Error).message}\n--- server log ---\n${log}`);
      }
    }

    await run(path.join(binDir, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', PG_USER, 'berth'], {
      timeoutMs: 60_000,
    });

    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopped ??= (async () => {
        try {
          await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], base);
        } finally {
          live.delete(dataDir);
          await rm(base, { recursive: true, force: true });
        }
      })());

    return { url: `postgres://${PG_USER}@127.0.0.1:${port}/berth`, port, binDir, stop };
  } catch (e) {
    if (started) {
      await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], base).catch(() => {});
    }
    live.delete(dataDir);
    await rm(base, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Another fresh, empty database on `server`, named after `name` plus a random
 * suffix (files running in parallel share the run's cluster), and its URL.
 */
export async function createDatabase(server: PostgresServer, name: string): Promise<string> {
  const unique = `${name.replace(/[^a-z0-9_]/gi, '')}_${randomBytes(4).toString('hex')}`;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${unique}"`);
  } finally {
    await client.end();
  }
  return server.url.replace(/\/[^/]*$/, `/${unique}`);
}
