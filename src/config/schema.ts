/**
 * A small schema language for config.yml: it checks types, fills defaults,
 * names the key in every error, and warns about keys it does not know.
 */
export type Schema =
  | { kind: 'struct'; fields: Record<string, Schema>; /** accept unknown keys silently */ open?: boolean }
  | { kind: 'map'; values: Schema }
  | { kind: 'list'; items: Schema }
  | { kind: 'string'; default?: string }
  | { kind: 'bool'; default?: boolean }
  | { kind: 'int'; default?: number; min?: number; max?: number }
  | { kind: 'duration'; default?: string }
  | { kind: 'enum'; values: readonly string[]; default?: string }
  /** Accepted for compatibility, kept as given. */
  | { kind: 'any' };

export class SchemaError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key || '(root)'}: ${message}`);
    this.name = 'SchemaError';
  }
}

export const s = {
  struct: (fields: Record<string, Schema>, open = false): Schema => ({ kind: 'struct', fields, open }),
  map: (values: Schema): Schema => ({ kind: 'map', values }),
  list: (items: Schema): Schema => ({ kind: 'list', items }),
  string: (d?: string): Schema => ({ kind: 'string', default: d }),
  bool: (d?: boolean): Schema => ({ kind: 'bool', default: d }),
  int: (d?: number, min?: number, max?: number): Schema => ({ kind: 'int', default: d, min, max }),
  duration: (d?: string): Schema => ({ kind: 'duration', default: d }),
  enumOf: (values: readonly string[], d?: string): Schema => ({ kind: 'enum', values, default: d }),
  any: (): Schema => ({ kind: 'any' }),
};

/**
 * The plain scalars Go's yaml.v2 (distribution's parser) reads as booleans:
 * YAML 1.1's words. The `yaml` package parses YAML 1.2 core, where `on` or
 * `yes` stay strings, so a bool key accepts them here, from config.yml and
 * from REGISTRY_* values alike.
 */
const YAML11_BOOLS: Record<string, boolean> = Object.fromEntries([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'].map((w) => [w, true] as const),
  ...['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'].map((w) => [w, false] as const),
]);

/** A boolean as distribution would read it, or undefined when `value` is not one. */
export function yamlBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && Object.hasOwn(YAML11_BOOLS, value)) return YAML11_BOOLS[value];
  return undefined;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration syntax ("300ms", "1h30m", "10s") → milliseconds. Bare numbers are nanoseconds, as in Go. */
export function parseDuration(value: unknown, key: string): number {
  if (typeof value === 'number') return value / 1e6;
  if (typeof value !== 'string') throw new SchemaError(key, `expected a duration such as "10s", got ${JSON.stringify(value)}`);
  const text = value.trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) throw new SchemaError(key, `expected a duration such as "10s", "5m" or "1h30m", got ${JSON.stringify(value)}`);
  return total;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates `value` against `schema`. Durations become milliseconds.
 * Unknown struct keys are reported through `warn` and dropped.
 */
export function validate(value: unknown, schema: Schema, key: string, warn: (msg: string) => void): unknown {
  const join = (k: string) => (key ? `${key}.${k}` : k);
  switch (schema.kind) {
    case 'any':
      return value;
    case 'struct': {
      if (value === undefined || value === null || value === '') value = {};
      if (!isObject(value)) throw new SchemaError(key, `expected a mapping, got ${JSON.stringify(value)}`);
      const out: Record<string, unknown> = {};
      const lower = new Map(Object.keys(schema.fields).map((f) => [f.toLowerCase(), f]));
      for (const [k, v] of Object.entries(value)) {
        const field = lower.get(k.toLowerCase());
        if (!field) {
          if (schema.open) out[k] = v;
          else warn(`unknown configuration key ${join(k)} (ignored)`);
          continue;
        }
        out[field] = validate(v, schema.fields[field]!, join(field), warn);
      }
      for (const [field, sub] of Object.entries(schema.fields)) {
        if (!(field in out)) {
          const filled = validate(undefined, sub, join(field), warn);
          if (filled !== undefined) out[field] = filled;
        }
      }
      return out;
    }
    case 'map': {
      if (value === undefined || value === null || value === '') return {};
      if (!isObject(value)) throw new SchemaError(key, `expected a mapping, got ${JSON.stringify(value)}`);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = validate(v, schema.values, join(k), warn);
      return out;
    }
    case 'list': {
      if (value === undefined || value === null || value === '') return [];
      if (!Array.isArray(value)) throw new SchemaError(key, `expected a list, got ${JSON.stringify(value)}`);
      return value.map((v, i) => validate(v, schema.items, `${key}[${i}]`, warn));
    }
    case 'string':
      if (value === undefined || value === null) return schema.default;
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      throw new SchemaError(key, `expected a string, got ${JSON.stringify(value)}`);
    case 'bool':
      if (value === undefined || value === null) return schema.default;
      {
        const b = yamlBool(value);
        if (b !== undefined) return b;
      }
      throw new SchemaError(key, `expected true or false (or yes/no, on/off), got ${JSON.stringify(value)}`);
    case 'int': {
      if (value === undefined || value === null) return schema.default;
      const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new SchemaError(key, `expected a whole number, got ${JSON.stringify(value)}`);
      if (schema.min !== undefined && n < schema.min) throw new SchemaError(key, `must be at least ${schema.min}, got ${n}`);
      if (schema.max !== undefined && n > schema.max) throw new SchemaError(key, `must be at most ${schema.max}, got ${n}`);
      return n;
    }
    case 'duration':
      if (value === undefined || value === null) return schema.default === undefined ? undefined : parseDuration(schema.default, key);
      return parseDuration(value, key);
    case 'enum': {
      if (value === undefined || value === null) return schema.default;
      const v = String(value).toLowerCase();
      const match = schema.values.find((x) => x.toLowerCase() === v);
      if (!match) throw new SchemaError(key, `expected one of ${schema.values.join(', ')}, got ${JSON.stringify(value)}`);
      return match;
    }
  }
}
