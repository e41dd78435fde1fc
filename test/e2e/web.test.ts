/**
 * The web UI in a real headless Chromium (Debian's, driven by
 * playwright-core) against `berth serve` with accounts, as a user starts it,
 * with images pushed by skopeo. One browser for the file; each user has a
 * browser context of their own (their own cookies). Every page visited is
 * checked by axe-core (no serious or critical finding), and no page may
 * log an error, open a dialog, break its CSP or reach another host.
 *
 * The path walked is the issue's: register, log in, create an organization
 * and a team, push from the command line and see the repository appear,
 * search for it, star it, write and read its README (a hostile one that
 * must never run), browse tags and a tag's layers, create a token and use
 * it (on /v2/ and for `docker login` with a private dockerd), revoke it,
 * make the repository private and check that another user and an
 * anonymous browser cannot see it (page, search, API).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startAccountsBerth, basic, type AccountsBerth } from '../support/accounts.js';
import { startBerth } from '../support/berth.js';
import { axeSerious, launchBrowser, openPage, type PageWatch } from '../support/browser.js';
import { startDockerd } from '../support/clients.js';
import { buildImage, buildIndex, type BuiltImage } from '../support/images.js';
import { ensureTool, run } from '../support/tools.js';

// Functions passed to page.evaluate run in the page; the server's tsconfig has no DOM types, so the little they touch is declared here.
declare const document: {
  querySelector(selector: string): unknown;
  activeElement: { textContent: string | null; name?: string };
  documentElement: { dataset: Record<string, string | undefined>; scrollWidth: number };
  addEventListener(type: string, listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const window: Record<string, unknown>;

const ALICE = { user: 'alice', password: 'alice-password-1' };
const BOB = { user: 'bob', password: 'bob-password-1' };

/** README content that tries every way to run script; none may. */
const HOSTILE_README = [
  '# Hostile README',
  '',
  'A paragraph that renders.',
  '',
  '<script>window.__pwned = "script"</script>',
  '<img src="x" onerror="window.__pwned = \'onerror\'">',
  '[a javascript link](javascript:window.__pwned=\'link\')',
  '[an encoded one](jav&#x61;script:window.__pwned=\'encoded\')',
  '![image](javascript:window.__pwned=\'img\')',
  '<a href="javascript:window.__pwned=\'raw-a\'">raw anchor</a>',
  '<svg onload="window.__pwned=\'svg-onload\'"><script>window.__pwned=\'svg-script\'</script></svg>',
  '<svg><a xlink:href="javascript:window.__pwned=\'svg-link\'"><text>svg link</text></a></svg>',
  '<iframe src="javascript:window.__pwned=\'iframe\'"></iframe>',
  '<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned=\'mxss\'">',
  '<details open ontoggle="window.__pwned=\'ontoggle\'">x</details>',
  '[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xPC9zY3JpcHQ+)',
  '',
  '```',
  'docker run hostile',
  '```',
].join('\n');

