/**
 * Configuration in distribution's config.yml shape (its configuration
 * reference, docs/content/about/configuration.md), plus Berth's own keys
 * under `berth:`. Loaded from a file (optional), then REGISTRY_* overrides,
 * then validated against the schema below. Durations are milliseconds.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { YAML } from './yaml.js';
import { applyEnvOverrides, type Tree } from './env.js';
import { s, SchemaError, validate, type Schema } from './schema.js';
import { unsupportedKeys } from './unsupported.js';

export interface NotificationEndpoint {
  name: string;
  disabled: boolean;
  url: string;
  headers: Record<string, string[]>;
  timeout: number;
  threshold: number;
  backoff: number;
  ignoredmediatypes: string[];
  ignore: { mediatypes: string[]; actions: string[] };
}

export interface HealthCheckHttp {
  uri: string;
  headers: Record<string, string[]>;
  statuscode: number;
  timeout: number;
  interval: number;
  threshold: number;
}

export interface Config {
  version: string;
  log: { level: 'error' | 'warn' | 'info' | 'debug'; formatter: 'text' | 'json' | 'logstash'; fields: Record<string, unknown>; accesslog: { disabled: boolean } };
  storage: {
    driver: 'filesystem' | 'inmemory' | 's3' | 'azure';
    filesystem: { rootdirectory: string };
    /** storage.s3, distribution's keys (read when driver is s3). */
    s3: S3Config;
    /** storage.azure, distribution's keys (read when driver is azure). */
    azure: AzureConfig;
    delete: { enabled: boolean };
    redirect: { disable: boolean };
    cache: { blobdescriptor?: string };
    maintenance: {
      uploadpurging: { enabled: boolean; age: number; interval: number; dryrun: boolean };
      readonly: { enabled: boolean };
    };
  };
  http: {
    addr: string;
    net: 'tcp' | 'unix';
    host?: string;
    prefix: string;
    secret?: string;
    relativeurls: boolean;
    draintimeout: number;
    tls: { certificate?: string; key?: string; clientcas: string[]; minimumtls: 'tls1.0' | 'tls1.1' | 'tls1.2' | 'tls1.3' };
    headers: Record<string, string[]>;
    debug: { addr?: string; prometheus: { enabled: boolean; path: string } };
    /** Berth's own (distribution has none): how long a client may take; 0 turns one off. */
    timeouts: { header: number; idle: number; read: number };
  };
  auth: {
    htpasswd?: { realm: string; path: string };
    /** distribution's token auth: an external token server's JWTs (src/auth/token/external.ts). */
    token?: { realm: string; service: string; issuer: string; rootcertbundle?: string; jwks?: string; signingalgorithms: string[]; autoredirect: boolean; autoredirectpath?: string };
    /** Berth's own accounts (the Hub): docs/hub.md. */
    accounts?: AccountsConfig;
  };
  notifications: { endpoints: NotificationEndpoint[] };
  health: {
    storagedriver: { enabled: boolean; interval: number; threshold: number };
    file: { file: string; interval: number }[];
    http: HealthCheckHttp[];
    tcp: { addr: string; timeout: number; interval: number; threshold: number }[];
  };
  berth: {
    /** `postgres://…` for PostgreSQL; default: SQLite at <rootdirectory>/berth.db. */
    database: { url?: string };
    /** Online garbage collection: blobs unreferenced for `grace` are removed every `interval`. */
    gc: { enabled: boolean; grace: number; interval: number; deleteuntagged: boolean };
    /** Threads serving HTTP, in one process; 0 means one per core, 1 a single thread. */
    workers: number;
    /** The main thread's busy time (ms) served alone before the worker threads take connections; 0: at once. */
    warmup: number;
    /** htpasswd users who may use /berth/v1/ (gc, repository delete, storage usage). */
    admins: string[];
    /** The web UI on the API's port (docs/web.md); off, its paths answer 404 as registry:2's do. */
    ui: { enabled: boolean };
    /** How a blob's body goes out over plain HTTP: `auto` copies to a client on this host and uses sendfile(2) for others. */
    sendfile: SendfileMode;
  };
}

