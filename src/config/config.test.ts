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

  it('reports the variables it applied, by name, in the order applied (not the ignored ones, nor other variables)', () => {
    const { applied } = parseConfig(CLASSIC, {
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_HTTP_SECRET: 'not-to-be-shown',
      REGISTRY_VERSION: '0.2',
      REGISTRY_CONFIGURATION_PATH: '/etc/registry.yml',
      HOME: '/root',
    });
    assert.deepEqual(applied, ['REGISTRY_HTTP_SECRET', 'REGISTRY_STORAGE_DELETE_ENABLED']);
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

  it('accepts distribution\'s auth.token keys, from the file and REGISTRY_AUTH_TOKEN_*', () => {
    const { config } = parseConfig(
      'auth:\n  token:\n    realm: https://auth.example.com/token\n    service: registry.example.com\n    issuer: auth.example.com\n    rootcertbundle: /certs/bundle.pem\n',
      { REGISTRY_AUTH_TOKEN_JWKS: '/certs/jwks.json', REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS: '[ES256, RS256]' },
    );
    assert.deepEqual(config.auth.token, {
      realm: 'https://auth.example.com/token',
      service: 'registry.example.com',
      issuer: 'auth.example.com',
      rootcertbundle: '/certs/bundle.pem',
      jwks: '/certs/jwks.json',
      signingalgorithms: ['ES256', 'RS256'],
      autoredirect: false,
    });
    assert.equal(parseConfig('').config.auth.token, undefined);
    assert.equal(parseConfig('auth:\n  htpasswd:\n    path: /x\n').config.auth.token, undefined);
  });

  it('refuses an incomplete or conflicting auth.token, naming the key', () => {
    const full = 'auth:\n  token:\n    realm: https://a/token\n    service: s\n    issuer: i\n    jwks: /j.json\n';
    assert.ok(parseConfig(full).config.auth.token);
    const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
      [full.replace('    realm: https://a/token\n', ''), {}, /auth\.token\.realm: required/],
      [full.replace('    service: s\n', ''), {}, /auth\.token\.service: required/],
      [full.replace('    issuer: i\n', ''), {}, /auth\.token\.issuer: required/],
      [full.replace('    jwks: /j.json\n', ''), {}, /auth\.token: rootcertbundle or jwks/],
      [full.replace('https://a/token', 'not a url'), {}, /auth\.token\.realm: expected/],
      [full, { REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS: '[HS256]' }, /auth\.token\.signingalgorithms: unsupported HS256/],
      [full, { REGISTRY_AUTH_HTPASSWD_PATH: '/h' }, /auth: more than one authentication method configured \(htpasswd, token\)/],
      ['', { REGISTRY_AUTH: 'token' }, /auth\.token\.realm: required/],
      ['auth:\n  silly:\n    realm: x\n', {}, /auth\.silly/],
    ];
    for (const [text, env, re] of cases) {
      assert.throws(() => parseConfig(text, env), (err: unknown) => err instanceof ConfigError && re.test(err.message), `${JSON.stringify(text)} ${JSON.stringify(env)}`);
    }
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

describe('YAML 1.1 booleans, as distribution (Go yaml.v2) reads them', () => {
  const TRUE = ['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'TRUE'];
  const FALSE = ['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'false', 'False', 'FALSE'];

  for (const [words, expected] of [
    [TRUE, true],
    [FALSE, false],
  ] as const) {
    for (const word of words) {
      it(`${word} is ${expected} in config.yml and in a REGISTRY_* value`, () => {
        const file = parseConfig(`storage:\n  delete:\n    enabled: ${word}\nhttp:\n  relativeurls: ${word}\nberth:\n  gc:\n    deleteuntagged: ${word}\n`).config;
        assert.equal(file.storage.delete.enabled, expected);
        assert.equal(file.http.relativeurls, expected);
        assert.equal(file.berth.gc.deleteuntagged, expected);
        const env = parseConfig('', { REGISTRY_STORAGE_DELETE_ENABLED: word, REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED: word, REGISTRY_LOG_ACCESSLOG_DISABLED: word }).config;
        assert.equal(env.storage.delete.enabled, expected);
        assert.equal(env.http.debug.prometheus.enabled, expected);
        assert.equal(env.log.accesslog.disabled, expected);
      });
    }
  }

  it('defaults stay when the word is absent, and other words still fail naming the key', () => {
    assert.equal(parseConfig('').config.storage.maintenance.uploadpurging.enabled, true);
    for (const word of ['yep', 'enabled', '1', 'oui', 'nope']) {
      assert.throws(() => parseConfig('', { REGISTRY_STORAGE_DELETE_ENABLED: word }), /^ConfigError: storage\.delete\.enabled: expected true or false/, word);
    }
  });

  it('a string key keeps the word as written (yaml.v2 does the same for a string field)', () => {
    const { config } = parseConfig('http:\n  secret: yes\nlog:\n  fields:\n    audit: "on"\n');
    assert.equal(config.http.secret, 'yes');
    assert.deepEqual(config.log.fields, { audit: 'on' });
  });
});

describe('keys Berth accepts but does not act on', () => {
  const warned = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, env).warnings.join('\n');

  it('proxy.remoteurl warns that there is no pull-through cache, from the file or the environment', () => {
    for (const w of [warned('proxy:\n  remoteurl: https://registry-1.docker.io\n  username: u\n'), warned('', { REGISTRY_PROXY_REMOTEURL: 'https://registry-1.docker.io' })]) {
      assert.match(w, /proxy\.remoteurl is not supported/);
      assert.match(w, /no pull-through cache/);
      assert.match(w, /https:\/\/registry-1\.docker\.io/);
    }
    assert.equal(warned('proxy:\n  username: u\n'), '', 'no remote URL, nothing proxied by distribution either');
  });

  it('middleware entries warn with what is lost; disabled ones (any YAML 1.1 word) stay quiet', () => {
    const text = `middleware:
  storage:
    - name: cloudfront
      options:
        baseurl: https://d111111abcdef8.cloudfront.net/
    - name: redirect
      disabled: yes
      options:
        baseurl: https://cdn.example.com/
  registry:
    - name: ratelimit
`;
    const w = parseConfig(text).warnings;
    assert.equal(w.length, 2, w.join('\n'));
    assert.match(w[0]!, /^middleware\.storage\[0\] \(cloudfront\) is not supported.*not redirected to https:\/\/d111111abcdef8\.cloudfront\.net\//);
    assert.match(w[1]!, /^middleware\.registry\[0\] \(ratelimit\) is not supported/);
  });

  it('warns for every other accepted key that changes what a user gets', () => {
    const cases: [string, RegExp][] = [
      ['log:\n  hooks:\n    - type: mail\n      levels: [panic]\n', /log\.hooks\[0\] \(mail\).*e-mail/],
      ['reporting:\n  bugsnag:\n    apikey: k\n', /reporting\.bugsnag.*Bugsnag/],
      ['reporting:\n  newrelic:\n    licensekey: k\n', /reporting\.newrelic.*New Relic/],
      ['http:\n  tls:\n    letsencrypt:\n      cachefile: /c\n      email: a@b\n', /http\.tls\.letsencrypt.*plain HTTP on :5000/],
      ['http:\n  tls:\n    ciphersuites: [TLS_AES_128_GCM_SHA256]\n', /http\.tls\.ciphersuites/],
      ['http:\n  tls:\n    clientcas: [/ca.pem]\n    clientauth: verify-client-cert-if-given\n', /http\.tls\.clientauth.*must still present/],
      ['http:\n  h2c:\n    enabled: on\n', /http\.h2c\.enabled/],
      ['validation:\n  manifests:\n    urls:\n      allow: ["^https://example.com/"]\n', /validation\.manifests\.urls/],
      ['validation:\n  disabled: true\n', /validation\.disabled.*still validated/],
      ['compatibility:\n  schema1:\n    enabled: true\n', /compatibility\.schema1\.enabled.*refused/],
      ['catalog:\n  maxentries: 5000\n', /catalog\.maxentries/],
      ['notifications:\n  events:\n    includereferences: yes\n', /notifications\.events\.includereferences/],
    ];
    for (const [text, re] of cases) assert.match(warned(text), re, text);
  });

  it('keys that change nothing a user sees stay quiet; redis gets one info line', () => {
    const quiet = `storage:
  cache:
    blobdescriptor: redis
    blobdescriptorsize: 10000
  redirect:
    disable: true
  tag:
    concurrencylimit: 8
http:
  http2:
    disabled: false
  tls:
    clientauth: verify-client-cert-if-given
compatibility:
  schema1:
    enabled: false
validation:
  disabled: false
redis:
  addr: localhost:6379
  db: 0
`;
    const { warnings, notices } = parseConfig(quiet);
    assert.deepEqual(warnings, []);
    assert.equal(notices.length, 1);
    assert.match(notices[0]!, /^redis is not used: .*metadata database/);
    assert.deepEqual(parseConfig(CLASSIC).notices, []);
  });

  it('honours the deprecated top-level loglevel when log.level is not given', () => {
    assert.equal(parseConfig('loglevel: debug\n').config.log.level, 'debug');
    assert.equal(parseConfig('loglevel: debug\nlog:\n  level: warn\n').config.log.level, 'warn');
    assert.throws(() => parseConfig('loglevel: loud\n'), /^ConfigError: loglevel: /);
  });
});

describe('scheduler periods', () => {
  it('berth.gc.interval below 1s is refused naming the key; 0 turns the schedule off', () => {
    assert.throws(() => parseConfig('', { REGISTRY_BERTH_GC_INTERVAL: '500ms' }), /^ConfigError: berth\.gc\.interval: must be at least 1s \(or 0 for no scheduled collection\), got 500ms/);
    assert.equal(parseConfig('', { REGISTRY_BERTH_GC_INTERVAL: '0' }).config.berth.gc.interval, 0);
    assert.equal(parseConfig('', { REGISTRY_BERTH_GC_INTERVAL: '1s' }).config.berth.gc.interval, 1000);
    assert.equal(parseConfig('', { REGISTRY_BERTH_GC_INTERVAL: '720h' }).config.berth.gc.interval, 720 * 3_600_000);
    assert.equal(parseConfig('', { REGISTRY_BERTH_GC_INTERVAL: '10ms', REGISTRY_BERTH_GC_ENABLED: 'false' }).config.berth.gc.interval, 10, 'not checked when off');
  });

  it('storage.maintenance.uploadpurging.interval below 1s is refused naming the key', () => {
    assert.throws(() => parseConfig('', { REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: '100ms' }), /^ConfigError: storage\.maintenance\.uploadpurging\.interval: must be at least 1s, got 100ms/);
    assert.throws(() => parseConfig('', { REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: '0s' }), /uploadpurging\.interval/);
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

  it('berth.sendfile: auto by default, always or never from YAML or REGISTRY_BERTH_SENDFILE; another word names the key', () => {
    assert.equal(parseConfig('').config.berth.sendfile, 'auto');
    assert.equal(parseConfig('berth:\n  sendfile: always\n').config.berth.sendfile, 'always');
    assert.equal(parseConfig('', { REGISTRY_BERTH_SENDFILE: 'never' }).config.berth.sendfile, 'never');
    assert.throws(() => parseConfig('berth:\n  sendfile: yes\n'), /berth\.sendfile: /);
  });
});

describe('storage.s3', () => {
  it("reads distribution's keys, with REGISTRY_STORAGE_S3_* overrides and distribution's defaults", () => {
    const text = 'storage:\n  s3:\n    region: us-east-1\n    bucket: images\n    regionendpoint: http://127.0.0.1:8080\n    chunksize: 6291456\n    storageclass: NONE\n  redirect:\n    disable: true\n';
    const { config, warnings } = parseConfig(text, { REGISTRY_STORAGE_S3_ACCESSKEY: 'test:tester', REGISTRY_STORAGE_S3_SECRETKEY: 'testing', REGISTRY_STORAGE_S3_ROOTDIRECTORY: '/registry' });
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.driver, 's3');
    const s3 = config.storage.s3;
    assert.equal(s3.bucket, 'images');
    assert.equal(s3.regionendpoint, 'http://127.0.0.1:8080');
    assert.equal(s3.accesskey, 'test:tester');
    assert.equal(s3.secretkey, 'testing');
    assert.equal(s3.rootdirectory, '/registry');
    assert.equal(s3.chunksize, 6291456);
    assert.equal(s3.multipartcopythresholdsize, 32 * 1024 * 1024);
    assert.equal(s3.secure, true);
    assert.equal(s3.storageclass, 'NONE');
    assert.equal(config.storage.redirect.disable, true);
  });

  it('refuses what cannot work, naming the key', () => {
    const cases: [string, RegExp][] = [
      ['storage:\n  s3:\n    region: x\n', /storage\.s3\.bucket: required/],
      ['storage:\n  s3:\n    region: x\n    bucket: b\n    accesskey: only-one\n', /storage\.s3\.accesskey and storage\.s3\.secretkey/],
      ['storage:\n  s3:\n    region: x\n    bucket: b\n    chunksize: 1024\n', /storage\.s3\.chunksize/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseConfig(text, {}), (err: unknown) => err instanceof ConfigError && re.test(err.message), text);
  });
});

describe('storage.azure', () => {
  it("reads distribution's keys, with REGISTRY_STORAGE_AZURE_* overrides", () => {
    const text = 'storage:\n  azure:\n    accountname: acct\n    container: images\n    rootdirectory: /registry\n';
    const { config, warnings } = parseConfig(text, { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: 'a2V5' });
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.driver, 'azure');
    assert.deepEqual(
      { ...config.storage.azure },
      { accountname: 'acct', accountkey: 'a2V5', container: 'images', realm: 'core.windows.net', rootdirectory: '/registry' },
    );
    assert.equal(config.storage.redirect.disable, false, "redirects on: distribution's default");
  });

  it('refuses a configuration without the account key, naming the key', () => {
    assert.throws(() => parseConfig('storage:\n  azure:\n    accountname: acct\n    container: c\n', {}), /storage\.azure\.accountkey: required/);
  });
});