describe('web UI in Chromium against berth serve with accounts', { timeout: 900_000 }, () => {
  let b: AccountsBerth;
  let browser: Browser;
  let work: string;
  let skopeo: string;
  let image: BuiltImage;
  const contexts: BrowserContext[] = [];
  const watches: { who: string; watch: PageWatch }[] = [];
  const axeFindings: string[] = [];
  const checkedPages = new Set<string>();

  /** A browser of its own for one user (or anonymous). */
  const userPage = async (who: string): Promise<Page> => {
    const { context, page, watch } = await openPage(browser, b.url);
    contexts.push(context);
    watches.push({ who, watch });
    page.setDefaultTimeout(15_000);
    return page;
  };

  /** Waits for the page's content (no loading state left), then runs axe on it. */
  const settle = async (page: Page, label: string) => {
    await page.waitForLoadState('load');
    // A locator rather than waitForFunction: the page's CSP forbids the eval that one needs.
    await page.locator('.loading, .boot').first().waitFor({ state: 'detached' });
    const findings = await axeSerious(page);
    checkedPages.add(label);
    for (const f of findings) axeFindings.push(`${label}: ${f.impact} ${f.id} (${f.help}) at ${f.nodes.join(' ')}`);
  };

  const goto = async (page: Page, url: string, label: string) => {
    await page.goto(url);
    await settle(page, label);
  };

  const login = async (page: Page, who: { user: string; password: string }) => {
    await goto(page, '/login', 'login');
    await page.getByLabel('User name').fill(who.user);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: `${who.user} ▾` }).waitFor();
  };

  const push = async (creds: string, img: BuiltImage, dest: string) => {
    await run(skopeo, ['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds, img.ref, `docker://${b.host}/${dest}`], { timeoutMs: 120_000 });
  };

  before(async () => {
    skopeo = await ensureTool('skopeo');
    browser = await launchBrowser();
    work = await mkdtemp(path.join(tmpdir(), 'berth-web-'));
    image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'web-ui', layers: 2 });
    b = await startAccountsBerth('', { registration: 'open', defaultvisibility: 'public' });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await b?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves the shell with a strict CSP and no-cache, and hashed assets immutable; API paths stay the API', async () => {
    const browserAccept = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
    const shell = await fetch(`${b.url}/r/alice/web/-/tags`, { headers: browserAccept });
    assert.equal(shell.status, 200);
    assert.match(shell.headers.get('content-type') ?? '', /^text\/html/);
    const csp = shell.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(shell.headers.get('cache-control'), 'no-cache');
    const html = await shell.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the shell');
    const assets = [...html.matchAll(/(?:src|href)="(\/-\/static\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), html);
    for (const a of assets) {
      assert.match(a, /-[A-Z0-9]{8}\.(js|css)$/, `content-hashed name: ${a}`);
      const r = await fetch(`${b.url}${a}`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(r.status, 200, a);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      await r.arrayBuffer();
    }
    const missing = await fetch(`${b.url}/-/static/main-NOTTHERE.js`);
    assert.equal(missing.status, 404);
    // The registry's own paths are never the UI's.
    const v2 = await fetch(`${b.url}/v2/`, { headers: { accept: 'text/html' } });
    assert.equal(v2.status, 401);
    assert.match(v2.headers.get('content-type') ?? '', /json/);
    const api = await fetch(`${b.url}/berth/v1/search`, { headers: { accept: 'text/html' } });
    assert.match(api.headers.get('content-type') ?? '', /json/);
    // An unknown path is the 404 page for a browser, the registry's JSON 404 for a client.
    const browserMiss = await fetch(`${b.url}/no/such/page`, { headers: { accept: 'text/html' } });
    assert.equal(browserMiss.status, 404);
    assert.match(browserMiss.headers.get('content-type') ?? '', /^text\/html/);
    await browserMiss.text();
    const clientMiss = await fetch(`${b.url}/no/such/page`);
    assert.equal(clientMiss.status, 404);
    assert.equal(((await clientMiss.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
    // Pages are for browsers: a client that does not ask for HTML gets registry:2's 404, even for `/`.
    for (const p of ['/', '/search?q=x', '/r/alice/web']) {
      const r = await fetch(`${b.url}${p}`, { headers: { accept: 'application/json' } });
      assert.equal(r.status, 404, p);
      assert.match(r.headers.get('content-type') ?? '', /json/, p);
      await r.arrayBuffer();
    }
  });

  it('berth.ui.enabled false: the UI paths answer 404 as registry:2 does', async () => {
    const off = await startBerth({ REGISTRY_BERTH_UI_ENABLED: 'false' });
    try {
      for (const p of ['/', '/search?q=x', '/r/a/b', '/-/static/x.js', '/login']) {
        const r = await fetch(`${off.url}${p}`, { headers: { accept: 'text/html' } });
        assert.equal(r.status, 404, p);
        assert.match(r.headers.get('content-type') ?? '', /json/, p);
        await r.arrayBuffer();
      }
    } finally {
      await off.close();
    }
  });

  it('without auth at all (the README\'s first command), repositories are browsed read only: explore, search, a repository, its tags, a tag', async () => {
    const open = await startBerth();
    try {
      const host = open.url.replace(/^http:\/\//, '');
      for (const dest of ['hello:v1', 'team/web:v1']) {
        await run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', image.ref, `docker://${host}/${dest}`], { timeoutMs: 120_000 });
      }
      const { context, page, watch } = await openPage(browser, open.url);
      contexts.push(context);
      page.setDefaultTimeout(15_000);
      const check = async (label: string) => {
        await page.locator('.loading, .boot').first().waitFor({ state: 'detached' });
        for (const f of await axeSerious(page)) axeFindings.push(`open ${label}: ${f.impact} ${f.id} (${f.help}) at ${f.nodes.join(' ')}`);
      };
      await page.goto('/');
      await page.locator('#shelf-updated').locator('..').locator('..').getByRole('link', { name: /team\/\s*web/ }).waitFor();
      await check('explore');
      // Nobody logs in: no such links.
      assert.equal(await page.getByRole('link', { name: 'Log in' }).count(), 0);
      await page.goto('/search?q=web');
      await page.locator('.results').getByRole('link', { name: /team\/\s*web/ }).waitFor();
      await check('search');
      await page.goto('/r/team/web');
      await page.getByRole('heading', { name: /team\s*\/\s*web/ }).waitFor();
      await page.locator('.badge.public').waitFor();
      // Read only: no star button, no settings tab.
      assert.equal(await page.getByRole('button', { name: /Star/ }).count(), 0);
      assert.equal(await page.getByRole('link', { name: 'Settings' }).count(), 0);
      await check('repository');
      await page.goto('/r/hello/-/tags');
      await page.getByRole('heading', { name: 'hello', exact: true }).waitFor();
      await page.getByRole('table').getByRole('link', { name: 'v1', exact: true }).click();
      await page.waitForURL('**/r/hello/-/tags/v1');
      await page.getByRole('heading', { name: 'Layers (2)' }).waitFor();
      await check('tag');
      // What needs accounts says so.
      await page.goto('/login');
      await page.getByRole('heading', { name: 'This registry runs without accounts' }).waitFor();
      await page.getByText(/can be searched and browsed here by anyone/).waitFor();
      await check('login without accounts');
      assert.deepEqual(watch.dialogs, []);
      assert.deepEqual(watch.consoleErrors, []);
      assert.deepEqual(watch.cspViolations, []);
    } finally {
      await open.close();
    }
  });

  it('with htpasswd, the page says what the UI needs and calls no API (whose Basic challenge would make the browser ask)', async () => {
    const htpasswd = path.join(work, 'htpasswd');
    // alice:alice-password-1, bcrypt
    const { hashSync } = await import('bcryptjs');
    await writeFile(htpasswd, `alice:${hashSync('alice-password-1', 5)}\n`);
    const protectedBerth = await startBerth({ REGISTRY_AUTH_HTPASSWD_PATH: htpasswd, REGISTRY_AUTH_HTPASSWD_REALM: 'test' });
    try {
      const { context, page, watch } = await openPage(browser, protectedBerth.url);
      contexts.push(context);
      const apiCalls: string[] = [];
      page.on('request', (r) => void (r.url().includes('/berth/v1/') && apiCalls.push(r.url())));
      await page.goto('/');
      await page.getByRole('heading', { name: 'This registry runs without accounts' }).waitFor();
      const findings = await axeSerious(page);
      assert.deepEqual(findings, []);
      await page.goto('/r/some/repo');
      await page.getByRole('heading', { name: 'This registry runs without accounts' }).waitFor();
      assert.deepEqual(apiCalls, []);
      assert.deepEqual(watch.dialogs, []);
      assert.deepEqual(watch.consoleErrors, []);
    } finally {
      await protectedBerth.close();
    }
  });

  it('under http.prefix: pages, assets and API calls all start with it', async () => {
    const prefixed = await startBerth({ REGISTRY_HTTP_PREFIX: '/registry/', REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'open' });
    try {
      const { context, page, watch } = await openPage(browser, prefixed.url);
      contexts.push(context);
      const outside: string[] = [];
      page.on('request', (r) => void (!new URL(r.url()).pathname.startsWith('/registry/') && outside.push(r.url())));
      await page.goto('/registry/');
      await page.getByRole('heading', { name: 'Explore the registry' }).waitFor();
      await page.locator('.loading').first().waitFor({ state: 'detached' });
      await page.getByRole('link', { name: 'Register' }).click();
      await page.waitForURL('**/registry/register');
      await page.getByLabel(/^User name/).fill('carol');
      await page.getByLabel(/^Password/).fill('carol-password-1');
      await page.getByRole('button', { name: 'Register' }).click();
      await page.waitForURL('**/registry/u/carol');
      await page.getByRole('button', { name: 'carol ▾' }).waitFor();
      assert.deepEqual(outside, [], 'nothing outside the prefix');
      assert.deepEqual(watch.dialogs, []);
      const outsideShell = await fetch(`${prefixed.url}/`, { headers: { accept: 'text/html' } });
      assert.equal(outsideShell.status, 404);
      await outsideShell.arrayBuffer();
    } finally {
      await prefixed.close();
    }
  });

  it('registration by invitation: an administrator makes a code in the browser, and it opens registration once', async () => {
    const invite = await startBerth({ REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'invite' });
    try {
      await invite.server.hub!.accounts.create({ name: 'boss', password: 'boss-password-1', admin: true }, { name: null, client: 'cli' });
      const admin = await openPage(browser, invite.url);
      contexts.push(admin.context);
      await admin.page.goto('/login');
      await admin.page.getByLabel('User name').fill('boss');
      await admin.page.getByLabel('Password').fill('boss-password-1');
      await admin.page.getByRole('button', { name: 'Log in' }).click();
      await admin.page.getByRole('button', { name: 'boss ▾' }).waitFor();
      await admin.page.goto('/admin');
      await admin.page.getByRole('button', { name: 'Create invitation' }).click();
      const code = (await admin.page.locator('#new-invitation').innerText()).trim();
      assert.ok(code.length > 10, code);

      const guest = await openPage(browser, invite.url);
      contexts.push(guest.context);
      const register = async (invitation: string) => {
        await guest.page.goto('/register');
        await guest.page.getByLabel(/^User name/).fill('dave');
        await guest.page.getByLabel(/^Password/).fill('dave-password-1');
        await guest.page.getByLabel(/^Invitation code/).fill(invitation);
        await guest.page.getByRole('button', { name: 'Register' }).click();
      };
      await register('not-a-code');
      await guest.page.getByRole('alert').waitFor();
      await register(code);
      await guest.page.waitForURL('**/u/dave');
      await guest.page.getByRole('button', { name: 'dave ▾' }).waitFor();
    } finally {
      await invite.close();
    }
  });

  it('registers alice in the browser, logs out and logs in again', async () => {
    const page = await userPage('alice');
    await goto(page, '/register', 'register');
    await page.getByLabel(/^User name/).fill(ALICE.user);
    await page.getByLabel(/^Password/).fill(ALICE.password);
    await page.getByRole('button', { name: 'Register' }).click();
    await page.waitForURL('**/u/alice');
    await settle(page, 'user page');
    await page.getByRole('button', { name: 'alice ▾' }).click();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('link', { name: 'Log in' }).waitFor();
    // The session is gone on the server too.
    const cookies = await page.context().cookies();
    assert.ok(!cookies.some((c) => c.name === 'berth_session'), 'session cookie removed');
    await login(page, ALICE);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'berth_session');
    assert.ok(cookie, 'logged in');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    // A wrong password is refused with the API's answer.
    const other = await userPage('mallory');
    await goto(other, '/login', 'login');
    await other.getByLabel('User name').fill(ALICE.user);
    await other.getByLabel('Password').fill('not-the-password');
    await other.getByRole('button', { name: 'Log in' }).click();
    await other.getByText('Incorrect user name or password.').waitFor();
  });

  it('creates an organization and a team, and adds a member to it', async () => {
    // bob registers through the API (as a script would).
    const r = await fetch(`${b.url}/berth/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: BOB.user, password: BOB.password }) });
    assert.equal(r.status, 201, await r.text());
    const page = await userPage('alice');
    await login(page, ALICE);
    await goto(page, '/account', 'account');
    await page.getByLabel('New organization').fill('acme');
    await page.getByRole('button', { name: 'Create organization' }).click();
    await page.waitForURL('**/orgs/acme');
    await settle(page, 'organization');
    await page.getByLabel('New team').fill('devs');
    await page.getByRole('button', { name: 'Create team' }).click();
    await page.getByRole('heading', { name: 'devs' }).waitFor();
    await page.getByLabel('Add a member to devs').fill(BOB.user);
    await page.getByRole('button', { name: 'Add', exact: true }).first().click();
    await page.getByText(/Members:.*bob/).waitFor();
    await settle(page, 'organization with a team');
    // A robot for CI: its secret shown once, it works, and revoked it does not.
    await page.getByLabel('New robot').fill('ci');
    await page.getByLabel('Robot repository').fill('acme/tools');
    await page.getByRole('button', { name: 'Create robot' }).click();
    const robotSecret = (await page.locator('#new-robot-secret').innerText()).trim();
    assert.match(robotSecret, /^brob_/);
    await settle(page, 'organization with a robot');
    const asRobot = () => fetch(`${b.url}/berth/v1/me`, { headers: { authorization: basic('acme+ci', robotSecret) } });
    const robotMe = await asRobot();
    assert.equal(robotMe.status, 200);
    assert.equal(((await robotMe.json()) as { kind: string }).kind, 'robot');
    await page.getByRole('button', { name: 'Revoke robot acme+ci' }).click();
    await page.getByText('revoked', { exact: true }).waitFor();
    const revokedRobot = await asRobot();
    assert.equal(revokedRobot.status, 401);
    await revokedRobot.arrayBuffer();
    // The API agrees: bob is in acme's team devs.
    const team = await fetch(`${b.url}/berth/v1/orgs/acme/teams/devs`, { headers: { authorization: basic(ALICE.user, ALICE.password) } });
    assert.deepEqual(((await team.json()) as { members: string[] }).members, ['bob']);
  });

  it('a push from the command line appears on Explore, in search as you type, and on the search page', async () => {
    await push(`${ALICE.user}:${ALICE.password}`, image, 'alice/web:v1');
    const index = await buildIndex(path.join(work, 'layout'), { tag: 'multi', seed: 'web-ui-index', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }] });
    await push(`${ALICE.user}:${ALICE.password}`, index, 'alice/web:multi');
    await push(`${ALICE.user}:${ALICE.password}`, image, 'acme/tools:1.0');
    const page = await userPage('anonymous');
    await goto(page, '/', 'explore');
    await page.locator('#shelf-updated').locator('..').locator('..').getByRole('link', { name: /alice\/\s*web/ }).waitFor();
    await page.getByLabel('Search repositories').fill('web');
    await page.locator('#live-results').getByRole('link', { name: 'alice/web' }).waitFor();
    await settle(page, 'explore with live results');
    await page.getByLabel('Search repositories').press('Enter');
    await page.waitForURL('**/search?q=web');
    await settle(page, 'search');
    await page.locator('.results').getByRole('link', { name: /alice\/\s*web/ }).waitFor();
    assert.match(await page.getByRole('status').first().innerText(), /1 repository/);
    // A search with no match says so.
    await goto(page, '/search?q=zzzznothing', 'search without results');
    await page.getByText('No repository matches.').waitFor();
  });

  it('alice stars the repository and writes a hostile README that renders but never runs', async () => {
    const page = await userPage('alice');
    await login(page, ALICE);
    await goto(page, '/r/alice/web', 'repository');
    await page.getByRole('button', { name: /☆ Star/ }).click();
    await page.getByRole('button', { name: /★ Starred/ }).waitFor();
    const repo = (await (await fetch(`${b.url}/berth/v1/repositories/alice/web`, { headers: { authorization: basic(ALICE.user, ALICE.password) } })).json()) as { star_count: number; has_starred: boolean };
    assert.equal(repo.star_count, 1);
    assert.equal(repo.has_starred, true);
    // Following it puts its activity in alice's feed on Explore.
    await page.getByRole('button', { name: 'Follow', exact: true }).click();
    await page.getByRole('button', { name: 'Following' }).waitFor();
    await goto(page, '/', 'explore with a feed');
    await page.locator('#shelf-feed').waitFor();
    await page.locator('.activity li').filter({ hasText: /alice pushed v1 in alice\/web/ }).first().waitFor();
    await goto(page, '/r/alice/web', 'repository');
    // The pull command is there to copy.
    await page.getByText(`docker pull ${b.host}/alice/web`, { exact: true }).first().waitFor();

    await goto(page, '/r/alice/web/-/settings', 'repository settings');
    await page.getByLabel('Short description').fill('The web front end');
    await page.getByRole('button', { name: 'Save description' }).click();
    await page.getByText('Description saved.').waitFor();
    await page.getByRole('textbox', { name: /^README/ }).fill(HOSTILE_README);
    await page.getByRole('button', { name: 'Save README' }).click();
    await page.getByText('README saved.').waitFor();

    // A webhook: its URL's secrets are never shown again; then deleted (no push reaches it meanwhile).
    await page.getByLabel('Name', { exact: true }).fill('ci');
    await page.getByLabel('URL').fill('https://ci:hook-secret@hooks.example.org/build?token=abc123');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.getByText('https://ci:***@hooks.example.org/build?token=***').waitFor();
    assert.equal(await page.getByText(/hook-secret|abc123/).count(), 0);
    await settle(page, 'repository settings with a webhook');
    await page.getByRole('button', { name: 'Delete webhook ci' }).click();
    await page.getByText('No webhooks.', { exact: false }).waitFor();

    await goto(page, '/r/alice/web', 'repository with README');
    const readme = page.locator('.markdown');
    await readme.getByRole('heading', { name: 'Hostile README' }).waitFor();
    await readme.getByText('A paragraph that renders.').waitFor();
    await readme.getByText('docker run hostile').waitFor();
    // Nothing executable reached the DOM: no script, no handler, no javascript: or data: URL.
    const dangerous = await readme.evaluate((root) => {
      const found: string[] = [];
      for (const el of root.querySelectorAll('*')) {
        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'STYLE'].includes(el.tagName)) found.push(el.tagName);
        for (const a of el.getAttributeNames()) {
          const v = el.getAttribute(a) ?? '';
          if (a.startsWith('on')) found.push(`${el.tagName}[${a}]`);
          if (/^\s*(javascript|data|vbscript):/i.test(v)) found.push(`${el.tagName}[${a}=${v}]`);
        }
      }
      return found;
    });
    assert.deepEqual(dangerous, []);
    // Clicking every link the README has runs nothing either.
    const links = await readme.locator('a').all();
    for (const l of links) {
      const hrefValue = (await l.getAttribute('href')) ?? '';
      if (/^https?:/.test(hrefValue)) continue;
      await l.click({ modifiers: [] }).catch(() => {});
    }
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no hostile README script ran');
  });

  it('browses tags (per-platform sizes, filter, sort) and a tag with its layers and history', async () => {
    const page = await userPage('anonymous');
    await goto(page, '/r/alice/web/-/tags', 'tags');
    const table = page.getByRole('table');
    await table.getByRole('link', { name: 'v1', exact: true }).waitFor();
    await table.getByRole('link', { name: 'multi', exact: true }).waitFor();
    await table.getByText('linux/arm64/v8').first().waitFor();
    // Anonymous: no delete buttons.
    assert.equal(await page.getByRole('button', { name: /Delete tag/ }).count(), 0);
    await page.getByLabel('Filter tags').fill('mul');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL('**/-/tags?filter=mul');
    await settle(page, 'tags filtered');
    await table.getByRole('link', { name: 'multi', exact: true }).waitFor();
    assert.equal(await table.getByRole('link', { name: 'v1', exact: true }).count(), 0);
    await page.getByLabel('Sort by').selectOption('name');
    await page.waitForURL(/sort=name/);
    await goto(page, '/r/alice/web/-/tags?sort=name', 'tags by name');
    const names = await page.locator('tbody th').allInnerTexts();
    assert.deepEqual(names, ['multi', 'v1']);

    await page.getByRole('link', { name: 'v1', exact: true }).click();
    await page.waitForURL('**/r/alice/web/-/tags/v1');
    await settle(page, 'tag detail');
    await page.getByRole('heading', { name: 'Layers (2)' }).waitFor();
    const history = await page.locator('.layers .created-by').allInnerTexts();
    assert.equal(history.length, 2);
    for (const h of history) assert.match(h, /^berth-test layer/);
    await page.getByRole('heading', { name: 'Configuration' }).waitFor();
    await page.getByText('linux/amd64', { exact: true }).waitFor();

    await goto(page, '/r/alice/web/-/tags/multi', 'index detail');
    await page.getByRole('heading', { name: 'Platforms' }).waitFor();
    await page.getByRole('rowheader', { name: 'linux/arm64/v8' }).waitFor();
    await goto(page, '/r/alice/web/-/tags/nope', 'missing tag');
    await page.getByText(/No tag or manifest/).waitFor();
    // The activity tab: the pushes, by alice.
    await goto(page, '/r/alice/web/-/activity', 'activity');
    await page.locator('.activity li').filter({ hasText: /alice pushed.*v1/ }).first().waitFor();
    await page.locator('.activity li').filter({ hasText: /alice starred/ }).first().waitFor();
  });

  it('creates a token shown once, uses it on /v2/ and for docker login, and revokes it', async () => {
    const page = await userPage('alice');
    await login(page, ALICE);
    await goto(page, '/account/tokens', 'tokens');
    await page.getByLabel('Name').fill('ci');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.locator('#new-token-secret').innerText()).trim();
    assert.match(secret, /^bpat_/);
    await settle(page, 'tokens with a new one');
    const tagsWith = (password: string) => fetch(`${b.url}/v2/alice/web/tags/list`, { headers: { authorization: basic(ALICE.user, password) } });
    const ok = await tagsWith(secret);
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { tags: string[] }).tags.sort(), ['multi', 'v1']);
    // The real docker CLI logs in with it: dockerd asks Berth's token endpoint with the token as the password.
    const dockerd = await startDockerd();
    try {
      await dockerd.login(b.host, { username: ALICE.user, password: secret });
      // Shown once: a reload lists the token, not its secret.
      await goto(page, '/account/tokens', 'tokens listed');
      await page.getByRole('rowheader', { name: 'ci' }).waitFor();
      assert.equal(await page.getByText(secret).count(), 0);
      await page.getByRole('button', { name: 'Revoke token ci' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
      await page.getByText('Revoked').waitFor();
      const refused = await tagsWith(secret);
      assert.equal(refused.status, 401);
      await refused.arrayBuffer();
      await assert.rejects(dockerd.login(b.host, { username: ALICE.user, password: secret }), 'docker login with the revoked token fails');
    } finally {
      await dockerd.stop();
    }
  });

  it('a private repository is invisible to another user and to anonymous browsers: page, search and API', async () => {
    const page = await userPage('alice');
    await login(page, ALICE);
    await goto(page, '/r/alice/web/-/settings', 'repository settings');
    await page.getByRole('button', { name: 'Make private' }).click();
    await page.getByText(/This repository is\s+private/).waitFor();
    await goto(page, '/r/alice/web', 'private repository (owner)');
    await page.locator('.badge.private').first().waitFor();

    const bob = await userPage('bob');
    await login(bob, BOB);
    const anon = await userPage('anonymous');
    for (const [who, p] of [
      ['bob', bob],
      ['anonymous', anon],
    ] as const) {
      await goto(p, '/r/alice/web', `private repository (${who})`);
      await p.getByRole('heading', { name: 'Repository not found' }).waitFor();
      assert.equal(await p.getByText('The web front end').count(), 0, `${who}: no description leaks`);
      await goto(p, '/r/alice/web/-/tags', `private tags (${who})`);
      await p.getByRole('heading', { name: 'Repository not found' }).waitFor();
      await goto(p, '/search?q=web', `search (${who})`);
      await p.getByText('No repository matches.').waitFor();
      await goto(p, '/u/alice', `alice's page (${who})`);
      assert.equal(await p.getByRole('link', { name: 'alice/web' }).count(), 0, `${who}: not listed on alice's page`);
    }
    // A collaborator sees it; removed, no longer.
    await goto(page, '/r/alice/web/-/settings', 'repository settings');
    await page.getByLabel('User', { exact: true }).fill(BOB.user);
    await page.getByRole('button', { name: 'Add collaborator' }).click();
    await page.getByText(/bob: read/).waitFor();
    await goto(bob, '/r/alice/web', 'private repository (collaborator)');
    await bob.getByText('The web front end').waitFor();
    await page.getByRole('button', { name: 'Remove collaborator bob' }).click();
    await page.getByText(/No collaborators/).waitFor();
    await goto(bob, '/r/alice/web', 'private repository (no longer a collaborator)');
    await bob.getByRole('heading', { name: 'Repository not found' }).waitFor();
    const asBob = { authorization: basic(BOB.user, BOB.password) };
    for (const headers of [asBob, {}]) {
      const repo = await fetch(`${b.url}/berth/v1/repositories/alice/web`, { headers });
      assert.equal(repo.status, 404);
      await repo.arrayBuffer();
      const manifest = await fetch(`${b.url}/berth/v1/repositories/alice/web/-/manifests/v1`, { headers });
      assert.equal(manifest.status, 404);
      await manifest.arrayBuffer();
      const found = (await (await fetch(`${b.url}/berth/v1/search?q=web`, { headers })).json()) as { count: number };
      assert.equal(found.count, 0);
    }
  });

  it('deletes a tag after confirmation, and a repository after typing its name', async () => {
    const page = await userPage('alice');
    await login(page, ALICE);
    await goto(page, '/r/alice/web/-/tags', 'tags (admin)');
    await page.getByRole('button', { name: 'Delete tag multi' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Delete tag multi?').waitFor();
    await settle(page, 'delete tag dialog');
    await dialog.getByRole('button', { name: 'Delete tag' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'multi', exact: true }).waitFor({ state: 'detached' });
    const tags = (await (await fetch(`${b.url}/v2/alice/web/tags/list`, { headers: { authorization: basic(ALICE.user, ALICE.password) } })).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1']);

    await goto(page, '/r/acme/tools/-/settings', 'org repository settings');
    await page.getByRole('heading', { name: 'Team access' }).waitFor();
    await page.getByRole('button', { name: 'Delete repository' }).click();
    const confirm = page.getByRole('dialog').getByRole('button', { name: 'Delete repository' });
    assert.equal(await confirm.isDisabled(), true, 'not before the name is typed');
    await page.getByRole('dialog').getByLabel(/Type acme\/tools to confirm/).fill('acme/tools');
    await confirm.click();
    await page.waitForURL('**/u/acme');
    const gone = await fetch(`${b.url}/berth/v1/repositories/acme/tools`, { headers: { authorization: basic(ALICE.user, ALICE.password) } });
    assert.equal(gone.status, 404);
    await gone.arrayBuffer();
  });

  it('administration: accounts, garbage collection now with its summary, storage per repository, the audit log', async () => {
    const page = await userPage('chief');
    await login(page, b.admin);
    await goto(page, '/admin', 'admin accounts');
    await page.getByRole('rowheader', { name: 'alice' }).waitFor();
    await page.getByRole('rowheader', { name: 'acme' }).waitFor();
    await goto(page, '/admin?tab=official', 'admin official');
    await page.getByLabel('Repository').fill('alice/web');
    await page.getByRole('button', { name: 'Mark official' }).click();
    await page.getByText('alice/web is official.').waitFor();
    await page.getByRole('button', { name: 'Remove the official flag of alice/web' }).waitFor();
    const marked = (await (await fetch(`${b.url}/berth/v1/repositories/alice/web`, { headers: { authorization: basic(ALICE.user, ALICE.password) } })).json()) as { is_official: boolean };
    assert.equal(marked.is_official, true);
    await goto(page, '/admin?tab=gc', 'admin gc');
    await page.getByRole('button', { name: 'Collect garbage now' }).click();
    await page.getByText('Collection finished.').waitFor({ timeout: 90_000 });
    await page.getByRole('heading', { name: /Latest run #\d+: finished/ }).waitFor();
    await page.getByText('Space reclaimed').waitFor();
    await settle(page, 'admin gc run');
    await goto(page, '/admin?tab=storage', 'admin storage');
    await page.getByRole('rowheader', { name: 'alice/web' }).waitFor();
    await goto(page, '/admin?tab=audit', 'admin audit');
    await page.getByRole('cell', { name: 'token.revoke' }).first().waitFor();
    // Not for everyone: bob is told so, and the API refuses him.
    const bob = await userPage('bob');
    await login(bob, BOB);
    await goto(bob, '/admin', 'admin (not an administrator)');
    await bob.getByText('This page is for administrators.').waitFor();
    const storage = await fetch(`${b.url}/berth/v1/storage`, { headers: { authorization: basic(BOB.user, BOB.password) } });
    assert.equal(storage.status, 403);
    await storage.arrayBuffer();
  });

  it('the session cookie works on gc and storage only with its CSRF token', async () => {
    const login = await fetch(`${b.url}/berth/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: b.admin.user, password: b.admin.password }) });
    assert.equal(login.status, 201);
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const read = await fetch(`${b.url}/berth/v1/storage`, { headers: { cookie } });
    assert.equal(read.status, 200);
    await read.arrayBuffer();
    const noCsrf = await fetch(`${b.url}/berth/v1/gc?dryrun=true`, { method: 'POST', headers: { cookie } });
    assert.equal(noCsrf.status, 403);
    await noCsrf.arrayBuffer();
    const withCsrf = await fetch(`${b.url}/berth/v1/gc?dryrun=true&wait=30s`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } });
    assert.ok(withCsrf.status === 200 || withCsrf.status === 202, String(withCsrf.status));
    await withCsrf.arrayBuffer();
  });

  it('works from the keyboard and fits a 360 px phone without sideways scrolling', async () => {
    const { context, page, watch } = await openPage(browser, b.url, { width: 360, height: 740 });
    contexts.push(context);
    watches.push({ who: 'phone', watch });
    // The first Tab reaches the skip link, which moves the focus to the content.
    await goto(page, '/login', 'login (phone)');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    // Log in by keyboard alone: from the content, Tab reaches the user name field; Enter submits.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.name), 'username');
    await page.keyboard.type(ALICE.user);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ALICE.password);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'alice ▾' }).waitFor();
    // alice sees her (now private) repository; every page fits.
    for (const [url, label] of [
      ['/', 'explore (phone)'],
      ['/search?q=acme', 'search (phone)'],
      ['/r/alice/web', 'repository (phone)'],
      ['/r/alice/web/-/tags', 'tags (phone)'],
      ['/r/alice/web/-/tags/v1', 'tag detail (phone)'],
      ['/login', 'login (phone)'],
    ] as const) {
      await goto(page, url, label);
      const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth as number }));
      assert.ok(scroll <= width, `${label}: the page is ${scroll} px wide in a ${width} px window`);
    }
  });

  it('the 404 page and the dark theme toggle', async () => {
    const page = await userPage('anonymous');
    const r = await page.goto('/no/such/page');
    assert.equal(r?.status(), 404);
    await settle(page, '404');
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    await page.getByRole('button', { name: /Switch to the dark theme/ }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await page.reload();
    await settle(page, '404 (dark)');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the choice survives a reload');
  });

  it('every page passed axe-core (no serious or critical finding) and nothing misbehaved', () => {
    assert.ok(checkedPages.size >= 20, `pages checked: ${[...checkedPages].join(', ')}`);
    assert.deepEqual(axeFindings, []);
    for (const { who, watch } of watches) {
      assert.deepEqual(watch.dialogs, [], `${who}: no dialog opened`);
      assert.deepEqual(watch.foreignRequests, [], `${who}: no request to another host`);
      assert.deepEqual(watch.cspViolations, [], `${who}: nothing the CSP had to block`);
      // The API's 4xx answers appear as console errors for failed fetches; anything else is a bug.
      assert.deepEqual(
        watch.consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of (401|403|404)/.test(e)),
        [],
        `${who}: no console error`,
      );
    }
  });
});
