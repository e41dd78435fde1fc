import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isSecretParam, redactQuery } from './redact.js';

it('keeps ordinary parameters as sent', () => {
  assert.equal(redactQuery('n=10&last=library%2Fubuntu'), 'n=10&last=library%2Fubuntu');
  assert.equal(redactQuery('digest=sha256:abc&mount=sha256:def&from=a/b'), 'digest=sha256:abc&mount=sha256:def&from=a/b');
  assert.equal(redactQuery('artifactType=application%2Fvnd.example&dryrun'), 'artifactType=application%2Fvnd.example&dryrun');
});

it('replaces the values of _state and of credential-like parameters with REDACTED', () => {
  assert.equal(redactQuery('_state=eyJzZWNyZXQi&digest=sha256:abc'), '_state=REDACTED&digest=sha256:abc');
  assert.equal(
    redactQuery('X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20250101&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok'),
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED',
  );
  assert.equal(redactQuery('sv=2021-08-06&se=2030&sig=abc%3D'), 'sv=2021-08-06&se=2030&sig=REDACTED');
  assert.equal(redactQuery('access_token=a&token=b&password=c&client_secret=d&refresh_token=e'), 'access_token=REDACTED&token=REDACTED&password=REDACTED&client_secret=REDACTED&refresh_token=REDACTED');
  // Names are matched decoded and case-insensitively.
  assert.equal(redactQuery('Pass%77ord=x&TOKEN=y'), 'Pass%77ord=REDACTED&TOKEN=REDACTED');
});

it('never shows a secret however the query is shaped', () => {
  assert.equal(redactQuery('token=a&token=b'), 'token=REDACTED&token=REDACTED');
  assert.equal(redactQuery('password=a=b=c'), 'password=REDACTED');
  assert.equal(redactQuery('%E0%A4%A=1&secret=s'), '%E0%A4%A=1&secret=REDACTED', 'a malformed escape in another name');
  const long = redactQuery(`${'a=1&'.repeat(1000)}secret=s`);
  assert.ok(long.length <= 2049 && !long.includes('secret=s'));
});

it('does not mistake ordinary names for secrets', () => {
  for (const name of ['n', 'last', 'digest', 'mount', 'from', 'artifactType', 'dryrun', 'deleteuntagged', 'design', 'monkey']) {
    assert.equal(isSecretParam(name), false, name);
  }
});
