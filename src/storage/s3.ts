/**
 * S3 driver (storage.s3), with the AWS SDK v3. Layout under the bucket's
 * `rootdirectory`:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed content
 *   uploads/<id>/state                        an upload's state (JSON)
 *   uploads/<id>/<random>                     its segments, one per append
 *
 * Clients send chunks of any size (often far below S3's 5 MiB part
 * minimum), and any replica may receive the next one. So each append becomes
 * an object of its own (a segment: one PutObject, or a multipart upload of
 * `chunksize` parts when the append is larger than that), and the upload's
 * state object lists the segments in order. The state is read by key, never
 * by listing, so a listing that lags behind (Swift's container listings,
 * eventually consistent) cannot lose a segment; a segment no state names
 * (a writer died before recording it) is removed with the upload.
 *
 * The commit joins the segments into the blob's key in one multipart upload:
 * segments of 5 MiB or more are copied server-side (UploadPartCopy), smaller
 * ones are read and gathered into parts. Completing the multipart upload (or
 * a single CopyObject) is atomic, and a failed commit aborts it: nothing is
 * visible under the digest until the whole blob is. Memory stays at two
 * parts per append and one per commit, whatever the blob's size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent as HttpsAgent } from 'node:https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3ClientConfig,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  assertDigestKey,
  assertUploadId,
  fixedSizeParts,
  isUploadId,
  BlobNotFoundError,
  UploadNotFoundError,
  UploadOffsetError,
  type AppendOptions,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type UploadInfo,
} from './driver.js';

/** storage.s3, as distribution names its keys (parsed by the config loader). */
export interface S3Options {
  bucket: string;
  region: string;
  /** regionendpoint: an S3-compatible endpoint (Swift, MinIO, Ceph…); unset for AWS. */
  endpoint?: string;
  accessKey?: string;
  secretKey?: string;
  /** sessiontoken, with accesskey and secretkey. */
  sessionToken?: string;
  rootDirectory?: string;
  forcePathStyle?: boolean;
  /** secure: https to an endpoint given without a scheme (default true). */
  secure?: boolean;
  /** skipverify: accept any TLS certificate (a test engine). */
  skipVerify?: boolean;
  /** Part size for appends larger than it (default 10 MiB, at least 5 MiB). */
  chunkSize?: number;
  /** Blobs at least this big are copied by parts, not one CopyObject (default 32 MiB). */
  multipartCopyThresholdSize?: number;
  /** Size of the parts such a copy is made of (default 32 MiB). */
  multipartCopyChunkSize?: number;
  /** Parts of such a copy in flight at once (default 10). */
  multipartCopyMaxConcurrency?: number;
  /** storageclass (default STANDARD; NONE sends none, for engines that know no classes). */
  storageClass?: string;
  /** encrypt: server-side encryption (AES256, or aws:kms with keyid). */
  encrypt?: boolean;
  keyId?: string;
  /** Presigned URLs for blob downloads (storage.redirect.disable false); their lifetime. */
  redirect?: boolean;
  redirectExpirySeconds?: number;
  /** Upload lease lifetime in ms (default 60 s), renewed while an append runs. */
  leaseMs?: number;
  /** For tests: a client built elsewhere (e.g. with middleware that delays listings). */
  client?: S3Client;
}

/** S3's smallest part, except the last. */
export const MIN_PART = 5 * 1024 * 1024;
const MIB = 1024 * 1024;

interface Segment {
  key: string;
  /** Bytes of the object that belong to the upload (a later append at an earlier offset cuts a segment short). */
  length: number;
}

