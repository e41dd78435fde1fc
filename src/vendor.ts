/**
 * Dependencies that a thread would otherwise load as hundreds of files,
 * from their bundles in dist/vendor/ (scripts/build-vendor.mjs, part of the
 * build): Kysely's CommonJS build is 262 files and yaml's 72, which node
 * resolves, reads and compiles one by one at every thread's start (about
 * 82 and 40 ms here; the bundles 28 and 14). Where no bundle was built (a
 * bare `tsc`), the package itself, the same code.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function vendored<T>(name: 'kysely' | 'yaml'): T {
  try {
    // dist/src/vendor.js → dist/vendor/<name>.cjs
    return require(`../vendor/${name}.cjs`) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    return require(name) as T;
  }
}
