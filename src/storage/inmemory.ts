/** In-memory driver: for tests and throwaway registries (`storage.inmemory`). */
import { Readable } from 'node:stream';
import {
  assertDigestKey,
  assertUploadId,
  BlobNotFoundError,
  UploadNotFoundError,
  type AppendOptions,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type UploadInfo,
} from './driver.js';

export class InMemoryBlobStore implements BlobStore {
  readonly kind = 'inmemory';
  private readonly blobs = new Map<string, Buffer>();
  private readonly written = new Map<string, Date>();
  private readonly uploads = new Map<string, { data: Buffer; modified: Date; committed?: boolean }>();

  async stat(digest: string): Promise<BlobInfo | null> {
    assertDigestKey(digest);
    const data = this.blobs.get(digest);
    return data ? { digest, size: data.byteLength } : null;
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    assertDigestKey(digest);
    const data = this.blobs.get(digest);
    if (!data) throw new BlobNotFoundError(digest);
    const slice = range ? data.subarray(range.offset, range.offset + range.length) : data;
    return Readable.from([slice], { objectMode: false });
  }

  async exists(digest: string): Promise<boolean> {
    return this.existsNow(digest);
  }

  existsNow(digest: string): boolean {
    assertDigestKey(digest);
    return this.blobs.has(digest);
  }

  async delete(digest: string): Promise<boolean> {
    assertDigestKey(digest);
    this.written.delete(digest);
    return this.blobs.delete(digest);
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const [digest, data] of [...this.blobs]) yield { digest, size: data.byteLength, modified: this.written.get(digest) };
  }

  async createUpload(id: string): Promise<void> {
    assertUploadId(id);
    if (this.uploads.has(id)) throw new Error(`upload ${id} exists`);
    this.uploads.set(id, { data: Buffer.alloc(0), modified: new Date() });
  }

  async uploadSize(id: string): Promise<number | null> {
    assertUploadId(id);
    return this.uploads.get(id)?.data.byteLength ?? null;
  }

  private readonly lockedUploads = new Set<string>();

  async lockUpload(id: string): Promise<(() => void) | null> {
    assertUploadId(id);
    if (!this.uploads.has(id)) throw new UploadNotFoundError(id);
    if (this.lockedUploads.has(id)) return null;
    this.lockedUploads.add(id);
    return () => this.lockedUploads.delete(id);
  }

  async appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions = {}): Promise<number> {
    assertUploadId(id);
    const upload = this.uploads.get(id);
    if (!upload || upload.committed) throw new UploadNotFoundError(id);
    const parts: Buffer[] = [upload.data.subarray(0, offset)];
    for await (const chunk of chunks) {
      opts.hash?.update(chunk);
      parts.push(Buffer.from(chunk));
    }
    upload.data = Buffer.concat(parts);
    upload.modified = new Date();
    return upload.data.byteLength;
  }

  async readUpload(id: string): Promise<Readable> {
    assertUploadId(id);
    const upload = this.uploads.get(id);
    if (!upload) throw new UploadNotFoundError(id);
    return Readable.from([upload.data], { objectMode: false });
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    assertUploadId(id);
    assertDigestKey(digest);
    const upload = this.uploads.get(id);
    if (!upload) throw new UploadNotFoundError(id);
    this.blobs.set(digest, upload.data);
    this.written.set(digest, new Date());
    upload.committed = true;
  }

  async deleteUpload(id: string): Promise<void> {
    assertUploadId(id);
    this.uploads.delete(id);
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    for (const [id, u] of [...this.uploads]) yield { id, size: u.data.byteLength, modified: u.modified };
  }
}
