/**
 * Filesystem driver. Layout under the root directory:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed content
 *   uploads/<id>                              uploads in progress
 * Appends are pipelined: chunks are gathered into 1 MiB `writev` calls, the
 * next batch is read from the client while the previous one is written, and
 * every 64 MiB (counted across an upload's appends) the data written so far
 * is flushed in the background, so the fsync that ends an upload has little
 * left to do. A commit hard-links the
 * (fsynced) upload into place, atomic on one filesystem, and fsyncs the
 * target directory, so an acknowledged blob survives a crash and a
 * half-written one is never visible.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, createReadStream, fdatasync, fstatSync, fsync, fsyncSync, ftruncateSync, linkSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { native, type WriteCommit } from '../native/index.js';
import {
  assertDigestKey,
  assertUploadId,
  isUploadId,
  BlobNotFoundError,
  UploadNotFoundError,
  type AppendOptions,
  type BlobInfo,
  type BlobReader,
  type BlobStore,
  type ByteRange,
  type UploadHash,
  type UploadInfo,
} from './driver.js';
import type { BlobFile } from './driver.js';

export interface FilesystemOptions {
  rootDirectory: string;
  /** fsync before a commit is acknowledged (default true). */
  fsync?: boolean;
  /** How a directory is flushed (a parameter for tests). */
  syncDir?: (dir: string) => Promise<void>;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

const errorCode = (err: unknown) => (err as NodeJS.ErrnoException)?.code;
const errorSyscall = (err: unknown) => (err as NodeJS.ErrnoException)?.syscall;
const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);

/**
 * An upload's failed fsync is kept, and the file is emptied: on Linux a
 * later fsync of it, through any descriptor and from any thread, may not
 * report the lost writeback again, but a digest check of the emptied file
 * fails, so the bytes can never be committed.
 */
async function recordFailure(sync: UploadSync, fd: number, fsyncing: Promise<void>): Promise<void> {
  try {
    await fsyncing;
  } catch (err) {
    keepFailure(sync, fd, err);
  }
}

/** Keeps a failed flush of the upload open as `fd` and empties the file (see recordFailure); rethrows it. */
function keepFailure(sync: UploadSync, fd: number, err: unknown): never {
  sync.failed ??= err;
  try {
    // Never a committed upload's: the file is a blob's too then (a second link).
    if (fstatSync(fd).nlink === 1) ftruncateSync(fd, 0);
  } catch {
    // the failure is still kept in sync.failed
  }
  throw err;
}

/** Gathered before one write. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** An iovec count comfortably below IOV_MAX, whatever the chunk sizes. */
const WRITE_BATCH_BUFFERS = 256;
/** Flush written data to disk in the background this often, so the final fsync is short. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * What the store knows of an upload's flushing to disk, kept across its
 * appends: a client that sends many small PATCHes still has its bytes
 * flushed every 64 MiB, not all at the commit.
 */
interface UploadSync {
  /** Bytes written since the last flush started. */
  unflushed: number;
  /** A background flush in flight (never rejects: a failure is kept in `failed`). */
  flushing: Promise<void> | null;
  /**
   * A flush failed: the upload's bytes cannot be trusted to be on disk (and
   * on Linux a later fsync through another descriptor may not say so).
   */
  failed: unknown;
  /** The upload's size when every byte of it was last fsynced, if it was. */
  durableSize: number | null;
}

/**
 * Writes an append: one batch in flight while the next is gathered, so the
 * client is read while the disk is written. Memory stays at two batches.
 */
class UploadWriter {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  /** The write in flight; the last one's commit outcome, if it committed. */
  private writing: Promise<string | undefined> = Promise.resolve(undefined);

  /** `sync`: null when fsync is off; `atEnd`: fsync once everything is written; `hash`: fed beside each write. */
  constructor(
    private readonly fd: number,
    public position: number,
    private readonly sync: UploadSync | null,
    private readonly atEnd: boolean,
    private readonly hash: UploadHash | null,
  ) {}

  async add(chunk: Uint8Array): Promise<void> {
    // An empty chunk writes nothing, and would only take a place in the batch's 1024 buffers.
    if (chunk.byteLength === 0) return;
    this.batch.push(chunk);
    this.batchBytes += chunk.byteLength;
    if (this.batchBytes >= WRITE_BATCH_BYTES || this.batch.length >= WRITE_BATCH_BUFFERS) await this.flush();
  }

