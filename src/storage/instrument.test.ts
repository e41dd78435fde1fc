import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InMemoryBlobStore } from './inmemory.js';
import { instrumentBlobStore } from './instrument.js';

async function* bytes(text: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(text);
}

describe('instrumentBlobStore', () => {
  it("times each call under distribution's action names, counts failures, and leaves results and errors as they were", async () => {
    const store = new InMemoryBlobStore();
    const seen: { action: string; seconds: number; failed: boolean }[] = [];
    instrumentBlobStore(store, (action, seconds, failed) => seen.push({ action, seconds, failed }));

    await store.createUpload('upload-0001');
    assert.equal(await store.appendUpload('upload-0001', 0, bytes('hello')), 5);
    assert.equal(await store.uploadSize('upload-0001'), 5);
    assert.equal(await store.stat('sha256:' + '0'.repeat(64)), null);
    await assert.rejects(store.appendUpload('missing-0001', 0, bytes('x')), /upload/);
    await assert.rejects(store.createUpload('bad id'), /malformed upload id/);

    assert.deepEqual(
      seen.map((s) => [s.action, s.failed]),
      [
        ['Writer', false],
        ['Writer', false],
        ['Stat', false],
        ['Stat', false],
        ['Writer', true],
        ['Writer', true],
      ],
    );
    assert.ok(seen.every((s) => s.seconds >= 0 && s.seconds < 5));
  });
});
