/**
 * Kysely is loaded once per thread, from its CommonJS build (kysely.ts):
 * a value imported from 'kysely' anywhere else would load its ESM build
 * beside it, about 40 ms of every thread's start and a second copy of its
 * classes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Kysely, sql } from './kysely.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('Kysely, loaded once', () => {
  it('comes from its CommonJS build', () => {
    const cjs = createRequire(import.meta.url)('kysely') as typeof import('kysely');
    assert.equal(Kysely, cjs.Kysely);
    assert.equal(sql, cjs.sql);
  });

  it('is imported for its values only through src/metadata/kysely.ts', () => {
    const offenders = [...sources(path.join(root, 'src')), ...sources(path.join(root, 'test'))].filter((file) => {
      if (file.endsWith(path.join('metadata', 'kysely.ts'))) return false;
      const text = readFileSync(file, 'utf8');
      // `import type … from 'kysely'` is erased; any other import, re-export or import() of it (or of a subpath) loads the ESM build.
      return /^(?:import|export) (?!type )[^;]*from ['"]kysely(?:\/[^'"]*)?['"]/m.test(text) || /(?<!typeof )import\(['"]kysely(?:\/[^'"]*)?['"]\)/.test(text);
    });
    assert.deepEqual(offenders.map((f) => path.relative(root, f)), []);
  });
});
