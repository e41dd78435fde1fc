import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, parseAddr, parseConfig } from './config.js';
import { parseDuration } from './schema.js';

const CLASSIC = `
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;

describe('config', () => {
  it('runs with zero configuration', () => {
    const { config, warnings } = parseConfig('');
    assert.equal(config.http.addr, ':5000');
    assert.equal(config.storage.driver, 'filesystem');
    assert.equal(config.storage.filesystem.rootdirectory, path.resolve('./data'));
    assert.equal(config.storage.delete.enabled, false, 'deletes are off by default, as in distribution');
    assert.equal(config.http.prefix, '/');
    assert.deepEqual(warnings, []);
  });

  it('reads the classic registry:2 setup with htpasswd from the environment', () => {
    const { config, warnings } = parseConfig(CLASSIC, {
      REGISTRY_AUTH: 'htpasswd',
      REGISTRY_AUTH_HTPASSWD_REALM: 'Registry Realm',
      REGISTRY_AUTH_HTPASSWD_PATH: '/auth/htpasswd',
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.filesystem.rootdirectory, '/var/lib/registry');
    assert.equal(config.storage.cache.blobdescriptor, 'inmemory');
    assert.equal(config.storage.delete.enabled, true);
    assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.deepEqual(config.health.storagedriver, { enabled: true, interval: 10_000, threshold: 3 });
    assert.deepEqual(config.auth.htpasswd, { realm: 'Registry Realm', path: '/auth/htpasswd' });
    assert.deepEqual(config.log.fields, { service: 'registry' });
  });

  it('applies variables in sorted order, so REGISTRY_STORAGE comes before REGISTRY_STORAGE_…', () => {
    const { config } = parseConfig(CLASSIC, {
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_STORAGE: 'inmemory',
    });
    assert.equal(config.storage.driver, 'inmemory');
    assert.equal(config.storage.delete.enabled, true, 'the later, longer variable still applies');
  });

  it('matches keys case-insensitively and parses values as YAML', () => {
    const { config } = parseConfig('HTTP:\n  Addr: ":1"\n', {
      REGISTRY_HTTP_ADDR: '127.0.0.1:5001',
      REGISTRY_HTTP_RELATIVEURLS: 'true',
      REGISTRY_HTTP_DRAINTIMEOUT: '2m30s',
      REGISTRY_HTTP_TLS_CLIENTCAS: '[/a.pem, /b.pem]',
      REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: '1h',
    });
    assert.equal(config.http.addr, '127.0.0.1:5001');
    assert.equal(config.http.relativeurls, true);
    assert.equal(config.http.draintimeout, 150_000);
    assert.deepEqual(config.http.tls.clientcas, ['/a.pem', '/b.pem']);
    assert.equal(config.storage.maintenance.uploadpurging.age, 3_600_000);
  });

  it('sets list elements by index', () => {
    const { config } = parseConfig('notifications:\n  endpoints:\n    - name: a\n      url: http://127.0.0.1:1/a\n', {
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '3s',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'b',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL: 'http://127.0.0.1:1/b',
    });
    assert.deepEqual(
      config.notifications.endpoints.map((e) => [e.name, e.url, e.timeout]),
      [
        ['a', 'http://127.0.0.1:1/a', 3000],
        ['b', 'http://127.0.0.1:1/b', 1000],
      ],
    );
  });

  it('stores new map keys lower-case', () => {
    const { config } = parseConfig('', { REGISTRY_LOG_FIELDS_ENVIRONMENT: 'staging' });
    assert.deepEqual(config.log.fields, { environment: 'staging' });
  });

  it('refuses to override the version, with a warning', () => {
    const { config, warnings } = parseConfig('version: 0.1', { REGISTRY_VERSION: '0.2' });
    assert.equal(config.version, '0.1');
    assert.match(warnings.join('\n'), /version cannot be overridden/);
  });

  it('warns about unknown keys and variables', () => {
    const { warnings } = parseConfig('http:\n  adr: ":1"\n', { REGISTRY_NOSUCH_THING: 'x' });
    assert.match(warnings.join('\n'), /http\.adr/);
    assert.match(warnings.join('\n'), /nosuch/);
  });

  it('fails on bad values with a message that names the key', () => {
    const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
      ['storage:\n  delete:\n    enabled: sometimes\n', {}, /storage\.delete\.enabled/],
      ['', { REGISTRY_HEALTH_STORAGEDRIVER_INTERVAL: 'soon' }, /health\.storagedriver\.interval/],
      ['storage:\n  filesystem: {}\n  inmemory: {}\n', {}, /storage: more than one storage driver/],
      ['', { REGISTRY_LOG_LEVEL: 'loud' }, /log\.level/],
      ['', { REGISTRY_HTTP_ADDR: 'not an address' }, /http\.addr/],
      ['', { REGISTRY_AUTH: 'htpasswd' }, /auth\.htpasswd\.path/],
      ['version: 0.2\n', {}, /version/],
      ['http: [1, 2]\n', {}, /http: expected a mapping/],
      ['notifications:\n  endpoints:\n    - name: x\n', {}, /notifications\.endpoints\[0\]\.url/],
      ['storage:\n  s3:\n    region: x\n', {}, /storage\.s3/],
      ['http:\n  tls:\n    certificate: /a.pem\n', {}, /http\.tls/],
      ['a: [unclosed\n', {}, /not valid YAML/],
    ];
    for (const [text, env, re] of cases) {
      assert.throws(() => parseConfig(text, env), (err: unknown) => err instanceof ConfigError && re.test(err.message), `${JSON.stringify(text)} ${JSON.stringify(env)}`);
    }
  });

  it('parses Go durations', () => {
    assert.equal(parseDuration('300ms', 'k'), 300);
    assert.equal(parseDuration('1h30m', 'k'), 5_400_000);
    assert.equal(parseDuration('10s', 'k'), 10_000);
    assert.equal(parseDuration('1.5s', 'k'), 1500);
    assert.equal(parseDuration(1_000_000_000, 'k'), 1000, 'bare numbers are nanoseconds, as in Go');
    assert.equal(parseDuration('0', 'k'), 0);
    assert.throws(() => parseDuration('10', 'k'), /k:/);
    assert.throws(() => parseDuration('10 s', 'k'), /k:/);
  });
});

describe('listen addresses (http.addr, http.debug.addr)', () => {
  // What Go's net.Listen (distribution) makes of each, plus a bare port.
  const cases: [string, string | undefined, number][] = [
    [':5000', undefined, 5000],
    ['5000', undefined, 5000],
    ['16312', undefined, 16312],
    ['0.0.0.0:5000', '0.0.0.0', 5000],
    ['[::]:5000', '::', 5000],
    ['[::1]:5001', '::1', 5001],
    ['[]:5000', undefined, 5000],
    ['localhost:5000', 'localhost', 5000],
    ['127.0.0.1:5000', '127.0.0.1', 5000],
    ['registry.example.com:443', 'registry.example.com', 443],
    [' :0 ', undefined, 0],
  ];
  for (const [addr, host, port] of cases) {
    it(`reads ${JSON.stringify(addr)}`, () => assert.deepEqual(parseAddr(addr), { host, port }));
  }

  const bad = [':', '', 'localhost', ':http', ':65536', '::1:5000', '[::1]', '[::1]5000', '[nothost]:5000', 'a b:5000', '127.0.0.1:', '1:2:3'];
  for (const addr of bad) {
    it(`refuses ${JSON.stringify(addr)}, naming the key`, () => {
      assert.throws(() => parseAddr(addr, 'http.debug.addr'), (err: unknown) => err instanceof ConfigError && err.message.startsWith('http.debug.addr: '));
    });
  }

  it('fails at start-up on a bad http.addr or http.debug.addr', () => {
    assert.throws(() => parseConfig('http:\n  addr: "5000:"\n'), /^ConfigError: http\.addr: /);
    assert.throws(() => parseConfig('', { REGISTRY_HTTP_DEBUG_ADDR: 'localhost' }), /http\.debug\.addr: missing port/);
  });
});

describe('hardening keys (Berth\'s own)', () => {
  it('http.timeouts default to 30s header, 65s idle, 60s read, in milliseconds', () => {
    assert.deepEqual(parseConfig('').config.http.timeouts, { header: 30_000, idle: 65_000, read: 60_000 });
  });

  it('http.timeouts from YAML and REGISTRY_HTTP_TIMEOUTS_*; a bad duration names the key', () => {
    const { config } = parseConfig('http:\n  timeouts:\n    header: 5s\n    read: 0\n', { REGISTRY_HTTP_TIMEOUTS_IDLE: '2m' });
    assert.deepEqual(config.http.timeouts, { header: 5000, idle: 120_000, read: 0 });
    assert.throws(() => parseConfig('http:\n  timeouts:\n    header: soon\n'), /http\.timeouts\.header: /);
  });

  it('berth.admins: a list of user names, empty by default', () => {
    assert.deepEqual(parseConfig('').config.berth.admins, []);
    assert.deepEqual(parseConfig('berth:\n  admins: [alice, bob]\n').config.berth.admins, ['alice', 'bob']);
    assert.deepEqual(parseConfig('', { REGISTRY_BERTH_ADMINS: '[carol]' }).config.berth.admins, ['carol']);
  });
});