  /**
   * Writes what is gathered and, with `atEnd`, fsyncs: the position is then
   * on disk. The last batch is written and flushed in one thread-pool job;
   * with `commit`, the same job commits the upload too, and finish says
   * whether it did (see Native.writeHashed).
   */
  async finish(commit?: WriteCommit): Promise<string | undefined> {
    const sync = this.atEnd ? this.sync : null;
    const flushed = await this.flush(sync !== null, commit);
    const outcome = await this.writing;
    if (sync) {
      await sync.flushing;
      if (sync.failed) throw sync.failed;
      if (!flushed) await recordFailure(sync, this.fd, fdatasyncAsync(this.fd));
      sync.durableSize = this.position;
    }
    return outcome;
  }

  /** Waits for the write in flight, ignoring its error (before closing after a failure). */
  async settle(): Promise<void> {
    await this.writing.catch(() => {});
  }

  /**
   * Writes the gathered batch, if any; with `durably`, the same job then
   * fdatasyncs the file, and with `commit` commits it (the caller awaits
   * `writing`). Returns whether it did: false when there was nothing to write.
   */
  private async flush(durably = false, commit?: WriteCommit): Promise<boolean> {
    await this.writing; // a failed write surfaces here
    if (this.batchBytes === 0) return false;
    if (commit && this.sync) {
      // The write just awaited may have started a background flush. If it
      // fails, it may use up the error its writeback reported, and the
      // commit's own fdatasync would not see it again: no commit beside it.
      await this.sync.flushing;
      if (this.sync.failed) throw this.sync.failed;
    }
    const batch = this.batch;
    const bytes = this.batchBytes;
    const at = this.position;
    this.batch = [];
    this.batchBytes = 0;
    this.position += bytes;
    // One batch in flight at a time, so the hash is fed in order.
    const state = this.hash?.state ?? null;
    const written: Promise<string | void> = commit && state ? native().writeHashed(this.fd, batch, at, state, true, commit) : native().writeHashed(this.fd, batch, at, state, durably);
    const sync = this.sync;
    if (durably && sync) {
      // A failed flush is kept and empties the upload, as every failed fsync of it is.
      this.writing = written.then(
        (outcome) => {
          sync.unflushed = 0;
          return outcome || undefined;
        },
        (err: unknown) => {
          if (errorSyscall(err) === 'fdatasync') keepFailure(sync, this.fd, err);
          throw err;
        },
      );
    } else {
      this.writing = written.then(() => {
        this.written(bytes);
        return undefined;
      });
    }
    this.writing.catch(() => {}); // observed by the next flush or finish
    return true;
  }

  private written(bytes: number): void {
    const sync = this.sync;
    if (!sync) return;
    sync.unflushed += bytes;
    if (sync.unflushed < SYNC_EVERY_BYTES || sync.flushing) return;
    sync.unflushed = 0;
    const flushing: Promise<void> = recordFailure(sync, this.fd, fdatasyncAsync(this.fd))
      .catch(() => {}) // kept in sync.failed
      .finally(() => {
        if (sync.flushing === flushing) sync.flushing = null;
      });
    sync.flushing = flushing;
  }
}

export class FilesystemBlobStore implements BlobStore {
  readonly kind = 'filesystem';
  private readonly blobsDir: string;
  private readonly uploadsDir: string;
  private readonly fsync: boolean;
  private readonly syncDir: (dir: string) => Promise<void>;
  private readonly madeDirs = new Set<string>();
  /** Flushing state of the uploads this store instance has appended to. */
  private readonly syncs = new Map<string, UploadSync>();

  constructor(opts: FilesystemOptions) {
    this.blobsDir = path.join(opts.rootDirectory, 'blobs');
    this.uploadsDir = path.join(opts.rootDirectory, 'uploads');
    this.fsync = opts.fsync ?? true;
    this.syncDir = opts.syncDir ?? syncDir;
  }

  // Joined by hand: a checked digest or id has no '/' or '.' segment for path.join to resolve.
  private blobPath(digest: string): string {
    return `${this.blobDir(digest)}/${digest.slice(digest.indexOf(':') + 1)}`;
  }

  /** The directory a blob's file is in (blobs/<algorithm>/<first two hex digits>). */
  private blobDir(digest: string): string {
    assertDigestKey(digest);
    const colon = digest.indexOf(':');
    return `${this.blobsDir}/${digest.slice(0, colon)}/${digest.slice(colon + 1, colon + 3)}`;
  }

