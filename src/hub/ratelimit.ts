/**
 * Failed-login limits, counted in the database so every process and replica
 * shares them: per account name (default 10 in 15 minutes) and per client
 * address (default 50 in 15 minutes). A locked-out login is answered exactly
 * as a wrong password, so the lock tells nothing about the account.
 */
import type { HubContext } from './context.js';

const accountKey = (name: string) => `account:${name}`;
const clientKey = (client: string) => `client:${client}`;

export class LoginLimiter {
  constructor(private readonly hub: HubContext) {}

  private get limits() {
    return this.hub.settings.loginLimits;
  }

  /**
   * Whether a login as `name` from `client` is refused before its secret is
   * looked at. `passwordLogin` is false for a personal access token or robot
   * secret: 256-bit secrets cannot be guessed, and a lock on the account
   * name must not let anyone stop an account's CI; the client limit holds
   * for them all. Also says how many failures the account has to clear.
   */
  async locked(name: string, client: string, passwordLogin: boolean): Promise<{ locked: boolean; accountFailures: number }> {
    const keys = passwordLogin ? [accountKey(name), clientKey(client)] : [clientKey(client)];
    const counts = await this.hub.credentials.failures(keys, this.limits.windowMs);
    const accountFailures = passwordLogin ? (counts.get(accountKey(name)) ?? 0) : 0;
    return { locked: (counts.get(clientKey(client)) ?? 0) >= this.limits.perClient || accountFailures >= this.limits.perAccount, accountFailures };
  }

  async failed(name: string, client: string): Promise<void> {
    await this.hub.credentials.recordFailure(accountKey(name), this.limits.windowMs);
    await this.hub.credentials.recordFailure(clientKey(client), this.limits.windowMs);
  }

  /** A successful login clears its account's count (not the client's: one good password must not unlock guessing at others). */
  async succeeded(name: string): Promise<void> {
    await this.hub.credentials.clearFailures(accountKey(name));
  }

  /** Drops counters whose window is over. */
  async prune(): Promise<number> {
    return this.hub.credentials.pruneFailures(this.limits.windowMs);
  }
}
