import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonShapeProblem, MAX_JSON_DEPTH, MAX_JSON_VALUES } from './json-shape.js';

const shape = (text: string, depth?: number, values?: number) => jsonShapeProblem(Buffer.from(text), depth, values);

describe('jsonShapeProblem', () => {
  it('accepts a real manifest', () => {
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: Array.from({ length: 1000 }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${i.toString(16).padStart(64, '0')}`,
        size: 1234,
        platform: { architecture: 'amd64', os: 'linux', 'os.features': ['a', 'b'] },
        annotations: { 'org.opencontainers.image.title': 'a "quoted" \\ title, with [brackets] and {braces}' },
      })),
    };
    assert.equal(shape(JSON.stringify(manifest, null, 2)), undefined);
  });

  it('refuses nesting deeper than the limit, and only deeper', () => {
    const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
    assert.equal(shape(nested(MAX_JSON_DEPTH)), undefined);
    assert.match(shape(nested(MAX_JSON_DEPTH + 1))!, /nests deeper than 64 levels/);
    assert.match(shape('{"a":'.repeat(100) + '1' + '}'.repeat(100))!, /nests deeper/);
  });

  it('counts objects, arrays, strings, keys, numbers and literals as values', () => {
    // { "a" [ 1 true null -2.5e3 "x" {: nine values
    const doc = '{"a": [1, true, null, -2.5e3, "x", {}]}';
    assert.equal(shape(doc, 64, 9), undefined);
    assert.match(shape(doc, 64, 8)!, /more than 8 values/);
  });

  it('refuses more values than the limit', () => {
    assert.match(shape('[' + '{},'.repeat(MAX_JSON_VALUES) + '{}]')!, /more than 200000 values/);
    assert.match(shape('[' + '1,'.repeat(MAX_JSON_VALUES) + '1]')!, /more than/);
    assert.equal(shape('[' + '12345,'.repeat(MAX_JSON_VALUES - 2) + '1]'), undefined);
  });

  it('does not count brackets or quotes inside strings', () => {
    assert.equal(shape(`["${'['.repeat(1000)}", "\\"[[[[", "{{{{\\\\"]`, 64, 10), undefined);
  });
});
