/** GET, HEAD, PUT and DELETE /v2/<name>/manifests/<reference> (OCI dist-spec end-3, end-7, end-9). */
import { MAX_MANIFEST_BYTES, MediaTypes, RegistryError } from '../../registry/index.js';
import type { Ctx } from '../context.js';
import { sendEmpty } from '../respond.js';

/** Parsed Accept headers: a client sends the same one with every request. */
const acceptCache = new Map<string, Set<string>>();

/** Media types a client accepts, from every Accept header, parameters dropped. */
function accepted(ctx: Ctx): Set<string> {
  // Node joins repeated Accept headers with ', ' (headersDistinct would build a new object each time).
  const raw = ctx.req.headers.accept ?? '';
  let set = acceptCache.get(raw);
  if (set) return set;
  set = new Set<string>();
  for (const part of raw.split(',')) set.add(part.split(';')[0]!.trim().toLowerCase());
  if (acceptCache.size >= 256) acceptCache.clear();
  acceptCache.set(raw, set);
  return set;
}

/**
 * As distribution: an OCI manifest or index is not served to a client whose
 * Accept does not list OCI types (such a client could not use it). Docker
 * types are served as they are (Berth converts nothing to schema1).
 */
function checkAccept(ctx: Ctx, mediaType: string): void {
  if (mediaType !== MediaTypes.ociManifest && mediaType !== MediaTypes.ociIndex) return;
  const accept = accepted(ctx);
  if (accept.has('*/*') || accept.has(mediaType)) return;
  if (mediaType === MediaTypes.ociManifest) {
    throw new RegistryError('MANIFEST_UNKNOWN', 'OCI manifest found, but the Accept header does not support OCI manifests', { accepted: [...accept] });
  }
  if (mediaType === MediaTypes.ociIndex) {
    throw new RegistryError('MANIFEST_UNKNOWN', 'OCI index found, but the Accept header does not support OCI indexes', { accepted: [...accept] });
  }
}

function ifNoneMatch(ctx: Ctx, digest: string): boolean {
  const header = ctx.req.headers['if-none-match'];
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === `"${digest}"` || tag === digest;
  });
}

export async function getManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
  const m = await ctx.registry.getManifest(name, reference);
  checkAccept(ctx, m.mediaType);
  const headers = { 'Docker-Content-Digest': m.digest, Etag: `"${m.digest}"` };
  if (ifNoneMatch(ctx, m.digest)) {
    ctx.res.writeHead(304, headers);
    ctx.res.end();
    return;
  }
  ctx.res.writeHead(200, { ...headers, 'Content-Type': m.mediaType, 'Content-Length': m.size });
  if (ctx.req.method === 'HEAD') {
    ctx.res.end();
    return;
  }
  ctx.res.end(m.body);
  // A pull as Docker Hub counts one: a GET answered with the manifest (never a HEAD, a 304 or an error).
  ctx.pulls?.pulled(name, reference, m.digest);
}

export async function putManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
  ctx.registry.assertWritable();
  const declared = Number(ctx.req.headers['content-length'] ?? 0);
  const tooLarge = () => new RegistryError('MANIFEST_INVALID', `manifest exceeds the ${MAX_MANIFEST_BYTES}-byte limit`, { limit: MAX_MANIFEST_BYTES }, { status: 413 });
  if (declared > MAX_MANIFEST_BYTES) throw tooLarge();
  const body = await readManifestBody(ctx, tooLarge);
  ctx.bytesIn += body.byteLength;
  const tags = ctx.query.getAll('tag');
  const { digest, subject } = await ctx.registry.putManifest(name, reference, ctx.req.headers['content-type'], body, tags);
  const headers: Record<string, string> = {
    Location: ctx.urls.url(`v2/${name}/manifests/${digest}`),
    'Docker-Content-Digest': digest,
  };
  // OCI dist-spec: a registry that processes `subject` says so with OCI-Subject.
  if (subject) headers['OCI-Subject'] = subject.digest;
  sendEmpty(ctx.res, 201, headers);
}

/**
 * Reads a manifest body of at most MAX_MANIFEST_BYTES. An oversized body is
 * refused at once; the edge answers 413 and closes the connection with a
 * bounded lingering close (see closeAfterRefusal in http/server.ts).
 */
function readManifestBody(ctx: Ctx, tooLarge: () => RegistryError): Promise<Buffer> {
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > MAX_MANIFEST_BYTES) {
        stop();
        reject(tooLarge());
        return;
      }
      parts.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(parts, size));
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}

export async function deleteManifest(ctx: Ctx, name: string, reference: string): Promise<void> {
  await ctx.registry.deleteManifest(name, reference);
  sendEmpty(ctx.res, 202);
}