interface UploadStateDoc {
  size: number;
  segments: Segment[];
  /** Who holds the upload now (lockUpload), until when (ms since the epoch). */
  lease?: { owner: string; until: number };
  committed?: boolean;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** The driver's S3 client: Swift's s3api and other engines that refuse the SDK's newer defaults are served as AWS is. */
export function createS3Client(opts: S3Options): S3Client {
  let endpoint = opts.endpoint;
  if (endpoint && !/^https?:\/\//.test(endpoint)) endpoint = `${opts.secure === false ? 'http' : 'https'}://${endpoint}`;
  const config: S3ClientConfig = {
    region: opts.region,
    endpoint,
    forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
    // Checksums only where an operation requires one: the default (aws-chunked
    // streaming with CRC32 trailers) is refused by Swift and other engines.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Without keys, the SDK's default chain (environment, profile, instance role…).
    credentials: opts.accessKey && opts.secretKey ? { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey, sessionToken: opts.sessionToken } : undefined,
  };
  if (opts.skipVerify) config.requestHandler = { httpsAgent: new HttpsAgent({ rejectUnauthorized: false }) };
  const client = new S3Client(config);
  // Swift answers DeleteObjects only with a Content-MD5 header (the SDK now sends a CRC32 instead).
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (context.commandName === 'DeleteObjectsCommand' && request.headers && typeof request.body === 'string') {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: 'berthContentMd5', priority: 'high' },
  );
  return client;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly root: string;
  private readonly chunkSize: number;
  private readonly copyThreshold: number;
  private readonly copyChunk: number;
  private readonly copyConcurrency: number;
  private readonly storageClass: StorageClass | undefined;
  private readonly encryption: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
  private readonly redirect: boolean;
  private readonly redirectExpiry: number;
  private readonly leaseMs: number;
  /**
   * Uploads this process holds the lease of, with the state it last read or
   * wrote: while the lease holds, nobody else writes that state, so it is
   * not read again (three fewer round trips per chunk).
   */
  private readonly held = new Map<string, { lease: { owner: string; until: number }; doc: UploadStateDoc }>();

  constructor(opts: S3Options) {
    this.client = opts.client ?? createS3Client(opts);
    this.bucket = opts.bucket;
    const root = (opts.rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.root = root ? `${root}/` : '';
    this.chunkSize = Math.max(MIN_PART, opts.chunkSize ?? 10 * MIB);
    this.copyThreshold = opts.multipartCopyThresholdSize ?? 32 * MIB;
    this.copyChunk = Math.max(MIN_PART, opts.multipartCopyChunkSize ?? 32 * MIB);
    this.copyConcurrency = Math.max(1, opts.multipartCopyMaxConcurrency ?? 10);
    const sc = opts.storageClass ?? 'STANDARD';
    this.storageClass = sc.toUpperCase() === 'NONE' ? undefined : (sc as StorageClass);
    this.encryption = opts.encrypt ? (opts.keyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: opts.keyId } : { ServerSideEncryption: 'AES256' }) : {};
    this.redirect = opts.redirect ?? false;
    this.redirectExpiry = opts.redirectExpirySeconds ?? 20 * 60;
    this.leaseMs = opts.leaseMs ?? 60_000;
  }

  private blobKey(digest: string): string {
    assertDigestKey(digest);
    const [algorithm, hex] = digest.split(':') as [string, string];
    return `${this.root}blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`;
  }

  private uploadPrefix(id: string): string {
    assertUploadId(id);
    return `${this.root}uploads/${id}/`;
  }

  /** What every object written carries: storage class and encryption. */
  private get writeParams() {
    return { StorageClass: this.storageClass, ...this.encryption };
  }

  // ---- committed blobs -------------------------------------------------------

  async stat(digest: string): Promise<BlobInfo | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      return { digest, size: Number(head.ContentLength ?? 0) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async exists(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== null;
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    const key = this.blobKey(digest);
    if (range && range.length === 0) {
      if (!(await this.stat(digest))) throw new BlobNotFoundError(digest);
      return Readable.from([]);
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined }),
      );
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
  }

  async delete(digest: string): Promise<boolean> {
    const key = this.blobKey(digest);
    if (!(await this.stat(digest))) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    return true;
  }

  async *list(): AsyncIterable<BlobInfo> {
    const prefix = `${this.root}blobs/`;
    for await (const o of this.listObjects(prefix)) {
      const parts = o.key.slice(prefix.length).split('/');
      if (parts.length !== 3) continue;
      const digest = `${parts[0]}:${parts[2]}`;
      if (!/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(digest)) continue;
      yield { digest, size: o.size, modified: o.modified };
    }
  }

