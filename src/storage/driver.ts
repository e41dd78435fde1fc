/**
 * The blob-store driver: a small interface over bytes, content-addressed by
 * digest. It knows nothing of repositories, manifests or HTTP. Callers verify
 * digests while streaming and call `commitUpload` only for verified content,
 * so a committed blob is always what its digest says.
 *
 * Uploads in progress live apart from committed content and are addressed
 * by an opaque id; their size on the store is the truth about how many bytes
 * have been received, which is what lets an upload resume after a crash, in
 * another process or on another replica. A driver may keep an upload in any
 * shape (one file; objects of their own per append, joined at commit) as
 * long as that shape can be found again from the id alone.
 *
 * Two kinds of store meet this contract, told apart by `existsNow`:
 * - local stores (filesystem, in-memory) answer presence on this thread; the
 *   registry asks them inside its metadata transactions;
 * - remote stores (S3, Azure) pay a network round trip for every call, so
 *   the registry never calls them inside a transaction: it reserves the blob
 *   in the database, does the store I/O, then links with a database-only
 *   check (see Uploads.claimRemote). Their `exists` is for use outside
 *   transactions only.
 */
import type { Readable } from 'node:stream';
import { native, type Sha256State } from '../native/index.js';

export interface BlobInfo {
  digest: string;
  size: number;
  /** When the bytes were written, where the engine knows (list() sets it). */
  modified?: Date;
}

export interface UploadInfo {
  id: string;
  size: number;
  modified: Date;
}

/** A byte range: `offset` inclusive, `length` bytes. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * A running sha256 of an upload, fed by the store with the bytes it
 * appends. The filesystem store feeds it on the thread pool beside the
 * write, so hashing does not hold up the thread that reads the client.
 */
export class UploadHash {
  readonly state: Sha256State = native().sha256Create();

  update(bytes: Uint8Array): void {
    native().sha256Update(this.state, bytes);
  }

  /** `sha256:<hex>` of everything fed so far. */
  digest(): string {
    return `sha256:${native().sha256Digest(this.state)}`;
  }
}

export interface AppendOptions {
  durable?: boolean;
  hash?: UploadHash;
}

export interface BlobStore {
  readonly kind: string;

  /** The size of a committed blob, or null when absent. */
  stat(digest: string): Promise<BlobInfo | null>;
  /**
   * Whether a committed blob is present. On a local store (one with
   * `existsNow`) it is called inside the metadata write transaction that
   * records a push, so it must be cheap there: the filesystem driver answers
   * with one synchronous stat. On a remote store it is a network call and is
   * never made inside a transaction.
   */
  exists(digest: string): Promise<boolean>;
  /**
   * `exists`, answered at once on this thread (a local stat). A driver that
   * has it lets a push's claim run as one synchronous transaction (see
   * RegistryQueries.claimLinkNow); one whose check is a network call leaves
   * it out, and the registry then takes the reserve / write / link path.
   */
  existsNow?(digest: string): boolean;
  /**
   * Stores small content the caller has verified (a manifest) as a committed
   * blob in one step, visible only once whole. Optional: without it, the
   * registry stages an upload and commits it.
   */
  writeBlob?(digest: string, bytes: Uint8Array): Promise<void>;
  /** Streams a committed blob, or a range of it. Rejects with BlobNotFoundError. */
  get(digest: string, range?: ByteRange): Promise<Readable>;
  /** Removes a committed blob; true when something was removed. */
  delete(digest: string): Promise<boolean>;
  /** Every committed blob (order unspecified). */
  list(): AsyncIterable<BlobInfo>;
  /**
   * Opens a committed blob (or a range) for `BlobReader.pump`, which reuses
   * its buffers instead of allocating one per chunk. Optional: `openReader`
   * (below) falls back to `get`. Rejects with BlobNotFoundError.
   */
  open?(digest: string, range?: ByteRange): Promise<BlobReader>;
  /**
   * A committed blob (or a range) as an open local file, for sending with
   * sendfile(2). Optional: only a driver whose bytes are local files has it.
   * Rejects with BlobNotFoundError.
   */
  openFile?(digest: string, range?: ByteRange): Promise<BlobFile>;
  /** A URL the client may be redirected to for the bytes, when the engine offers one. */
  redirectURL?(digest: string, method: 'GET' | 'HEAD'): Promise<string | null>;

