export class UrlBuilder {
    opts;
    req;
    constructor(opts, req) {
        this.opts = opts;
        this.req = req;
    }
    base() {
        if (this.opts.relative)
            return '';
        if (this.opts.host)
            return this.opts.host.replace(/\/+$/, '');
        const forwardedProto = first(this.req.headers['x-forwarded-proto']);
        const forwardedHost = first(this.req.headers['x-forwarded-host']);
        const proto = forwardedProto ?? (this.opts.tls ? 'https' : 'http');
        const host = forwardedHost ?? this.req.headers.host ?? 'localhost';
        return `${proto}://${host}`;
    }
    /** `path` is relative to the API root, e.g. `v2/foo/blobs/sha256:…`. */
    url(path) {
        return `${this.base()}${this.opts.prefix}${path}`;
    }
    /** A path under the prefix, always relative (for Link headers, as distribution does). */
    path(path) {
        return `${this.opts.prefix}${path}`;
    }
}
function first(v) {
    const s = Array.isArray(v) ? v[0] : v;
    return s?.split(',')[0]?.trim() || undefined;
}
