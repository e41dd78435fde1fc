/**
 * Events from the HTTP edge: after a request has succeeded, the route,
 * method, status and headers say what happened (as distribution's
 * notifications/bridge.go does from inside its handlers). With notification
 * endpoints configured, every kind is built; without, only the changes the
 * Hub's activity and webhooks read (mayProduceChanges), so a pull builds
 * nothing.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { EventAction, EventSink, EventTarget, RegistryEvent } from '../events/index.js';
import { sentHeader } from './response.js';

/** What the edge knows about a finished request (the HTTP context satisfies it). */
export interface FinishedRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request id. */
  id: string;
  /** Path relative to the prefix, e.g. `v2/library/alpine/manifests/latest` (still percent-encoded). */
  path: string;
  query: URLSearchParams;
  bytesIn: number;
  urls: { url(path: string): string };
  identity: { name?: string };
  registry: {
    statBlob(repository: string, digest: string): Promise<{ size: number }>;
    getManifest(repository: string, reference: string): Promise<{ mediaType: string }>;
  };
}

/** The v2 routes that make events, as src/http/v2/index.ts matches them (name, then reference or digest). */
const PATTERNS: Record<string, RegExp> = {
  manifest: /^v2\/(.+)\/manifests\/([^/]+)$/,
  'upload-start': /^v2\/(.+)\/blobs\/uploads\/?$/,
  upload: /^v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
  blob: /^v2\/(.+)\/blobs\/([^/]+)$/,
};

/** A Content-Type the registry stores as the manifest's media type; anything else (application/json…) is inferred from the body. */
const MANIFEST_TYPE_RE = /^application\/vnd\.(oci\.image\.(manifest|index)\.v1|docker\.distribution\.manifest\.(v2|list\.v2))\+json$/;

/** distribution reports blobs with this media type (its blob descriptors carry no other). */
const BLOB_MEDIA_TYPE = 'application/octet-stream';

/** Cheap pre-check: could this route, method and status produce an event at all? */
export function mayProduceEvents(route: string, method: string, status: number): boolean {
  switch (route) {
    case 'manifest':
      return (method === 'GET' && status === 200) || (method === 'PUT' && status === 201) || (method === 'DELETE' && status === 202);
    case 'blob':
      return (method === 'GET' && (status === 200 || status === 206 || status === 307)) || (method === 'DELETE' && status === 202);
    case 'upload':
      return method === 'PUT' && status === 201;
    case 'upload-start':
      return method === 'POST' && status === 201;
    default:
      return false;
  }
}

/** Manifest pushes and deletes, blob deletes: the events discovery's activity and webhooks read (no pull, no blob push). */
export function mayProduceChanges(route: string, method: string, status: number): boolean {
  switch (route) {
    case 'manifest':
      return (method === 'PUT' && status === 201) || (method === 'DELETE' && status === 202);
    case 'blob':
      return method === 'DELETE' && status === 202;
    default:
      return false;
  }
}

