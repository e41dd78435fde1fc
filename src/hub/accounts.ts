/**
 * Accounts: registration (open, closed or invite-only), administrators,
 * password and email changes, deletion, and the one-shot htpasswd import.
 * No authorization here: the caller (the API's edge, or the CLI run by an
 * operator) has decided who may call what.
 */
import type { AccountRow } from '../metadata/accounts.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import { accountNameProblem } from './names.js';
import { hashPassword, isBcrypt, verifyPassword } from './passwords.js';
import { hashSecret, INVITATION_PREFIX, newSecret } from './secrets.js';

/** What an account looks like outside the Hub: never its password hash. */
export interface Account {
  id: number;
  name: string;
  kind: 'user' | 'org';
  email: string | null;
  admin: boolean;
  createdAt: number;
  disabled: boolean;
}

export function publicAccount(a: AccountRow): Account {
  return { id: a.id, name: a.name, kind: a.kind, email: a.email, admin: a.admin, createdAt: a.createdAt, disabled: a.disabledAt !== null };
}

export const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;

export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD) return `must be at least ${MIN_PASSWORD} characters long`;
  if (password.length > MAX_PASSWORD) return `must be at most ${MAX_PASSWORD} characters long`;
  // Such a secret is taken for a token or robot secret at login, never for a password.
  if (password.startsWith('bpat_') || password.startsWith('brob_')) return 'must not start with bpat_ or brob_';
  return null;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

function checkEmail(email: string | null | undefined): string | null {
  if (email === undefined || email === null || email === '') return null;
  if (email.length > 254 || !EMAIL.test(email)) throw new HubError('INVALID', `email ${JSON.stringify(email)} is not an email address`);
  return email;
}

function checkName(name: string): void {
  const problem = accountNameProblem(name);
  if (problem) throw new HubError('NAME_INVALID', `name ${JSON.stringify(name)} ${problem}`);
}

function checkPassword(password: string): void {
  const problem = passwordProblem(password);
  if (problem) throw new HubError('INVALID', `the password ${problem}`);
}

export interface NewUser {
  name: string;
  password: string;
  email?: string | null;
  admin?: boolean;
}

export class AccountService {
  constructor(private readonly hub: HubContext) {}

  async get(name: string): Promise<Account | null> {
    const a = await this.hub.accounts.byName(name);
    return a ? publicAccount(a) : null;
  }

  async list(page: { after?: string; limit: number; kind?: 'user' | 'org' }): Promise<Account[]> {
    return (await this.hub.accounts.list(page)).map(publicAccount);
  }

  /** Creates a user whatever the registration setting (an administrator's act, or the CLI's). */
  async create(user: NewUser, actor: Actor): Promise<Account> {
    checkName(user.name);
    checkPassword(user.password);
    const email = checkEmail(user.email);
    const id = await this.hub.accounts.insert({ name: user.name, kind: 'user', email, passwordHash: await hashPassword(user.password), admin: user.admin ?? false });
    if (id === null) throw new HubError('NAME_TAKEN', `the name ${user.name} is taken`);
    await this.hub.audit(actor, 'account.create', user.name, { admin: user.admin ?? false });
    return publicAccount((await this.hub.accounts.byId(id))!);
  }

  /**
   * Self-service registration, as auth.accounts.registration allows: open to
   * anyone, closed to everyone, or with an invitation code (used once).
   */
  async register(user: { name: string; password: string; email?: string | null; invitation?: string }, actor: Actor): Promise<Account> {
    const mode = this.hub.settings.registration;
    if (mode === 'closed') throw new HubError('REGISTRATION_CLOSED', 'registration is closed: ask an administrator for an account');
    checkName(user.name);
    checkPassword(user.password);
    const email = checkEmail(user.email);
    await refuseHeldNamespace(this.hub, user.name);
    const passwordHash = await hashPassword(user.password);
    const values = { name: user.name, kind: 'user' as const, email, passwordHash };
    let id: number | null;
    if (mode === 'invite') {
      if (!user.invitation) throw new HubError('INVITATION_INVALID', 'registration needs an invitation');
      const codeHash = hashSecret(user.invitation);
      const invitation = await this.hub.credentials.invitation(codeHash);
      const t = await this.hub.store.clock();
      if (!invitation || invitation.usedAt !== null || invitation.expiresAt <= t) throw new HubError('INVITATION_INVALID', 'the invitation is unknown, used or expired');
      id = await this.hub.credentials.redeemInvitation(codeHash, (db) => this.hub.accounts.insert(values, db));
      if (id === null) {
        // Taken name (the invitation stays usable), or another registration used the invitation meanwhile.
        if (await this.hub.accounts.byName(user.name)) throw new HubError('NAME_TAKEN', `the name ${user.name} is taken`);
        throw new HubError('INVITATION_INVALID', 'the invitation is unknown, used or expired');
      }
    } else {
      id = await this.hub.accounts.insert(values);
      if (id === null) throw new HubError('NAME_TAKEN', `the name ${user.name} is taken`);
    }
    await this.hub.audit({ ...actor, name: actor.name ?? user.name, id: actor.id ?? id }, 'account.register', user.name, mode === 'invite' ? { invitation: true } : null);
    return publicAccount((await this.hub.accounts.byId(id))!);
  }

  /** An invitation code for invite-only registration, shown once. */
  async invite(options: { email?: string | null; lifetimeMs?: number }, actor: Actor): Promise<{ code: string; expiresAt: number }> {
    const email = checkEmail(options.email);
    const code = newSecret(INVITATION_PREFIX);
    const lifetimeMs = options.lifetimeMs ?? 7 * 24 * 3_600_000;
    await this.hub.credentials.insertInvitation({ codeHash: hashSecret(code), email, createdBy: actor.id ?? null, lifetimeMs });
    await this.hub.audit(actor, 'invitation.create', email, null);
    return { code, expiresAt: (await this.hub.store.clock()) + lifetimeMs };
  }