/** `berth.sendfile`: zero copy always, never (the addon copies through a small buffer), or by the client's place. */
export type SendfileMode = 'auto' | 'always' | 'never';

/** `auth.accounts`: the Hub's own accounts (docs/hub.md). Durations in ms. */
export interface AccountsConfig {
  registration: 'open' | 'closed' | 'invite';
  defaultvisibility: 'private' | 'public';
  anonymouspull: boolean;
  /** Lifetime of an access token (JWT). */
  tokenlifetime: number;
  /** Lifetime of a refresh token. */
  refreshlifetime: number;
  /** The token's `aud`: default http.host's host name, else "berth". */
  service: string;
  issuer: string;
  /** Default: the token endpoint Berth serves, from each request's scheme and host. */
  realm?: string;
}

export interface S3Config {
  region?: string;
  regionendpoint?: string;
  bucket?: string;
  accesskey?: string;
  secretkey?: string;
  sessiontoken?: string;
  rootdirectory?: string;
  forcepathstyle?: boolean;
  secure: boolean;
  skipverify: boolean;
  chunksize: number;
  multipartcopychunksize: number;
  multipartcopymaxconcurrency: number;
  multipartcopythresholdsize: number;
  storageclass: string;
  encrypt: boolean;
  keyid?: string;
}

