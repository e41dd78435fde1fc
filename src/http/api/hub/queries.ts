/**
 * The two listings the Hub's services do not have in the shape the API
 * needs: repositories the caller may read (filtered inside the query with
 * whereReadable, so a page is always full and a private name never shows)
 * and the audit log with filters by actor, action, target and time.
 */
import type { PolicyOptions } from '../../../access/policy.js';
import type { Principal } from '../../../access/types.js';
import { whereReadable } from '../../../hub/index.js';
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
  q = whereReadable(q, 'accounts', principal, options, { name: 'r.name', visibility: 'r.visibility', at: await store.clock() });
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
