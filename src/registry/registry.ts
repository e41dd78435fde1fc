/**
 * The registry domain: Namespace → Repository → {Blobs, Uploads, Manifests,
 * Tags, Referrers}. It speaks in names, digests and streams; it knows
 * nothing of HTTP. Errors are RegistryErrors from the one catalogue.
 */
import { randomUUID } from 'node:crypto';
import type { Expression, SqlBool } from 'kysely';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, openReader, type BlobReader, type BlobStore, type ByteRange } from '../storage/index.js';
import type { BlobFile } from '../storage/index.js';
import { RepositoryBeingDeletedError, StillReferencedError, type ManifestRecord, type MetadataStore, type NewManifest, type PutManifestResult } from '../metadata/index.js';
import { digestOf } from './digest.js';
import { RegistryError } from './errors.js';
import { parseManifest, MediaTypes, type Descriptor } from './manifests/index.js';
import { assertName, assertTag, parseDigest, parseReference, type DigestAlgorithm, type ManifestReference } from './reference.js';
import { Uploads } from './uploads.js';
import { ByteLimitedCache } from './cache.js';
import { noEvents, type EventSink, type RegistryEvent } from '../events/index.js';

export interface RegistryOptions {
  /** storage.delete.enabled: deletes answer UNSUPPORTED when false (distribution's default). */
  deleteEnabled: boolean;
  /** storage.maintenance.readonly.enabled: every write answers UNSUPPORTED. */
  readOnly?: boolean;
  /** Bytes of manifest content cached in memory. */
  manifestCacheBytes?: number;
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Whether the caller may read (pull from) a repository. Lookups across
 * repositories (the automatic mount) take one, so that one caller never
 * learns what a repository it may not read holds.
 */
export type RepositoryFilter = (repository: string) => boolean | Promise<boolean>;

/** Every repository: the filter of a registry without private repositories. */
export const everyRepository: RepositoryFilter = () => true;

/**
 * The same question inside SQL, for listings that paginate (the catalog):
 * a condition over the repositories table aliased `r` (columns `r.name` and
 * `r.visibility`), built by whoever decides access. Filtering inside the
 * query keeps `n` and `last` right.
 */
export type RepositoryCondition = Expression<SqlBool>;

/** Descriptors in one page of referrers (the default and the most a client may ask for with `n`). */
export const MAX_REFERRERS_PAGE = 1000;
/** Bytes of descriptors in one page of referrers: the index stays within what clients accept as a manifest. */
export const MAX_REFERRERS_BYTES = MAX_MANIFEST_BYTES;

/** How many holders of a blob an automatic mount asks the filter about, and how many it reads at once. */
const MAX_MOUNT_CANDIDATES = 1000;
const MOUNT_CANDIDATE_PAGE = 100;

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
  body: Buffer;
}

export interface BlobHandle {
  digest: string;
  size: number;
}

/** A manifest just stored (its bytes, as pushed), for observers such as the Hub's page details. */
export interface StoredManifestEvent {
  digest: string;
  mediaType: string;
  body: Buffer;
  tags: string[];
}

/** Told of every stored manifest, after its metadata committed; must not throw (the push has succeeded). */
export interface ManifestObserver {
  manifestStored(repository: string, manifest: StoredManifestEvent): Promise<void>;
}

export interface Paginated<T> {
  items: T[];
  /** Set when more items follow: pass it as `last` for the next page. */
  next?: string;
}

export class Registry {
  readonly uploads: Uploads;
  /** Where domain operations that no single API request describes (repository deletes) report events. */
  events: EventSink = noEvents;
  /** The Hub's observer of pushed manifests (sizes, platforms, description, README), or none. */
  manifestObserver: ManifestObserver | null = null;
  private readonly manifestCache: ByteLimitedCache;

  constructor(
    readonly meta: MetadataStore,
    readonly store: BlobStore,
    readonly options: RegistryOptions,
  ) {
    this.uploads = new Uploads(meta, store);
    this.manifestCache = new ByteLimitedCache(options.manifestCacheBytes ?? 64 * 1024 * 1024);
  }

