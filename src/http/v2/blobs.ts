/** GET, HEAD and DELETE /v2/<name>/blobs/<digest> (OCI dist-spec end-2, end-10). */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { native } from '../../native/index.js';
import { parseDigest } from '../../registry/index.js';
import type { SendfileMode } from '../../config/config.js';
import type { BlobFile, ByteRange } from '../../storage/index.js';
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
  const wanted = range ?? { offset: 0, length: size };
  await socketAssigned(ctx);
  // The connection closed while this response waited its turn: nobody is left to send to.
  if (!ctx.res.socket && ctx.req.socket?.destroyed) throw clientGone();
  const file = zeroCopySocket(ctx.res) !== undefined ? await ctx.registry.openBlobFile(digest, wanted) : null;
  // The reader is opened before the headers go out, so a missing file is still a 404.
  const reader = file ? undefined : await ctx.registry.openBlob(name, digest, wanted);
  if (range) {
    ctx.res.writeHead(206, { ...headers, 'Content-Length': range.length, 'Content-Range': `bytes ${range.offset}-${range.offset + range.length - 1}/${size}` });
  } else {
    ctx.res.writeHead(200, { ...headers, 'Content-Length': size });
  }
  if (file && (await sendZeroCopy(ctx.res, file, ctx.sendfile))) {
    ctx.res.end();
    return;
  }
  // No local file, or sendfile failed before a byte left: the same bytes through the stream.
  await (reader ?? (await ctx.registry.openBlob(name, digest, wanted))).pump(socketWriter(ctx.res));
  ctx.res.end();
}

/**
 * A response to a request that arrived while the connection's previous
 * response was still going out (a client that sends its next request as
 * soon as it has read a body, before this thread has ended that response;
 * or a pipelining one) is queued by node:http without a socket until the
 * previous one finishes. Waiting for it costs nothing (the stream path
 * would queue its bytes behind the previous response too) and lets the body
 * go out with sendfile.
 */
function socketAssigned(ctx: Ctx): Promise<void> | undefined {
  const { req, res } = ctx;
  const connection = req.socket;
  if (res.socket || !connection || connection.destroyed) return undefined;
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('socket', done);
      connection.off('close', done);
      resolve();
    };
    res.once('socket', done);
    connection.once('close', done);
  });
}

/** What node:http keeps on a response and its socket that the zero-copy path reads. */
type RawResponse = ServerResponse & { _header?: string | null; _headerSent?: boolean; outputData?: unknown[] };
type RawSocket = Socket & { _handle?: { fd?: number } | null; _httpMessage?: unknown; encrypted?: boolean };

/**
 * The descriptor of the response's socket when the body may be sent with
 * sendfile(2): plain TCP (TLS encrypts in user space), this response is the
 * one the socket is writing (not a pipelined one queued behind another), and
 * nothing of node's is waiting to be written, so the bytes we write go out
 * in order.
 */
function zeroCopySocket(res: ServerResponse): number | undefined {
  const raw = res as RawResponse;
  const socket = res.socket as RawSocket | null;
  if (!socket || socket.encrypted || socket.destroyed || socket._httpMessage !== res) return undefined;
  if (socket.writableLength > 0 || socket.writableCorked > 0 || (raw.outputData?.length ?? 0) > 0) return undefined;
  const fd = socket._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Sends the response's head and then the file's bytes straight from the
 * page cache to the socket (src/native: sendfile, or a copy for a client on
 * this host, on the thread pool, the event loop waiting for writability).
 * Node's own writes are left out meanwhile: the head is taken from the
 * response unsent and marked sent here. False when nothing was sent (the
 * caller may stream instead). Closes the file.
 */
async function sendZeroCopy(res: ServerResponse, file: BlobFile, mode: SendfileMode): Promise<boolean> {
  const raw = res as RawResponse;
  const fd = zeroCopySocket(res);
  const socket = res.socket as RawSocket | null;
  if (fd === undefined || !socket || typeof raw._header !== 'string' || raw._headerSent) {
    await file.close();
    return false;
  }
  let send;
  try {
    send = native().sendFile(fd, Buffer.from(raw._header, 'latin1'), file.fd, file.offset, file.length, copiesBody(mode, socket));
  } catch {
    return false;
  } finally {
    // The job holds its own duplicate of the descriptor.
    void file.close().catch(() => {});
  }
  const { done, job } = send;
  // node closing the connection (a reset, a drain at shutdown) ends the job, which holds a duplicate that would keep it open.
  const cancel = () => native().sendFileCancel(job);
  socket.once('close', cancel);
  try {
    await done;
    raw._headerSent = true;
    return true;
  } catch (err) {
    const sent = (err as { sent?: number }).sent ?? 0;
    if (sent === 0 && !socket.destroyed && (err as NodeJS.ErrnoException).code !== 'ECANCELED' && !isPeerGone(err)) return false;
    raw._headerSent = true;
    // Part of the body is out: the response cannot be finished, only cut.
    socket.destroy();
    throw isPeerGone(err) || socket.destroyed ? clientGone() : err;
  } finally {
    socket.off('close', cancel);
  }
}

/**
 * Whether the addon copies a body through its small buffer instead of
 * sendfile(2): always with `never`, and with `auto` for a client on this
 * host. Its connection runs over loopback, where the receiving side's TCP
 * work is done by this host's CPUs too; there sendfile is slower and costs
 * more CPU than a copy (docs/performance.md, "Pull: sendfile or copy"),
 * while over a network interface zero copy is the cheaper one.
 */
export function copiesBody(mode: SendfileMode, socket: { remoteAddress?: string; localAddress?: string }): boolean {
  if (mode !== 'auto') return mode === 'never';
  const peer = socket.remoteAddress;
  if (!peer) return false;
  // A connection to one of this host's own addresses has it at both ends.
  return peer === socket.localAddress || peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
}

function isPeerGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ECANCELED';
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
