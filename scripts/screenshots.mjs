// Regenerates docs/screenshots/*.png: the web UI's main pages at a wide and
// a phone width, in the light and the dark theme, against a throwaway
// Berth with accounts and a few images pushed by skopeo.
// Usage: npm run build && node scripts/screenshots.mjs
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBerth } from '../dist/test/support/berth.js';
import { basic } from '../dist/test/support/accounts.js';
import { launchBrowser } from '../dist/test/support/browser.js';
import { buildImage, buildIndex } from '../dist/test/support/images.js';
import { ensureTool, run } from '../dist/test/support/tools.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'docs/screenshots');
const ALICE = { user: 'alice', password: 'alice-password-1' };
const ADMIN = { user: 'chief', password: 'chief-password-1' };

const README = `# acme/api

The API server of the Acme platform: a small Go binary on a distroless base.

## Run it

\`\`\`sh
docker run -p 8080:8080 acme/api:1.4
\`\`\`

| Tag | What |
|-----|------|
| \`1.4\` | current release |
| \`edge\` | built from main |

See the [changelog](https://example.org/changelog).
`;

const work = await mkdtemp(path.join(tmpdir(), 'berth-shots-'));
const b = await startBerth({ REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open', REGISTRY_AUTH_ACCOUNTS_DEFAULTVISIBILITY: 'public', REGISTRY_LOG_ACCESSLOG_DISABLED: 'true' });
const browser = await launchBrowser();
try {
  const api = async (method, p, body, who = ALICE) => {
    const r = await fetch(`${b.url}/berth/v1/${p}`, { method, headers: { authorization: basic(who.user, who.password), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
  };
  // The first administrator, as `berth user add --admin` makes one.
  await b.server.hub.accounts.create({ name: ADMIN.user, password: ADMIN.password, admin: true }, { name: null, client: 'cli' });
  await fetch(`${b.url}/berth/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: ALICE.user, password: ALICE.password }) });
  await api('POST', 'orgs', { name: 'acme' });
  const skopeo = await ensureTool('skopeo');
  const push = async (img, dest) =>
    run(skopeo, ['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `${ALICE.user}:${ALICE.password}`, img.ref, `docker://${b.host}/${dest}`], { timeoutMs: 120_000 });
  const layout = path.join(work, 'layout');
  const single = await buildImage(layout, { tag: 'v1', seed: 'shots', layers: 3 });
  const multi = await buildIndex(layout, { tag: 'multi', seed: 'shots-index', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }] });
  for (const tag of ['1.4', '1.3', 'edge']) await push(multi, `acme/api:${tag}`);
  await push(single, 'acme/api:1.2');
  await push(single, 'acme/worker:latest');
  await push(single, 'alice/notes:v1');
  await api('PUT', 'repositories/acme/api/-/description', { description: 'The API server of the Acme platform' });
  await api('PUT', 'repositories/acme/api/-/readme', { readme: README });
  await api('PUT', 'repositories/acme/worker/-/description', { description: 'Background jobs for the Acme platform' });
  await api('PUT', 'repositories/alice/notes/-/description', { description: 'A note-taking service' });
  await api('PUT', 'repositories/acme/api/-/star');
  await api('PUT', 'repositories/acme/api/-/official', { official: true }, ADMIN);

  await mkdir(out, { recursive: true });
  const pages = [
    ['explore', '/', null],
    ['search', '/search?q=acme', null],
    ['repository', '/r/acme/api', null],
    ['tags', '/r/acme/api/-/tags', null],
    ['tag', '/r/acme/api/-/tags/1.2', null],
    ['tokens', '/account/tokens', ALICE],
    ['admin', '/admin?tab=storage', ADMIN],
  ];
  const sizes = [
    ['wide', { width: 1280, height: 860 }],
    ['phone', { width: 390, height: 844 }],
  ];
  for (const theme of ['light', 'dark']) {
    for (const [sizeName, viewport] of sizes) {
      const context = await browser.newContext({ baseURL: b.url, viewport, colorScheme: theme, deviceScaleFactor: 1 });
      const page = await context.newPage();
      let loggedIn = null;
      for (const [name, url, who] of pages) {
        if (who && loggedIn !== who) {
          await page.goto('/login');
          await page.getByLabel('User name').fill(who.user);
          await page.getByLabel('Password').fill(who.password);
          await page.getByRole('button', { name: 'Log in' }).click();
          await page.getByRole('button', { name: `${who.user} ▾` }).waitFor();
          loggedIn = who;
        }
        await page.goto(url);
        await page.locator('.loading, .boot').first().waitFor({ state: 'detached' });
        // The search box on Explore takes the focus; a screenshot without the caret is steadier.
        await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
        const file = path.join(out, `${name}-${sizeName}-${theme}.png`);
        await page.screenshot({ path: file });
        console.error(`screenshots: ${path.relative(root, file)}`);
      }
      await context.close();
    }
  }
} finally {
  await browser.close();
  await b.close();
  await rm(work, { recursive: true, force: true });
}
