/**
 * Account names: one OCI path component (distribution-spec's
 * `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`), 2 to 64 characters, shared by users
 * and organizations, minus a few names the registry keeps for itself.
 * Robots are `ORG+NAME`: '+' never occurs in an account name.
 */

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const RESERVED = new Set(['library', 'v2', 'berth', 'token', 'admin', 'root', '_catalog']);

/** Why `name` cannot be an account name, or null when it can. */
export function accountNameProblem(name: string): string | null {
  if (name.length < 2 || name.length > 64) return 'must be 2 to 64 characters long';
  if (!COMPONENT.test(name)) return 'must be lower-case letters and digits, separated by one ".", "_", "__" or any number of "-"';
  if (RESERVED.has(name) || name.startsWith('_')) return 'is reserved';
  return null;
}

/** A robot's short name follows the same grammar (without the reserved list). */
export function robotNameProblem(name: string): string | null {
  if (name.length < 1 || name.length > 64) return 'must be 1 to 64 characters long';
  if (!COMPONENT.test(name)) return 'must be lower-case letters and digits, separated by one ".", "_", "__" or any number of "-"';
  return null;
}

/** `acme+ci` → { organization: 'acme', name: 'ci' }; null for anything else. */
export function parseRobotName(login: string): { organization: string; name: string } | null {
  const plus = login.indexOf('+');
  if (plus <= 0 || plus !== login.lastIndexOf('+')) return null;
  return { organization: login.slice(0, plus), name: login.slice(plus + 1) };
}

/** The namespace of a repository: its first path component. */
export function namespaceOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}

/**
 * With accounts on, a one-component name is an alias of `library/NAME`, as
 * Docker Hub's users expect (`HOST/ubuntu` is `HOST/library/ubuntu`). The
 * edge rewrites before anything else; with accounts off nothing changes.
 */
export function canonicalRepositoryName(name: string): string {
  return name.includes('/') ? name : `library/${name}`;
}
