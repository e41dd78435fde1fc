/** Writing responses: JSON bodies, empty bodies and the spec's error envelope. */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, isRegistryError, RegistryError } from '../registry/index.js';

export type Headers = Record<string, string | number | string[]>;

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.byteLength, ...headers });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Headers = {}): void {
  res.writeHead(status, { 'Content-Length': 0, ...headers });
  res.end();
}

/** Serialises any error as `{"errors":[…]}`; anything not a RegistryError is a 500 that leaks nothing. */
export function sendError(res: ServerResponse, err: unknown, extraHeaders: Headers = {}): void {
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
