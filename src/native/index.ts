/**
 * The native addon (src/native/berth.c), built by `npm install` with
 * node-gyp into build/Release. It holds only what Node's API lacks.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

declare const sha256Brand: unique symbol;
/** OpenSSL's running sha256 state, held by the addon. */
export type Sha256State = { readonly [sha256Brand]: true };

export interface Native {
  /** A new descriptor (close-on-exec) for the same open socket. */
  dupSocket(fd: number): number;
  sha256Create(): Sha256State;
  /** Feeds bytes on this thread. Throws while a writeHashed() on the state is in flight. */
  sha256Update(state: Sha256State, bytes: Uint8Array): void;
  /** Lowercase hex of what was fed so far; the state stays usable. */
  sha256Digest(state: Sha256State): string;
  /**
   * On libuv's thread pool: feeds the buffers to `state` (unless null) and
   * writes them all at `position` (short writes are continued), then, with
   * `sync`, fdatasyncs the file. 1 to 1024 buffers, which must not be
   * transferred or changed until it settles. Rejects with an Error carrying
   * `code` (EIO, ENOSPC…) and `syscall`: 'pwritev', or 'fdatasync' when the
   * bytes were written but the flush failed.
   *
   * With `commit` (which needs `state` and `sync`), the same job then
   * hard-links `from` to `to` when the state's digest is `commit.digest`
   * (lowercase hex) and fsyncs `dir`, and resolves to what it did: 'linked'
   * (also when `to` was there already), 'mismatch' (nothing linked), or the
   * link's error code ('ENOENT', 'EXDEV'…; nothing linked). A failed
   * directory flush rejects (`syscall` 'open' or 'fsync').
   */
  writeHashed(fd: number, buffers: Uint8Array[], position: number, state: Sha256State | null, sync?: boolean): Promise<void>;
  writeHashed(fd: number, buffers: Uint8Array[], position: number, state: Sha256State, sync: true, commit: WriteCommit): Promise<string>;
  /** An exclusive flock without waiting: false when another open of the file holds it. */
  tryLock(fd: number): boolean;
  unlock(fd: number): void;
  /**
   * Sends `header` (when given), then `length` bytes of the file from
   * `offset`, to a non-blocking socket with sendfile(2) (with `copy`, by
   * pread and send through a 32 KiB buffer) on libuv's thread pool, waiting
   * for writability on the event loop when the socket is full.
   * Works on duplicates of both descriptors, so the caller may close its
   * own at once. `done` resolves to the bytes sent, header included; it
   * rejects with an Error carrying `code`, `syscall` and `sent`.
   */
  sendFile(socketFd: number, header: Uint8Array | null, fileFd: number, offset: number, length: number, copy: boolean): SendFileJob;
  /** Ends a sendFile at its next step (`done` rejects with ECANCELED) and closes its descriptors. */
  sendFileCancel(job: SendFileJob['job']): void;
}

/** writeHashed's commit: link `from` to `to` if the bytes hashed are `digest`, then fsync `dir`. */
export interface WriteCommit {
  digest: string;
  from: string;
  to: string;
  dir: string;
}

declare const sendJobBrand: unique symbol;
export interface SendFileJob {
  done: Promise<number>;
  job: { readonly [sendJobBrand]: true };
}

// dist/src/native/index.js → <repo>/build/Release
const addon = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/berth_native.node');

let loaded: Native | undefined;

export function native(): Native {
  if (!loaded) {
    try {
      loaded = createRequire(import.meta.url)(addon) as Native;
    } catch (err) {
      throw new Error(
        `Berth's native addon (build/Release/berth_native.node) is missing or broken: ${(err as Error).message}. ` +
          'Run bin/berth again or `scripts/install.sh` to build it; building needs make, g++, python3 and Node.js headers (README, "Prerequisites").',
      );
    }
  }
  return loaded;
}

/**
 * Loads every compiled part a server needs before it starts, so that a
 * missing build stops it with one clear message instead of answering 500s:
 * this addon, and the SQLite driver's (better-sqlite3 loads its binary only
 * when a database is first opened).
 */
export async function requireNativeParts(opts: { sqlite: boolean }): Promise<void> {
  native();
  if (!opts.sqlite) return;
  try {
    const Sqlite = (await import('better-sqlite3')).default;
    new Sqlite(':memory:').close();
  } catch (err) {
    throw new Error(
      `the SQLite driver (better-sqlite3) is missing or not built for this Node.js: ${(err as Error).message.split('\n')[0]}. ` +
        'Run bin/berth again or `scripts/install.sh` to build it; building needs make, g++, python3 and Node.js headers (README, "Prerequisites").',
    );
  }
}
