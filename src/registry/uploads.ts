/**
 * Blob upload sessions (OCI dist-spec "Pushing blobs"). A session is its
 * upload in the blob store, named by an id that binds it to its repository:
 * 16 random bytes and a hash of them with the repository's name. So a
 * session survives a restart, can be continued by any thread or replica,
 * belongs to the repository it was started in, and costs the database
 * nothing until the blob is claimed. (No key is needed: the server picks
 * every id, and an id names a file only for the repository its hash names.)
 *
 * Hashing is done while the bytes stream in: the store feeds the running
 * sha256 as it writes (on the thread pool, for the filesystem). The running
 * hash is kept in this thread only as long as the chain of appends is
 * unbroken; when it is not (restart, another thread or replica, sha512
 * requested), the upload is re-read once at commit time.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BlobStore } from '../storage/index.js';
import { UploadHash, UploadNotFoundError } from '../storage/index.js';
import { RepositoryDeletedError, type MetadataStore } from '../metadata/index.js';
import { digestStream } from './digest.js';
import { RegistryError } from './errors.js';
import { parseDigest } from './reference.js';

export interface UploadState {
  id: string;
  repository: string;
  /** Bytes received so far. */
  size: number;
}

/** `Content-Range: <start>-<end>` of a PATCH, inclusive. */
export interface ChunkRange {
  start: number;
  end: number;
}

interface RunningHash {
  hash: UploadHash;
  offset: number;
}

const MAX_RUNNING_HASHES = 10_000;
/** base64url of 16 random bytes (22 characters), then of the first 16 bytes of their hash with the repository (22). */
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{44}$/;

