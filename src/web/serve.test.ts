import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONTENT_SECURITY_POLICY, renderShell, webRoutes } from './serve.js';

describe('web UI serving', () => {
  it('the shell has no inline script, escapes the prefix and links the hashed assets under it', () => {
    const html = renderShell({ js: 'main-AAAA1111.js', css: 'main-BBBB2222.css', preload: ['chunk-CCCC3333.js'] }, '/reg"<x>/');
    assert.match(html, /<script type="module" src="\/reg&quot;&lt;x>\/-\/static\/main-AAAA1111\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="\/reg&quot;&lt;x>\/-\/static\/main-BBBB2222\.css">/);
    assert.match(html, /<link rel="modulepreload" href="\/reg&quot;&lt;x>\/-\/static\/chunk-CCCC3333\.js">/);
    assert.equal([...html.matchAll(/<script/g)].length, 1);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe/);
  });

  it('never answers the registry paths, nor methods other than GET and HEAD', () => {
    const routes = webRoutes({ prefix: '/', dir: '/nonexistent' });
    for (const p of ['v2/', 'v2/x/manifests/y', 'v1/search', 'berth/v1/me', 'token', 'livez', 'readyz', 'metrics']) assert.equal(routes('GET', p), null, p);
    assert.equal(routes('POST', ''), null);
    assert.equal(routes('GET', '')?.route, 'web-page');
    assert.equal(routes('HEAD', 'r/a/b/-/tags')?.route, 'web-page');
    assert.equal(routes('GET', '-/static/main-X.js')?.route, 'web-static');
  });

  it('serves what a build wrote, and a clear 503 when nothing was built', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-web-unit-'));
    try {
      await mkdir(path.join(dir, 'assets'));
      await writeFile(path.join(dir, 'assets', 'main-AAAA1111.js'), 'console.log(1)');
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ js: 'main-AAAA1111.js', css: null, preload: [] }));
      const answer = async (routes: ReturnType<typeof webRoutes>, p: string, accept = 'text/html') => {
        const m = routes('GET', p)!;
        const sent: { status?: number; headers?: Record<string, unknown>; body?: Buffer } = {};
        const ctx = {
          req: { method: 'GET', headers: { accept } },
          res: { writeHead: (s: number, h: Record<string, unknown>) => ((sent.status = s), (sent.headers = h)), end: (b?: Buffer) => (sent.body = b) },
          log: { error: () => {} },
          id: 'test',
        };
        await m.run(ctx as never);
        return sent;
      };
      const built = webRoutes({ prefix: '/', dir });
      const js = await answer(built, '-/static/main-AAAA1111.js');
      assert.equal(js.status, 200);
      assert.equal(js.headers!['Cache-Control'], 'public, max-age=31536000, immutable');
      assert.equal(String(js.body), 'console.log(1)');
      const shell = await answer(built, 'search');
      assert.equal(shell.status, 200);
      assert.equal(shell.headers!['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
      assert.equal((await answer(built, '-/static/other.js')).status, 404);
      await assert.rejects(answer(built, '', 'application/json'), /no such API endpoint/, 'a page is for browsers only');
      const unbuilt = await answer(webRoutes({ prefix: '/', dir: path.join(dir, 'missing') }), '');
      assert.equal(unbuilt.status, 503);
      assert.match(String(unbuilt.body), /npm run build/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
