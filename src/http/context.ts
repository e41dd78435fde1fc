import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Action, Principal } from '../access/types.js';
import type { Identity } from '../auth/index.js';
import type { SendfileMode } from '../config/config.js';
import type { Registry, RepositoryCondition } from '../registry/index.js';
import type { UrlBuilder } from './urls.js';

/**
 * What a route needs before its handler runs, as distribution's dispatcher
 * appends access records: the API root, the catalog, Berth's administrator
 * API, or actions on repositories (a mount with `from` needs pull there too).
 */
export type AccessNeed =
  | { kind: 'base' }
  | { kind: 'catalog' }
  /** `docker search` (GET /v1/search): `registry:catalog:search`; its results are filtered to what the caller may read. */
  | { kind: 'search' }
  | { kind: 'admin' }
  | { kind: 'repository'; name: string; actions: Action[] };

/** What a handler may ask of the access decision for its own listings and lookups. */
export interface RequestAccess {
  /** The catalog's SQL filter (repositories aliased `r`), or undefined for every repository. */
  catalogFilter(ctx: Ctx): RepositoryCondition | undefined;
  /** Whether the caller may pull from `repository` (the automatic cross-repository mount asks for each candidate). */
  mayRead(ctx: Ctx, repository: string): boolean | Promise<boolean>;
}

/** Where manifest GETs are counted (discovery's PullCounter): synchronous, O(1). */
export interface PullRecorder {
  pulled(repository: string, reference: string, digest: string): void;
}

/** What a route handler gets for one request. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  id: string;
  /** The request path with the configured prefix removed, still percent-encoded (one-component names already rewritten). */
  path: string;
  query: URLSearchParams;
  registry: Registry;
  urls: UrlBuilder;
  log: Logger;
  /** Bytes of request body consumed, for logs and metrics. */
  bytesIn: number;
  /** Who is asking, for logs and events (empty for anonymous). */
  identity: Identity;
  /** Who is asking, for the access decision: a token's bearer is `granted` (exactly the token's access list). */
  principal: Principal;
  /** Whom the credentials belong to: the account a Berth token was issued to; otherwise the principal itself. */
  holder: Principal;
  access: RequestAccess;
  /** A repository name as the registry stores it (with accounts on, `ubuntu` is `library/ubuntu`). */
  canonicalName(name: string): string;
  /** Counts each manifest GET answered 200 (absent: nothing counts). */
  pulls?: PullRecorder;
  /** berth.sendfile: how a blob's body leaves over plain HTTP. */
  sendfile: SendfileMode;
}

export type Handler = (ctx: Ctx) => Promise<void>;
