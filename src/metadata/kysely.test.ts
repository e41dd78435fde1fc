/**
 * Kysely is loaded once per thread, from its CommonJS build bundled into
 * one file (kysely.ts, src/vendor.ts): a value imported from 'kysely'
 * anywhere else would load its ESM build beside it, about 40 ms of every
 * thread's start and a second copy of its classes. yaml comes from its
 * bundle the same way.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
  it('comes from its bundle, built with the server', () => {
    const bundled = createRequire(import.meta.url)(path.join(root, 'dist/vendor/kysely.cjs')) as typeof import('kysely');
    assert.equal(Kysely, bundled.Kysely);
    assert.equal(sql, bundled.sql);
  });

  it('a thread that loads the store and the configuration loads Kysely and yaml as one file each', () => {
    // A fresh process, as a serving thread starts: which CommonJS files did it load?
    const modules = ['dist/src/metadata/kysely.js', 'dist/src/config/config.js'].map((m) => pathToFileURL(path.join(root, m)).href);
    const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join(' ')} const { createRequire } = await import('node:module'); console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
    const loaded = (JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[]).map((f) => path.relative(root, f));
    assert.ok(loaded.includes(path.join('dist', 'vendor', 'kysely.cjs')), `loaded: ${loaded.join(', ')}`);
    assert.ok(loaded.includes(path.join('dist', 'vendor', 'yaml.cjs')), `loaded: ${loaded.join(', ')}`);
    assert.deepEqual(loaded.filter((f) => /node_modules[\\/](kysely|yaml)[\\/]/.test(f)), []);
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