  assertWritable(): void {
    if (this.options.readOnly) throw new RegistryError('UNSUPPORTED', 'the registry is in read-only mode');
  }

  assertDeletable(): void {
    this.assertWritable();
    if (!this.options.deleteEnabled) throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry (storage.delete.enabled is false)');
  }

  // ---- blobs ----------------------------------------------------------------

  async statBlob(repository: string, digest: string): Promise<BlobHandle> {
    assertName(repository);
    parseDigest(digest);
    const linked = await this.meta.registry.linkedBlob(repository, digest);
    if (!linked) throw blobUnknown(digest);
    return { digest, size: linked.size };
  }

  async openBlob(repository: string, digest: string, range?: ByteRange): Promise<BlobReader> {
    try {
      return await openReader(this.store, digest, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw blobUnknown(digest);
      throw err;
    }
  }

  /**
   * The blob's bytes as a local file, for a zero-copy send; null when the
   * store keeps no local files (the caller then uses openBlob).
   */
  async openBlobFile(digest: string, range?: ByteRange): Promise<BlobFile | null> {
    if (!this.store.openFile) return null;
    try {
      return await this.store.openFile(digest, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw blobUnknown(digest);
      throw err;
    }
  }

  async blobRedirect(digest: string, method: 'GET' | 'HEAD'): Promise<string | null> {
    return this.store.redirectURL ? this.store.redirectURL(digest, method) : null;
  }

  async deleteBlob(repository: string, digest: string): Promise<void> {
    this.assertDeletable();
    assertName(repository);
    parseDigest(digest);
    if (!(await this.meta.registry.unlinkBlob(repository, digest).catch(refuseStillReferenced))) throw blobUnknown(digest);
  }

  /**
   * Cross-repository mount: links `digest` from `from` into `repository` when
   * it is there. Returns false when it is not (the caller then starts an upload).
   */
  async mountBlob(repository: string, digest: string, from: string): Promise<BlobHandle | null> {
    this.assertWritable();
    assertName(repository);
    parseDigest(digest);
    assertName(from);
    if (!(await this.store.stat(digest))) return null;
    return this.mountFrom(repository, digest, from);
  }

  /**
   * Automatic cross-repository mount (OCI dist-spec "Mounting a blob from
   * another repository": `mount` without `from`, which a registry MAY
   * honour): links `digest` into `repository` from any repository that
   * holds it and that `mayRead` accepts. Returns null when there is none,
   * and the caller starts an ordinary upload.
   *
   * `mayRead` is the access seam: the edge passes the repositories the
   * caller may pull from (every one, while the registry has no private
   * repositories). Each candidate goes through it before anything is
   * linked, so a blob that only unreadable repositories hold gets the same
   * answer (null, then a 202) as a blob that exists nowhere. Candidates are
   * read a page at a time and at most MAX_MOUNT_CANDIDATES are asked about.
   * Each mount is the `from` mount's, which re-checks the source link
   * inside the blob's claim (safe against a concurrent delete or GC).
   */
  async mountBlobFromAnywhere(repository: string, digest: string, mayRead: RepositoryFilter): Promise<BlobHandle | null> {
    this.assertWritable();
    assertName(repository);
    parseDigest(digest);
    if (!(await this.store.stat(digest))) return null;
    let after: string | undefined;
    for (let asked = 0; asked < MAX_MOUNT_CANDIDATES; ) {
      const limit = Math.min(MOUNT_CANDIDATE_PAGE, MAX_MOUNT_CANDIDATES - asked);
      const holders = await this.meta.registry.repositoriesWithBlob(digest, { after, limit });
      for (const from of holders) {
        if (!(await mayRead(from))) continue;
        // Null when the link went away since the page was read: try the next holder.
        const mounted = await this.mountFrom(repository, digest, from);
        if (mounted) return mounted;
      }
      if (holders.length < limit) return null;
      asked += holders.length;
      after = holders[holders.length - 1];
    }
    return null;
  }

  private async mountFrom(repository: string, digest: string, from: string): Promise<BlobHandle | null> {
    const mounted = await this.meta.registry.mountBlob(repository, from, digest).catch(refuseWhileDeleting);
    return mounted ? { digest, size: mounted.size } : null;
  }

  // ---- manifests --------------------------------------------------------------

  /**
   * A reference that is neither a valid tag nor a valid digest names no
   * manifest, so a read of it is 404 MANIFEST_UNKNOWN, not 400 (the OCI
   * conformance suite pulls `.INVALID_MANIFEST_NAME` and
   * `sha256:baddigeststring` and expects 404). Writes and deletes still
   * refuse such a reference with TAG_INVALID or DIGEST_INVALID.
   */
  async getManifest(repository: string, reference: string): Promise<StoredManifest> {
    assertName(repository);
    let ref: ManifestReference;
    try {
      ref = parseReference(reference);
    } catch (err) {
      if (err instanceof RegistryError) throw manifestUnknown(reference.slice(0, 200));
      throw err;
    }
    const record = ref.kind === 'tag' ? await this.meta.registry.manifestByTag(repository, ref.tag) : await this.meta.registry.manifestByDigest(repository, ref.digest);
    if (!record) throw manifestUnknown(reference);
    return { digest: record.digest, mediaType: record.mediaType, size: record.size, body: await this.manifestBody(record) };
  }

  private async manifestBody(record: ManifestRecord): Promise<Buffer> {
    const cached = this.manifestCache.get(record.digest);
    if (cached) return cached;
    let stream: Readable;
    try {
      stream = await this.store.get(record.digest);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw manifestUnknown(record.digest);
      throw err;
    }
    const parts: Buffer[] = [];
    for await (const chunk of stream) parts.push(chunk as Buffer);
    const body = Buffer.concat(parts);
    this.manifestCache.set(record.digest, body);
    return body;
  }

  /**
   * Stores a manifest under a tag or digest reference (plus any extra `tags`)
   * after validating it and checking that everything it references exists.
   */
  async putManifest(repository: string, reference: string, contentType: string | undefined, body: Buffer, extraTags: string[] = []): Promise<{ digest: string; subject: Descriptor | null }> {
    this.assertWritable();
    assertName(repository);
    const ref = parseReference(reference);
    extraTags.forEach(assertTag);
    if (body.byteLength > MAX_MANIFEST_BYTES) {
      throw new RegistryError('MANIFEST_INVALID', `manifest is ${body.byteLength} bytes; the limit is ${MAX_MANIFEST_BYTES}`, undefined, { status: 413 });
    }
    const parsed = parseManifest(contentType, body);
    const algorithm: DigestAlgorithm = ref.kind === 'digest' ? parseDigest(ref.digest).algorithm : 'sha256';
    const digest = digestOf(body, algorithm);
    if (ref.kind === 'digest' && ref.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', `manifest digest ${digest} does not match the reference ${ref.digest}`, { digest: ref.digest, actual: digest });
    }

    const record = {
      digest,
      mediaType: parsed.mediaType,
      size: body.byteLength,
      artifactType: parsed.artifactType,
      subjectDigest: parsed.subject?.digest ?? null,
      annotations: parsed.annotations,
      blobs: parsed.blobs,
      manifests: parsed.manifests,
    };
    const tags = ref.kind === 'tag' ? [ref.tag, ...extraTags] : extraTags;
    const result = this.store.existsNow ? await this.putManifestLocal(repository, digest, body, record, tags) : await this.putManifestRemote(repository, digest, body, record, tags);
    if (!result.ok) {
      const missing = [...result.missingBlobs, ...result.missingManifests];
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a blob or manifest' : `${missing.length} blobs or manifests`} unknown to this repository: ${missing.slice(0, 5).join(', ')}`, {
        digests: missing,
      });
    }
    this.manifestCache.set(digest, body);
    if (this.manifestObserver) await this.manifestObserver.manifestStored(repository, { digest, mediaType: parsed.mediaType, body, tags });
    return { digest, subject: parsed.subject };
  }

