/**
 * The HTTP edge: one node:http server, a request id and one structured log
 * line per request, the prefix, common headers, routing and the error
 * envelope. node:http rather than a framework: the registry needs raw
 * streaming bodies of any content type and little else, and every
 * microsecond per request shows in manifest and blob-HEAD throughput.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { isRegistryError, RegistryError } from '../registry/index.js';
import { sendError } from './respond.js';
import { UrlBuilder } from './urls.js';
import { matchV2 } from './v2/index.js';
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
export function createRequestHandler(registry, log, opts) {
    const urlOptions = { prefix: opts.prefix, host: opts.host, relative: opts.relativeUrls, tls: false };
    const fixedHeaders = Object.entries(opts.headers);
    return async function handle(req, res) {
        const started = process.hrtime.bigint();
        const incomingId = req.headers['x-request-id'];
        const id = typeof incomingId === 'string' && REQUEST_ID_RE.test(incomingId) ? incomingId : randomUUID();
        const rawUrl = req.url ?? '/';
        const q = rawUrl.indexOf('?');
        const fullPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
        const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
        res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
        res.setHeader('X-Request-Id', id);
        for (const [name, values] of fixedHeaders)
            res.setHeader(name, values);
        const ctx = {
            req,
            res,
            id,
            path: '',
            query,
            registry,
            urls: new UrlBuilder(urlOptions, req),
            log,
            bytesIn: 0,
        };
        let route = 'unknown';
        let error;
        try {
            if (!fullPath.startsWith(opts.prefix) && `${fullPath}/` !== opts.prefix) {
                throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${fullPath.slice(0, 200)}`, undefined, { status: 404 });
            }
            ctx.path = fullPath.slice(opts.prefix.length);
            const match = matchV2(req.method ?? 'GET', ctx.path);
            if (!match)
                throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${fullPath.slice(0, 200)}`, undefined, { status: 404 });
            route = match.route;
            await match.run(ctx);
        }
        catch (err) {
            error = err;
            if (!isRegistryError(err) && !isClientAbort(err, req)) {
                log.error({ reqId: id, err }, 'request failed');
            }
            if (isClientAbort(err, req))
                res.destroy();
            else
                sendError(res, err);
        }
        if (opts.accessLog) {
            const finish = () => {
                const ms = Number(process.hrtime.bigint() - started) / 1e6;
                log.info({
                    reqId: id,
                    method: req.method,
                    path: fullPath,
                    route,
                    status: res.statusCode,
                    ms: Math.round(ms * 1000) / 1000,
                    bytesIn: ctx.bytesIn,
                    bytesOut: res.getHeader('content-length') !== undefined ? Number(res.getHeader('content-length')) : undefined,
                    remote: req.socket.remoteAddress,
                    ua: req.headers['user-agent'],
                    error: isRegistryError(error) ? error.code : error ? 'INTERNAL' : undefined,
                }, 'request');
            };
            if (res.writableFinished || res.destroyed)
                finish();
            else
                res.once('close', finish);
        }
    };
}
function isClientAbort(err, req) {
    const code = err?.code;
    return req.destroyed || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.message === 'aborted';
}
export async function listen(handler, host, port) {
    const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) => {
        void handler(req, res);
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
            server.off('error', reject);
            resolve();
        });
    });
    const address = server.address();
    return {
        server,
        port: address.port,
        close: (drainMs = 30_000) => new Promise((resolve) => {
            const timer = setTimeout(() => server.closeAllConnections(), drainMs);
            timer.unref();
            server.close(() => {
                clearTimeout(timer);
                resolve();
            });
            server.closeIdleConnections();
        }),
    };
}