  /** Starts an empty upload. */
  createUpload(id: string): Promise<void>;
  /** Bytes received so far, or null when the upload does not exist. */
  uploadSize(id: string): Promise<number | null>;
  /**
   * Writes `chunks` at `offset`, which must not pass the current size (bytes
   * past it, left by a crashed writer or a retried chunk, are replaced).
   * Resolves to the new size once the bytes are stored where another process
   * will find them. The driver may buffer within one call (an object store
   * gathers parts of its engine's minimum size; a call's bytes may become an
   * object of their own, joined to the others at commit), so chunks of any
   * size, down to one byte, are accepted.
   * Rejects with UploadNotFoundError once the upload has been committed: its
   * bytes may already be a blob's.
   * `durable`: the bytes are on disk when it resolves (for the last chunk of
   * an upload, so the commit need not flush them again). `hash`: fed with
   * the chunks in order (if the append fails, its state is undefined).
   */
  appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts?: AppendOptions): Promise<number>;
  /**
   * Optional: an upload's last append (durable, fed to `hash`), and its
   * commit as `digest` in the same step when `hash` then says the upload is
   * `digest`; nothing is committed when it is not. `committed` false leaves
   * the commit to commitUpload. Only where a commit is cheap to do there
   * (the filesystem: one trip through the thread pool for the write, its
   * flush, the link and the directory's flush).
   */
  appendAndCommit?(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, digest: string, hash: UploadHash): Promise<{ size: number; committed: boolean }>;
  /**
   * Holds an upload against every other writer (another thread, process or
   * replica) until the returned release is called; null when another holds
   * it. Appends and the commit run under it, so the bytes that were hashed
   * are the bytes that are committed. Rejects with UploadNotFoundError.
   * A local store holds a lock (flock); an object store, which has none,
   * records a lease with an expiry beside the upload, which a writer that
   * died cannot keep beyond that expiry; its release is a write, so it
   * returns a promise, awaited before the request is answered.
   */
  lockUpload(id: string): Promise<(() => void | Promise<void>) | null>;
  /** Streams what an upload holds (used to re-hash an upload resumed elsewhere). */
  readUpload(id: string): Promise<Readable>;
  /**
   * Makes the upload's bytes visible as `digest`, atomically and durably
   * (a hard link; a completed multipart upload or server-side copy): a
   * commit that fails leaves nothing visible under `digest`. The
   * upload itself stays until `deleteUpload`, so a commit can be repeated if
   * a garbage collection removed the blob in between. The caller has verified
   * the digest. Committing content that already exists succeeds and leaves
   * one copy. It is store I/O: the registry calls it outside its metadata
   * transactions, except on a local store where it puts back bytes a
   * collection removed.
   */
  commitUpload(id: string, digest: string): Promise<void>;
  /** Removes an upload; removing an absent upload is not an error. */
  deleteUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<UploadInfo>;

  close?(): Promise<void>;
}

/** An opened blob: its bytes, handed out in order. */
export interface BlobReader {
  /**
   * Calls `write` with each chunk in turn. A chunk's buffer may be refilled
   * once the promise `write` returned resolves, so `write` must resolve only
   * when it no longer needs the bytes. Closes the reader when done.
   */
  pump(write: (chunk: Uint8Array) => Promise<void>): Promise<void>;
  /** Closes a reader whose bytes are not wanted after all. */
  close(): Promise<void>;
}

/** A blob's bytes in a local file: `length` bytes from `offset` of the open descriptor `fd`. */
export interface BlobFile {
  fd: number;
  offset: number;
  length: number;
  close(): Promise<void>;
}

/** A store's `open`, or a reader over its `get` stream where it has none. */
export async function openReader(store: BlobStore, digest: string, range?: ByteRange): Promise<BlobReader> {
  if (store.open) return store.open(digest, range);
  const stream = await store.get(digest, range);
  return {
    async pump(write) {
      for await (const chunk of stream) await write(chunk as Uint8Array);
    },
    async close() {
      stream.destroy();
    },
  };
}

export class BlobNotFoundError extends Error {
  constructor(readonly digest: string) {
    super(`blob not found: ${digest}`);
    this.name = 'BlobNotFoundError';
  }
}

export class UploadNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`upload not found: ${id}`);
    this.name = 'UploadNotFoundError';
  }
}

export class UploadOffsetError extends Error {
  constructor(readonly id: string, readonly expected: number, readonly given: number) {
    super(`upload ${id} is at offset ${expected}, not ${given}`);
    this.name = 'UploadOffsetError';
  }
}

/**
 * The bytes of `chunks` regathered as parts of exactly `size` bytes (the
 * last may be shorter; none is empty), each a buffer of its own that the
 * consumer may keep while it sends it. One part is filled at a time, and
 * the next chunk is read only when the consumer asks for the next part, so
 * memory stays at the part being sent and the part being filled. `seen` is
 * called with every chunk as it is read (a running hash).
 */
export async function* fixedSizeParts(chunks: AsyncIterable<Uint8Array>, size: number, seen?: (chunk: Uint8Array) => void): AsyncGenerator<Buffer> {
  let part = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of chunks) {
    seen?.(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - at, size - filled);
      part.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === size) {
        yield part;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}

// Drivers check keys themselves too: nothing un-validated reaches a path.
const DIGEST_KEY_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;

export function assertDigestKey(digest: string): void {
  if (!DIGEST_KEY_RE.test(digest)) throw new Error(`blob store: refusing malformed digest ${JSON.stringify(digest.slice(0, 200))}`);
}

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_RE.test(id);
}

export function assertUploadId(id: string): void {
  if (!UPLOAD_ID_RE.test(id)) throw new Error(`blob store: refusing malformed upload id ${JSON.stringify(id.slice(0, 200))}`);
}