  /**
   * A manifest's bytes and metadata on a store with a local presence check
   * (the filesystem): bytes first, metadata second, both under the manifest
   * blob's lock, so metadata never points at missing content. The bytes are
   * written and fsynced before the lock is taken; under it they are only
   * linked into place.
   */
  private async putManifestLocal(repository: string, digest: string, body: Buffer, record: NewManifest, tags: string[]): Promise<PutManifestResult> {
    const staged = (await this.store.exists(digest)) ? null : await this.stageBytes(body);
    const writeBytes = async () => {
      if (await this.store.exists(digest)) return;
      const id = staged ?? (await this.stageBytes(body));
      try {
        await this.store.commitUpload(id, digest);
      } finally {
        if (id !== staged) await this.store.deleteUpload(id);
      }
    };
    try {
      return await this.meta.registry.putManifest(repository, record, tags, writeBytes).catch(refuseWhileDeleting);
    } finally {
      if (staged) await this.store.deleteUpload(staged);
    }
  }

  /**
   * The same on an object store, where no store I/O may run inside a
   * transaction: the manifest blob is reserved, its bytes written, and the
   * metadata transaction checks (in the database) that the reservation still
   * stands, writing again if a collection took the bytes in between.
   */
  private async putManifestRemote(repository: string, digest: string, body: Buffer, record: NewManifest, tags: string[]): Promise<PutManifestResult> {
    for (let round = 0; round < 5; round++) {
      const generation = await this.meta.registry.reserveBlob(digest, body.byteLength).catch(refuseWhileDeleting);
      if (this.store.writeBlob) await this.store.writeBlob(digest, body);
      else {
        const id = await this.stageBytes(body);
        try {
          await this.store.commitUpload(id, digest);
        } finally {
          await this.store.deleteUpload(id);
        }
      }
      const result = await this.meta.registry
        .putManifest(repository, record, tags, undefined, (trx) => this.meta.registry.stillReserved(trx, digest, generation))
        .catch(refuseWhileDeleting);
      if (!(!result.ok && result.bytesLost)) return result;
    }
    throw new Error(`manifest ${digest}: its bytes were collected five times while being pushed`);
  }

