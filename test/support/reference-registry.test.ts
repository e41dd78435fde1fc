import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { startReferenceRegistry } from './reference-registry.js';

test('startReferenceRegistry serves the distribution API and stops cleanly', async () => {
  const [a, b] = await Promise.all([startReferenceRegistry(), startReferenceRegistry()]);
  try {
    assert.notEqual(a.base, b.base);
    const v2 = await fetch(`http://${a.base}/v2/`);
    assert.equal(v2.status, 200);
    assert.equal(v2.headers.get('docker-distribution-api-version'), 'registry/2.0');

    // distribution 2.8 ignores a single-POST (?digest=) upload: it answers 202 and
    // opens a session, which the spec allows. So: POST, then PUT the bytes.
    const data = Buffer.from('berth reference registry smoke test');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const post = await fetch(`http://${a.base}/v2/smoke/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
    await post.arrayBuffer();
    assert.equal(post.status, 202);
    const location = new URL(post.headers.get('location') ?? '', `http://${a.base}/`);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    assert.equal(put.status, 201, await put.text());
    const got = await fetch(`http://${a.base}/v2/smoke/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  await a.stop(); // idempotent
  await assert.rejects(fetch(`http://${a.base}/v2/`));
});
