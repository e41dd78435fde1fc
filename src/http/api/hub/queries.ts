/**
 * The listings the Hub's services do not have in the shape the API needs:
 * repositories the caller may read (filtered inside the query with
 * whereReadable, so a page is always full and a private name never shows),
 * the audit log with filters by actor, action, target and time, and stars
 * (who starred a repository, what a user starred) paged by key.
 */
import type { AccessMode, PolicyOptions } from '../../../access/policy.js';
import type { Principal } from '../../../access/types.js';
import { sql } from '../../../metadata/kysely.js';
import { readableCondition, whereReadable } from '../../../hub/index.js';
import { namespaceRange } from '../../../metadata/accounts.js';
import type { AuditEntry } from '../../../metadata/credentials.js';
import type { MetadataStore } from '../../../metadata/store.js';

export interface RepositorySummary {
  name: string;
  visibility: 'public' | 'private';
  tags: number;
  createdAt: number;
}

/**
 * Repositories `principal` may read, in name order after `after`: those the
 * catalog lists (holding a manifest, not being deleted), with their tag count.
 */
export async function readableRepositories(
  store: MetadataStore,
  mode: AccessMode,
  principal: Principal,
  options: PolicyOptions,
  page: { after?: string; limit: number; namespace?: string },
): Promise<RepositorySummary[]> {
  let q = store.db
    .selectFrom('repositories as r')
    .select((eb) => [
      'r.name',
      'r.visibility',
      'r.created_at',
      eb.selectFrom('tags as t').select((e) => e.fn.countAll<number>().as('n')).whereRef('t.repository_id', '=', 'r.id').as('tags'),
    ])
    .where('r.name', '>', page.after ?? '')
    .where('r.deleting_since', 'is', null)
    .where(({ exists, selectFrom }) => exists(selectFrom('manifests as m').select('m.id').whereRef('m.repository_id', '=', 'r.id')));
  if (page.namespace !== undefined) {
    const [low, high] = namespaceRange(page.namespace);
    q = q.where('r.name', '>=', low).where('r.name', '<', high);
  }
  q = whereReadable(q, mode, principal, options, { name: 'r.name', visibility: 'r.visibility', at: await store.clock() });
  const rows = await q.orderBy('r.name').limit(page.limit).execute();
  return rows.map((r) => ({ name: r.name, visibility: r.visibility, tags: Number(r.tags ?? 0), createdAt: Number(r.created_at) }));
}

/** A repository's row: when it was created (null when there is none). */
export async function repositoryCreatedAt(store: MetadataStore, name: string): Promise<number | null> {
  const row = await store.db.selectFrom('repositories').select('created_at').where('name', '=', name).executeTakeFirst();
  return row ? Number(row.created_at) : null;
}

export interface AuditFilter {
  /** Entries with an id below this (the previous page's last). */
  before?: number;
  limit: number;
  actor?: string;
  action?: string;
  target?: string;
  /** At or after (ms). */
  since?: number;
  /** Before (ms). */
  until?: number;
}

/** Audit entries newest first (by id), filtered. */
export async function auditEntries(store: MetadataStore, f: AuditFilter): Promise<AuditEntry[]> {
  let q = store.db.selectFrom('audit_log').selectAll();
  if (f.before !== undefined) q = q.where('id', '<', f.before);
  if (f.actor !== undefined) q = q.where('actor', '=', f.actor);
  if (f.action !== undefined) q = q.where('action', '=', f.action);
  if (f.target !== undefined) q = q.where('target', '=', f.target);
  if (f.since !== undefined) q = q.where('at', '>=', f.since);
  if (f.until !== undefined) q = q.where('at', '<', f.until);
  const rows = await q.orderBy('id', 'desc').limit(f.limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: Number(r.at),
    actor: r.actor,
    actorId: r.actor_id === null ? null : Number(r.actor_id),
    action: r.action,
    target: r.target,
    requestId: r.request_id,
    client: r.client,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
  }));
}

/** A key of a newest-first list of stars: the star's time and the name, `MS:NAME`. */
export interface StarKey {
  at: number;
  name: string;
}

export function parseStarKey(last: string | undefined): StarKey | undefined {
  if (last === undefined) return undefined;
  const m = /^(\d{1,15}):(.+)$/s.exec(last);
  if (!m) return undefined;
  return { at: Number(m[1]), name: m[2]! };
}

export const starKey = (s: { name: string; starredAt: number }) => `${s.starredAt}:${s.name}`;

/** Who starred a repository, newest star first, after `after`. */
export async function stargazers(store: MetadataStore, repository: string, page: { after?: StarKey; limit: number }): Promise<{ name: string; starredAt: number }[]> {
  const after = page.after ? sql`AND (s.created_at < ${page.after.at} OR (s.created_at = ${page.after.at} AND a.name > ${page.after.name}))` : sql``;
  const rows = await sql<{ name: string; created_at: number }>`
    SELECT a.name, s.created_at FROM stars s
      JOIN repositories r ON r.id = s.repository_id
      JOIN accounts a ON a.id = s.account_id
    WHERE r.name = ${repository} ${after}
    ORDER BY s.created_at DESC, a.name LIMIT ${page.limit}`.execute(store.db);
  return rows.rows.map((r) => ({ name: r.name, starredAt: Number(r.created_at) }));
}

/** What an account starred that `reader` may read, newest star first, after `after`. */
export async function starredRepositories(
  store: MetadataStore,
  reader: Principal,
  options: PolicyOptions,
  accountId: number,
  page: { after?: StarKey; limit: number },
): Promise<{ name: string; starredAt: number }[]> {
  const readable = readableCondition('accounts', reader, options, { name: 'r.name', visibility: 'r.visibility', at: await store.clock() });
  const after = page.after ? sql`AND (s.created_at < ${page.after.at} OR (s.created_at = ${page.after.at} AND r.name > ${page.after.name}))` : sql``;
  const rows = await sql<{ name: string; created_at: number }>`
    SELECT r.name, s.created_at FROM stars s JOIN repositories r ON r.id = s.repository_id
    WHERE s.account_id = ${accountId} AND ${readable} ${after}
    ORDER BY s.created_at DESC, r.name LIMIT ${page.limit}`.execute(store.db);
  return rows.rows.map((r) => ({ name: r.name, starredAt: Number(r.created_at) }));
}
