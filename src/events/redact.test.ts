import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MetadataStore } from '../metadata/index.js';
import { NotificationQueue } from './queue.js';
import { redactUrl, redactUrls } from './redact.js';

describe('redactUrl', () => {
  for (const [given, shown] of [
    ['https://hooks.example.com/registry', 'https://hooks.example.com/registry'],
    ['https://alice:s3cret@hooks.example.com/registry', 'https://redacted@hooks.example.com/registry'],
    ['https://token@hooks.example.com:8443/r', 'https://redacted@hooks.example.com:8443/r'],
    ['https://hooks.example.com/r?token=s3cret&team=ops', 'https://hooks.example.com/r?token=redacted&team=redacted'],
    ['http://u:p@[::1]:9000/hook?sig=abc#frag', 'http://redacted@[::1]:9000/hook?sig=redacted#frag'],
    ['not a url', '(not a URL)'],
  ] as const) {
    it(`${given} → ${shown}`, () => assert.equal(redactUrl(given), shown));
  }

  it('redacts URLs quoted inside a message', () => {
    assert.equal(redactUrls('cannot POST to http://a:b@h/x?k=v (refused)'), 'cannot POST to http://redacted@h/x?k=redacted (refused)');
  });
});

describe('notification endpoint URLs in the logs', () => {
  it('the start-up line and the failure warning show the URL without credentials or query values', async () => {
    // A receiver that always fails, so the queue warns.
    const rx = http.createServer((req, res) => {
      req.resume();
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    const port = (rx.address() as AddressInfo).port;
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const endpoints = [
      { url: `http://127.0.0.1:${port}/hook?token=s3cret-token`, name: 'query' },
      { url: `http://alice:s3cret-pass@127.0.0.1:${port}/hook`, name: 'userinfo' },
    ].map((e) => ({ ...e, disabled: false, headers: {}, timeout: 1000, threshold: 1, backoff: 60_000, ignoredmediatypes: [], ignore: { mediatypes: [], actions: [] } }));
    const q = new NotificationQueue({ db: store.db, endpoints, source: { addr: 'test:5000', instanceID: 'i' }, log });
    try {
      await q.start();
      await q.emit([{ id: 'e1', timestamp: new Date().toISOString(), action: 'push', target: { mediaType: 'application/octet-stream', digest: `sha256:${'1'.repeat(64)}`, size: 1, length: 1, repository: 'r' } }]);
      const deadline = Date.now() + 10_000;
      const failing = (name: string) => lines.some((l) => l.includes(`notification endpoint ${name} is failing`));
      while (!(failing('query') && failing('userinfo'))) {
        if (Date.now() > deadline) throw new Error(`no failure warnings:\n${lines.join('')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await q.close();
      await store.close();
      rx.close();
    }
    const text = lines.join('');
    assert.ok(!text.includes('s3cret'), `a secret reached the log:\n${text}`);
    const urls = lines.map((l) => (JSON.parse(l) as { url?: string }).url).filter((u) => u !== undefined);
    assert.ok(urls.includes(`http://127.0.0.1:${port}/hook?token=redacted`), urls.join(', '));
    assert.ok(urls.includes(`http://redacted@127.0.0.1:${port}/hook`), urls.join(', '));
    assert.ok(urls.length >= 4, 'both endpoints logged at start and on failure');
  });
});
