import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WRITE_ATTEMPTS, retryConflicts } from './database.js';

const failure = (code: string) => Object.assign(new Error(`failed with ${code}`), { code });

describe('retryConflicts', () => {
  it('runs a transaction again after a deadlock (40P01) or a serialization failure (40001)', async () => {
    for (const code of ['40P01', '40001']) {
      let calls = 0;
      const result = await retryConflicts(async () => {
        calls++;
        if (calls < 3) throw failure(code);
        return 'committed';
      });
      assert.equal(result, 'committed');
      assert.equal(calls, 3);
    }
  });

  it('passes any other error through at once', async () => {
    let calls = 0;
    await assert.rejects(
      retryConflicts(async () => {
        calls++;
        throw failure('23503');
      }),
      /failed with 23503/,
    );
    assert.equal(calls, 1);
  });

  it('gives up after a bounded number of attempts, with the last error', async () => {
    let calls = 0;
    await assert.rejects(
      retryConflicts(async () => {
        calls++;
        throw failure('40P01');
      }),
      (err: Error & { code?: string }) => err.code === '40P01',
    );
    assert.equal(calls, MAX_WRITE_ATTEMPTS);
  });
});
