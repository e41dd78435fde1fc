/**
 * Accounts (registration, the caller's own account, password and email,
 * deletion, the administrators' list), sessions (log in with a cookie and a
 * CSRF token, log out) and personal access tokens.
 */
import { HubError } from '../../../hub/index.js';
import { HubCredentialVerifier } from '../../../hub/credentials.js';
import { dummyVerify } from '../../../hub/passwords.js';
import type { Account } from '../../../hub/index.js';
import {
  isAdmin,
  noContent,
  numericLast,
  numericOrder,
  operation,
  pageOf,
  pageResponse,
  requireAdmin,
  requireCredentialsOwner,
  requireUser,
  respond,
  type Services,
  type UserPrincipal,
} from './common.js';
import { ApiError, denied, notFound, unauthorized } from './errors.js';
import * as S from './schemas.js';
import { csrfTokenOf, SESSION_COOKIE } from './sessions.js';
import type { Cookie, HandlerInput } from './types.js';

type AnyInput = HandlerInput<unknown, unknown, unknown>;

const accountBody = (a: Account) => ({ name: a.name, kind: a.kind, email: a.email, admin: a.admin, disabled: a.disabled, createdAt: a.createdAt });

/**
 * The caller acting on account `name`: themself, or an administrator. Anyone
 * else gets the answer of a missing account, so another user's tokens and
 * settings are invisible.
 */
async function accountFor(s: Services, input: AnyInput, name: string, credentials: boolean): Promise<{ me: UserPrincipal; self: boolean; account: Account }> {
  const me = credentials ? requireCredentialsOwner(input) : requireUser(input);
  const self = me.name === name;
  if (!self && !isAdmin(me)) throw notFound(`account ${name}`);
  const account = await s.hub.accounts.get(name);
  if (!account) throw notFound(`account ${name}`);
  return { me, self, account };
}

export function sessionCookie(input: AnyInput, value: string, maxAgeSeconds: number): Cookie {
  return { name: SESSION_COOKIE, value, path: `${input.prefix}berth/`, httpOnly: true, secure: input.tls, sameSite: 'Strict', maxAge: maxAgeSeconds };
}

