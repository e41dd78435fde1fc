/**
 * distribution's REGISTRY_* override rule (configuration/parser.go):
 * the variable name after the prefix is split on '_' into a path; each part
 * matches a key case-insensitively (new map keys are stored lower-case);
 * the value is parsed as YAML; variables apply in sorted order, so
 * REGISTRY_STORAGE=… comes before REGISTRY_STORAGE_…; a numeric part
 * indexes a list; `version` cannot be overridden.
 */
import { YAML } from './yaml.js';

export type Tree = Record<string, unknown>;

export interface OverrideResult {
  applied: string[];
  warnings: string[];
}

function isObject(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseValue(raw: string): unknown {
  try {
    return YAML.parse(raw);
  } catch {
    return raw;
  }
}

export function applyEnvOverrides(config: Tree, env: NodeJS.ProcessEnv, prefix = 'REGISTRY'): OverrideResult {
  const result: OverrideResult = { applied: [], warnings: [] };
  const names = Object.keys(env)
    .filter((k) => k.startsWith(`${prefix}_`) && k !== `${prefix}_CONFIGURATION_PATH`)
    .sort();
  for (const name of names) {
    const path = name.slice(prefix.length + 1).split('_');
    if (path.some((p) => p === '')) {
      result.warnings.push(`ignoring environment variable ${name}: empty path component`);
      continue;
    }
    if (path.length === 1 && path[0]!.toLowerCase() === 'version') {
      result.warnings.push(`ignoring environment variable ${name}: the configuration version cannot be overridden`);
      continue;
    }
    setPath(config, path, parseValue(env[name] ?? ''));
    result.applied.push(name);
  }
  return result;
}

function setPath(root: Tree, path: string[], value: unknown): void {
  let node: Tree | unknown[] = root;
  for (let i = 0; i < path.length; i++) {
    const part = path[i]!;
    const last = i === path.length - 1;
    if (Array.isArray(node)) {
      const index = Number(part);
      if (!Number.isInteger(index) || index < 0) throw new Error(`cannot index a list with "${part}"`);
      if (last) {
        node[index] = value;
        return;
      }
      if (!isObject(node[index]) && !Array.isArray(node[index])) node[index] = {};
      node = node[index] as Tree | unknown[];
      continue;
    }
    const key = Object.keys(node).find((k) => k.toLowerCase() === part.toLowerCase()) ?? part.toLowerCase();
    if (last) {
      node[key] = value;
      return;
    }
    const child: unknown = node[key];
    if (typeof child === 'string' && child !== '' && !/^\d+$/.test(path[i + 1]!)) {
      // A bare name (REGISTRY_STORAGE=inmemory) is a map with that one key,
      // as distribution's storage and auth types read it.
      node[key] = { [child]: {} };
    } else if (!isObject(child) && !Array.isArray(child)) {
      // A following numeric part makes a list; anything else a map.
      node[key] = /^\d+$/.test(path[i + 1]!) ? [] : {};
    }
    node = node[key] as Tree | unknown[];
  }
}
