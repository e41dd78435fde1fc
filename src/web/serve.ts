/**
 * Serving the web UI (docs/web.md) from the registry's own port: the HTML
 * shell for the UI's page paths and its content-hashed assets under
 * `-/static/`. The UI itself (src/web/app, built by scripts/build-web.mjs
 * into dist/web/) is a client of the JSON API and nothing else, so this
 * module has no access decision to make: the shell and the assets hold no
 * data. Registry paths (/v2/, /v1/, /berth/, /token, the probes) are never
 * answered here; the edge tries this hook after all of them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Ctx } from '../http/context.js';
import type { Match } from '../http/v2/index.js';
import { RegistryError } from '../registry/index.js';

/** What scripts/build-web.mjs writes to dist/web/manifest.json. */
export interface WebManifest {
  /** The entry's script, its stylesheet and the chunks it imports statically (file names under assets/). */
  js: string;
  css: string | null;
  preload: string[];
}

interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
}

export interface WebOptions {
  /** http.prefix: `/` or `/registry/`; the shell's links and the UI's API calls start with it. */
  prefix: string;
  /** Where the build put the UI (default: dist/web beside this compiled module). */
  dir?: string;
  /**
   * What the UI may ask of the Hub's API (the shell tells the script):
   * `accounts` (auth.accounts: all of it, the default); `open` (no auth at
   * all: the reading operations, everything public, so the UI browses
   * read-only); `off` (htpasswd or an external token server: the page says
   * what the UI needs instead of calling the API, whose 401 challenge would
   * make the browser ask for a password).
   */
  hub?: UiHubMode;
}

export type UiHubMode = 'accounts' | 'open' | 'off';
const SHELL_MODE: Record<UiHubMode, string> = { accounts: 'on', open: 'open', off: 'off' };

/** The build output next to the compiled server: dist/src/web/serve.js → dist/web. */
export const DEFAULT_WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');

export const STATIC_PREFIX = '-/static/';

/** The strict policy of every UI answer: nothing inline, nothing from elsewhere. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

/** First path segments that are the registry's, never the UI's (a page path must not shadow them). */
const RESERVED = new Set(['v2', 'v1', 'berth', 'token', 'livez', 'readyz', 'metrics', 'debug']);

