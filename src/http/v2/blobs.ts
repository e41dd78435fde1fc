/** GET, HEAD and DELETE /v2/<name>/blobs/<digest> (OCI dist-spec end-2, end-10). */
import type { ServerResponse } from 'node:http';
import { parseDigest } from '../../registry/index.js';
import type { ByteRange } from '../../storage/index.js';
import type { Ctx } from '../context.js';
import { sendEmpty } from '../respond.js';
import { RegistryError } from '../../registry/index.js';

export async function getBlob(ctx: Ctx, name: string, digest: string): Promise<void> {
  const { size } = await ctx.registry.statBlob(name, digest);
  const head = ctx.req.method === 'HEAD';
  const redirect = await ctx.registry.blobRedirect(digest, head ? 'HEAD' : 'GET');
  if (redirect) {
    sendEmpty(ctx.res, 307, { Location: redirect, 'Docker-Content-Digest': digest });
    return;
  }
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    Etag: `"${digest}"`,
    'Cache-Control': 'max-age=31536000',
  };
  const range = parseRange(ctx.req.headers.range, size);
  if (range === 'unsatisfiable') {
    // RFC 9110 §15.5.17. The spec's error table has no code for a read; RANGE_INVALID is distribution's 416 code.
    throw new RegistryError('RANGE_INVALID', `requested range is not satisfiable for a blob of ${size} bytes`, { size }, { status: 416, headers: { 'Content-Range': `bytes */${size}` } });
  }
  if (head) {
    ctx.res.writeHead(200, { ...headers, 'Content-Length': size });
    ctx.res.end();
    return;
  }
  // The whole blob is a range too: its size is known, so the store need not look it up again.
  const reader = await ctx.registry.openBlob(name, digest, range ?? { offset: 0, length: size });
  if (range) {
    ctx.res.writeHead(206, { ...headers, 'Content-Length': range.length, 'Content-Range': `bytes ${range.offset}-${range.offset + range.length - 1}/${size}` });
  } else {
    ctx.res.writeHead(200, { ...headers, 'Content-Length': size });
  }
  await reader.pump(socketWriter(ctx.res));
  ctx.res.end();
}

/**
 * A write that resolves once the socket has taken the bytes (so the caller
 * may reuse the buffer), and rejects when the client has gone.
 */
function socketWriter(res: ServerResponse): (chunk: Uint8Array) => Promise<void> {
  let closed: Promise<never> | undefined;
  return (chunk) => {
    if (res.destroyed) return Promise.reject(clientGone());
    if (!closed) {
      closed = new Promise<never>((_, reject) => res.once('close', () => reject(clientGone())));
      closed.catch(() => {}); // a close after the last write is no error
    }
    const written = new Promise<void>((resolve, reject) => {
      res.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
    return Promise.race([written, closed]);
  };
}

function clientGone(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

export async function deleteBlob(ctx: Ctx, name: string, digest: string): Promise<void> {
  parseDigest(digest);
  await ctx.registry.deleteBlob(name, digest);
  sendEmpty(ctx.res, 202, { 'Docker-Content-Digest': digest });
}

/**
 * A single `bytes=` range (RFC 9110 §14.1.2). Multiple ranges are served
 * whole, as the RFC allows; a malformed header is ignored. A range whose
 * last byte comes before its first is invalid (§14.1.1) and answered 416,
 * as distribution (Go's ServeContent) does and the OCI conformance suite
 * expects of `bytes=500-0`.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return 'unsatisfiable';
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { offset: start, length: end - start + 1 };
}
