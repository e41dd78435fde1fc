import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { HtpasswdFile, type CompareFn } from './htpasswd.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-htpasswd-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A compare that records every hash it was asked about, then answers as bcrypt would (or always `answer`). */
function counting(answer?: boolean): { compare: CompareFn; hashes: string[] } {
  const hashes: string[] = [];
  return {
    hashes,
    compare: async (password, hash) => {
      hashes.push(hash);
      return answer ?? bcrypt.compare(password, hash);
    },
  };
}

async function fileWith(name: string, entries: Record<string, { password: string; cost: number }>): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, Object.entries(entries).map(([user, e]) => `${user}:${bcrypt.hashSync(e.password, e.cost)}\n`).join(''));
  return file;
}

const costOf = (hash: string) => hash.slice(4, 6);

describe('HtpasswdFile', () => {
  it('an unknown user costs one bcrypt check at the cost the file uses, like a wrong password for a known one', async () => {
    const file = await fileWith('cost', { alice: { password: 'secret', cost: 5 }, bob: { password: 'hunter2', cost: 5 }, carol: { password: 'x', cost: 4 } });
    const c = counting();
    const h = new HtpasswdFile(file, undefined, c.compare);

    assert.equal(await h.check('mallory', 'secret'), false);
    assert.equal(c.hashes.length, 1, 'an unknown user went through bcrypt');
    assert.equal(costOf(c.hashes[0]!), '05', 'at the cost most entries use');
    assert.match(c.hashes[0]!, /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/, 'a well-formed hash, so bcrypt does the full work');

    assert.equal(await h.check('alice', 'wrong'), false);
    assert.equal(c.hashes.length, 2, 'a wrong password for a known user: one bcrypt check too');
    assert.equal(costOf(c.hashes[1]!), '05');
  });

  it('keeps the verified-credential cache for known users, and never caches an unknown one', async () => {
    const file = await fileWith('cache', { alice: { password: 'secret', cost: 4 } });
    const c = counting();
    const h = new HtpasswdFile(file, undefined, c.compare);
    assert.equal(await h.check('alice', 'secret'), true);
    assert.equal(await h.check('alice', 'secret'), true);
    assert.equal(c.hashes.length, 1, 'a verified credential is not checked again');
    assert.equal(await h.check('nobody', 'secret'), false);
    assert.equal(await h.check('nobody', 'secret'), false);
    assert.equal(c.hashes.length, 3, 'an unknown user is checked every time');
  });

  it('an unknown user is refused even if the comparison were to succeed', async () => {
    const file = await fileWith('never', { alice: { password: 'secret', cost: 4 } });
    const c = counting(true);
    const h = new HtpasswdFile(file, undefined, c.compare);
    assert.equal(await h.check('mallory', 'anything'), false);
    assert.equal(await h.check('mallory', 'anything'), false);
    assert.equal(c.hashes.length, 2);
    assert.equal(await h.check('alice', 'anything'), true, 'a known user goes by the comparison');
  });

  it('the dummy hash is one real bcrypt accepts and no password matches', async () => {
    const file = await fileWith('real', { alice: { password: 'secret', cost: 4 } });
    const c = counting();
    const h = new HtpasswdFile(file, undefined, c.compare);
    assert.equal(await h.check('mallory', ''), false);
    assert.equal(await bcrypt.compare('', c.hashes[0]!), false);
    assert.equal(bcrypt.getRounds(c.hashes[0]!), 4);
  });
});