function mediaTypeOf(value: string | undefined): string | undefined {
  const t = value?.split(';')[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** distribution's context.RemoteAddr: X-Forwarded-For, then X-Real-Ip, then the peer. */
function remoteAddr(req: IncomingMessage): string | undefined {
  const forwarded = req.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  if (first) return first;
  const real = req.headers['x-real-ip'];
  if (typeof real === 'string' && real) return real;
  const { remoteAddress, remotePort } = req.socket;
  if (!remoteAddress) return undefined;
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

/** The events a successful request produced, or none. */
export async function requestEvents(route: string, r: FinishedRequest): Promise<RegistryEvent[]> {
  const method = r.req.method ?? '';
  const status = r.res.statusCode;
  if (!mayProduceEvents(route, method, status)) return [];
  const m = PATTERNS[route]!.exec(r.path);
  if (!m) return [];
  const name = m[1]!;
  const arg = decode(m[2] ?? '');
  const timestamp = new Date().toISOString();
  const request = { id: r.id, addr: remoteAddr(r.req), host: r.req.headers.host, method, useragent: r.req.headers['user-agent'] ?? '' };
  const actor = r.identity.name ? { name: r.identity.name } : {};
  const event = (action: EventAction, target: EventTarget): RegistryEvent => ({ id: randomUUID(), timestamp, action, target, request, actor });
  const manifestUrl = (digest: string) => r.urls.url(`v2/${name}/manifests/${digest}`);
  const blobUrl = (digest: string) => r.urls.url(`v2/${name}/blobs/${digest}`);
  const isTag = !arg.includes(':');

  if (route === 'manifest') {
    if (method === 'DELETE') {
      // As distribution: a tag delete names the tag, a manifest delete the digest; nothing else.
      return [event('delete', isTag ? { repository: name, tag: arg } : { digest: arg, repository: name })];
    }
    const digest = sentHeader(r.res, 'docker-content-digest');
    if (!digest) return [];
    if (method === 'GET') {
      const size = Number(sentHeader(r.res, 'content-length') ?? 0);
      const target: EventTarget = { mediaType: mediaTypeOf(sentHeader(r.res, 'content-type')), digest, size, length: size, repository: name, url: manifestUrl(digest) };
      if (isTag) target.tag = arg;
      return [event('pull', target)];
    }
    // PUT: the reference tag and any OCI 1.1 ?tag= each get a push event, as distribution does per tag.
    const tags = [...new Set([...(isTag ? [arg] : []), ...r.query.getAll('tag')])];
    let mediaType = mediaTypeOf(r.req.headers['content-type']);
    if (!mediaType || !MANIFEST_TYPE_RE.test(mediaType)) mediaType = (await r.registry.getManifest(name, digest)).mediaType;
    const base = { mediaType, digest, size: r.bytesIn, length: r.bytesIn, repository: name, url: manifestUrl(digest) };
    return tags.length === 0 ? [event('push', base)] : tags.map((tag) => event('push', { ...base, tag }));
  }

  if (route === 'blob') {
    if (method === 'DELETE') return [event('delete', { digest: arg, repository: name })];
    let size: number;
    const range = sentHeader(r.res, 'content-range');
    if (status === 206 && range) size = Number(/\/(\d+)$/.exec(range)?.[1] ?? 0);
    else if (status === 200) size = Number(sentHeader(r.res, 'content-length') ?? 0);
    else size = (await r.registry.statBlob(name, arg)).size;
    return [event('pull', { mediaType: BLOB_MEDIA_TYPE, digest: arg, size, length: size, repository: name, url: blobUrl(arg) })];
  }

  // upload PUT 201, or upload-start POST 201 (a mount, or a monolithic ?digest= upload)
  const digest = sentHeader(r.res, 'docker-content-digest');
  if (!digest) return [];
  const from = r.query.get('from');
  // A mount with `from`, or an automatic one (`mount` alone: the registry
  // found the blob itself, so there is no source repository to name).
  const mounted = route === 'upload-start' && r.query.get('mount') !== null;
  const size = (await r.registry.statBlob(name, digest)).size;
  const target: EventTarget = { mediaType: BLOB_MEDIA_TYPE, digest, size, length: size, repository: name };
  if (mounted && from) target.fromRepository = from;
  target.url = blobUrl(digest);
  return [event(mounted ? 'mount' : 'push', target)];
}

/**
 * The hook the server calls after a request when a sink is configured;
 * `wants` says which requests are worth building events for (every kind, or
 * only changes). Never throws: a failure to record an event is logged (the
 * request has already been answered).
 */
export async function emitRequestEvents(sink: EventSink, route: string, r: FinishedRequest, log: Logger, wants = mayProduceEvents): Promise<void> {
  if (!wants(route, r.req.method ?? '', r.res.statusCode)) return;
  try {
    const events = await requestEvents(route, r);
    if (events.length > 0) await sink.emit(events);
  } catch (err) {
    log.error({ reqId: r.id, err }, 'could not record notification events for this request');
  }
}
