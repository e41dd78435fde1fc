/**
 * htpasswd files as `htpasswd -Bbn user pass` writes them: one `user:hash`
 * a line, bcrypt only ($2y$, $2a$, $2b$), as distribution accepts. The file
 * is re-read when it changes, without a restart. A successful bcrypt check
 * is remembered as an HMAC of the password (never the password), so bcrypt
 * runs once per credential and file version rather than on every request.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** Checks a password against a bcrypt hash; injectable so tests can count the work done. */
export type CompareFn = (password: string, hash: string) => Promise<boolean>;

/**
 * A well-formed bcrypt hash of the given cost that no password matches (its
 * salt and digest are random). Checking an unknown user against it costs as
 * much as checking a known one, so response times do not tell which names exist.
 */
function dummyHash(cost: string): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const tail = Array.from(randomBytes(53), (b) => alphabet[b & 63]).join('');
  return `$2b$${cost}$${tail}`;
}

/** The cost most entries use (`$2y$10$…` → "10"); unknown users are checked at it. */
function commonCost(hashes: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const h of hashes) counts.set(h.slice(4, 6), (counts.get(h.slice(4, 6)) ?? 0) + 1);
  let best = '10';
  let most = 0;
  for (const [cost, n] of counts) if (n > most) [best, most] = [cost, n];
  return best;
}

const STAT_INTERVAL_MS = 1000;

/** Where the file's coming and going is reported (a pino logger fits). */
export interface HtpasswdLog {
  error(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export class HtpasswdFile {
  private users = new Map<string, string>();
  private version = '';
  private lastStat = 0;
  private readonly verified = new Map<string, Buffer>();
  private readonly key = randomBytes(32);
  readonly warnings: string[] = [];
  /** The file could not be read at the last look: said once, and again when it is back. */
  private missing = false;

  private dummy = dummyHash('10');

  /** Reads the file now; a missing or unreadable file is an error. */
  constructor(
    readonly path: string,
    private readonly log?: HtpasswdLog,
    private readonly compare: CompareFn = (password, hash) => bcrypt.compare(password, hash),
  ) {
    this.reload(true);
  }

  private fingerprint(): string {
    const st = statSync(this.path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  }

  private reload(initial: boolean): void {
    let version: string;
    let text: string;
    try {
      version = this.fingerprint();
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (initial) throw new Error(`auth.htpasswd.path: cannot read ${this.path}: ${(err as Error).message}`);
      // The file went away: nobody can be verified until it is back.
      this.users = new Map();
      this.verified.clear();
      this.version = '';
      if (!this.missing) {
        this.missing = true;
        this.log?.error({ path: this.path, error: (err as Error).message }, 'htpasswd file cannot be read: every request is refused until it is back');
      }
      return;
    }
    const users = new Map<string, string>();
    text.split(/\r?\n/).forEach((line, i) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      const colon = trimmed.indexOf(':');
      const user = trimmed.slice(0, colon);
      const hash = trimmed.slice(colon + 1);
      if (colon <= 0 || !BCRYPT_RE.test(hash)) {
        this.warnings.push(`${this.path}:${i + 1}: ignoring entry${colon > 0 ? ` for "${user}"` : ''}: only bcrypt hashes are supported (htpasswd -B)`);
        return;
      }
      users.set(user, hash);
    });
    this.users = users;
    this.version = version;
    this.verified.clear();
    if (this.missing) {
      this.missing = false;
      this.log?.info({ path: this.path, users: users.size }, 'htpasswd file is back and in use again');
    }
    this.dummy = dummyHash(commonCost(users.values()));
  }

  private refresh(): void {
    const now = Date.now();
    if (now - this.lastStat < STAT_INTERVAL_MS) return;
    this.lastStat = now;
    let current = '';
    try {
      current = this.fingerprint();
    } catch {
      current = '';
    }
    if (current !== this.version) this.reload(false);
  }

  /** Forces the next check to look at the file again (tests, SIGHUP). */
  invalidate(): void {
    this.lastStat = 0;
  }

  get size(): number {
    return this.users.size;
  }

  async check(user: string, password: string): Promise<boolean> {
    return (await this.verify(user, password)) === 'ok';
  }

  /** `check`, telling an unknown user from a wrong password (for the log only: clients get the same answer). */
  async verify(user: string, password: string): Promise<'ok' | 'unknown user' | 'wrong password'> {
    this.refresh();
    const hash = this.users.get(user);
    if (!hash) {
      // The same bcrypt work as for a known user; never a success, never cached.
      await this.compare(password, this.dummy);
      return 'unknown user';
    }
    const mac = createHmac('sha256', this.key).update(user).update('\0').update(password).update('\0').update(hash).digest();
    const known = this.verified.get(user);
    if (known && timingSafeEqual(known, mac)) return 'ok';
    const ok = await this.compare(password, hash);
    if (ok) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(user, mac);
    }
    return ok ? 'ok' : 'wrong password';
  }
}
