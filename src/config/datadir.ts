/**
 * The start-up check of storage.filesystem.rootdirectory: Berth writes there
 * (blobs, uploads, the SQLite database), so a directory it cannot write is
 * refused at start-up with the path and the reason, rather than failing on
 * the first push. The check creates an entry, because permission bits say
 * nothing to root, while a read-only mount, an immutable directory or a path
 * under a regular file stop root too.
 */
import { constants } from 'node:fs';
import { access, lstat, mkdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';

export class DataDirectoryError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'DataDirectoryError';
  }
}

/** The nearest ancestor of `p` (or `p`) that exists and is not a directory, if any. */
async function fileInTheWay(p: string): Promise<string | undefined> {
  for (let dir = p; ; dir = path.dirname(dir)) {
    const st = await lstat(dir).catch(() => undefined);
    if (st && !st.isDirectory() && !(st.isSymbolicLink() && (await stat(dir).catch(() => undefined))?.isDirectory())) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

async function why(err: NodeJS.ErrnoException, target: string): Promise<string> {
  switch (err.code) {
    case 'ENOTDIR':
    case 'EEXIST': {
      const file = await fileInTheWay(target);
      return file ? `${file} is a file, not a directory` : (err.message ?? String(err));
    }
    case 'EROFS':
      return 'the file system is mounted read-only';
    case 'EACCES':
      return 'permission denied';
    case 'EPERM':
      return 'operation not permitted (an immutable file or directory? see lsattr)';
    case 'ENOSPC':
      return 'no space left on device';
    default:
      return err.message ?? String(err);
  }
}

/** "cannot <syscall> <path>: <reason>" for a file-system error that carries a path, else undefined. */
export async function describeFileError(err: unknown): Promise<string | undefined> {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.path !== 'string' || typeof e.code !== 'string') return undefined;
  return `cannot ${e.syscall ?? 'write'} ${e.path}: ${await why(e, e.path)}`;
}

const HINT = 'give Berth a directory it can write, or set storage.maintenance.readonly.enabled: true to serve existing content read-only';

/**
 * Creates `root` if needed and proves Berth can write in it and in its
 * existing subdirectories and database files (only in it and the database
 * files with `databaseOnly`: a read-only registry on SQLite). Throws DataDirectoryError
 * naming the path that cannot be written.
 */
export async function checkDataDirectory(root: string, opts: { databaseOnly?: boolean } = {}): Promise<void> {
  const fail = async (target: string, err: unknown, doing: string): Promise<never> => {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const hint = !['EROFS', 'EPERM', 'EACCES'].includes(code)
      ? ''
      : opts.databaseOnly
        ? '; even a read-only registry writes its SQLite database there (berth.db and its -wal and -shm files): keep the metadata in PostgreSQL (berth.database.url) to serve a read-only directory'
        : `; ${HINT}`;
    throw new DataDirectoryError(target, `storage.filesystem.rootdirectory: cannot ${doing} ${target}: ${await why(err as NodeJS.ErrnoException, target)}${hint}`);
  };
  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    return fail(root, err, 'create');
  }
  const rootStat = await stat(root);
  if (!rootStat.isDirectory()) return fail(root, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), 'use');

  const dirs = opts.databaseOnly ? [root] : [root, path.join(root, 'blobs'), path.join(root, 'blobs', 'sha256'), path.join(root, 'uploads')];
  for (const dir of dirs) {
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
    // A directory, not a file: a collection or purge listing these directories meanwhile skips an empty one.
    const probe = path.join(dir, `.berth-write-check-${process.pid}`);
    try {
      await rmdir(probe).catch(() => {}); // left by a crash of a process with the same pid
      await mkdir(probe);
      await rmdir(probe);
    } catch (err) {
      return fail(dir, err, 'write to');
    }
  }
  // Asked of the kernel, not by opening: closing any descriptor of a file
  // drops every lock this process holds on it, SQLite's included (a serving
  // thread checks while another thread's connection is open). Without its
  // lock on berth.db-shm, another process (a `berth` command) takes itself
  // for the last connection and deletes the log the server still writes.
  for (const name of ['berth.db', 'berth.db-wal', 'berth.db-shm']) {
    const file = path.join(root, name);
    try {
      await access(file, constants.R_OK | constants.W_OK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // not made yet
      return fail(file, err, 'write to');
    }
  }
}
