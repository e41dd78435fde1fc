// Bundles the dependencies a serving thread loads many files of into one
// CommonJS file each, under dist/vendor/: Kysely's CommonJS build is 262
// files and yaml's 72, and node resolves, reads and compiles each on every
// thread's start (Kysely about 82 ms of it, yaml 40; one file each, 28 and
// 14). Built from the installed packages, so they match package-lock.json;
// src/vendor.ts loads them (for src/metadata/kysely.ts and src/config/yaml.ts).
// Usage: node scripts/build-vendor.mjs
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

for (const name of ['kysely', 'yaml']) {
  await build({
    absWorkingDir: root,
    // The file `require(name)` loads: the package's CommonJS entry.
    entryPoints: [require.resolve(name)],
    outfile: path.join(root, 'dist/vendor', `${name}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  });
}