  /** Writes bytes as an upload (fsynced), ready to be committed. */
  private async stageBytes(body: Buffer): Promise<string> {
    const id = randomUUID();
    await this.store.createUpload(id);
    try {
      const chunks = (async function* () {
        yield body;
      })();
      await this.store.appendUpload(id, 0, chunks, { durable: true });
    } catch (err) {
      await this.store.deleteUpload(id).catch(() => {});
      throw err;
    }
    return id;
  }

  /** DELETE by tag removes only the tag; by digest, the manifest and every tag on it. */
  async deleteManifest(repository: string, reference: string): Promise<{ kind: 'tag' | 'digest'; digest?: string }> {
    this.assertDeletable();
    assertName(repository);
    const ref = parseReference(reference);
    if (ref.kind === 'tag') {
      if (!(await this.meta.registry.deleteTag(repository, ref.tag))) throw manifestUnknown(reference);
      return { kind: 'tag' };
    }
    if (!(await this.meta.registry.deleteManifest(repository, ref.digest).catch(refuseStillReferenced))) throw manifestUnknown(reference);
    return { kind: 'digest', digest: ref.digest };
  }

  /**
   * Deletes a whole repository: every tag, manifest, blob link and upload,
   * in batches (see RegistryQueries.deleteRepository), with the `delete`
   * events of each batch queued as it commits. Pushes into the repository
   * meanwhile are refused. Blob bytes no other repository uses are left to
   * garbage collection.
   */
  async deleteRepository(repository: string, actor?: string): Promise<{ manifests: number; tags: number }> {
    this.assertDeletable();
    assertName(repository);
    const deleted = await this.meta.registry.deleteRepository(repository, async (batch) => {
      const timestamp = new Date().toISOString();
      const events: RegistryEvent[] = [
        ...batch.tags.map((t) => ({ id: randomUUID(), timestamp, action: 'delete' as const, target: { repository, tag: t.tag, digest: t.digest }, actor: { name: actor } })),
        ...batch.manifests.map((m) => ({
          id: randomUUID(),
          timestamp,
          action: 'delete' as const,
          target: { repository, digest: m.digest, mediaType: m.mediaType, size: m.size, length: m.size },
          actor: { name: actor },
        })),
      ];
      if (events.length) await this.events.emit(events);
    });
    if (!deleted) throw nameUnknown(repository);
    // Its uploads in progress go too (their ids name the repository: one pass over the uploads).
    await this.uploads.cancelAll(repository);
    return deleted;
  }

