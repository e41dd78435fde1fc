/**
 * The blob-store driver: a small interface over bytes, content-addressed by
 * digest. It knows nothing of repositories, manifests or HTTP. Callers verify
 * digests while streaming and call `commitUpload` only for verified content,
 * so a committed blob is always what its digest says.
 *
 * Uploads in progress live apart from committed content and are addressed
 * by an opaque id; their size on the store is the truth about how many bytes
 * have been received, which is what lets an upload resume after a crash.
 */
import type { Readable } from 'node:stream';

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

export interface BlobStore {
  readonly kind: string;

  /** The size of a committed blob, or null when absent. */
  stat(digest: string): Promise<BlobInfo | null>;
  /** Streams a committed blob, or a range of it. Rejects with BlobNotFoundError. */
  get(digest: string, range?: ByteRange): Promise<Readable>;
  /** Removes a committed blob; true when something was removed. */
  delete(digest: string): Promise<boolean>;
  /** Every committed blob (order unspecified). */
  list(): AsyncIterable<BlobInfo>;
  /** A URL the client may be redirected to for the bytes, when the engine offers one. */
  redirectURL?(digest: string, method: 'GET' | 'HEAD'): Promise<string | null>;

  /** Starts an empty upload. */
  createUpload(id: string): Promise<void>;
  /** Bytes received so far, or null when the upload does not exist. */
  uploadSize(id: string): Promise<number | null>;
  /**
   * Writes `chunks` at `offset`, which must equal the current size (bytes past
   * it, left by a crashed writer, are overwritten). Resolves to the new size.
   */
  appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>): Promise<number>;
  /** Streams what an upload holds (used to re-hash an upload resumed elsewhere). */
  readUpload(id: string): Promise<Readable>;
  /**
   * Makes the upload's bytes visible as `digest`, atomically and durably, and
   * removes the upload. The caller has verified the digest. Committing content
   * that already exists succeeds and leaves one copy.
   */
  commitUpload(id: string, digest: string): Promise<void>;
  /** Removes an upload; removing an absent upload is not an error. */
  deleteUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<UploadInfo>;

  close?(): Promise<void>;
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

// Drivers check keys themselves too: nothing un-validated reaches a path.
const DIGEST_KEY_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;

export function assertDigestKey(digest: string): void {
  if (!DIGEST_KEY_RE.test(digest)) throw new Error(`blob store: refusing malformed digest ${JSON.stringify(digest.slice(0, 200))}`);
}

export function assertUploadId(id: string): void {
  if (!UPLOAD_ID_RE.test(id)) throw new Error(`blob store: refusing malformed upload id ${JSON.stringify(id.slice(0, 200))}`);
}
