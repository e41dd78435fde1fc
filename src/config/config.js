/**
 * Configuration in distribution's config.yml shape, plus Berth's own keys
 * under `berth:`. Loaded from a file (optional), then REGISTRY_* overrides,
 * then defaults; validated with messages that name the key.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { applyEnvOverrides } from './env.js';
export class ConfigError extends Error {
    constructor(message) {
        super(message);
        this.name = 'ConfigError';
    }
}
const STORAGE_DRIVERS = ['filesystem', 'inmemory', 's3', 'azure', 'gcs', 'swift', 'oss'];
const STORAGE_PARAMETER_KEYS = ['delete', 'maintenance', 'cache', 'redirect', 'tag'];
/** Loads configuration: `file` (or REGISTRY_CONFIGURATION_PATH), env overrides, defaults. */
export async function loadConfig(file, env = process.env) {
    const source = file ?? env.REGISTRY_CONFIGURATION_PATH ?? null;
    let tree = {};
    if (source) {
        let text;
        try {
            text = await readFile(source, 'utf8');
        }
        catch (err) {
            throw new ConfigError(`cannot read configuration file ${source}: ${err.message}`);
        }
        let parsed;
        try {
            parsed = YAML.parse(text);
        }
        catch (err) {
            throw new ConfigError(`configuration file ${source} is not valid YAML: ${err.message}`);
        }
        if (parsed !== null && parsed !== undefined) {
            if (typeof parsed !== 'object' || Array.isArray(parsed))
                throw new ConfigError(`configuration file ${source} must hold a YAML mapping`);
            tree = parsed;
        }
    }
    const { warnings } = applyEnvOverrides(tree, env);
    return { ...normalize(tree, warnings), source };
}
function obj(tree, key, where) {
    const v = tree[key];
    if (v === undefined || v === null || v === '')
        return {};
    if (typeof v !== 'object' || Array.isArray(v))
        throw new ConfigError(`${where}${key}: expected a mapping, got ${JSON.stringify(v)}`);
    return v;
}
function bool(v, key, fallback) {
    if (v === undefined || v === null)
        return fallback;
    if (typeof v === 'boolean')
        return v;
    if (v === 'true' || v === 'false')
        return v === 'true';
    throw new ConfigError(`${key}: expected true or false, got ${JSON.stringify(v)}`);
}
function str(v, key, fallback) {
    if (v === undefined || v === null)
        return fallback;
    if (typeof v === 'string')
        return v;
    if (typeof v === 'number')
        return String(v);
    throw new ConfigError(`${key}: expected a string, got ${JSON.stringify(v)}`);
}
function normalize(tree, warnings) {
    const version = str(tree.version, 'version', '0.1');
    if (version !== '0.1')
        throw new ConfigError(`version: only configuration version 0.1 is supported, got ${JSON.stringify(version)}`);
    const log = obj(tree, 'log', '');
    const level = str(log.level, 'log.level', 'info').toLowerCase();
    if (!['error', 'warn', 'info', 'debug'].includes(level))
        throw new ConfigError(`log.level: expected error, warn, info or debug, got ${JSON.stringify(log.level)}`);
    const formatter = str(log.formatter, 'log.formatter', 'json').toLowerCase();
    if (!['json', 'text', 'logstash'].includes(formatter))
        throw new ConfigError(`log.formatter: expected text, json or logstash, got ${JSON.stringify(log.formatter)}`);
    const storage = obj(tree, 'storage', '');
    const drivers = Object.keys(storage).filter((k) => !STORAGE_PARAMETER_KEYS.includes(k));
    for (const d of drivers)
        if (!STORAGE_DRIVERS.includes(d))
            throw new ConfigError(`storage.${d}: unknown storage driver (known: ${STORAGE_DRIVERS.join(', ')})`);
    if (drivers.length > 1)
        throw new ConfigError(`storage: more than one storage driver configured (${drivers.join(', ')}); choose one`);
    const driver = drivers[0] ?? 'filesystem';
    if (driver !== 'filesystem' && driver !== 'inmemory')
        throw new ConfigError(`storage.${driver}: this storage driver is not available yet`);
    const fs = obj(storage, 'filesystem', 'storage.');
    const rootdirectory = path.resolve(str(fs.rootdirectory, 'storage.filesystem.rootdirectory', './data'));
    const del = obj(storage, 'delete', 'storage.');
    const maintenance = obj(storage, 'maintenance', 'storage.');
    const readonly = obj(maintenance, 'readonly', 'storage.maintenance.');
    const http = obj(tree, 'http', '');
    const addr = str(http.addr, 'http.addr', ':5000');
    parseAddr(addr);
    let prefix = str(http.prefix, 'http.prefix', '/');
    if (!prefix.startsWith('/'))
        prefix = `/${prefix}`;
    if (!prefix.endsWith('/'))
        prefix = `${prefix}/`;
    const headers = {};
    for (const [k, v] of Object.entries(obj(http, 'headers', 'http.'))) {
        const values = Array.isArray(v) ? v : [v];
        if (values.some((x) => typeof x !== 'string'))
            throw new ConfigError(`http.headers.${k}: expected a list of strings`);
        headers[k] = values;
    }
    const berth = obj(tree, 'berth', '');
    const database = obj(berth, 'database', 'berth.');
    const config = {
        version,
        log: {
            level: level,
            formatter: formatter === 'text' ? 'text' : 'json',
            fields: obj(log, 'fields', 'log.'),
            accesslog: { disabled: bool(obj(log, 'accesslog', 'log.').disabled, 'log.accesslog.disabled', false) },
        },
        storage: {
            driver,
            filesystem: { rootdirectory },
            delete: { enabled: bool(del.enabled, 'storage.delete.enabled', false) },
            maintenance: { readonly: { enabled: bool(readonly.enabled, 'storage.maintenance.readonly.enabled', false) } },
        },
        http: {
            addr,
            host: str(http.host, 'http.host'),
            prefix,
            relativeurls: bool(http.relativeurls, 'http.relativeurls', false),
            headers,
        },
        berth: { database: { url: str(database.url, 'berth.database.url') } },
    };
    return { config, warnings };
}
/** `host:port`, `:port` or a bare port → host and port for listen(). */
export function parseAddr(addr) {
    const m = /^(?:\[?([^\]]*?)\]?)?:?(\d+)$/.exec(addr.trim());
    if (!m)
        throw new ConfigError(`http.addr: expected host:port or :port, got ${JSON.stringify(addr)}`);
    const port = Number(m[2]);
    if (port > 65535)
        throw new ConfigError(`http.addr: port ${port} is out of range`);
    return { host: m[1] ? m[1] : undefined, port };
}
