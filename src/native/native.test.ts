import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { native } from './index.js';

describe('native writeHashed', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-native-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes every buffer at the position and feeds them to the hash, with or without a flush to disk', async () => {
    const file = path.join(dir, 'upload');
    const fd = openSync(file, 'w+');
    try {
      const state = native().sha256Create();
      const parts = [Buffer.from('hello, '), Buffer.alloc(70_000, 7), Buffer.from('world')];
      await native().writeHashed(fd, parts.slice(0, 2), 0, state);
      await native().writeHashed(fd, parts.slice(2), 7 + 70_000, state, true);
      const all = Buffer.concat(parts);
      assert.deepEqual(readFileSync(file), all);
      assert.equal(native().sha256Digest(state), createHash('sha256').update(all).digest('hex'));
    } finally {
      closeSync(fd);
    }
  });

  it('says which call failed: the write, or the flush after a write that succeeded', async () => {
    const readOnly = openSync(path.join(dir, 'upload'), 'r');
    try {
      await assert.rejects(native().writeHashed(readOnly, [Buffer.from('x')], 0, null, true), { code: 'EBADF', syscall: 'pwritev' });
    } finally {
      closeSync(readOnly);
    }
    // /dev/null takes the bytes but cannot be synchronized (EINVAL).
    const devNull = openSync('/dev/null', 'r+');
    try {
      const state = native().sha256Create();
      await assert.rejects(native().writeHashed(devNull, [Buffer.from('abc')], 0, state, true), { code: 'EINVAL', syscall: 'fdatasync' });
      assert.equal(native().sha256Digest(state), createHash('sha256').update('abc').digest('hex'), 'the bytes were hashed and written before the flush');
      await native().writeHashed(devNull, [Buffer.from('abc')], 0, null, false);
    } finally {
      closeSync(devNull);
    }
  });

  it('refuses bad arguments with a TypeError', () => {
    assert.throws(() => native().writeHashed(1, [], 0, null), TypeError);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], -1, null), TypeError);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, null, 'yes' as unknown as boolean), /sync must be a boolean/);
  });
});