  async writeBlob(digest: string, bytes: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), Body: bytes, ContentLength: bytes.byteLength, ...this.writeParams }));
  }

  async redirectURL(digest: string, method: 'GET' | 'HEAD'): Promise<string | null> {
    // HEAD stays on the registry (it answers from its database); only downloads go to the engine.
    if (!this.redirect || method !== 'GET') return null;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), { expiresIn: this.redirectExpiry });
  }

  private async *listObjects(prefix: string, delimiter?: string): AsyncIterable<{ key: string; size: number; modified?: Date; isPrefix?: boolean }> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) yield { key: p.Prefix, size: 0, isPrefix: true };
      for (const o of page.Contents ?? []) if (o.Key) yield { key: o.Key, size: Number(o.Size ?? 0), modified: o.LastModified };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  // ---- uploads -----------------------------------------------------------------

  private async readState(id: string): Promise<{ doc: UploadStateDoc; modified: Date } | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: `${this.uploadPrefix(id)}state` }));
      const doc = JSON.parse(await out.Body!.transformToString()) as UploadStateDoc;
      return { doc, modified: out.LastModified ?? new Date() };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  private async state(id: string): Promise<UploadStateDoc> {
    const held = this.held.get(id);
    if (held) return held.doc;
    const s = await this.readState(id);
    if (!s) throw new UploadNotFoundError(id);
    return s.doc;
  }

  private async writeState(id: string, doc: UploadStateDoc): Promise<void> {
    const body = JSON.stringify(doc);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${this.uploadPrefix(id)}state`, Body: body, ContentType: 'application/json', ContentLength: Buffer.byteLength(body) }));
    const held = this.held.get(id);
    if (held && doc.lease?.owner === held.lease.owner) held.doc = doc;
  }

  async createUpload(id: string): Promise<void> {
    await this.writeState(id, { size: 0, segments: [] });
  }

  async uploadSize(id: string): Promise<number | null> {
    const held = this.held.get(id);
    if (held) return held.doc.size;
    return (await this.readState(id))?.doc.size ?? null;
  }

  async lockUpload(id: string): Promise<(() => Promise<void>) | null> {
    const doc = await this.state(id);
    const now = Date.now();
    if (doc.lease && doc.lease.until > now) return null;
    const lease = { owner: randomBytes(12).toString('base64url'), until: now + this.leaseMs };
    await this.writeState(id, { ...doc, lease });
    // Two replicas that both found it free both wrote: the state read back names one of them.
    const check = await this.readState(id);
    if (!check) throw new UploadNotFoundError(id);
    if (check.doc.lease?.owner !== lease.owner) return null;
    this.held.set(id, { lease, doc: check.doc });
    return async () => {
      const held = this.held.get(id);
      // Gone with the upload (deleteUpload), or taken by another after it expired.
      if (held?.lease.owner !== lease.owner) return;
      this.held.delete(id);
      const { lease: _released, ...rest } = held.doc;
      await this.writeState(id, rest);
    };
  }

  /** Renews this process's lease on `id` when half of it has passed (during a long append). */
  private async renew(id: string, doc: UploadStateDoc): Promise<void> {
    const held = this.held.get(id);
    if (!held || held.lease.until - Date.now() > this.leaseMs / 2) return;
    held.lease.until = Date.now() + this.leaseMs;
    await this.writeState(id, { ...doc, lease: held.lease });
  }

  async appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions = {}): Promise<number> {
    const doc = await this.state(id);
    if (doc.committed) throw new UploadNotFoundError(id);
    if (offset > doc.size) throw new UploadOffsetError(id, doc.size, offset);
    const segments = cut(doc.segments, offset);
    const key = `${this.uploadPrefix(id)}${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const written = await this.writeSegment(key, chunks, opts, () => this.renew(id, doc));
    if (written > 0) segments.push({ key, length: written });
    const next: UploadStateDoc = { ...doc, size: offset + written, segments };
    const held = this.held.get(id);
    if (held) next.lease = held.lease;
    await this.writeState(id, next);
    return next.size;
  }

  /**
   * Writes an append's bytes as one object: a PutObject when they fit in one
   * part, else a multipart upload whose next part is gathered while the
   * previous one is sent. Resolves to the bytes written (nothing is left
   * behind when the body fails).
   */
  private async writeSegment(key: string, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions, onPart: () => Promise<void>): Promise<number> {
    let total = 0;
    let multipart: { uploadId: string; parts: CompletedPart[]; sending: Promise<void> } | null = null;
    const send = async (bytes: Buffer) => {
      if (!multipart) {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ...this.writeParams }));
        multipart = { uploadId: created.UploadId!, parts: [], sending: Promise.resolve() };
      }
      const m = multipart;
      await m.sending; // one part in flight: memory stays at two parts
      const partNumber = m.parts.length + 1;
      m.parts.push({ PartNumber: partNumber });
      m.sending = this.client
        .send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: m.uploadId, PartNumber: partNumber, Body: bytes, ContentLength: bytes.byteLength }))
        .then((out) => {
          m.parts[partNumber - 1]!.ETag = out.ETag;
        });
      m.sending.catch(() => {}); // observed by the next send or the end
      await onPart();
    };
    try {
      for await (const bytes of fixedSizeParts(chunks, this.chunkSize, (chunk) => opts.hash?.update(chunk))) {
        total += bytes.byteLength;
        if (bytes.byteLength < this.chunkSize && !multipart) {
          // The only part, and short: one object.
          await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, ...this.writeParams }));
          return total;
        }
        await send(bytes);
      }
      const m = multipart as { uploadId: string; parts: CompletedPart[]; sending: Promise<void> } | null;
      if (!m) return 0; // no bytes at all
      await m.sending;
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: m.uploadId, MultipartUpload: { Parts: m.parts } }));
      return total;
    } catch (err) {
      const m = multipart as { uploadId: string; sending: Promise<void> } | null;
      if (m) {
        await m.sending.catch(() => {});
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: m.uploadId })).catch(() => {});
      }
      throw err;
    }
  }

  async readUpload(id: string): Promise<Readable> {
    const doc = await this.state(id);
    return Readable.from(this.readSegments(doc.segments));
  }

  private async *readSegments(segments: Segment[]): AsyncIterable<Uint8Array> {
    for (const s of segments) yield* await this.readRange(s.key, 0, s.length);
  }

  private async readRange(key: string, offset: number, length: number): Promise<AsyncIterable<Uint8Array>> {
    if (length === 0) return Readable.from([]);
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }));
    return out.Body as Readable;
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    const target = this.blobKey(digest);
    const doc = await this.state(id);
    const present = await this.stat(digest);
    // Content-addressed: bytes already there under this digest are these bytes.
    if (!present || present.size !== doc.size) await this.join(doc.segments, doc.size, target);
    if (!doc.committed) await this.writeState(id, { ...doc, committed: true, lease: this.held.get(id)?.lease ?? doc.lease });
  }

  /** Joins segments into `target`, visible only when whole. */
  private async join(segments: Segment[], size: number, target: string): Promise<void> {
    if (segments.length === 0) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: target, Body: Buffer.alloc(0), ContentLength: 0, ...this.writeParams }));
      return;
    }
    const only = segments.length === 1 ? segments[0]! : null;
    if (only && size < this.copyThreshold) {
      if (only.length === size && (await this.objectSize(only.key)) === size) {
        await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: copySource(this.bucket, only.key), ...this.writeParams }));
        return;
      }
    }
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: target, ...this.writeParams }));
    const uploadId = created.UploadId!;
    try {
      const parts = await this.assembleParts(segments, target, uploadId);
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId })).catch(() => {});
      throw err;
    }
  }

  private async objectSize(key: string): Promise<number> {
    return Number((await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))).ContentLength ?? 0);
  }

  /**
   * The parts of a commit, in order: a run of bytes of at least 5 MiB that
   * lies in one segment is copied server-side (in `multipartcopychunksize`
   * pieces, several at once); smaller segments are read and gathered into
   * parts of up to `chunksize`. Every part but the last is at least 5 MiB.
   */
  private async assembleParts(segments: Segment[], target: string, uploadId: string): Promise<CompletedPart[]> {
    const parts: Promise<CompletedPart>[] = [];
    const inFlight = new Set<Promise<unknown>>();
    // Starts a part once fewer than copyConcurrency are in flight; resolves when it has started, to its result.
    const limit = async <T>(start: () => Promise<T>): Promise<{ done: Promise<T> }> => {
      while (inFlight.size >= this.copyConcurrency) await Promise.race(inFlight);
      const done = start();
      const tracked: Promise<unknown> = done.then(
        () => inFlight.delete(tracked),
        () => inFlight.delete(tracked),
      );
      inFlight.add(tracked);
      done.catch(() => {}); // observed by Promise.all below
      return { done };
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const partNumber = parts.length + 1;
      parts.push(
        (await limit(async () => {
          const out = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.byteLength }));
          return { PartNumber: partNumber, ETag: out.ETag };
        })).done,
      );
    };
    const gather = async (key: string, offset: number, length: number) => {
      for await (const chunk of await this.readRange(key, offset, length)) {
        let c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        while (c.byteLength > 0) {
          const n = Math.min(c.byteLength, this.chunkSize - pendingBytes);
          pending.push(Buffer.from(c.subarray(0, n)));
          pendingBytes += n;
          c = c.subarray(n);
          if (pendingBytes >= this.chunkSize) await flush();
        }
      }
    };
    const copy = async (key: string, offset: number, length: number) => {
      // Pieces of copyChunk; the last absorbs a remainder below 5 MiB.
      let at = offset;
      let left = length;
      while (left > 0) {
        const n = left >= this.copyChunk + MIN_PART ? this.copyChunk : left;
        const partNumber = parts.length + 1;
        const range = `bytes=${at}-${at + n - 1}`;
        parts.push(
          (await limit(async () => {
            const out = await this.client.send(
              new UploadPartCopyCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId, PartNumber: partNumber, CopySource: copySource(this.bucket, key), CopySourceRange: range }),
            );
            return { PartNumber: partNumber, ETag: out.CopyPartResult?.ETag };
          })).done,
        );
        at += n;
        left -= n;
      }
    };
    for (const [i, s] of segments.entries()) {
      const last = i === segments.length - 1;
      let pos = 0;
      if (pendingBytes > 0 && pendingBytes < MIN_PART) {
        // Top the gathered bytes up to a valid part first.
        const n = Math.min(s.length, MIN_PART - pendingBytes);
        await gather(s.key, 0, n);
        pos = n;
      }
      const rest = s.length - pos;
      if (rest === 0) continue;
      if (rest >= MIN_PART || (last && pendingBytes === 0)) {
        if (pendingBytes > 0) await flush();
        await copy(s.key, pos, rest);
      } else {
        await gather(s.key, pos, rest);
      }
    }
    await flush();
    return Promise.all(parts);
  }

  async deleteUpload(id: string): Promise<void> {
    const prefix = this.uploadPrefix(id);
    const keys = new Set<string>();
    const s = await this.readState(id);
    for (const seg of s?.doc.segments ?? []) keys.add(seg.key);
    // Segments no state names (a writer that died between its write and its state) are found by listing.
    for await (const o of this.listObjects(prefix)) keys.add(o.key);
    keys.delete(`${prefix}state`);
    this.held.delete(id);
    await this.deleteKeys([...keys]);
    // A writer that died in the middle of a large append left a multipart upload, which S3 keeps (and bills) until aborted.
    for (const m of (await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }))).Uploads ?? []) {
      if (m.Key && m.UploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: m.Key, UploadId: m.UploadId })).catch(() => {});
    }
    // The state goes last: while any segment may remain, the upload can still be found and removed.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: `${prefix}state` }));
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length) throw new Error(`s3: could not delete ${failed.length} upload objects (${failed[0]!.Code}: ${failed[0]!.Message})`);
    }
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    const prefix = `${this.root}uploads/`;
    for await (const p of this.listObjects(prefix, '/')) {
      if (!p.isPrefix) continue;
      const id = p.key.slice(prefix.length).replace(/\/$/, '');
      if (!isUploadId(id)) continue;
      const s = await this.readState(id);
      if (s) yield { id, size: s.doc.size, modified: s.modified };
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** Segments holding the first `offset` bytes: an append at an earlier offset replaces what followed. */
function cut(segments: Segment[], offset: number): Segment[] {
  const kept: Segment[] = [];
  let at = 0;
  for (const s of segments) {
    if (at >= offset) break;
    const length = Math.min(s.length, offset - at);
    kept.push({ key: s.key, length });
    at += length;
  }
  return kept;
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
