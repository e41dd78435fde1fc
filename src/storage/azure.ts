/**
 * Azure Blob driver (storage.azure), with @azure/storage-blob. Layout in
 * the container, under `rootdirectory`:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed content (block blobs)
 *   uploads/<id>                              an upload in progress (a block blob)
 *
 * An upload is a block blob whose committed block list is the upload: each
 * append stages its bytes as blocks (of any size: Azure has no minimum) and
 * commits the list, so the blob's size is the upload's size, readable by any
 * replica, and an append that fails leaves only uncommitted blocks, which
 * Azure discards. The upload's lock is Azure's own blob lease (60 s,
 * renewed during long appends), which a writer that died loses when it
 * expires.
 *
 * A commit stages the upload's bytes as blocks of the target blob (copied
 * server-side by Put Block From URL, with a short-lived SAS of the upload;
 * read through this process where the engine lacks it, as Azurite does) and
 * commits its block list: the blob appears whole or not at all.
 */
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';
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

/** storage.azure, as distribution names its keys. */
export interface AzureOptions {
  accountName: string;
  /** accountkey; without it, the SDK's default Azure credential is not supported yet: a key is required. */
  accountKey: string;
  container: string;
  /** realm: the endpoint suffix (default core.windows.net). */
  realm?: string;
  /** serviceurl: the whole endpoint (Azurite: http://127.0.0.1:10000/devstoreaccount1). */
  serviceUrl?: string;
  rootDirectory?: string;
  /** Bytes staged per block (default 4 MiB). */
  blockSize?: number;
  /** Presigned (SAS) download URLs (storage.redirect.disable false); their lifetime. */
  redirect?: boolean;
  redirectExpirySeconds?: number;
  /** Lease duration in seconds, 15 to 60 (default 60). */
  leaseSeconds?: number;
}

const MIB = 1024 * 1024;
/** Bytes one Put Block From URL copies. */
const COPY_BLOCK = 100 * MIB;

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

function codeOf(err: unknown): string | undefined {
  return (err as { details?: { errorCode?: string }; code?: string })?.details?.errorCode ?? (err as { code?: string })?.code;
}

/** Block ids: all of one blob's must be the same length. */
function blockId(): string {
  return randomBytes(24).toString('base64');
}

export class AzureBlobStore implements BlobStore {
  readonly kind = 'azure';
  readonly container: ContainerClient;
  private readonly credential: StorageSharedKeyCredential;
  private readonly root: string;
  private readonly blockSize: number;
  private readonly redirect: boolean;
  private readonly redirectExpiry: number;
  private readonly leaseSeconds: number;
  /** Whether the engine copies blocks server-side (Put Block From URL); Azurite does not. */
  private serverCopy = true;
  /** Leases this process holds: id → lease id and when it was last renewed. */
  private readonly held = new Map<string, { leaseId: string; renewed: number }>();

  constructor(opts: AzureOptions) {
    this.credential = new StorageSharedKeyCredential(opts.accountName, opts.accountKey);
    const url = opts.serviceUrl ?? `https://${opts.accountName}.blob.${opts.realm ?? 'core.windows.net'}`;
    this.container = new BlobServiceClient(url, this.credential).getContainerClient(opts.container);
    const root = (opts.rootDirectory ?? '').replace(/^\/+|\/+$/g, '');
    this.root = root ? `${root}/` : '';
    this.blockSize = Math.max(MIB, opts.blockSize ?? 4 * MIB);
    this.redirect = opts.redirect ?? false;
    this.redirectExpiry = opts.redirectExpirySeconds ?? 20 * 60;
    this.leaseSeconds = Math.min(60, Math.max(15, opts.leaseSeconds ?? 60));
  }

  private blob(digest: string): BlockBlobClient {
    assertDigestKey(digest);
    const [algorithm, hex] = digest.split(':') as [string, string];
    return this.container.getBlockBlobClient(`${this.root}blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`);
  }

  private upload(id: string): BlockBlobClient {
    assertUploadId(id);
    return this.container.getBlockBlobClient(`${this.root}uploads/${id}`);
  }

  private leaseOf(id: string): { leaseId: string } | undefined {
    const h = this.held.get(id);
    return h ? { leaseId: h.leaseId } : undefined;
  }

  // ---- committed blobs -------------------------------------------------------

