// auth.accounts: the Hub's keys, their defaults, the bare-name rule and the env rule, and what is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './config.js';

const DEFAULTS = { registration: 'closed', defaultvisibility: 'private', anonymouspull: true, tokenlifetime: 300_000, refreshlifetime: 720 * 3_600_000, service: 'berth', issuer: 'berth' };

describe('auth.accounts', () => {
  it('is off unless configured', () => {
    assert.equal(parseConfig('').config.auth.accounts, undefined);
    assert.equal(parseConfig('auth:\n  htpasswd:\n    path: /x\n').config.auth.accounts, undefined);
  });

  it('takes its defaults from `auth: accounts`, `auth: {accounts: {}}` and REGISTRY_AUTH=accounts', () => {
    assert.deepEqual(parseConfig('auth: accounts\n').config.auth.accounts, DEFAULTS);
    assert.deepEqual(parseConfig('auth:\n  accounts: {}\n').config.auth.accounts, DEFAULTS);
    const env = parseConfig('', { REGISTRY_AUTH: 'accounts', REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'invite', REGISTRY_AUTH_ACCOUNTS_ANONYMOUSPULL: 'false' });
    assert.deepEqual(env.config.auth.accounts, { ...DEFAULTS, registration: 'invite', anonymouspull: false });
    assert.equal(env.config.auth.htpasswd, undefined);
  });

  it('reads every key; the service defaults to http.host\'s host name', () => {
    const { config, warnings } = parseConfig(
      'http:\n  host: https://registry.example.com:8443\nauth:\n  accounts:\n    registration: open\n    defaultvisibility: public\n    tokenlifetime: 10m\n    refreshlifetime: 24h\n    issuer: me\n    realm: https://registry.example.com:8443/token\n',
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.auth.accounts, {
      registration: 'open',
      defaultvisibility: 'public',
      anonymouspull: true,
      tokenlifetime: 600_000,
      refreshlifetime: 86_400_000,
      service: 'registry.example.com',
      issuer: 'me',
      realm: 'https://registry.example.com:8443/token',
    });
    assert.equal(parseConfig('auth:\n  accounts:\n    service: reg\n').config.auth.accounts?.service, 'reg');
  });

  it('refuses bad values, naming the key, and more than one method', () => {
    const refused = (yaml: string, env: NodeJS.ProcessEnv, message: RegExp) => assert.throws(() => parseConfig(yaml, env), (err: unknown) => err instanceof ConfigError && message.test(err.message));
    refused('auth:\n  accounts:\n    registration: sometimes\n', {}, /^auth\.accounts\.registration: expected one of open, closed, invite/);
    refused('auth:\n  accounts:\n    defaultvisibility: secret\n', {}, /^auth\.accounts\.defaultvisibility: /);
    refused('auth:\n  accounts:\n    tokenlifetime: 0\n', {}, /^auth\.accounts\.tokenlifetime: must be at least 1s/);
    refused('auth:\n  accounts:\n    tokenlifetime: 1h\n    refreshlifetime: 5m\n', {}, /^auth\.accounts\.refreshlifetime: /);
    refused('auth:\n  accounts:\n    realm: not a url\n', {}, /^auth\.accounts\.realm: /);
    refused('auth:\n  accounts: {}\n  htpasswd:\n    path: /x\n', {}, /^auth: more than one authentication method configured \(htpasswd, accounts\)/);
    refused('auth:\n  htpasswd:\n    path: /x\n', { REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open' }, /^auth: more than one/);
  });
});
