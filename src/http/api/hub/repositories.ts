/**
 * Repositories (what the caller may see, one repository, its visibility,
 * its delete), collaborators on a user's repository, and the audit log.
 * Every repository answer goes through the one decision (src/access): a
 * repository the caller may not read is answered as a missing one.
 */
import { effectivePermission } from '../../../access/policy.js';
import { namespaceOf } from '../../../hub/index.js';
import { namedRepository, noContent, numericLast, operation, pageOf, pageResponse, repositoryFor, requireAdmin, requireManager, respond, type Services } from './common.js';
import { ApiError } from './errors.js';
import { auditEntries, readableRepositories, repositoryCreatedAt } from './queries.js';
import * as S from './schemas.js';
import type { HandlerInput } from './types.js';

const repo = { name: 'repository' } as const;

/** The repository as getRepository answers it (after the one decision: 404 NAME_UNKNOWN when the caller may not read it). */
export async function describeRepository(s: Services, input: HandlerInput<unknown, unknown, unknown>, name: string) {
  const facts = await repositoryFor(s, input.principal, name, 'pull');
  const ns = namespaceOf(name);
  const owner = name.includes('/') ? await s.hub.accounts.get(ns) : null;
  const [usage, createdAt] = await Promise.all([s.store.collection.repositoryUsage(name), repositoryCreatedAt(s.store, name)]);
  const permission = effectivePermission(input.principal, facts, s.policy);
  return {
    name,
    namespace: ns,
    owner: owner ? { name: owner.name, kind: owner.kind } : null,
    visibility: facts.visibility,
    createdAt: createdAt ?? 0,
    tags: usage?.tags ?? 0,
    blobs: usage?.blobs ?? 0,
    sizeBytes: usage?.bytes ?? 0,
    // A token's bearer reads at least (it got this far); granted principals have no Hub permission of their own.
    permission: permission === 'none' ? 'read' : permission,
  };
}

export const repositoryOperations = [
  operation(
    {
      id: 'listRepositories',
      method: 'GET',
      path: '/berth/v1/repositories',
      summary: 'The repositories the caller may read',
      description: 'Filtered inside the query: a page is always full, and a repository the caller may not read never shows.',
      tag: 'repositories',
      auth: 'optional',
      query: S.RepositoryListQuery,
      response: { status: 200, description: 'a page of repositories, by name', schema: S.RepositoryListSchema },
      errors: [],
      paginated: true,
    },
    async (s, input) => {
      const { n, last, namespace } = input.query;
      const items = await readableRepositories(s.store, s.mode, input.principal, s.policy, { after: last, limit: n + 1, namespace });
      return pageResponse(input, input.query, items, (r) => r.name);
    },
  ),
  operation(
    {
      id: 'getRepository',
      method: 'GET',
      path: '/berth/v1/repositories/{name}',
      summary: 'A repository: owner, visibility, tag count, size, and the caller\'s permission',
      description: 'The name may hold slashes as they are (as /v2/ takes it) or percent-encoded (%2F).',
      tag: 'repositories',
      auth: 'optional',
      params: repo,
      response: { status: 200, description: 'the repository', schema: S.RepositorySchema },
      errors: [404],
    },
    async (s, input) => respond(200, await describeRepository(s, input, input.params.name!)),
  ),
  operation(
    {
      id: 'updateRepository',
      method: 'PATCH',
      path: '/berth/v1/repositories/{name}',
      summary: "Set a repository's visibility (admin on the repository)",
      tag: 'repositories',
      auth: 'required',
      params: repo,
      body: S.RepositoryPatchBody,
      response: { status: 200, description: 'the repository', schema: S.RepositorySchema },
      errors: [403, 404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      await s.hub.repositories.setVisibility(name, input.body.visibility, input.actor);
      return respond(200, await describeRepository(s, input, name));
    },
  ),
  operation(
    {
      id: 'deleteRepository',
      method: 'DELETE',
      path: '/berth/v1/repositories/{name}',
      summary: 'Delete a repository: its tags, manifests and blob links (admin on the repository)',
      description: "The registry's repository delete (blob bytes no other repository uses are left to garbage collection). Its permissions, kept by name, stay.",
      tag: 'repositories',
      auth: 'required',
      params: repo,
      response: { status: 202, description: 'deleted', schema: S.RepositoryDeletedSchema },
      errors: [403, 404, 405, 409],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const deleted = await s.deleteRepository(name, input.actor.name ?? undefined);
      await s.context.audit(input.actor, 'repository.delete', name, { manifests: deleted.manifests, tags: deleted.tags });
      return respond(202, { repository: name, manifestsDeleted: deleted.manifests, tagsDeleted: deleted.tags });
    },
  ),
  operation(
    {
      id: 'listCollaborators',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/collaborators',
      summary: "A user's repository's direct collaborators (admin on the repository)",
      description: 'The `-` path segment ends the repository name (no name component can be `-`).',
      tag: 'repositories',
      auth: 'required',
      params: repo,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of collaborators, by name', schema: S.CollaboratorListSchema },
      errors: [403, 404],
      paginated: true,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const collaborators = await s.hub.repositories.collaborators(name);
      return pageResponse(input, input.query, pageOf(collaborators, input.query, (c) => c.name), (c) => c.name);
    },
  ),
  operation(
    {
      id: 'setCollaborator',
      method: 'PUT',
      path: '/berth/v1/repositories/{name}/-/collaborators/{user}',
      summary: 'Give a user read, write or admin on a repository of a user (admin on the repository)',
      description: 'Organizations grant through teams.',
      tag: 'repositories',
      auth: 'required',
      params: { ...repo, user: 'account' },
      body: S.CollaboratorBody,
      response: { status: 204, description: 'set' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      const name = await namedRepository(s, input, 'delete');
      await s.hub.repositories.setCollaborator(name, input.params.user!, input.body.permission, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'removeCollaborator',
      method: 'DELETE',
      path: '/berth/v1/repositories/{name}/-/collaborators/{user}',
      summary: 'Remove a collaborator (admin on the repository)',
      tag: 'repositories',
      auth: 'required',
      params: { ...repo, user: 'account' },
      response: { status: 204, description: 'removed' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      const name = await namedRepository(s, input, 'delete');
      const user = input.params.user!;
      if (!(await s.hub.repositories.collaborators(name)).some((c) => c.name === user)) throw new ApiError('NOT_FOUND', `${user} is no collaborator on ${name}`);
      await s.hub.repositories.setCollaborator(name, user, 'none', input.actor);
      return noContent();
    },
  ),

  // ---- audit log ---------------------------------------------------------------------------
  operation(
    {
      id: 'listAudit',
      method: 'GET',
      path: '/berth/v1/audit',
      summary: 'The audit log, newest first (administrators)',
      description: 'Every security-relevant act: logins and failed logins, accounts, tokens, robots, organizations, teams, permissions, visibility, deletes; with the actor, the time, the request id and the client address.',
      tag: 'audit',
      auth: 'required',
      query: S.AuditQuery,
      response: { status: 200, description: 'a page of entries, newest first; `last` is an entry id', schema: S.AuditListSchema },
      errors: [403],
      paginated: true,
    },
    async (s, input) => {
      requireAdmin(input);
      const q = input.query;
      const entries = await auditEntries(s.store, {
        before: numericLast(q.last),
        limit: q.n + 1,
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since === undefined ? undefined : S.parseTime(q.since),
        until: q.until === undefined ? undefined : S.parseTime(q.until),
      });
      const items = entries.map(({ actorId: _id, ...e }) => e);
      return pageResponse(input, q, items, (e) => String(e.id));
    },
  ),
];
