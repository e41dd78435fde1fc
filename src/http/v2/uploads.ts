/**
 * Blob uploads (OCI dist-spec end-4a/4b/5/6/11/13, "Pushing blobs"):
 * POST starts (or mounts, or completes with ?digest=), PATCH appends a chunk,
 * PUT ?digest= completes, GET reports progress, DELETE cancels.
 */
import { RegistryError, parseDigest, type RepositoryFilter, type UploadState } from '../../registry/index.js';
import type { ChunkRange } from '../../registry/index.js';
import type { Ctx } from '../context.js';
import { sendEmpty } from '../respond.js';
import { body, contentLength, hasBody } from './common.js';

function uploadHeaders(ctx: Ctx, name: string, state: UploadState): Record<string, string | number> {
  return {
    Location: ctx.urls.url(`v2/${name}/blobs/uploads/${state.id}`),
    'Docker-Upload-UUID': state.id,
    // distribution reports an empty upload as 0-0.
    Range: `0-${Math.max(0, state.size - 1)}`,
  };
}

function blobCreated(ctx: Ctx, name: string, digest: string): void {
  sendEmpty(ctx.res, 201, { Location: ctx.urls.url(`v2/${name}/blobs/${digest}`), 'Docker-Content-Digest': digest });
}

export async function startUpload(ctx: Ctx, name: string): Promise<void> {
  ctx.registry.assertWritable();
  const mount = ctx.query.get('mount');
  const rawFrom = ctx.query.get('from');
  // With accounts on, `from=ubuntu` is `library/ubuntu`, as the path's name is.
  const from = rawFrom === null || rawFrom === '' ? rawFrom : ctx.canonicalName(rawFrom);
  const digest = ctx.query.get('digest');

  if (mount !== null) {
    parseDigest(mount);
    // Without `from`, the blob is looked for in every repository the caller may read.
    const mounted = from ? await ctx.registry.mountBlob(name, mount, from) : await ctx.registry.mountBlobFromAnywhere(name, mount, readableRepositories(ctx));
    if (mounted) {
      blobCreated(ctx, name, mount);
      return;
    }
    // Not mountable: fall through to an ordinary upload (202), as the spec says.
  } else if (digest !== null) {
    // Monolithic upload in a single POST.
    parseDigest(digest);
    const done = await ctx.registry.uploads.putWhole(name, digest, body(ctx), contentLength(ctx));
    blobCreated(ctx, name, done.digest);
    return;
  }
  const state = await ctx.registry.uploads.start(name);
  sendEmpty(ctx.res, 202, uploadHeaders(ctx, name, state));
}

/**
 * The repositories the caller may read blobs from, for the automatic mount:
 * the access decision's (every one without accounts), so that a mount never
 * links (nor reveals) a blob only unreadable repositories hold.
 */
function readableRepositories(ctx: Ctx): RepositoryFilter {
  return (repository) => ctx.access.mayRead(ctx, repository);
}

export async function uploadStatus(ctx: Ctx, name: string, id: string): Promise<void> {
  const state = await ctx.registry.uploads.status(name, id);
  sendEmpty(ctx.res, 204, uploadHeaders(ctx, name, state));
}

export async function patchUpload(ctx: Ctx, name: string, id: string): Promise<void> {
  ctx.registry.assertWritable();
  const range = chunkRange(ctx);
  const state = await withUploadLocation(ctx, name, id, () => ctx.registry.uploads.append(name, id, body(ctx), range, contentLength(ctx)));
  sendEmpty(ctx.res, 202, uploadHeaders(ctx, name, state));
}

export async function putUpload(ctx: Ctx, name: string, id: string): Promise<void> {
  ctx.registry.assertWritable();
  const digest = ctx.query.get('digest');
  if (digest === null) throw new RegistryError('DIGEST_INVALID', 'completing an upload requires the ?digest= parameter');
  parseDigest(digest);
  const range = chunkRange(ctx);
  const withBody = hasBody(ctx);
  const done = await withUploadLocation(ctx, name, id, () =>
    ctx.registry.uploads.finish(name, id, digest, withBody ? body(ctx) : undefined, withBody ? range : undefined, withBody ? contentLength(ctx) : undefined),
  );
  blobCreated(ctx, name, done.digest);
}

export async function cancelUpload(ctx: Ctx, name: string, id: string): Promise<void> {
  ctx.registry.assertWritable();
  await ctx.registry.uploads.cancel(name, id);
  sendEmpty(ctx.res, 204);
}

/** A 416 for an upload also tells the client where the upload lives. */
async function withUploadLocation<T>(ctx: Ctx, name: string, id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError && err.status === 416) err.headers.Location = ctx.urls.url(`v2/${name}/blobs/uploads/${id}`);
    throw err;
  }
}

/** `Content-Range: <start>-<end>` (the spec's form; `bytes ` prefixes and `/total` suffixes are tolerated). */
function chunkRange(ctx: Ctx): ChunkRange | undefined {
  const header = ctx.req.headers['content-range'];
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  // OCI dist-spec error table: BLOB_UPLOAD_INVALID; the spec's 416 for a chunk's range (end-5, end-6).
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', `malformed Content-Range ${JSON.stringify(header.slice(0, 100))}: expected <start>-<end>`, undefined, { status: 416 });
  return { start: Number(m[1]), end: Number(m[2]) };
}