export interface AzureConfig {
  accountname?: string;
  accountkey?: string;
  container?: string;
  realm: string;
  serviceurl?: string;
  rootdirectory?: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const STORAGE_DRIVERS = ['filesystem', 'inmemory', 's3', 'azure', 'gcs', 'swift', 'oss'];
const AVAILABLE_DRIVERS = ['filesystem', 'inmemory', 's3', 'azure'];
const STORAGE_PARAMETERS = ['delete', 'maintenance', 'cache', 'redirect', 'tag'];

const headers = s.map(s.list(s.string()));

const SCHEMA_LOGLEVEL = s.enumOf(['error', 'warn', 'info', 'debug'], 'info');

const SCHEMA: Schema = s.struct({
  version: s.string('0.1'),
  log: s.struct({
    level: SCHEMA_LOGLEVEL,
    formatter: s.enumOf(['text', 'json', 'logstash'], 'json'),
    fields: s.map(s.any()),
    hooks: s.any(),
    reportcaller: s.bool(false),
    accesslog: s.struct({ disabled: s.bool(false) }),
  }),
  loglevel: s.any(),
  storage: s.struct({
    filesystem: s.struct({ rootdirectory: s.string(), maxthreads: s.int() }),
    inmemory: s.any(),
    s3: s.struct({
      region: s.string(),
      regionendpoint: s.string(),
      bucket: s.string(),
      accesskey: s.string(),
      secretkey: s.string(),
      sessiontoken: s.string(),
      rootdirectory: s.string(),
      forcepathstyle: s.bool(),
      secure: s.bool(true),
      skipverify: s.bool(false),
      v4auth: s.bool(true),
      chunksize: s.int(10 * 1024 * 1024, 5 * 1024 * 1024),
      multipartcopychunksize: s.int(32 * 1024 * 1024, 5 * 1024 * 1024),
      multipartcopymaxconcurrency: s.int(100, 1),
      multipartcopythresholdsize: s.int(32 * 1024 * 1024, 0),
      storageclass: s.string('STANDARD'),
      encrypt: s.bool(false),
      keyid: s.string(),
      // distribution's keys Berth reads no differently from their defaults.
      objectacl: s.any(),
      loglevel: s.any(),
      usedualstack: s.any(),
      accelerate: s.any(),
    }),
    azure: s.struct({
      accountname: s.string(),
      accountkey: s.string(),
      container: s.string(),
      realm: s.string('core.windows.net'),
      serviceurl: s.string(),
      rootdirectory: s.string(),
      // distribution 3's credentials block: only shared_key (accountname + accountkey) is supported.
      credentials: s.any(),
      maxretries: s.any(),
      retrytrydelay: s.any(),
      skipverify: s.any(),
      copystatuspollmaxretry: s.any(),
      copystatuspolldelay: s.any(),
    }),
    gcs: s.any(),
    swift: s.any(),
    oss: s.any(),
    delete: s.struct({ enabled: s.bool(false) }),
    redirect: s.struct({ disable: s.bool(false) }),
    cache: s.struct({ blobdescriptor: s.enumOf(['inmemory', 'redis']), blobdescriptorsize: s.int() }),
    tag: s.struct({ concurrencylimit: s.int() }),
    maintenance: s.struct({
      uploadpurging: s.struct({ enabled: s.bool(true), age: s.duration('168h'), interval: s.duration('24h'), dryrun: s.bool(false) }),
      readonly: s.struct({ enabled: s.bool(false) }),
    }),
  }),
  http: s.struct({
    addr: s.string(':5000'),
    net: s.enumOf(['tcp', 'unix'], 'tcp'),
    host: s.string(),
    prefix: s.string('/'),
    secret: s.string(),
    relativeurls: s.bool(false),
    draintimeout: s.duration('30s'),
    tls: s.struct({
      certificate: s.string(),
      key: s.string(),
      clientcas: s.list(s.string()),
      clientauth: s.string(),
      minimumtls: s.enumOf(['tls1.0', 'tls1.1', 'tls1.2', 'tls1.3'], 'tls1.2'),
      ciphersuites: s.list(s.string()),
      letsencrypt: s.any(),
    }),
    headers,
    debug: s.struct({ addr: s.string(), prometheus: s.struct({ enabled: s.bool(false), path: s.string('/metrics') }) }),
    http2: s.any(),
    h2c: s.any(),
    // header: a request's headers must arrive within it; idle: keep-alive between
    // requests; read: the longest pause between two bytes of a request body
    // (not a total: a large push over a slow link goes on as long as bytes flow).
    timeouts: s.struct({ header: s.duration('30s'), idle: s.duration('65s'), read: s.duration('60s') }),
  }),
  auth: s.struct({
    htpasswd: s.struct({ realm: s.string('Registry Realm'), path: s.string() }),
    silly: s.any(),
    token: s.struct({
      realm: s.string(),
      service: s.string(),
      issuer: s.string(),
      rootcertbundle: s.string(),
      jwks: s.string(),
      signingalgorithms: s.list(s.string()),
      autoredirect: s.bool(false),
      autoredirectpath: s.string(),
    }),
    accounts: s.struct({
      registration: s.enumOf(['open', 'closed', 'invite'], 'closed'),
      defaultvisibility: s.enumOf(['private', 'public'], 'private'),
      anonymouspull: s.bool(true),
      tokenlifetime: s.duration('5m'),
      refreshlifetime: s.duration('720h'),
      service: s.string(),
      issuer: s.string('berth'),
      realm: s.string(),
    }),
  }),
  notifications: s.struct({
    events: s.struct({ includereferences: s.bool(false) }),
    endpoints: s.list(
      s.struct({
        name: s.string(),
        disabled: s.bool(false),
        url: s.string(),
        headers,
        timeout: s.duration('1s'),
        threshold: s.int(10, 1),
        backoff: s.duration('1s'),
        ignoredmediatypes: s.list(s.string()),
        ignore: s.struct({ mediatypes: s.list(s.string()), actions: s.list(s.string()) }),
      }),
    ),
  }),
  health: s.struct({
    storagedriver: s.struct({ enabled: s.bool(false), interval: s.duration('10s'), threshold: s.int(1, 1) }),
    file: s.list(s.struct({ file: s.string(), interval: s.duration('10s') })),
    http: s.list(s.struct({ uri: s.string(), headers, statuscode: s.int(200), timeout: s.duration('1s'), interval: s.duration('10s'), threshold: s.int(1, 1) })),
    tcp: s.list(s.struct({ addr: s.string(), timeout: s.duration('1s'), interval: s.duration('10s'), threshold: s.int(1, 1) })),
  }),
  proxy: s.any(),
  redis: s.any(),
  validation: s.any(),
  compatibility: s.any(),
  catalog: s.any(),
  reporting: s.any(),
  middleware: s.any(),
  policy: s.any(),
  berth: s.struct({
    database: s.struct({ url: s.string() }),
    gc: s.struct({ enabled: s.bool(true), grace: s.duration('24h'), interval: s.duration('1h'), deleteuntagged: s.bool(false) }),
    workers: s.int(0, 0, 256),
    warmup: s.duration('2s'),
    admins: s.list(s.string()),
    ui: s.struct({ enabled: s.bool(true) }),
    sendfile: s.enumOf(['auto', 'always', 'never'], 'auto'),
  }),
});

export interface LoadedConfig {
  config: Config;
  warnings: string[];
  /** Accepted keys that change nothing a user sees: worth one info line. */
  notices: string[];
  source: string | null;
  /** The REGISTRY_* variables that were applied, by name (their values may be secrets). */
  applied: string[];
}

/** The shortest period the schedulers run at (src/gc/schedule.ts): upload purging, garbage collection. */
const MIN_SCHEDULE_MS = 1000;

/** Loads configuration: `file` (or REGISTRY_CONFIGURATION_PATH), env overrides, defaults, validation. */
export async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const source = file ?? env.REGISTRY_CONFIGURATION_PATH ?? null;
  let text = '';
  if (source) {
    try {
      text = await readFile(source, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${source}: ${(err as Error).message}`);
    }
  }
  return { ...parseConfig(text, env, source ?? 'configuration'), source };
}

/** Parses YAML text plus env overrides into a validated Config. */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = {}, where = 'configuration'): { config: Config; warnings: string[]; notices: string[]; applied: string[] } {
  let tree: Tree = {};
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? null : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${where} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed !== null && parsed !== undefined) {
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${where} must hold a YAML mapping`);
    tree = parsed as Tree;
  }
  const warnings: string[] = [];
  const overrides = applyEnvOverrides(tree, env);
  warnings.push(...overrides.warnings);
  // distribution accepts `storage: inmemory` and `auth: htpasswd` as bare names.
  for (const key of ['storage', 'auth']) {
    const v = tree[key];
    if (typeof v === 'string' && v !== '') tree[key] = { [v]: {} };
  }
  let v: Record<string, unknown>;
  try {
    v = validate(tree, SCHEMA, '', (w) => warnings.push(w)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof SchemaError) throw new ConfigError(err.message);
    throw err;
  }
  const config = finish(v, tree);
  const unsupported = unsupportedKeys(tree, {
    tlsClientCAs: config.http.tls.clientcas.length > 0,
    tlsCertificate: config.http.tls.certificate !== undefined,
    httpAddr: config.http.addr,
  });
  warnings.push(...unsupported.warnings);
  return { config, warnings, notices: unsupported.notices, applied: overrides.applied };
}

function keyOf(tree: unknown, key: string): unknown {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return undefined;
  const k = Object.keys(tree).find((x) => x.toLowerCase() === key);
  return k === undefined ? undefined : (tree as Tree)[k];
}

/** A scheduler period: refused below what the scheduler runs at, rather than quietly run at another period. */
function checkPeriod(ms: number, key: string, zeroMeans?: string): void {
  if (ms === 0 && zeroMeans) return;
  if (ms < MIN_SCHEDULE_MS) {
    throw new ConfigError(`${key}: must be at least 1s${zeroMeans ? ` (or 0 for ${zeroMeans})` : ''}, got ${ms}ms`);
  }
}

function finish(v: Record<string, unknown>, raw: Tree): Config {
  const c = v as unknown as Config & { storage: Record<string, unknown>; auth: Record<string, unknown> };
  if (c.version !== '0.1') throw new ConfigError(`version: only configuration version 0.1 is supported, got ${JSON.stringify(c.version)}`);

  const rawStorage = (raw.storage ?? {}) as Tree;
  const drivers = Object.keys(rawStorage).filter((k) => !STORAGE_PARAMETERS.includes(k.toLowerCase()) && STORAGE_DRIVERS.includes(k.toLowerCase()));
  if (drivers.length > 1) throw new ConfigError(`storage: more than one storage driver configured (${drivers.join(', ')}); choose one`);
  const driver = (drivers[0]?.toLowerCase() ?? 'filesystem') as Config['storage']['driver'];
  if (!AVAILABLE_DRIVERS.includes(driver)) throw new ConfigError(`storage.${driver}: this storage driver is not available yet (available: ${AVAILABLE_DRIVERS.join(', ')})`);
  c.storage.driver = driver;
  if (driver === 'azure') {
    for (const key of ['accountname', 'accountkey', 'container'] as const) {
      if (!c.storage.azure[key]) throw new ConfigError(`storage.azure.${key}: required (Berth authenticates to Azure with the account's shared key)`);
    }
  }
  if (driver === 's3') {
    // The SDK finds the region in AWS_REGION too, as distribution does not; both are accepted.
    c.storage.s3.region ??= process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!c.storage.s3.region) throw new ConfigError('storage.s3.region: required (e.g. us-east-1; any name the engine accepts for an S3-compatible regionendpoint)');
    if (!c.storage.s3.bucket) throw new ConfigError('storage.s3.bucket: required');
    if ((c.storage.s3.accesskey === undefined) !== (c.storage.s3.secretkey === undefined)) {
      throw new ConfigError('storage.s3.accesskey and storage.s3.secretkey: give both, or neither (to use the AWS SDK credential chain)');
    }
  }
  const fs = c.storage.filesystem as { rootdirectory?: string };
  c.storage.filesystem = { rootdirectory: path.resolve(fs.rootdirectory ?? './data') };

