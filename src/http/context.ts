import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../auth/index.js';
import type { Registry } from '../registry/index.js';
import type { UrlBuilder } from './urls.js';

/** What a route handler gets for one request. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  id: string;
  /** The request path with the configured prefix removed, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  registry: Registry;
  urls: UrlBuilder;
  log: Logger;
  /** Bytes of request body consumed, for logs and metrics. */
  bytesIn: number;
  /** Who is asking (empty for anonymous). */
  identity: Identity;
}

export type Handler = (ctx: Ctx) => Promise<void>;