  private uploadPath(id: string): string {
    assertUploadId(id);
    return `${this.uploadsDir}/${id}`;
  }

  /**
   * Makes `dir` unless this store made it already; no promise when it did
   * (the upload path calls this for every push). With fsync on, each
   * directory it makes is flushed into its parent, deepest first: the
   * blob's own directory fsync makes its entry durable, not the directory's.
   */
  private ensureDir(dir: string): Promise<void> | undefined {
    if (this.madeDirs.has(dir)) return undefined;
    return mkdir(dir, { recursive: true }).then(async (first) => {
      if (first !== undefined && this.fsync) {
        for (let made = dir; ; made = path.dirname(made)) {
          await this.syncDir(path.dirname(made));
          if (made === first || made === path.dirname(made)) break;
        }
      }
      this.madeDirs.add(dir);
    });
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    try {
      const s = await stat(this.blobPath(digest));
      return { digest, size: s.size };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** The blob's file, open for reading; BlobNotFoundError when there is none. */
  private async openBlob(digest: string): Promise<FileHandle> {
    try {
      return await open(this.blobPath(digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
  }

  /** The blob's file and the bytes a range (or the whole) covers: offset and length. */
  private async openRange(digest: string, range?: ByteRange): Promise<{ fh: FileHandle; offset: number; length: number }> {
    const fh = await this.openBlob(digest);
    const offset = range?.offset ?? 0;
    if (range?.length !== undefined) return { fh, offset, length: range.length };
    try {
      return { fh, offset, length: (await fh.stat()).size - offset };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    const file = this.blobPath(digest);
    // Open first so a missing blob rejects here rather than erroring mid-response.
    const fh = await this.openBlob(digest);
    // 1 MiB reads: fewer, larger socket writes (measured: about a quarter less CPU per GiB pulled than 256 KiB).
    const opts: { fd: typeof fh; start?: number; end?: number; highWaterMark: number } = { fd: fh, highWaterMark: 1024 * 1024 };
    if (range) {
      opts.start = range.offset;
      opts.end = range.offset + range.length - 1;
    }
    return createReadStream(file, opts);
  }

  async exists(digest: string): Promise<boolean> {
    return this.existsNow(digest);
  }

  existsNow(digest: string): boolean {
    // Synchronous on purpose: see BlobStore.exists.
    return statSync(this.blobPath(digest), { throwIfNoEntry: false }) !== undefined;
  }

  async open(digest: string, range?: ByteRange): Promise<BlobReader> {
    const { fh, offset, length } = await this.openRange(digest, range);
    return { pump: (write) => pumpFile(fh, offset, length, write), close: () => fh.close() };
  }

  async openFile(digest: string, range?: ByteRange): Promise<BlobFile> {
    const { fh, offset, length } = await this.openRange(digest, range);
    return { fd: fh.fd, offset, length, close: () => fh.close() };
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await unlink(this.blobPath(digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const algorithm of await readdirOrEmpty(this.blobsDir)) {
      for (const prefix of await readdirOrEmpty(path.join(this.blobsDir, algorithm))) {
        for (const hex of await readdirOrEmpty(path.join(this.blobsDir, algorithm, prefix))) {
          const digest = `${algorithm}:${hex}`;
          if (!/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(digest)) continue;
          try {
            const s = await stat(path.join(this.blobsDir, algorithm, prefix, hex));
            yield { digest, size: s.size, modified: s.mtime };
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
      }
    }
  }

  // The upload path's small metadata calls (open, stat, close, link,
  // unlink) are synchronous: a few microseconds each on a local filesystem,
  // less than a round trip through the thread pool, where they would also
  // queue behind other requests' fsyncs. Data writes and fsyncs stay off
  // this thread.

  async createUpload(id: string): Promise<void> {
    const making = this.ensureDir(this.uploadsDir);
    if (making) await making;
    closeSync(openSync(this.uploadPath(id), 'wx'));
  }

  async uploadSize(id: string): Promise<number | null> {
    return statSync(this.uploadPath(id), { throwIfNoEntry: false })?.size ?? null;
  }

  /** Opens an upload's file; UploadNotFoundError when there is none. */
  private openUpload(id: string, flags: 'r' | 'r+'): number {
    try {
      return openSync(this.uploadPath(id), flags);
    } catch (err) {
      if (isNotFound(err)) throw new UploadNotFoundError(id);
      throw err;
    }
  }

  async appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions = {}): Promise<number> {
    return (await this.append(id, offset, chunks, opts)).size;
  }

  /**
   * The last append of an upload, committed as `digest` in the same job
   * as its write and flush when its running hash matches (nothing is linked
   * when it does not). When that job cannot commit (fsync off, nothing left
   * to write, a directory to make or another filesystem), `committed` is
   * false and commitUpload does it as usual.
   */
  async appendAndCommit(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, digest: string, hash: UploadHash): Promise<{ size: number; committed: boolean }> {
    let commit: WriteCommit | undefined;
    // The job flushes before it links: with fsync off there is no such job.
    if (this.fsync && digest.startsWith('sha256:')) {
      const dir = this.blobDir(digest);
      const hex = digest.slice('sha256:'.length);
      // Made here, on this thread, once per directory: the job only links.
      const making = this.ensureDir(dir);
      if (making) await making;
      commit = { digest: hex, from: this.uploadPath(id), to: `${dir}/${hex}`, dir };
    }
    const { size, outcome } = await this.append(id, offset, chunks, { durable: true, hash }, commit);
    return { size, committed: outcome === 'linked' };
  }

  private async append(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions, commit?: WriteCommit): Promise<{ size: number; outcome?: string }> {
    const fd = this.openUpload(id, 'r+');
    // A chunk in the middle of an upload need not reach the disk before it is
    // acknowledged: the commit flushes it, and after a crash the upload's
    // size on disk is what a client resumes from.
    const durable = this.fsync && opts.durable === true;
    const sync = this.fsync ? this.syncState(id) : null;
    const writer = new UploadWriter(fd, offset, sync, durable, opts.hash ?? null);
    let outcome: string | undefined;
    try {
      const file = fstatSync(fd);
      // Committed: the file is also a blob now (hard-linked), and must not change.
      if (file.nlink > 1) throw new UploadNotFoundError(id);
      // A crashed writer may have left bytes past `offset`; they are replaced.
      if (file.size > offset) ftruncateSync(fd, offset);
      for await (const chunk of chunks) await writer.add(chunk);
      outcome = await writer.finish(commit);
    } catch (err) {
      await writer.settle();
      throw err;
    } finally {
      // A background flush may outlive the append (the client sends its next
      // chunk meanwhile); the file is closed when the flush ends.
      const flushing = sync?.flushing;
      if (flushing) void flushing.then(() => closeSync(fd)).catch(() => {});
      else closeSync(fd);
    }
    return { size: writer.position, outcome };
  }

  async lockUpload(id: string): Promise<(() => void) | null> {
    const fd = this.openUpload(id, 'r');
    let locked = false;
    try {
      locked = native().tryLock(fd);
    } finally {
      if (!locked) closeSync(fd);
    }
    // Closing the descriptor releases the lock.
    return locked ? () => closeSync(fd) : null;
  }

  private syncState(id: string): UploadSync {
    let sync = this.syncs.get(id);
    if (!sync) {
      // Forgetting an abandoned upload's state costs only an fsync at its commit.
      if (this.syncs.size >= 10_000) this.syncs.delete(this.syncs.keys().next().value!);
      sync = { unflushed: 0, flushing: null, failed: undefined, durableSize: null };
      this.syncs.set(id, sync);
    }
    return sync;
  }

  async readUpload(id: string): Promise<Readable> {
    const file = this.uploadPath(id);
    try {
      const fh = await open(file, 'r');
      return createReadStream(file, { fd: fh, highWaterMark: 256 * 1024 });
    } catch (err) {
      if (isNotFound(err)) throw new UploadNotFoundError(id);
      throw err;
    }
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    const source = this.uploadPath(id);
    const target = this.blobPath(digest);
    const sync = this.syncs.get(id);
    await sync?.flushing;
    if (sync?.failed) throw sync.failed;
    const size = statSync(source, { throwIfNoEntry: false })?.size;
    if (size === undefined) throw new UploadNotFoundError(id);
    // The fsync is skipped only when this thread's last append fsynced every byte there is.
    if (this.fsync && sync?.durableSize !== size) {
      const fd = openSync(source, 'r+');
      try {
        await recordFailure(this.syncState(id), fd, fsyncAsync(fd));
      } finally {
        closeSync(fd);
      }
    }
    const dir = this.blobDir(digest);
    await this.ensureDir(dir);
    try {
      place(source, target);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // The directory may have been removed under us (e.g. by a collector); retry once.
      this.madeDirs.delete(dir);
      await this.ensureDir(dir);
      try {
        place(source, target);
      } catch (err2) {
        if (isNotFound(err2)) throw new UploadNotFoundError(id);
        throw err2;
      }
    }
    if (this.fsync) await this.syncDir(dir);
  }

  async deleteUpload(id: string): Promise<void> {
    this.syncs.delete(id);
    try {
      unlinkSync(this.uploadPath(id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    for (const id of await readdirOrEmpty(this.uploadsDir)) {
      // Not an upload of ours (an NFS .nfsXXXX file, say): left alone.
      if (!isUploadId(id)) continue;
      try {
        const s = await stat(path.join(this.uploadsDir, id));
        yield { id, size: s.size, modified: s.mtime };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}

/** Buffers for pumping files out, kept between reads: no allocation (and no garbage) per chunk. */
const READ_CHUNK_BYTES = 1024 * 1024;
const spareReadBuffers: Buffer[] = [];
const MAX_SPARE_READ_BUFFERS = 8;

/**
 * Reads `length` bytes from `start` into two buffers in turn: one is read
 * into while the other is being written out, and each is refilled only once
 * its write has resolved.
 */
async function pumpFile(fh: FileHandle, start: number, length: number, write: (chunk: Uint8Array) => Promise<void>): Promise<void> {
  const buffers = [spareReadBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK_BYTES), spareReadBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK_BYTES)];
  const writes: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let position = start;
  let remaining = length;
  let turn = 0;
  try {
    while (remaining > 0) {
      await writes[turn]; // this buffer's previous chunk is out
      const buffer = buffers[turn]!;
      const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.byteLength, remaining), position);
      if (bytesRead === 0) throw new Error(`blob file ended ${remaining} bytes early`);
      position += bytesRead;
      remaining -= bytesRead;
      const written = write(buffer.subarray(0, bytesRead));
      written.catch(() => {}); // observed when this buffer's turn comes again, or below
      writes[turn] = written;
      turn ^= 1;
    }
    await Promise.all(writes);
  } finally {
    const settled = await Promise.allSettled(writes);
    // A buffer whose write failed may still be referenced by the failed socket: let it go.
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled' && spareReadBuffers.length < MAX_SPARE_READ_BUFFERS) spareReadBuffers.push(buffers[i]!);
    });
    await fh.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * Hard-links the upload into place, keeping the upload for a repeated commit.
 * Content already in place is the same bytes, since the name is their
 * digest, unless a crash (with fsync off) or a fault left a file of another
 * size there: that one is replaced with the verified upload, through a
 * temporary name renamed over it. Where hard links are not supported, the
 * upload is copied (to a temporary name beside the target, flushed, then
 * renamed into place), never renamed: the upload must stay until the blob's
 * claim commits, since the claim commits again from it when a garbage
 * collection removed the bytes in between.
 * `link` is the hard-link call (a parameter for tests).
 */
export function place(source: string, target: string, link: (source: string, target: string) => void = linkSync): void {
  try {
    link(source, target);
    return;
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') return placeWithoutLink(source, target, err);
    if (statSync(target).size === statSync(source).size) return;
  }
  // Not a digest-shaped name: list() passes it by, and a crash leaves it to nothing but disk space.
  const temp = tempBeside(target);
  try {
    link(source, temp);
  } catch (err) {
    return placeWithoutLink(source, target, err);
  }
  renamed(temp, target);
}

function tempBeside(target: string): string {
  return `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Renames `temp` over `target`; `temp` is removed if that fails. */
function renamed(temp: string, target: string): void {
  try {
    renameSync(temp, target);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
    throw err;
  }
}

/** After `link` failed with `err`: a copy where the filesystem refuses hard links, `err` otherwise. */
function placeWithoutLink(source: string, target: string, err: unknown): void {
  const code = errorCode(err);
  if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
  const temp = tempBeside(target);
  try {
    copyFileSync(source, temp);
    const fd = openSync(temp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (copyErr) {
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
    throw copyErr;
  }
  renamed(temp, target);
}

async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}