export const accountOperations = [
  operation(
    {
      id: 'createAccount',
      method: 'POST',
      path: '/berth/v1/accounts',
      summary: 'Register, or (administrators) create an account',
      description:
        'Self-service registration as auth.accounts.registration allows (open; closed: administrators only; invite: with an invitation code). An administrator creates accounts whatever the setting, administrators too.',
      tag: 'accounts',
      auth: 'optional',
      body: S.RegisterBody,
      response: { status: 201, description: 'the new account', schema: S.AccountSchema },
      errors: [403, 409],
    },
    async (s, input) => {
      const { name, password, email, invitation, admin } = input.body;
      let account: Account;
      if (isAdmin(input.principal)) account = await s.hub.accounts.create({ name, password, email: email ?? null, admin: admin ?? false }, input.actor);
      else {
        if (admin) throw denied('only administrators create administrators');
        account = await s.hub.accounts.register({ name, password, email: email ?? null, invitation }, input.actor);
      }
      return respond(201, accountBody(account));
    },
  ),
  operation(
    {
      id: 'listAccounts',
      method: 'GET',
      path: '/berth/v1/accounts',
      summary: 'List users and organizations (administrators)',
      tag: 'accounts',
      auth: 'required',
      query: S.AccountListQuery,
      response: { status: 200, description: 'a page of accounts, by name', schema: S.AccountListSchema },
      errors: [403],
      paginated: true,
    },
    async (s, input) => {
      requireAdmin(input);
      const { n, last, kind } = input.query;
      const accounts = await s.hub.accounts.list({ after: last, limit: n + 1, kind });
      return pageResponse(input, input.query, accounts.map(accountBody), (a) => a.name);
    },
  ),
  operation(
    {
      id: 'getAccount',
      method: 'GET',
      path: '/berth/v1/accounts/{name}',
      summary: 'An account (yourself, or any as an administrator)',
      tag: 'accounts',
      auth: 'required',
      params: { name: 'account' },
      response: { status: 200, description: 'the account', schema: S.AccountSchema },
      errors: [403, 404],
    },
    async (s, input) => respond(200, accountBody((await accountFor(s, input, input.params.name!, false)).account)),
  ),
  operation(
    {
      id: 'deleteAccount',
      method: 'DELETE',
      path: '/berth/v1/accounts/{name}',
      summary: 'Delete an account (yourself, or any as an administrator)',
      description: 'Refused (409 ACCOUNT_IN_USE, naming them) while it owns repositories or is the last owner of an organization; refused for the last administrator.',
      tag: 'accounts',
      auth: 'required',
      params: { name: 'account' },
      response: { status: 204, description: 'deleted' },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      const { account } = await accountFor(s, input, input.params.name!, true);
      await s.hub.accounts.delete(account.name, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'changePassword',
      method: 'PUT',
      path: '/berth/v1/accounts/{name}/password',
      summary: 'Change a password',
      description:
        'Your own needs the current password (rate-limited like a login: a limited attempt answers as a wrong password); an administrator sets anyone else\'s without it. Every session and refresh token of the account ends.',
      tag: 'accounts',
      auth: 'required',
      params: { name: 'account' },
      body: S.PasswordBody,
      response: { status: 204, description: 'changed; log in again' },
      errors: [403, 404],
    },
    async (s, input) => {
      const { me, self, account } = await accountFor(s, input, input.params.name!, true);
      if (account.kind !== 'user') throw notFound(`user ${account.name}`);
      if (!self) {
        await s.hub.accounts.changePassword(account.name, input.body.password, input.actor);
        return noContent();
      }
      const current = input.body.current;
      if (current === undefined) throw new ApiError('INVALID', 'body.current: required when changing your own password');
      const wrong = async (why: string) => {
        await s.hub.limiter.failed(me.name, input.client);
        await s.context.audit(input.actor, 'account.password.failed', me.name, { why });
        return new HubError('WRONG_PASSWORD', 'the current password is wrong');
      };
      const limit = await s.hub.limiter.locked(me.name, input.client, true);
      if (limit.locked) {
        await dummyVerify(current);
        throw await wrong('rate limited');
      }
      try {
        await s.hub.accounts.changePassword(account.name, input.body.password, input.actor, current);
      } catch (err) {
        if (err instanceof HubError && err.code === 'WRONG_PASSWORD') throw await wrong('password');
        throw err;
      }
      // As a login: the right password clears the account's count.
      if (limit.accountFailures > 0) await s.hub.limiter.succeeded(me.name);
      return noContent();
    },
  ),
  operation(
    {
      id: 'changeEmail',
      method: 'PUT',
      path: '/berth/v1/accounts/{name}/email',
      summary: 'Change (or with null remove) an email address',
      tag: 'accounts',
      auth: 'required',
      params: { name: 'account' },
      body: S.EmailBody,
      response: { status: 204, description: 'changed' },
      errors: [403, 404],
    },
    async (s, input) => {
      const { account } = await accountFor(s, input, input.params.name!, true);
      await s.hub.accounts.changeEmail(account.name, input.body.email, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'getMe',
      method: 'GET',
      path: '/berth/v1/me',
      summary: 'Who the caller is',
      tag: 'accounts',
      auth: 'required',
      response: { status: 200, description: 'the authenticated account or robot', schema: S.MeSchema },
      errors: [403],
    },
    async (s, input) => {
      const p = input.principal;
      const by = input.authenticatedBy === 'session' ? 'session' : 'authorization';
      if (p.kind === 'robot') return respond(200, { kind: 'robot', name: p.name, admin: false, email: null, organizations: [p.organization], token: null, authenticatedBy: by });
      const me = requireUser(input);
      const account = await s.hub.accounts.get(me.name);
      if (!account) throw unauthorized();
      const organizations = await s.context.accounts.organizationsOf(me.id);
      return respond(200, { kind: 'user', name: me.name, admin: account.admin, email: account.email, organizations, token: me.token ?? null, authenticatedBy: by });
    },
  ),

  // ---- sessions ----------------------------------------------------------------------
  operation(
    {
      id: 'login',
      method: 'POST',
      path: '/berth/v1/sessions',
      summary: 'Log in: a session cookie and its CSRF token',
      description:
        'Sets the berth_session cookie (HttpOnly, SameSite=Strict, Secure over TLS). Every state-changing request that authenticates with it must send the returned csrfToken as X-CSRF-Token. Wrong credentials, an unknown user and a rate-limited login all get the same 401.',
      tag: 'sessions',
      auth: 'none',
      body: S.LoginBody,
      response: { status: 201, description: 'logged in', schema: S.SessionSchema },
      errors: [401],
    },
    async (s, input) => {
      const verifier = new HubCredentialVerifier(s.context, s.hub.limiter, s.principals, () => input.requestId);
      const principal = await verifier.verify(input.body.username, input.body.password, input.client);
      if (!principal || (principal.kind !== 'user' && principal.kind !== 'robot')) throw new ApiError('UNAUTHORIZED', 'incorrect username or password');
      const session = await s.sessions.open(principal);
      const at = await s.store.clock();
      const response = respond(201, { name: principal.name, csrfToken: csrfTokenOf(session.secret), expiresAt: session.expiresAt });
      response.cookies.push(sessionCookie(input, session.secret, Math.max(1, Math.floor((session.expiresAt - at) / 1000))));
      response.headers['Cache-Control'] = 'no-store';
      return response;
    },
  ),
  operation(
    {
      id: 'getSession',
      method: 'GET',
      path: '/berth/v1/sessions/current',
      summary: 'The current session and its CSRF token (after a page reload)',
      tag: 'sessions',
      auth: 'required',
      response: { status: 200, description: 'the session', schema: S.SessionSchema },
      errors: [],
    },
    async (_s, input) => {
      if (!input.session) throw unauthorized();
      const p = input.principal as UserPrincipal;
      return respond(200, { name: p.name, csrfToken: input.session.csrfToken, expiresAt: input.session.expiresAt }, { 'Cache-Control': 'no-store' });
    },
  ),
  operation(
    {
      id: 'logout',
      method: 'DELETE',
      path: '/berth/v1/sessions/current',
      summary: 'Log out: the session ends and its cookie is removed',
      tag: 'sessions',
      auth: 'optional',
      response: { status: 204, description: 'logged out' },
      errors: [403],
    },
    async (s, input) => {
      if (input.session) {
        await s.sessions.close(input.session.hash);
        await s.context.audit(input.actor, 'logout', input.actor.name ?? null);
      }
      const response = noContent();
      if (input.sessionSecret !== null) response.cookies.push(sessionCookie(input, '', 0));
      return response;
    },
  ),

  // ---- personal access tokens ------------------------------------------------------------
  operation(
    {
      id: 'listTokens',
      method: 'GET',
      path: '/berth/v1/accounts/{name}/tokens',
      summary: "A user's personal access tokens (never their secrets)",
      tag: 'tokens',
      auth: 'required',
      params: { name: 'account' },
      query: S.PageQuery,
      response: { status: 200, description: 'a page of tokens, by id', schema: S.TokenListSchema },
      errors: [403, 404],
      paginated: true,
    },
    async (s, input) => {
      const { account } = await accountFor(s, input, input.params.name!, false);
      numericLast(input.query.last);
      const tokens = await s.hub.tokens.list(account.name);
      return pageResponse(input, input.query, pageOf(tokens, input.query, (t) => String(t.id), numericOrder), (t) => String(t.id));
    },
  ),
  operation(
    {
      id: 'createToken',
      method: 'POST',
      path: '/berth/v1/accounts/{name}/tokens',
      summary: 'Create a personal access token: its secret is in this answer only',
      tag: 'tokens',
      auth: 'required',
      params: { name: 'account' },
      body: S.TokenBody,
      response: { status: 201, description: 'the token and its secret', schema: S.NewTokenSchema },
      errors: [403, 404],
    },
    async (s, input) => {
      const { account } = await accountFor(s, input, input.params.name!, true);
      const expiresInMs = input.body.expiresIn === undefined ? null : S.durationMs(input.body.expiresIn);
      const token = await s.hub.tokens.create(account.name, { name: input.body.name, scopes: input.body.scopes, expiresInMs }, input.actor);
      return respond(201, token, { 'Cache-Control': 'no-store' });
    },
  ),
  operation(
    {
      id: 'revokeToken',
      method: 'DELETE',
      path: '/berth/v1/accounts/{name}/tokens/{id}',
      summary: 'Revoke a personal access token: it stops working at once',
      tag: 'tokens',
      auth: 'required',
      params: { name: 'account', id: 'id' },
      response: { status: 204, description: 'revoked' },
      errors: [403, 404],
    },
    async (s, input) => {
      // A personal access token revokes none, not even another of the account's (requireCredentialsOwner).
      const { account } = await accountFor(s, input, input.params.name!, true);
      await s.hub.tokens.revoke(account.name, Number(input.params.id), input.actor);
      return noContent();
    },
  ),
];