  async stat(digest: string): Promise<BlobInfo | null> {
    try {
      const p = await this.blob(digest).getProperties();
      return { digest, size: Number(p.contentLength ?? 0) };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async exists(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== null;
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    const client = this.blob(digest);
    if (range && range.length === 0) {
      if (!(await this.stat(digest))) throw new BlobNotFoundError(digest);
      return Readable.from([]);
    }
    try {
      const r = await client.download(range?.offset ?? 0, range?.length);
      return r.readableStreamBody as Readable;
    } catch (err) {
      if (statusOf(err) === 404) throw new BlobNotFoundError(digest);
      throw err;
    }
  }

  async delete(digest: string): Promise<boolean> {
    return (await this.blob(digest).deleteIfExists()).succeeded;
  }

  async *list(): AsyncIterable<BlobInfo> {
    const prefix = `${this.root}blobs/`;
    for await (const b of this.container.listBlobsFlat({ prefix })) {
      const parts = b.name.slice(prefix.length).split('/');
      if (parts.length !== 3) continue;
      const digest = `${parts[0]}:${parts[2]}`;
      if (!/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(digest)) continue;
      yield { digest, size: Number(b.properties.contentLength ?? 0), modified: b.properties.lastModified };
    }
  }

  async writeBlob(digest: string, bytes: Uint8Array): Promise<void> {
    await this.blob(digest).upload(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength);
  }

  async redirectURL(digest: string, method: 'GET' | 'HEAD'): Promise<string | null> {
    if (!this.redirect || method !== 'GET') return null;
    return this.sas(this.blob(digest), this.redirectExpiry);
  }

  private sas(client: BlockBlobClient, seconds: number): Promise<string> {
    // A minute's slack for clocks that run behind the engine's.
    return client.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), startsOn: new Date(Date.now() - 60_000), expiresOn: new Date(Date.now() + seconds * 1000) });
  }

  // ---- uploads -----------------------------------------------------------------

  async createUpload(id: string): Promise<void> {
    await this.upload(id).upload(Buffer.alloc(0), 0);
  }

  async uploadSize(id: string): Promise<number | null> {
    try {
      return Number((await this.upload(id).getProperties()).contentLength ?? 0);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async lockUpload(id: string): Promise<(() => Promise<void>) | null> {
    const lease = this.upload(id).getBlobLeaseClient();
    try {
      await lease.acquireLease(this.leaseSeconds);
    } catch (err) {
      if (statusOf(err) === 404) throw new UploadNotFoundError(id);
      if (statusOf(err) === 409) return null; // LeaseAlreadyPresent
      throw err;
    }
    this.held.set(id, { leaseId: lease.leaseId, renewed: Date.now() });
    return async () => {
      if (this.held.get(id)?.leaseId !== lease.leaseId) return;
      this.held.delete(id);
      await lease.releaseLease().catch((err: unknown) => {
        // Deleted (committed and cleaned up) or expired and taken: nothing to release.
        if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
      });
    };
  }

  /** Renews this process's lease on `id` when a third of it has passed (during a long append). */
  private async renew(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h || Date.now() - h.renewed < (this.leaseSeconds * 1000) / 3) return;
    await this.upload(id).getBlobLeaseClient(h.leaseId).renewLease();
    h.renewed = Date.now();
  }

  async appendUpload(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, opts: AppendOptions = {}): Promise<number> {
    const client = this.upload(id);
    const conditions = this.leaseOf(id);
    let size: number;
    try {
      const props = await client.getProperties();
      if (props.metadata?.berthcommitted === 'true') throw new UploadNotFoundError(id);
      size = Number(props.contentLength ?? 0);
    } catch (err) {
      if (statusOf(err) === 404) throw new UploadNotFoundError(id);
      throw err;
    }
    if (offset > size) throw new UploadOffsetError(id, size, offset);
    const blocks: string[] = [];
    if (offset > 0) {
      const list = await client.getBlockList('committed', { conditions });
      let at = 0;
      for (const b of list.committedBlocks ?? []) {
        if (at >= offset) break;
        const end = at + b.size;
        if (end <= offset) blocks.push(b.name);
        else {
          // A retried chunk starts inside this block: its head is staged again as a block of its own.
          const head = await client.downloadToBuffer(at, offset - at, { conditions });
          const idHead = blockId();
          await client.stageBlock(idHead, head, head.byteLength, { conditions });
          blocks.push(idHead);
        }
        at = end;
      }
    }
    let written = 0;
    let staging: Promise<void> = Promise.resolve();
    const stage = async (bytes: Buffer) => {
      await staging; // one block in flight: memory stays at two blocks
      const idBlock = blockId();
      blocks.push(idBlock);
      staging = client.stageBlock(idBlock, bytes, bytes.byteLength, { conditions }).then(() => this.renew(id));
      staging.catch(() => {}); // observed by the next stage or the end
    };
    try {
      for await (const bytes of fixedSizeParts(chunks, this.blockSize, (chunk) => opts.hash?.update(chunk))) {
        written += bytes.byteLength;
        await stage(bytes);
      }
      await staging;
    } catch (err) {
      await staging.catch(() => {});
      throw err; // the staged blocks were never committed: Azure drops them
    }
    // The new block list is the upload: committed at once, the size any replica sees.
    await client.commitBlockList(blocks, { conditions });
    return offset + written;
  }

  async readUpload(id: string): Promise<Readable> {
    try {
      return (await this.upload(id).download(0)).readableStreamBody as Readable;
    } catch (err) {
      if (statusOf(err) === 404) throw new UploadNotFoundError(id);
      throw err;
    }
  }

  async commitUpload(id: string, digest: string): Promise<void> {
    const source = this.upload(id);
    const target = this.blob(digest);
    let size: number;
    try {
      size = Number((await source.getProperties()).contentLength ?? 0);
    } catch (err) {
      if (statusOf(err) === 404) throw new UploadNotFoundError(id);
      throw err;
    }
    const present = await this.stat(digest);
    if (!present || present.size !== size) {
      if (size === 0) await target.upload(Buffer.alloc(0), 0);
      else {
        let ids = this.serverCopy ? await this.copyByURL(source, target, size) : null;
        ids ??= await this.copyThrough(source, target);
        // Visible only now, whole.
        try {
          await target.commitBlockList(ids);
        } catch (err) {
          // Another commit of the same content won the race: its commit dropped our staged blocks.
          const now = statusOf(err) === 400 && codeOf(err) === 'InvalidBlockList' ? await this.stat(digest) : null;
          if (now?.size !== size) throw err;
        }
      }
    }
    // Appends to it are refused from now on (see BlobStore.appendUpload).
    await source.setMetadata({ berthcommitted: 'true' }, { conditions: this.leaseOf(id) });
  }

  /**
   * Stages the upload's bytes as the target's blocks server-side (Put Block
   * From URL); null where the engine does not implement it (Azurite), which
   * is then not asked again.
   */
  private async copyByURL(source: BlockBlobClient, target: BlockBlobClient, size: number): Promise<string[] | null> {
    const url = await this.sas(source, 3600);
    const ids: string[] = [];
    for (let at = 0; at < size; at += COPY_BLOCK) {
      const idBlock = blockId();
      try {
        await target.stageBlockFromURL(idBlock, url, at, Math.min(COPY_BLOCK, size - at));
      } catch (err) {
        if (statusOf(err) !== 501) throw err;
        this.serverCopy = false;
        return null;
      }
      ids.push(idBlock);
    }
    return ids;
  }

  /** Stages the upload's bytes as the target's blocks by reading them through this process, a block or two at a time. */
  private async copyThrough(source: BlockBlobClient, target: BlockBlobClient): Promise<string[]> {
    const body = (await source.download(0)).readableStreamBody as Readable;
    const ids: string[] = [];
    let staging: Promise<unknown> = Promise.resolve();
    const stage = async (bytes: Buffer) => {
      await staging;
      const idBlock = blockId();
      ids.push(idBlock);
      staging = target.stageBlock(idBlock, bytes, bytes.byteLength);
      staging.catch(() => {});
    };
    for await (const bytes of fixedSizeParts(body as AsyncIterable<Buffer>, this.blockSize)) await stage(bytes);
    await staging;
    return ids;
  }

  async deleteUpload(id: string): Promise<void> {
    const client = this.upload(id);
    const conditions = this.leaseOf(id);
    this.held.delete(id);
    try {
      await client.deleteIfExists({ conditions });
    } catch (err) {
      // Leased by a writer that died (a purge has found it abandoned): break the lease, then delete.
      if (statusOf(err) !== 412 && codeOf(err) !== 'LeaseIdMissing' && statusOf(err) !== 409) throw err;
      await client.getBlobLeaseClient().breakLease(0);
      await client.deleteIfExists();
    }
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    const prefix = `${this.root}uploads/`;
    for await (const b of this.container.listBlobsFlat({ prefix })) {
      const id = b.name.slice(prefix.length);
      if (!isUploadId(id)) continue;
      yield { id, size: Number(b.properties.contentLength ?? 0), modified: b.properties.lastModified };
    }
  }
}
