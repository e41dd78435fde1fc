/**
 * A real headless Chromium for the web UI's tests: Debian's /usr/bin/chromium
 * (apt-installed when missing; a test fails loudly when it cannot be had)
 * driven by playwright-core, with the page's console errors, dialogs and
 * CSP violations recorded, and axe-core run in the page.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './berth.js';
import { aptInstall } from './tools.js';

// Functions passed to page.evaluate run in the page; the server's tsconfig has no DOM types, so the little they touch is declared here.
declare const document: {
  querySelector(selector: string): unknown;
  documentElement: { dataset: Record<string, string | undefined> };
  addEventListener(type: string, listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const window: Record<string, unknown>;

export const CHROMIUM = '/usr/bin/chromium';
const AXE = path.join(REPO_ROOT, 'node_modules/axe-core/axe.min.js');
let axeSource: string | undefined;

/** Chromium's path, installing Debian's `chromium` package first when it is missing. */
export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  try {
    await aptInstall(['chromium']);
  } catch (e) {
    throw new Error(`the web UI tests need ${CHROMIUM}: installing Debian's chromium failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`installed Debian's chromium but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = await ensureChromium();
  return chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** What a page did that a test may want to assert against: console errors, dialogs, CSP reports, failed requests. */
export interface PageWatch {
  consoleErrors: string[];
  dialogs: string[];
  cspViolations: string[];
  /** Requests to hosts other than the registry under test (the UI must make none). */
  foreignRequests: string[];
}

/** A fresh context (its own cookies and storage: one user) and a page on it, watched. */
export async function openPage(browser: Browser, baseUrl: string, options: { width?: number; height?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<{ context: BrowserContext; page: Page; watch: PageWatch }> {
  const context = await browser.newContext({
    baseURL: baseUrl,
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    colorScheme: options.colorScheme ?? 'light',
  });
  const page = await context.newPage();
  const watch: PageWatch = { consoleErrors: [], dialogs: [], cspViolations: [], foreignRequests: [] };
  const origin = new URL(baseUrl).origin;
  page.on('console', (m) => {
    if (m.type() === 'error') watch.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => watch.consoleErrors.push(String(e)));
  page.on('dialog', (d) => {
    watch.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => {});
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) watch.foreignRequests.push(u);
  });
  // CSP violations reach the page as events; a binding brings them out.
  await page.exposeBinding('__berthCsp', (_src, text: string) => void watch.cspViolations.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window.__berthCsp as (t: string) => void)(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return { context, page, watch };
}

export interface AxeFinding {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core in the page; the serious and critical findings (what the tests require to be none). */
export async function axeSerious(page: Page): Promise<AxeFinding[]> {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  // page.addScriptTag would add an inline <script>, which the UI's CSP refuses (as it must); the
  // driver's own evaluation is outside the page's policy, so axe's source is evaluated that way.
  if (!loaded) await page.evaluate((axeSource ??= readFileSync(AXE, 'utf8')));
  const results = await page.evaluate(async () => {
    const axe = window.axe as { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[] }> };
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)) }));
  });
  return results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