/** First path segments of the UI's pages (src/web/app/routes.ts has the full routes). */
const PAGES = new Set(['', 'search', 'explore', 'r', 'u', 'orgs', 'login', 'register', 'account', 'admin']);

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** The one HTML document every page starts from; the script renders the page for the URL. */
export function renderShell(manifest: WebManifest, prefix: string, hub: UiHubMode = 'accounts'): string {
  const asset = (file: string) => escapeAttr(`${prefix}${STATIC_PREFIX}${file}`);
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<meta name="berth-prefix" content="${escapeAttr(prefix)}">`,
    `<meta name="berth-accounts" content="${SHELL_MODE[hub]}">`,
    '<title>Berth</title>',
    // No /favicon.ico request (it would be a registry 404 in every log).
    '<link rel="icon" href="data:,">',
    manifest.css ? `<link rel="stylesheet" href="${asset(manifest.css)}">` : '',
    ...manifest.preload.map((f) => `<link rel="modulepreload" href="${asset(f)}">`),
    `<script type="module" src="${asset(manifest.js)}"></script>`,
    '</head>',
    '<body>',
    '<div id="app"><p class="boot">Loading…</p><noscript><p>Berth’s web UI needs JavaScript. The registry API works without it.</p></noscript></div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** The built UI, read once: a few hundred KB that every page load asks for. */
class BuiltUi {
  readonly shell: Buffer;
  readonly shellGzip: Buffer;
  readonly assets = new Map<string, Asset>();

  constructor(dir: string, prefix: string, hub: UiHubMode) {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WebManifest;
    this.shell = Buffer.from(renderShell(manifest, prefix, hub));
    this.shellGzip = gzipSync(this.shell);
    const assetsDir = path.join(dir, 'assets');
    for (const name of readdirSync(assetsDir)) {
      const body = readFileSync(path.join(assetsDir, name));
      const type = TYPES[path.extname(name)] ?? 'application/octet-stream';
      // Compressed once here: text assets are what a first visit waits for.
      const gzip = type.startsWith('text/') || type === 'application/json' || type === 'image/svg+xml' ? gzipSync(body, { level: 9 }) : null;
      this.assets.set(name, { body, gzip, type });
    }
  }
}

function acceptsGzip(ctx: Ctx): boolean {
  const ae = ctx.req.headers['accept-encoding'];
  return typeof ae === 'string' && /\bgzip\b/.test(ae);
}

function send(ctx: Ctx, status: number, body: Buffer, gzip: Buffer | null, headers: Record<string, string>): void {
  const zipped = gzip !== null && acceptsGzip(ctx);
  const data = zipped ? gzip : body;
  ctx.res.writeHead(status, {
    ...headers,
    'Content-Length': data.byteLength,
    ...(zipped ? { 'Content-Encoding': 'gzip' } : {}),
    ...(gzip !== null ? { Vary: 'Accept-Encoding' } : {}),
  });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : data);
}

function sendText(ctx: Ctx, status: number, text: string): void {
  send(ctx, status, Buffer.from(text), null, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
}

function wantsHtml(ctx: Ctx): boolean {
  const accept = ctx.req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/**
 * The UI's routes for the edge, tried after every registry route. Answers
 * are `public` (no authentication): the shell and assets carry no data,
 * and the page asks the API, which decides, for everything it shows.
 */
export function webRoutes(options: WebOptions): (method: string, path: string) => Match | null {
  const dir = options.dir ?? DEFAULT_WEB_DIR;
  let built: BuiltUi | Error | undefined;
  const load = (): BuiltUi | Error => {
    if (built === undefined) {
      try {
        built = new BuiltUi(dir, options.prefix, options.hub ?? 'accounts');
      } catch (err) {
        built = new Error(`the web UI is not built (${dir}: ${(err as Error).message}); run npm run build`);
      }
    }
    return built;
  };

  return (method, urlPath) => {
    if (method !== 'GET' && method !== 'HEAD') return null;
    const first = urlPath.split('/', 1)[0]!;
    if (RESERVED.has(first)) return null;
    if (urlPath.startsWith(STATIC_PREFIX)) {
      const name = urlPath.slice(STATIC_PREFIX.length);
      return {
        route: 'web-static',
        public: true,
        run: async (ctx) => {
          const ui = load();
          const asset = ui instanceof Error ? undefined : ui.assets.get(name);
          if (!asset) return sendText(ctx, 404, 'no such asset\n');
          // Names carry their content hash: a new build is a new name.
          send(ctx, 200, asset.body, asset.gzip, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=31536000, immutable', 'X-Content-Type-Options': 'nosniff' });
        },
      };
    }
    const page = PAGES.has(first);
    return {
      route: 'web-page',
      public: true,
      run: async (ctx) => {
        // Pages are for browsers (Accept: text/html); anyone else gets the registry's JSON 404 for
        // every path but /v2/'s, as from registry:2 (clients and tests probe `/`). An unknown path is
        // the UI's 404 page for a browser.
        if (!wantsHtml(ctx)) {
          throw new RegistryError('UNSUPPORTED', `no such API endpoint: /${urlPath.slice(0, 200)}`, undefined, { status: 404 });
        }
        const ui = load();
        if (ui instanceof Error) {
          ctx.log.error({ reqId: ctx.id, err: ui.message }, 'web UI unavailable');
          return sendText(ctx, 503, 'The web UI is not built on this server (npm run build builds it).\n');
        }
        send(ctx, page ? 200 : 404, ui.shell, ui.shellGzip, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
      },
    };
  };
}
