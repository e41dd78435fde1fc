/**
 * Scopes as the Docker token specification writes them
 * (docs/content/spec/auth/scope.md): `type[(class)]:name:action[,action…]`,
 * e.g. `repository:alice/app:pull,push` or `registry:catalog:*`. Several
 * scopes travel as repeated `scope` parameters (GET) or joined by spaces
 * (the OAuth2 POST form).
 */
import type { GrantedAccess } from '../../access/types.js';

const TYPE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION = /^(?:[a-z]+|\*)$/;

/** One scope, or null when it is not one. The resource class (`repository(plugin)`) is dropped: verifiers match type and name. */
export function parseScope(text: string): GrantedAccess | null {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  const type = TYPE.exec(text.slice(0, first));
  // A name may hold a colon (a host:port some clients put there); the actions come after the last one.
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(',');
  if (!type || name === '' || /\s/.test(name) || !actions.every((a) => ACTION.test(a))) return null;
  return { type: type[1]!, name, actions: [...new Set(actions)] };
}

/**
 * Every scope in `values` (each may hold several, space-separated), with
 * the actions of one resource merged; `{ invalid }` names the first that is
 * not a scope.
 */
export function parseScopes(values: readonly string[]): { access: GrantedAccess[] } | { invalid: string } {
  const merged = new Map<string, GrantedAccess>();
  for (const value of values) {
    for (const text of value.split(' ')) {
      if (text === '') continue;
      const scope = parseScope(text);
      if (!scope) return { invalid: text };
      const key = `${scope.type}\u0000${scope.name}`;
      const known = merged.get(key);
      if (known) known.actions = [...new Set([...known.actions, ...scope.actions])];
      else merged.set(key, scope);
    }
  }
  return { access: [...merged.values()] };
}

export function formatScope(a: GrantedAccess): string {
  return `${a.type}:${a.name}:${a.actions.join(',')}`;
}

/** Whether `granted` allows `action` on the resource (a `*` action allows every one, as distribution reads it). */
export function allows(granted: readonly GrantedAccess[], type: string, name: string, action: string): boolean {
  return granted.some((g) => g.type === type && g.name === name && (g.actions.includes(action) || g.actions.includes('*')));
}