  private async user(name: string): Promise<AccountRow> {
    const a = await this.hub.accounts.byName(name);
    if (!a || a.kind !== 'user') throw new HubError('NOT_FOUND', `no user ${name}`);
    return a;
  }

  /**
   * Sets a new password. With `current`, it must match (a user changing
   * their own); without, an administrator or the CLI resets it. Every
   * refresh token of the account is revoked: sessions elsewhere end.
   */
  async changePassword(name: string, password: string, actor: Actor, current?: string): Promise<void> {
    const a = await this.user(name);
    if (current !== undefined && !(a.passwordHash && (await verifyPassword(current, a.passwordHash)))) throw new HubError('WRONG_PASSWORD', 'the current password is wrong');
    checkPassword(password);
    await this.hub.accounts.update(a.id, { passwordHash: await hashPassword(password) });
    await this.hub.credentials.revokeRefreshTokensOf(a.id);
    await this.hub.audit(actor, 'account.password', name);
  }

  async changeEmail(name: string, email: string | null, actor: Actor): Promise<void> {
    const a = await this.user(name);
    await this.hub.accounts.update(a.id, { email: checkEmail(email) });
    await this.hub.audit(actor, 'account.email', name);
  }

  async setAdmin(name: string, admin: boolean, actor: Actor): Promise<void> {
    const a = await this.user(name);
    if (a.admin && !admin && (await this.hub.accounts.countAdmins()) <= 1) throw new HubError('LAST_ADMIN', `${name} is the last administrator`);
    await this.hub.accounts.update(a.id, { admin });
    await this.hub.audit(actor, 'account.admin', name, { admin });
  }

  /** Disables (or enables again) a user: a disabled account cannot log in, and its tokens stop working. */
  async setDisabled(name: string, disabled: boolean, actor: Actor): Promise<void> {
    const a = await this.user(name);
    await this.hub.accounts.update(a.id, { disabled });
    if (disabled) await this.hub.credentials.revokeRefreshTokensOf(a.id);
    await this.hub.audit(actor, disabled ? 'account.disable' : 'account.enable', name);
  }

  /**
   * Deletes a user or an organization. Refused (ACCOUNT_IN_USE, naming
   * them) while it owns repositories, which must be deleted or moved first,
   * or while it is the last owner of an organization; refused (LAST_ADMIN)
   * for the last administrator. Its memberships, personal access tokens,
   * refresh tokens, collaborator rows, and (an organization's) teams and
   * robots go with it; the audit log keeps its name.
   */
  async delete(name: string, actor: Actor): Promise<void> {
    const a = await this.hub.accounts.byName(name);
    if (!a) throw new HubError('NOT_FOUND', `no account ${name}`);
    if (a.admin && (await this.hub.accounts.countAdmins()) <= 1) throw new HubError('LAST_ADMIN', `${name} is the last administrator`);
    const { deleted, blockers } = await this.hub.accounts.delete(a.id);
    if (!deleted) {
      if (blockers.repositories.length === 0 && blockers.organizations.length === 0) throw new HubError('NOT_FOUND', `no account ${name}`);
      const parts = [];
      if (blockers.repositories.length) parts.push(`it owns repositories (${blockers.repositories.join(', ')}${blockers.repositories.length >= 20 ? ', …' : ''}): delete them first`);
      if (blockers.organizations.length) parts.push(`it is the last owner of ${blockers.organizations.join(', ')}: add another owner or delete the organization first`);
      throw new HubError('ACCOUNT_IN_USE', `${name} cannot be deleted: ${parts.join('; ')}`, { ...blockers });
    }
    await this.hub.audit(actor, 'account.delete', name, { kind: a.kind });
  }

  /**
   * Imports the users of an htpasswd file (bcrypt only), keeping their
   * hashes: each is replaced by scrypt at the user's next login. Names that
   * are not valid account names, hashes that are not bcrypt, and names taken
   * already are skipped, each with its reason.
   */
  async importHtpasswd(text: string, actor: Actor): Promise<{ imported: string[]; skipped: { line: number; user: string; reason: string }[] }> {
    const imported: string[] = [];
    const skipped: { line: number; user: string; reason: string }[] = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const user = colon < 0 ? line : line.slice(0, colon);
      const hash = colon < 0 ? '' : line.slice(colon + 1);
      const skip = (reason: string) => skipped.push({ line: i + 1, user, reason });
      const problem = accountNameProblem(user);
      if (problem) {
        skip(`the name ${problem}`);
        continue;
      }
      if (!isBcrypt(hash)) {
        skip('not a bcrypt hash (htpasswd -B)');
        continue;
      }
      const id = await this.hub.accounts.insert({ name: user, kind: 'user', passwordHash: hash });
      if (id === null) {
        skip('the name is taken');
        continue;
      }
      imported.push(user);
    }
    if (imported.length) await this.hub.audit(actor, 'account.import', null, { source: 'htpasswd', users: imported });
    return { imported, skipped };
  }
}

/**
 * An account owns every repository under its name, so a name under which
 * repositories already live (pushed by an administrator, or before accounts
 * were on) is not given out by self-service: taking it would take them.
 * Only an administrator hands such a namespace over (creating the user or
 * the organization themselves). Answered as a taken name.
 */
export async function refuseHeldNamespace(hub: HubContext, name: string): Promise<void> {
  if (await hub.accounts.namespaceHoldsRepositories(name)) throw new HubError('NAME_TAKEN', `the name ${name} is taken`);
}