  // ---- listings -------------------------------------------------------------------

  async listTags(repository: string, n: number | undefined, last: string | undefined): Promise<Paginated<string>> {
    assertName(repository);
    const limit = n ?? 1_000_000;
    if (limit === 0) {
      if ((await this.meta.registry.listTags(repository, { limit: 0 })) === null) throw nameUnknown(repository);
      return { items: [] };
    }
    const tags = await this.meta.registry.listTags(repository, { after: last, limit: limit + 1 });
    if (tags === null) throw nameUnknown(repository);
    return page(tags, limit);
  }

  /** Repository names in order, a page at a time; `readable` keeps only those the caller may see. */
  async catalog(n: number | undefined, last: string | undefined, maxEntries = 1000, readable?: RepositoryCondition): Promise<Paginated<string>> {
    const limit = Math.min(n ?? maxEntries, maxEntries);
    if (limit === 0) return { items: [] };
    return page(await this.meta.registry.listRepositories({ after: last, limit: limit + 1 }, readable), limit);
  }

  /**
   * The referrers of `digest` as an OCI image index (dist-spec "Listing
   * Referrers"), a page at a time: at most `n` descriptors (default and
   * most MAX_REFERRERS_PAGE), and no more than MAX_REFERRERS_BYTES of them,
   * after the referrer `after` (an opaque cursor: the position of the last
   * one of the previous page). `next` is set when more follow.
   */
  async referrers(repository: string, digest: string, artifactType?: string, n?: number, after?: number): Promise<{ index: Record<string, unknown>; filtered: boolean; next?: number }> {
    assertName(repository);
    parseDigest(digest);
    const limit = Math.min(n ?? MAX_REFERRERS_PAGE, MAX_REFERRERS_PAGE);
    const rows = limit === 0 ? [] : await this.meta.registry.referrers(repository, digest, artifactType, { afterId: after, limit: limit + 1 });
    const manifests: Record<string, unknown>[] = [];
    let bytes = 0;
    let next: number | undefined;
    for (const [i, r] of rows.entries()) {
      const d: Record<string, unknown> = { mediaType: r.mediaType, digest: r.digest, size: r.size };
      if (r.artifactType) d.artifactType = r.artifactType;
      if (r.annotations) d.annotations = r.annotations;
      const size = Buffer.byteLength(JSON.stringify(d)) + 1;
      // A full page, or one more would pass the byte bound (a page always holds at least one).
      if (i === limit || (manifests.length > 0 && bytes + size > MAX_REFERRERS_BYTES)) {
        next = rows[i - 1]!.id;
        break;
      }
      manifests.push(d);
      bytes += size;
    }
    return { index: { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }, filtered: artifactType !== undefined, next };
  }
}

/** A write into a repository being deleted: refused, for the client to push again once the delete has finished. */
function refuseWhileDeleting(err: unknown): never {
  if (err instanceof RepositoryBeingDeletedError) {
    throw new RegistryError('DENIED', `repository ${err.repository} is being deleted; push again once the delete has finished`, { name: err.repository }, { status: 409 });
  }
  throw err;
}

/**
 * A delete that would leave a live manifest of the repository incomplete:
 * refused (distribution allows it; docs/gc.md says why Berth does not).
 */
function refuseStillReferenced(err: unknown): never {
  if (err instanceof StillReferencedError) {
    throw new RegistryError('DENIED', err.message, { digest: err.digest, referencedBy: err.referencedBy }, { status: 409 });
  }
  throw err;
}

function page(rows: string[], limit: number): Paginated<string> {
  if (rows.length > limit) return { items: rows.slice(0, limit), next: rows[limit - 1] };
  return { items: rows };
}

export function blobUnknown(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
}

export function manifestUnknown(reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { reference });
}

export function nameUnknown(name: string): RegistryError {
  return new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name });
}
