/**
 * "Readable by this principal" as an SQL condition over `repositories`, for
 * listings (the catalog, the API's repository list) to put inside their
 * query, so that pagination counts only what the caller may see. It says
 * in SQL what src/access/policy.ts says for one repository: public ones (for
 * anonymous callers only when anonymous pulls are allowed), the caller's own
 * namespace, organizations' teams (owners: everything; others: their rows
 * and '*'), collaborators, a robot's permission rows, a token's access list.
 */
import type { Expression, SelectQueryBuilder, SqlBool } from 'kysely';
import { sql } from '../metadata/kysely.js';
import type { AccessMode, PolicyOptions } from '../access/policy.js';
import type { Principal } from '../access/types.js';
import { OWNERS_TEAM } from '../metadata/accounts.js';

export interface ReadableColumns {
  /** The repository name column, e.g. 'r.name' (default 'repositories.name'). */
  name?: string;
  /** Its visibility column (default: the same table's `visibility`). */
  visibility?: string;
  /** The time robots' expiry is judged at (ms; default now). */
  at?: number;
}

export function readableCondition(mode: AccessMode, principal: Principal, options: PolicyOptions, columns: ReadableColumns = {}): Expression<SqlBool> {
  const nameColumn = columns.name ?? 'repositories.name';
  const name = sql.ref(nameColumn);
  const visibility = sql.ref(columns.visibility ?? nameColumn.replace(/[^.]+$/, 'visibility'));
  const TRUE = sql<SqlBool>`1 = 1`;
  const FALSE = sql<SqlBool>`1 = 0`;
  const isPublic = sql<SqlBool>`${visibility} = 'public'`;

  if (principal.kind === 'granted') {
    const names = principal.access.filter((a) => a.type === 'repository' && (a.actions.includes('pull') || a.actions.includes('*'))).map((a) => a.name);
    return names.length ? sql<SqlBool>`${name} IN (${sql.join(names)})` : FALSE;
  }
  if (mode === 'open' && (principal.kind === 'anonymous' || principal.kind === 'htpasswd')) return TRUE;
  switch (principal.kind) {
    case 'anonymous':
      return options.anonymousPull ? isPublic : FALSE;
    case 'user': {
      if (principal.admin) return TRUE;
      const id = principal.id;
      // substr(…) = 'ns/' rather than LIKE: '_' is a LIKE wildcard and may occur in names.
      return sql<SqlBool>`(${isPublic}
        OR substr(${name}, 1, ${principal.name.length + 1}) = ${`${principal.name}/`}
        OR EXISTS (SELECT 1 FROM collaborators c WHERE c.repository = ${name} AND c.account_id = ${id})
        OR EXISTS (SELECT 1 FROM team_members tm
                   JOIN teams t ON t.id = tm.team_id
                   JOIN accounts o ON o.id = t.organization_id
                   WHERE tm.account_id = ${id}
                     AND substr(${name}, 1, length(o.name) + 1) = o.name || '/'
                     AND (t.name = ${OWNERS_TEAM}
                          OR EXISTS (SELECT 1 FROM team_permissions tp WHERE tp.team_id = t.id AND tp.repository IN (${name}, '*')))))`;
    }
    case 'robot':
      return sql<SqlBool>`(${isPublic} OR EXISTS (SELECT 1 FROM robot_permissions rp JOIN robots b ON b.id = rp.robot_id
        WHERE rp.robot_id = ${principal.id} AND rp.repository = ${name}
          AND b.disabled_at IS NULL AND (b.expires_at IS NULL OR b.expires_at > ${columns.at ?? Date.now()})))`;
    default:
      return FALSE;
  }
}

/** Adds the "readable by `principal`" condition to a query over `repositories` (pass `columns` when it is aliased). */
export function whereReadable<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  mode: AccessMode,
  principal: Principal,
  options: PolicyOptions,
  columns?: ReadableColumns,
): SelectQueryBuilder<DB, TB, O> {
  return query.where(readableCondition(mode, principal, options, columns));
}
