// Measures the web UI as a first-time visitor gets it, for docs/performance.md:
// the bytes of the first page (JS and CSS, gzip as served) and, in Debian's
// headless Chromium with a cold cache (a fresh browser context each run),
// the time until Explore shows its repositories; and a repository with
// 10,000 tags: its tags page, first and last, rendered from the API's pages.
// Usage: npm run build && node scripts/web-perf.mjs [runs]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { startBerth } from '../dist/test/support/berth.js';
import { basic, pushSmallImage } from '../dist/test/support/accounts.js';
import { launchBrowser } from '../dist/test/support/browser.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] ?? 7);
const TAGS = 10_000;
const manifest = JSON.parse(readFileSync(path.join(root, 'dist/web/manifest.json'), 'utf8'));
const asset = (f) => readFileSync(path.join(root, 'dist/web/assets', f));
const firstJs = [manifest.js, ...manifest.preload];
const gz = (files) => files.reduce((s, f) => s + gzipSync(asset(f), { level: 9 }).byteLength, 0);
const raw = (files) => files.reduce((s, f) => s + asset(f).byteLength, 0);
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`first page JS: ${firstJs.length} files, ${kb(raw(firstJs))} minified, ${kb(gz(firstJs))} gzip`);
if (manifest.css) console.log(`first page CSS: ${kb(raw([manifest.css]))} minified, ${kb(gz([manifest.css]))} gzip`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const b = await startBerth({ REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open', REGISTRY_AUTH_ACCOUNTS_DEFAULTVISIBILITY: 'public', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' });
const browser = await launchBrowser();
try {
  const alice = { user: 'alice', password: 'alice-password-1' };
  await fetch(`${b.url}/berth/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: alice.user, password: alice.password }) });
  const asAlice = (u, init = {}) => fetch(u, { ...init, headers: { ...init.headers, authorization: basic(alice.user, alice.password) } });
  for (let i = 0; i < 30; i++) await pushSmallImage(asAlice, b.url, `alice/app-${i}`, 'v1');

  /** Navigates in a fresh context (cold cache) and waits until no loading state is left. */
  const visit = async (url) => {
    const context = await browser.newContext({ baseURL: b.url, viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const started = performance.now();
    await page.goto(url);
    await page.locator('.loading, .boot').first().waitFor({ state: 'detached' });
    const ms = performance.now() - started;
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
    const transferred = await page.evaluate(() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).reduce((s, e) => s + (e.transferSize ?? 0), 0));
    await context.close();
    return { ms, paint, transferred };
  };

  const home = [];
  for (let i = 0; i < runs; i++) home.push(await visit('/'));
  console.log(`Explore, cold cache, ${runs} runs: content in ${median(home.map((r) => r.ms)).toFixed(0)} ms (median; max ${Math.max(...home.map((r) => r.ms)).toFixed(0)} ms), first contentful paint ${median(home.map((r) => r.paint)).toFixed(0)} ms, ${kb(median(home.map((r) => r.transferred)))} transferred`);

  // 10,000 tags on one repository: one manifest, many tags (PUTs in parallel).
  const img = await pushSmallImage(asAlice, b.url, 'alice/many', 't0');
  const body = await (await asAlice(`${b.url}/v2/alice/many/manifests/t0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer();
  let next = 1;
  const worker = async () => {
    while (next < TAGS) {
      const n = next++;
      const r = await asAlice(`${b.url}/v2/alice/many/manifests/t${n}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body });
      if (r.status !== 201) throw new Error(`tag t${n}: ${r.status}`);
      await r.arrayBuffer();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, worker));
  console.log(`pushed ${TAGS} tags of ${img.manifest.slice(0, 19)}… in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const first = [];
  const last = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    first.push(await visit('/r/alice/many/-/tags?sort=name'));
    last.push(await visit(`/r/alice/many/-/tags?sort=name&page=${TAGS / 25}`));
  }
  console.log(`tags page of a ${TAGS}-tag repository, cold cache: first page ${median(first.map((r) => r.ms)).toFixed(0)} ms, page ${TAGS / 25} ${median(last.map((r) => r.ms)).toFixed(0)} ms (median)`);
} finally {
  await browser.close();
  await b.close();
}