  // distribution's deprecated top-level `loglevel`, used when log.level is not given.
  const loglevel = keyOf(raw, 'loglevel');
  if (loglevel !== undefined && keyOf(keyOf(raw, 'log'), 'level') === undefined) {
    try {
      c.log.level = validate(loglevel, SCHEMA_LOGLEVEL, 'loglevel', () => {}) as Config['log']['level'];
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  if (c.storage.maintenance.uploadpurging.enabled) checkPeriod(c.storage.maintenance.uploadpurging.interval, 'storage.maintenance.uploadpurging.interval');
  if (c.berth.gc.enabled) checkPeriod(c.berth.gc.interval, 'berth.gc.interval', 'no scheduled collection');

  parseAddr(c.http.addr, 'http.addr');
  if (c.http.debug.addr !== undefined) parseAddr(c.http.debug.addr, 'http.debug.addr');
  let prefix = c.http.prefix;
  if (!prefix.startsWith('/')) prefix = `/${prefix}`;
  if (!prefix.endsWith('/')) prefix = `${prefix}/`;
  c.http.prefix = prefix;
  if (c.http.host !== undefined) {
    try {
      new URL(c.http.host);
    } catch {
      throw new ConfigError(`http.host: expected a URL such as https://registry.example.com, got ${JSON.stringify(c.http.host)}`);
    }
  }
  const tls = c.http.tls;
  if ((tls.certificate === undefined) !== (tls.key === undefined)) throw new ConfigError('http.tls: certificate and key must be given together');

  const rawAuth = (raw.auth ?? {}) as Tree;
  const methods = ['htpasswd', 'token', 'accounts'].filter((m) => Object.keys(rawAuth).some((k) => k.toLowerCase() === m));
  if (methods.length > 1) throw new ConfigError(`auth: more than one authentication method configured (${methods.join(', ')}); choose one`);
  if (methods.includes('accounts')) finishAccounts(c.auth.accounts as AccountsConfig, c.http.host);
  else delete c.auth.accounts;
  if ('htpasswd' in rawAuth || Object.keys(rawAuth).some((k) => k.toLowerCase() === 'htpasswd')) {
    const h = c.auth.htpasswd as { realm: string; path?: string };
    if (!h.path) throw new ConfigError('auth.htpasswd.path: required when htpasswd authentication is configured');
  } else {
    delete c.auth.htpasswd;
  }
  if (Object.keys(rawAuth).some((k) => k.toLowerCase() === 'token')) checkTokenAuth(c.auth.token as NonNullable<Config['auth']['token']>);
  else delete c.auth.token;
  if (c.auth.silly !== undefined) throw new ConfigError('auth.silly: this authentication method is not supported (use auth.htpasswd or auth.token)');

  c.notifications.endpoints.forEach((e, i) => {
    if (!e.name) throw new ConfigError(`notifications.endpoints[${i}].name: required`);
    if (!e.url) throw new ConfigError(`notifications.endpoints[${i}].url: required`);
    try {
      new URL(e.url);
    } catch {
      throw new ConfigError(`notifications.endpoints[${i}].url: not a URL: ${JSON.stringify(e.url)}`);
    }
  });
  c.health.file.forEach((f, i) => {
    if (!f.file) throw new ConfigError(`health.file[${i}].file: required`);
  });
  c.health.http.forEach((h, i) => {
    if (!h.uri) throw new ConfigError(`health.http[${i}].uri: required`);
  });
  c.health.tcp.forEach((t, i) => {
    if (!t.addr) throw new ConfigError(`health.tcp[${i}].addr: required`);
  });
  return c;
}

/** The JWS algorithms Berth verifies (src/auth/token/jwt.ts), distribution's names. */
const TOKEN_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

/** auth.token as distribution requires it: realm, service and issuer, and a rootcertbundle or a jwks to trust. */
function checkTokenAuth(t: NonNullable<Config['auth']['token']>): void {
  for (const key of ['realm', 'service', 'issuer'] as const) {
    if (!t[key]) throw new ConfigError(`auth.token.${key}: required when token authentication is configured`);
  }
  try {
    new URL(t.realm);
  } catch {
    throw new ConfigError(`auth.token.realm: expected the token server's URL, such as https://auth.example.com/token, got ${JSON.stringify(t.realm)}`);
  }
  if (!t.rootcertbundle && !t.jwks) throw new ConfigError('auth.token: rootcertbundle or jwks is required (the keys whose tokens are trusted)');
  const unknown = t.signingalgorithms.filter((a) => !TOKEN_ALGORITHMS.includes(a));
  if (unknown.length > 0) throw new ConfigError(`auth.token.signingalgorithms: unsupported ${unknown.join(', ')} (supported: ${TOKEN_ALGORITHMS.join(', ')})`);
}

function finishAccounts(a: AccountsConfig, host: string | undefined): void {
  if (!(a.tokenlifetime >= 1000)) throw new ConfigError(`auth.accounts.tokenlifetime: must be at least 1s, got ${a.tokenlifetime}ms`);
  if (!(a.refreshlifetime >= a.tokenlifetime)) throw new ConfigError('auth.accounts.refreshlifetime: must be at least auth.accounts.tokenlifetime');
  a.service ??= host === undefined ? 'berth' : new URL(host).hostname;
  if (a.service === '') throw new ConfigError('auth.accounts.service: must not be empty');
  if (a.issuer === '') throw new ConfigError('auth.accounts.issuer: must not be empty');
  if (a.realm !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(a.realm);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new ConfigError(`auth.accounts.realm: expected an http(s) URL of the token endpoint, got ${JSON.stringify(a.realm)}`);
  }
}

/**
 * A listen address as distribution reads it (Go's net.Listen): `host:port`,
 * `:port` (every interface, IPv4 and IPv6), `[ipv6]:port`, and, beyond Go, a
 * bare port. `host` is undefined for every interface. `key` names the
 * configuration key in errors.
 */
export function parseAddr(addr: string, key = 'http.addr'): { host?: string; port: number } {
  const text = addr.trim();
  const fail = (why: string): never => {
    throw new ConfigError(`${key}: ${why}; expected host:port, :port or [ipv6]:port (for example :5000 or 127.0.0.1:5000), got ${JSON.stringify(addr)}`);
  };
  let host: string;
  let portText: string;
  if (/^\d+$/.test(text)) {
    host = '';
    portText = text;
  } else if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
    if (!m) return fail('an IPv6 address in brackets must be followed by :port');
    host = m[1]!;
    portText = m[2]!;
    if (host !== '' && !net.isIPv6(host.replace(/%.*$/, ''))) return fail(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('missing port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail('too many colons (put an IPv6 address in brackets)');
    if (host !== '' && !/^[A-Za-z0-9.-]+$/.test(host)) return fail(`${JSON.stringify(host)} is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText)) return fail(portText === '' ? 'missing port' : `${JSON.stringify(portText)} is not a port number`);
  const port = Number(portText);
  if (port > 65535) return fail(`port ${port} is out of range`);
  return { host: host === '' ? undefined : host, port };
}
