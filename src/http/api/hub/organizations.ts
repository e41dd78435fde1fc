/**
 * Organizations, their members, teams and robots, and invitations. Whoever
 * is not a member of an organization (nor an administrator) gets the answer
 * of a missing one: its teams, members and robots are invisible to them.
 * Owners manage; members read.
 */
import { decide } from '../../../access/policy.js';
import type { Principal } from '../../../access/types.js';
import { HubError } from '../../../hub/index.js';
import { isAdmin, noContent, operation, organizationRole, pageOf, pageResponse, requireManager, requireUser, respond, type Services } from './common.js';
import { ApiError, denied } from './errors.js';
import * as S from './schemas.js';

const org = { org: 'account' } as const;
const team = { org: 'account', team: 'team' } as const;

export const organizationOperations = [
  operation(
    {
      id: 'listOrganizations',
      method: 'GET',
      path: '/berth/v1/orgs',
      summary: "The organizations the caller is a member of, with the caller's role",
      tag: 'organizations',
      auth: 'required',
      query: S.PageQuery,
      response: { status: 200, description: 'a page of organizations, by name', schema: S.OrganizationListSchema },
      errors: [403],
      paginated: true,
    },
    async (s, input) => {
      const me = requireUser(input);
      const names = await s.context.accounts.organizationsOf(me.id);
      const page = pageOf(names, input.query, (n) => n);
      const items = await Promise.all(page.map(async (name) => ({ name, role: (await s.hub.facts.organizationRole(me, name)) ?? 'member' })));
      return pageResponse(input, input.query, items, (o) => o.name);
    },
  ),
  operation(
    {
      id: 'createOrganization',
      method: 'POST',
      path: '/berth/v1/orgs',
      summary: 'Create an organization: the caller becomes its first owner',
      tag: 'organizations',
      auth: 'required',
      body: S.NameBody,
      response: { status: 201, description: 'the organization', schema: S.OrganizationSchema },
      errors: [403, 409],
    },
    async (s, input) => {
      const me = requireManager(input);
      // An administrator may take a namespace that already holds repositories; anyone else may not.
      await s.hub.organizations.create(input.body.name, me.name, input.actor, { adopt: isAdmin(input.principal) });
      return respond(201, { name: input.body.name, role: 'owner' });
    },
  ),
  operation(
    {
      id: 'getOrganization',
      method: 'GET',
      path: '/berth/v1/orgs/{org}',
      summary: "An organization and the caller's role in it",
      tag: 'organizations',
      auth: 'required',
      params: org,
      response: { status: 200, description: 'the organization', schema: S.OrganizationSchema },
      errors: [404],
    },
    async (s, input) => {
      const role = await organizationRole(s, input.principal, input.params.org!, 'member');
      return respond(200, { name: input.params.org, role });
    },
  ),
  operation(
    {
      id: 'deleteOrganization',
      method: 'DELETE',
      path: '/berth/v1/orgs/{org}',
      summary: 'Delete an organization (owners), refused while it owns repositories',
      tag: 'organizations',
      auth: 'required',
      params: org,
      response: { status: 204, description: 'deleted, with its teams and robots' },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.accounts.delete(input.params.org!, input.actor);
      return noContent();
    },
  ),

  // ---- members ---------------------------------------------------------------------------
  operation(
    {
      id: 'listMembers',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/members',
      summary: 'Members of an organization, and who owns it',
      tag: 'organizations',
      auth: 'required',
      params: org,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of members, by name', schema: S.MemberListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      await organizationRole(s, input.principal, input.params.org!, 'member');
      const members = await s.hub.organizations.members(input.params.org!);
      return pageResponse(input, input.query, pageOf(members, input.query, (m) => m.name), (m) => m.name);
    },
  ),
  operation(
    {
      id: 'addMember',
      method: 'PUT',
      path: '/berth/v1/orgs/{org}/members/{user}',
      summary: 'Add a member (owners)',
      tag: 'organizations',
      auth: 'required',
      params: { org: 'account', user: 'account' },
      response: { status: 204, description: 'a member (already, or now)' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.addMember(input.params.org!, input.params.user!, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'removeMember',
      method: 'DELETE',
      path: '/berth/v1/orgs/{org}/members/{user}',
      summary: 'Remove a member from the organization and all its teams (owners; or a member leaving)',
      description: 'The last owner cannot leave, nor be removed (409 LAST_OWNER): add another owner first.',
      tag: 'organizations',
      auth: 'required',
      params: { org: 'account', user: 'account' },
      response: { status: 204, description: 'removed' },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      const me = requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, me.name === input.params.user ? 'member' : 'owner');
      await s.hub.organizations.removeMember(input.params.org!, input.params.user!, input.actor);
      return noContent();
    },
  ),

  // ---- teams -----------------------------------------------------------------------------
  operation(
    {
      id: 'listTeams',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/teams',
      summary: "An organization's teams",
      tag: 'teams',
      auth: 'required',
      params: org,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of teams, by name', schema: S.TeamListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      await organizationRole(s, input.principal, input.params.org!, 'member');
      const teams = (await s.hub.organizations.teams(input.params.org!)).map((name) => ({ name }));
      return pageResponse(input, input.query, pageOf(teams, input.query, (t) => t.name), (t) => t.name);
    },
  ),
  operation(
    {
      id: 'createTeam',
      method: 'POST',
      path: '/berth/v1/orgs/{org}/teams',
      summary: 'Create a team (owners)',
      tag: 'teams',
      auth: 'required',
      params: org,
      body: S.NameBody,
      response: { status: 201, description: 'the team', schema: S.TeamSchema },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.createTeam(input.params.org!, input.body.name, input.actor);
      return respond(201, { name: input.body.name, members: [], permissions: [] });
    },
  ),
  operation(
    {
      id: 'getTeam',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/teams/{team}',
      summary: 'A team, its members and permissions',
      tag: 'teams',
      auth: 'required',
      params: team,
      response: { status: 200, description: 'the team', schema: S.TeamSchema },
      errors: [404],
    },
    async (s, input) => {
      const { org: o, team: t } = input.params as { org: string; team: string };
      const role = await organizationRole(s, input.principal, o, 'member');
      const [members, permissions] = await Promise.all([s.hub.organizations.teamMembers(o, t), s.hub.organizations.teamPermissions(o, t)]);
      return respond(200, { name: t, members, permissions: await permissionsShown(s, input.principal, role, permissions) });
    },
  ),
  operation(
    {
      id: 'deleteTeam',
      method: 'DELETE',
      path: '/berth/v1/orgs/{org}/teams/{team}',
      summary: 'Delete a team (owners); the owners team cannot be deleted',
      tag: 'teams',
      auth: 'required',
      params: team,
      response: { status: 204, description: 'deleted' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.deleteTeam(input.params.org!, input.params.team!, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'listTeamMembers',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/teams/{team}/members',
      summary: "A team's members",
      tag: 'teams',
      auth: 'required',
      params: team,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of members, by name', schema: S.TeamMemberListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      await organizationRole(s, input.principal, input.params.org!, 'member');
      const members = (await s.hub.organizations.teamMembers(input.params.org!, input.params.team!)).map((name) => ({ name }));
      return pageResponse(input, input.query, pageOf(members, input.query, (m) => m.name), (m) => m.name);
    },
  ),
  operation(
    {
      id: 'addTeamMember',
      method: 'PUT',
      path: '/berth/v1/orgs/{org}/teams/{team}/members/{user}',
      summary: 'Add a user to a team (owners); they join the organization too',
      tag: 'teams',
      auth: 'required',
      params: { ...team, user: 'account' },
      response: { status: 204, description: 'a member (already, or now)' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.addTeamMember(input.params.org!, input.params.team!, input.params.user!, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'removeTeamMember',
      method: 'DELETE',
      path: '/berth/v1/orgs/{org}/teams/{team}/members/{user}',
      summary: 'Remove a user from a team (owners); the owners team keeps its last member',
      tag: 'teams',
      auth: 'required',
      params: { ...team, user: 'account' },
      response: { status: 204, description: 'removed' },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.removeTeamMember(input.params.org!, input.params.team!, input.params.user!, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'listTeamPermissions',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/teams/{team}/permissions',
      summary: "A team's repository permissions",
      tag: 'teams',
      auth: 'required',
      params: team,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of permissions, by repository', schema: S.TeamPermissionListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      const role = await organizationRole(s, input.principal, input.params.org!, 'member');
      const permissions = await permissionsShown(s, input.principal, role, await s.hub.organizations.teamPermissions(input.params.org!, input.params.team!));
      return pageResponse(input, input.query, pageOf(permissions, input.query, (p) => p.repository), (p) => p.repository);
    },
  ),
  operation(
    {
      id: 'setTeamPermission',
      method: 'PUT',
      path: '/berth/v1/orgs/{org}/teams/{team}/permissions',
      summary: "Set a team's permission on a repository of the organization, or on '*' (owners)",
      description: "The repository need not exist yet. Permission none removes the grant.",
      tag: 'teams',
      auth: 'required',
      params: team,
      body: S.TeamPermissionBody,
      response: { status: 204, description: 'set' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      await s.hub.organizations.setTeamPermission(input.params.org!, input.params.team!, input.body.repository, input.body.permission, input.actor);
      return noContent();
    },
  ),

  // ---- robots ------------------------------------------------------------------------------
  operation(
    {
      id: 'listRobots',
      method: 'GET',
      path: '/berth/v1/orgs/{org}/robots',
      summary: "An organization's robots (owners), never their secrets",
      tag: 'robots',
      auth: 'required',
      params: org,
      query: S.PageQuery,
      response: { status: 200, description: 'a page of robots, by login', schema: S.RobotListSchema },
      errors: [403, 404],
      paginated: true,
    },
    async (s, input) => {
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      const robots = await s.hub.robots.list(input.params.org!);
      return pageResponse(input, input.query, pageOf(robots, input.query, (r) => r.login), (r) => r.login);
    },
  ),
  operation(
    {
      id: 'createRobot',
      method: 'POST',
      path: '/berth/v1/orgs/{org}/robots',
      summary: 'Create a robot with per-repository permissions and an optional expiry (owners): its secret is in this answer only',
      tag: 'robots',
      auth: 'required',
      params: org,
      body: S.RobotBody,
      response: { status: 201, description: 'the robot and its secret', schema: S.NewRobotSchema },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      const b = input.body;
      const robot = await s.hub.robots.create(
        input.params.org!,
        { name: b.name, description: b.description, expiresInMs: b.expiresIn === undefined ? null : S.durationMs(b.expiresIn), permissions: b.permissions },
        input.actor,
      );
      return respond(201, robot, { 'Cache-Control': 'no-store' });
    },
  ),
  operation(
    {
      id: 'revokeRobot',
      method: 'DELETE',
      path: '/berth/v1/orgs/{org}/robots/{robot}',
      summary: 'Revoke a robot (owners): disabled at once and kept listed; ?purge=true deletes it',
      tag: 'robots',
      auth: 'required',
      params: { org: 'account', robot: 'robot' },
      query: S.RobotDeleteQuery,
      response: { status: 204, description: 'revoked' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      await organizationRole(s, input.principal, input.params.org!, 'owner');
      if (input.query.purge === 'true') await s.hub.robots.delete(input.params.org!, input.params.robot!, input.actor);
      else await s.hub.robots.disable(input.params.org!, input.params.robot!, input.actor);
      return noContent();
    },
  ),

  // ---- invitations -------------------------------------------------------------------------
  operation(
    {
      id: 'createInvitation',
      method: 'POST',
      path: '/berth/v1/invitations',
      summary: 'Create an invitation code (administrators, or an owner of the named organization), when registration is by invitation',
      tag: 'accounts',
      auth: 'required',
      body: S.InvitationBody,
      response: { status: 201, description: 'the code, shown once', schema: S.InvitationSchema },
      errors: [403, 404],
    },
    async (s, input) => {
      requireManager(input);
      if (s.hub.settings.registration !== 'invite') throw new ApiError('INVALID', 'registration is not by invitation (auth.accounts.registration)');
      const { email, organization, expiresIn } = input.body;
      if (organization !== undefined) await organizationRole(s, input.principal, organization, 'owner');
      else if (!isAdmin(input.principal)) throw denied('only administrators invite without an organization: name one you own');
      const lifetimeMs = expiresIn === undefined ? undefined : (S.durationMs(expiresIn) ?? undefined);
      try {
        const invitation = await s.hub.accounts.invite({ email: email ?? null, lifetimeMs }, { ...input.actor });
        if (organization !== undefined) await s.context.audit(input.actor, 'invitation.organization', organization, { email: email ?? null });
        return respond(201, invitation, { 'Cache-Control': 'no-store' });
      } catch (err) {
        if (err instanceof HubError && err.code === 'INVALID') throw new ApiError('INVALID', `body.email: ${err.message}`);
        throw err;
      }
    },
  ),
];

/**
 * A team's permissions as `principal` may see them: all of them for an
 * owner of the organization; for another member, those on every repository
 * (`*`) and on repositories they may read (a private repository of the
 * organization's is not named to a member who cannot read it). A name that
 * holds no repository yet is judged as if it held a private one, so whether
 * a row shows tells nothing of whether its repository exists.
 */
async function permissionsShown<P extends { repository: string }>(s: Services, principal: Principal, role: 'owner' | 'member', permissions: P[]): Promise<P[]> {
  if (role === 'owner') return permissions;
  const shown = await Promise.all(
    permissions.map(async ({ repository }) => {
      if (repository === '*') return true;
      const found = await s.hub.facts.facts(principal, repository);
      const facts = found.exists ? found : { ...found, exists: true, visibility: 'private' as const, permission: await s.hub.facts.permission(principal, repository, true) };
      return decide(s.mode, principal, 'pull', facts, s.policy).allowed;
    }),
  );
  return permissions.filter((_, i) => shown[i]);
}