export class Uploads {
  private readonly running = new Map<string, RunningHash>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly store: BlobStore,
  ) {}

  async start(repository: string): Promise<UploadState> {
    // The nonce begins with the start time on the database's clock (48 bits
    // of ms): an upload older than its repository's last delete belonged to
    // the deleted repository and must not bring it back.
    const nonce = Buffer.concat([Buffer.alloc(6), randomBytes(10)]);
    nonce.writeUIntBE(Math.max(0, Math.min(2 ** 48 - 1, await this.meta.clock())), 0, 6);
    const id = nonce.toString('base64url') + tag(repository, nonce);
    await this.store.createUpload(id);
    this.remember(id, { hash: new UploadHash(), offset: 0 });
    return { id, repository, size: 0 };
  }

  /** Whether `id` is an id `start` gave out for `repository`. */
  private owns(repository: string, id: string): boolean {
    if (!UPLOAD_ID_RE.test(id)) return false;
    const nonce = Buffer.from(id.slice(0, 22), 'base64url');
    return nonce.byteLength === 16 && id.slice(22) === tag(repository, nonce);
  }

  async status(repository: string, id: string): Promise<UploadState> {
    // An upload belongs to the repository it was started in.
    if (!this.owns(repository, id)) throw unknownUpload(id);
    const size = await this.store.uploadSize(id);
    if (size === null) throw unknownUpload(id);
    return { id, repository, size };
  }

  /** Appends a chunk (PATCH). A range that does not start at the current size is refused with 416. */
  async append(repository: string, id: string, body: AsyncIterable<Uint8Array>, range?: ChunkRange, length?: number): Promise<UploadState> {
    // The append moves the upload's modification time: upload purging sees it active.
    return this.exclusive(id, async () => (await this.appendLocked(await this.status(repository, id), body, range, length)).state);
  }

  /**
   * `last`: the final chunk, written durably since the commit follows, with
   * the digest the client named: a store that can commits it in the same
   * step when the running hash matches (`committed`).
   */
  private async appendLocked(
    state: UploadState,
    body: AsyncIterable<Uint8Array>,
    range: ChunkRange | undefined,
    length: number | undefined,
    last?: { digest: string },
  ): Promise<{ state: UploadState; committed: boolean }> {
    const { id } = state;
    if (range) {
      if (range.start !== state.size || range.end < range.start - 1) throw rangeError(state, `chunk starts at ${range.start} but the upload holds ${state.size} bytes`);
      if (length !== undefined && range.end - range.start + 1 !== length) {
        throw rangeError(state, `Content-Range ${range.start}-${range.end} does not match Content-Length ${length}`);
      }
    }
    let running = this.running.get(id);
    if (running && running.offset !== state.size) running = undefined;
    // A fresh (or reset) upload can start a running hash at any process.
    if (!running && state.size === 0) running = { hash: new UploadHash(), offset: 0 };
    this.running.delete(id); // re-added only if the append completes
    let size: number;
    let committed = false;
    if (last && running && this.store.appendAndCommit) {
      ({ size, committed } = await this.store.appendAndCommit(id, state.size, body, last.digest, running.hash));
    } else {
      size = await this.store.appendUpload(id, state.size, body, { durable: last !== undefined, hash: running?.hash });
    }
    if (running) this.remember(id, { hash: running.hash, offset: size });
    // Committed or not, a body shorter than announced is refused (its bytes, if linked, are the digest's own).
    // A store appends every byte it reads, so what it received is what the upload grew by.
    const received = size - state.size;
    if (length !== undefined && received !== length) {
      throw new RegistryError('SIZE_INVALID', `received ${received} bytes but Content-Length was ${length}`);
    }
    return { state: { ...state, size }, committed };
  }

  /**
   * Completes an upload (PUT ?digest=), optionally with a last chunk, and
   * makes the blob visible only if its content matches `digest`.
   */
  async finish(repository: string, id: string, digest: string, body?: AsyncIterable<Uint8Array>, range?: ChunkRange, length?: number): Promise<{ digest: string; size: number }> {
    const { algorithm } = parseDigest(digest);
    return this.exclusive(id, async () => {
      let state = await this.status(repository, id);
      let committed = false;
      if (body) ({ state, committed } = await this.appendLocked(state, body, range, length, { digest }));
      const running = this.running.get(id);
      this.running.delete(id);
      let actual: string;
      if (committed) {
        actual = digest; // the store linked it only once the running hash matched
      } else if (running && running.offset === state.size && algorithm === 'sha256') {
        actual = running.hash.digest();
      } else {
        actual = (await digestStream(await this.store.readUpload(id), algorithm)).digest;
      }
      if (actual !== digest) {
        // As distribution does: a failed verification cancels the upload.
        await this.discard(id);
        throw new RegistryError('DIGEST_INVALID', `provided digest ${digest} did not match uploaded content (${actual})`, { digest, actual });
      }
      const startedAt = startTime(id);
      try {
        if (this.store.existsNow) await this.claimLocal(repository, id, digest, state.size, startedAt, committed);
        else await this.claimRemote(repository, id, digest, state.size, startedAt);
      } catch (err) {
        if (!(err instanceof RepositoryDeletedError)) throw err;
        // The repository was deleted while this upload went on: the upload went with it.
        await this.discard(id);
        throw unknownUpload(id);
      }
      await this.store.deleteUpload(id);
      return { digest, size: state.size };
    });
  }

  /**
   * Commits and links a verified upload on a store that can tell, on this
   * thread, whether a blob is present (the filesystem). The bytes go into
   * place (and to disk) first, outside the database's write lock, so
   * concurrent pushes fsync in parallel. The claim then records and links
   * the blob under its lock; if a garbage collection removed the bytes in
   * between, they are put back from the upload, which stays until the claim
   * has committed.
   */
  private async claimLocal(repository: string, id: string, digest: string, size: number, startedAt: number, committed: boolean): Promise<void> {
    const store = this.store;
    if (!committed) await store.commitUpload(id, digest);
    const linked = await this.meta.registry.claimLinkNow(repository, digest, size, () => store.existsNow!(digest), startedAt);
    if (linked === true) return;
    // No synchronous path (PostgreSQL), or the bytes were gone.
    await this.meta.registry.claimBlob(
      digest,
      size,
      async (trx) => {
        if (!(await store.exists(digest))) await store.commitUpload(id, digest);
        await this.meta.registry.linkUploadInTransaction(trx, repository, digest, startedAt);
      },
      { repository },
    );
  }

  /**
   * The same for a store whose every check is a network call (an object
   * store): no store I/O may run inside a transaction. The blob is reserved
   * first (recorded live, so no collection marks it), its bytes are
   * committed, and the linking claim checks, in the database only, that the
   * reservation still stands; if a collection took the blob in between
   * (possible only once the grace period has passed), the round is repeated.
   */
  private async claimRemote(repository: string, id: string, digest: string, size: number, startedAt: number): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const generation = await this.meta.registry.reserveBlob(digest, size);
      await this.store.commitUpload(id, digest);
      const linked = await this.meta.registry.claimBlob(
        digest,
        size,
        async (trx) => {
          await this.meta.registry.linkUploadInTransaction(trx, repository, digest, startedAt);
          return true;
        },
        { repository, onlyIf: (trx) => this.meta.registry.stillReserved(trx, digest, generation) },
      );
      if (linked) return;
    }
    throw new Error(`blob ${digest}: its bytes were collected five times while being pushed`);
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.exclusive(id, async () => {
      await this.status(repository, id);
      await this.discard(id);
    });
  }

  /**
   * Cancels the uploads started in `repository` (when it is deleted), best
   * effort: one being written to right now is left to finish or be purged.
   */
  async cancelAll(repository: string): Promise<number> {
    let cancelled = 0;
    for await (const upload of this.store.listUploads()) {
      if (!this.owns(repository, upload.id)) continue;
      try {
        await this.exclusive(upload.id, () => this.discard(upload.id));
        cancelled++;
      } catch {
        // busy, or gone meanwhile
      }
    }
    return cancelled;
  }

  /** A whole blob in one request (POST ?digest= or PUT after POST). */
  async putWhole(repository: string, digest: string, body: AsyncIterable<Uint8Array>, length?: number): Promise<{ digest: string; size: number }> {
    parseDigest(digest);
    const { id } = await this.start(repository);
    try {
      return await this.finish(repository, id, digest, body, undefined, length);
    } catch (err) {
      await this.discard(id).catch(() => {});
      throw err;
    }
  }

  private async discard(id: string): Promise<void> {
    this.running.delete(id);
    await this.store.deleteUpload(id);
  }

  private remember(id: string, r: RunningHash): void {
    if (this.running.size >= MAX_RUNNING_HASHES) {
      const oldest = this.running.keys().next().value;
      if (oldest !== undefined) this.running.delete(oldest);
    }
    this.running.set(id, r);
  }

  /**
   * Serialises work on one upload: queued within this thread, and held
   * against other threads, processes and replicas by the store's lock, so
   * the bytes hashed are the bytes committed.
   */
  private async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!UPLOAD_ID_RE.test(id)) throw unknownUpload(id);
    const locked = async (): Promise<T> => {
      const release = await this.store.lockUpload(id);
      // OCI dist-spec: chunks are sent one after another; a second request writing at once is refused.
      if (!release) throw new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload; send the next chunk when it has finished', { uuid: id }, { status: 409 });
      try {
        return await fn();
      } finally {
        // Released before the answer: the client's next chunk may go to another replica at once.
        await release();
      }
    };
    const previous = this.locks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(locked);
    this.locks.set(id, next);
    try {
      return await next;
    } catch (err) {
      // The store lost the upload (cancelled, purged, committed) somewhere in fn: one answer for all.
      if (err instanceof UploadNotFoundError) throw unknownUpload(id);
      throw err;
    } finally {
      if (this.locks.get(id) === next) this.locks.delete(id);
    }
  }
}

/** The part of an upload id that binds its random bytes to the repository. */
/** When an upload was started (database clock, ms), from its id. */
function startTime(id: string): number {
  return Buffer.from(id.slice(0, 22), 'base64url').readUIntBE(0, 6);
}

function tag(repository: string, nonce: Uint8Array): string {
  return createHash('sha256').update('berth upload\0').update(repository).update('\0').update(nonce).digest().subarray(0, 16).toString('base64url');
}

function unknownUpload(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid: id.slice(0, 128) });
}

function rangeError(state: UploadState, message: string): RegistryError {
  // OCI dist-spec: an out-of-order chunk gets 416 with the current Range; the
  // code is the spec table's BLOB_UPLOAD_INVALID (distribution's RANGE_INVALID is not in it).
  return new RegistryError('BLOB_UPLOAD_INVALID', message, { uploaded: state.size }, {
    status: 416,
    headers: { Range: `0-${Math.max(0, state.size - 1)}`, 'Docker-Upload-UUID': state.id },
  });
}
