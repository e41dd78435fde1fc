/**
 * (method, path) → operation, with its path parameters decoded and checked
 * by the Hub's name rules before anything queries with them. Templates are
 * the OpenAPI document's own paths, so the two cannot drift apart.
 *
 * A repository name holds slashes; it may come as it is (as /v2/ takes it)
 * or percent-encoded (%2F, as OpenAPI clients send a path parameter). A
 * `/-/` segment ends it: no name component can be `-`.
 */
import { accountNameProblem, canonicalRepositoryName } from '../../../hub/index.js';
import { robotNameProblem } from '../../../hub/names.js';
import { isValidName } from '../../../registry/index.js';
import { ApiError } from './errors.js';
import type { ParamKind } from './types.js';

/** What routing needs of an operation. */
export interface Routable {
  method: string;
  path: string;
  params?: Record<string, ParamKind>;
}

interface Route<O extends Routable> {
  op: O;
  regex: RegExp;
  names: string[];
}

export type RouteMatch<O> = { kind: 'operation'; op: O; params: Record<string, string> } | { kind: 'method not allowed'; allowed: string[] };

/** A repository name: any characters, but never a `-` segment (which ends it). */
const REPOSITORY = '((?:(?!/-(?:/|$))[^?#])+?)';
const SEGMENT = '([^/]+)';
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,}$/;

export function compileTemplate(template: string, kinds: Record<string, ParamKind>): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const source = template
    .replace(/^\//, '')
    .split(/(\{[a-z]+\})/i)
    .map((part) => {
      const m = /^\{([a-z]+)\}$/i.exec(part);
      if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const name = m[1]!;
      const kind = kinds[name];
      if (!kind) throw new Error(`${template}: path parameter ${name} has no kind`);
      names.push(name);
      return kind === 'repository' ? REPOSITORY : SEGMENT;
    })
    .join('');
  return { regex: new RegExp(`^${source}$`), names };
}

function decode(value: string, name: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ApiError('INVALID', `path.${name}: malformed percent-encoding`);
  }
}

/**
 * A path parameter, decoded and checked; the message names the parameter.
 * `aliases`: a one-component repository name is `library/NAME` (accounts on).
 */
export function checkParam(name: string, kind: ParamKind, raw: string, aliases = true): string {
  const value = decode(raw, name);
  switch (kind) {
    case 'account': {
      const problem = accountNameProblem(value);
      if (problem) throw new ApiError('NAME_INVALID', `path.${name}: ${JSON.stringify(value.slice(0, 100))} ${problem}`, { parameter: name });
      return value;
    }
    case 'namespace': {
      // A namespace is an account's, or library (reserved as an account name: administrators own it).
      const problem = value === 'library' ? null : accountNameProblem(value);
      if (problem) throw new ApiError('NAME_INVALID', `path.${name}: ${JSON.stringify(value.slice(0, 100))} ${problem}`, { parameter: name });
      return value;
    }
    case 'team':
    case 'robot': {
      const problem = robotNameProblem(value);
      if (problem) throw new ApiError('NAME_INVALID', `path.${name}: ${JSON.stringify(value.slice(0, 100))} ${problem}`, { parameter: name });
      return value;
    }
    case 'repository': {
      // With accounts on, `ubuntu` is `library/ubuntu` (docs/hub.md); without, a name is only itself, as in the registry.
      const canonical = aliases ? canonicalRepositoryName(value) : value;
      if (!isValidName(canonical)) throw new ApiError('NAME_INVALID', `path.${name}: invalid repository name ${JSON.stringify(value.slice(0, 300))}`, { parameter: name });
      return canonical;
    }
    case 'id':
      if (!/^[1-9]\d{0,14}$/.test(value)) throw new ApiError('INVALID', `path.${name}: must be a positive integer id`, { parameter: name });
      return value;
    case 'tag':
    case 'reference':
      // OCI dist-spec: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; a digest is algorithm:encoded.
      if (!TAG_RE.test(value) && (kind === 'tag' || !DIGEST_RE.test(value))) {
        throw new ApiError('INVALID', `path.${name}: ${JSON.stringify(value.slice(0, 130))} is not a ${kind === 'tag' ? 'tag' : 'tag or digest'}`, { parameter: name });
      }
      return value;
    case 'run':
      if (!/^(?:latest|[1-9]\d{0,14})$/.test(value)) throw new ApiError('NOT_FOUND', `no garbage collection run ${value.slice(0, 50)}`);
      return value;
  }
}

export class Router<O extends Routable> {
  private readonly routes: Route<O>[];

  constructor(operations: readonly O[]) {
    this.routes = operations.map((op) => ({ op, ...compileTemplate(op.path, op.params ?? {}) }));
  }

  /** The operation for a path (after the prefix, still percent-encoded), null when no route has this path. */
  match(method: string, path: string): RouteMatch<O> | null {
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      if (r.op.method !== method) {
        allowed.push(r.op.method);
        continue;
      }
      const params: Record<string, string> = {};
      r.names.forEach((name, i) => (params[name] = m[i + 1]!));
      return { kind: 'operation', op: r.op, params };
    }
    return allowed.length ? { kind: 'method not allowed', allowed: [...new Set(allowed)] } : null;
  }

  /** Decodes and checks a match's parameters (`aliases`: see checkParam). */
  static params(op: Routable, raw: Record<string, string>, aliases = true): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw)) out[name] = checkParam(name, op.params![name]!, value, aliases);
    return out;
  }
}
