import { ERROR_CODES, isRegistryError, RegistryError } from '../registry/index.js';
export function sendJSON(res, status, body, headers = {}) {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.byteLength, ...headers });
    res.end(data);
}
export function sendEmpty(res, status, headers = {}) {
    res.writeHead(status, { 'Content-Length': 0, ...headers });
    res.end();
}
/** Serialises any error as `{"errors":[…]}`; anything not a RegistryError is a 500 that leaks nothing. */
export function sendError(res, err, extraHeaders = {}) {
    const e = isRegistryError(err) ? err : new RegistryError('UNKNOWN', ERROR_CODES.UNKNOWN.message);
    if (res.headersSent) {
        res.destroy();
        return;
    }
    const body = Buffer.from(JSON.stringify({ errors: [e.toJSON()] }));
    res.writeHead(e.status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': body.byteLength,
        ...extraHeaders,
        ...e.headers,
    });
    res.end(res.req?.method === 'HEAD' ? undefined : body);
}
/** Reads a request body into memory, refusing more than `limit` bytes. */
export async function readBody(req, limit, onTooLarge) {
    const parts = [];
    let size = 0;
    for await (const chunk of req) {
        size += chunk.byteLength;
        if (size > limit)
            throw onTooLarge();
        parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    return Buffer.concat(parts, size);
}
