/**
 * Builds the URLs the registry hands out (Location headers, Link headers).
 * As distribution: absolute by default, from http.host or the request's
 * Host / X-Forwarded-* headers; relative with http.relativeurls.
 */
import type { IncomingMessage } from 'node:http';

export interface UrlOptions {
  /** http.prefix, with leading and trailing slash. */
  prefix: string;
  /** http.host: a base URL such as https://registry.example.com */
  host?: string;
  relative: boolean;
  tls: boolean;
}

export class UrlBuilder {
  constructor(
    private readonly opts: UrlOptions,
    private readonly req: IncomingMessage,
  ) {}

  private base(): string {
    if (this.opts.relative) return '';
    return this.origin();
  }

  /**
   * `scheme://host` of the registry as clients reach it, even with relative
   * URLs (the token realm must be absolute): http.host, else the request's.
   */
  origin(): string {
    if (this.opts.host) return this.opts.host.replace(/\/+$/, '');
    const forwardedProto = first(this.req.headers['x-forwarded-proto']);
    const forwardedHost = first(this.req.headers['x-forwarded-host']);
    const proto = forwardedProto ?? (this.opts.tls ? 'https' : 'http');
    const host = forwardedHost ?? this.req.headers.host ?? 'localhost';
    return `${proto}://${host}`;
  }

  /** `path` is relative to the API root, e.g. `v2/foo/blobs/sha256:…`. */
  url(path: string): string {
    return `${this.base()}${this.opts.prefix}${path}`;
  }

  /** A path under the prefix, always relative (for Link headers, as distribution does). */
  path(path: string): string {
    return `${this.opts.prefix}${path}`;
  }
}

function first(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s?.split(',')[0]?.trim() || undefined;
}
