// Builds the web UI (src/web/app) into dist/web/: content-hashed, minified
// assets under assets/ and manifest.json, which the server reads to write
// the HTML shell (src/web/serve.ts). Usage: node scripts/build-web.mjs
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/web');
const entry = 'src/web/app/main.tsx';

// Old hashed files would pile up (and be served) otherwise.
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outdir: path.join(out, 'assets'),
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const rel = (p) => path.relative(path.join(out, 'assets'), path.join(root, p));
const outputs = Object.entries(result.metafile.outputs);
const main = outputs.find(([, o]) => o.entryPoint === entry);
if (!main) throw new Error(`build-web: no output for ${entry}`);
const [mainFile, mainOut] = main;
const manifest = {
  js: rel(mainFile),
  css: mainOut.cssBundle ? rel(mainOut.cssBundle) : null,
  // Chunks the entry imports statically: fetched in parallel with it.
  preload: mainOut.imports.filter((i) => i.kind === 'import-statement' && !i.external).map((i) => rel(i.path)),
};
await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const bytes = outputs.filter(([f]) => f.endsWith('.js') || f.endsWith('.css')).reduce((sum, [, o]) => sum + o.bytes, 0);
console.error(`build-web: ${manifest.js}${manifest.css ? ` + ${manifest.css}` : ''}, ${outputs.length} files, ${(bytes / 1024).toFixed(1)} KiB of JS and CSS`);
