import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { WriteGate } from './gate.js';

const gateModule = new URL('./gate.js', import.meta.url).href;

/**
 * A worker thread that takes the gate `rounds` times and, holding it, does a
 * read-modify-write of a shared counter with a pause in between: without
 * mutual exclusion, increments are lost. `hold`: then takes it once more,
 * says so, and keeps it until it is ended.
 */
function incrementer(shared: SharedArrayBuffer, counter: SharedArrayBuffer, owner: number, rounds: number, hold = false): Worker {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { WriteGate } = await import(workerData.gateModule);
      const gate = new WriteGate(workerData.shared, workerData.owner);
      const count = new Int32Array(workerData.counter);
      for (let i = 0; i < workerData.rounds; i++) {
        const release = await gate.acquire();
        const seen = count[0];
        await new Promise((r) => setTimeout(r, 0));
        count[0] = seen + 1;
        release();
      }
      if (workerData.hold) {
        await gate.acquire();
        parentPort.postMessage('holding');
        setInterval(() => {}, 1000);
      } else parentPort.postMessage('done');
    })();`;
  return new Worker(code, { eval: true, workerData: { gateModule, shared, counter, owner, rounds, hold } });
}

const message = (w: Worker) => new Promise((resolve, reject) => {
  w.once('message', resolve);
  w.once('error', reject);
});

describe('WriteGate', () => {
  it('lets one thread at a time through, across threads and within one', async (t) => {
    const shared = WriteGate.shared();
    const counter = new SharedArrayBuffer(4);
    const workers = [2, 3, 4].map((owner) => incrementer(shared, counter, owner, 40));
    t.after(() => Promise.all(workers.map((w) => w.terminate())));
    // This thread takes part too, with several waiters of its own at once.
    const here = new WriteGate(shared, 1);
    const count = new Int32Array(counter);
    const local = Array.from({ length: 20 }, async () => {
      const release = await here.acquire();
      const seen = count[0]!;
      await new Promise((r) => setTimeout(r, 0));
      count[0] = seen + 1;
      release();
    });
    await Promise.all([...workers.map(message), ...local]);
    assert.equal(count[0], 3 * 40 + 20);
  });

  it('keeps the waiting thread serving, and frees a gate whose holder died', async (t) => {
    const shared = WriteGate.shared();
    const holder = incrementer(shared, new SharedArrayBuffer(4), 2, 0, true);
    t.after(() => holder.terminate());
    assert.equal(await message(holder), 'holding');
    const here = new WriteGate(shared, 1);
    let got = false;
    const waiting = here.acquire().then((release) => {
      got = true;
      return release;
    });
    // The event loop still runs while the gate is held elsewhere.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got, false);
    await holder.terminate();
    WriteGate.releaseIfHeldBy(shared, 3); // not the holder: nothing happens
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got, false);
    WriteGate.releaseIfHeldBy(shared, 2);
    const release = await waiting;
    assert.equal(got, true);
    release();
    // Free again.
    (await here.acquire())();
  });

  // Owner 33 shares no waiting bit with the holder, owner 1: with one word of bits for every owner it
  // did, and the holder took the waiting thread's bit for its own and let all 20 of its waiters go first.
  for (const waiting of [2, 33]) {
    it(`lets a waiting thread (owner ${waiting}) in after at most 8 hand-overs within the holding thread`, async (t) => {
      const shared = WriteGate.shared();
      const counter = new SharedArrayBuffer(4);
      const count = new Int32Array(counter);
      const here = new WriteGate(shared, 1);
      const first = await here.acquire();
      // 20 writers of this thread queue up behind the first, each noting whether the other thread has been in.
      const seen: number[] = [];
      const local = Array.from({ length: 20 }, async () => {
        const release = await here.acquire();
        seen.push(count[0]!);
        await new Promise((r) => setImmediate(r));
        release();
      });
      const other = incrementer(shared, counter, waiting, 1);
      t.after(() => other.terminate());
      // Until the other thread is waiting (its bit in the gate's waiting words).
      while (new Int32Array(shared).slice(1).every((w) => w === 0)) await new Promise((r) => setTimeout(r, 5));
      first();
      await Promise.all([message(other), ...local]);
      assert.equal(count[0], 1);
      assert.equal(seen.length, 20);
      assert.ok(seen.filter((c) => c === 0).length <= 8, `this thread went in ${seen.filter((c) => c === 0).length} times before the waiting thread`);
    });
  }

  it('gives up, as SQLite would, when the gate stays held too long', async () => {
    const shared = WriteGate.shared();
    const release = await new WriteGate(shared, 2).acquire();
    const started = Date.now();
    await assert.rejects(new WriteGate(shared, 1, 150).acquire(), /held by thread 1 for over 150 ms/);
    assert.ok(Date.now() - started < 1000, 'gave up at its deadline, not at the next recheck');
    release();
  });

  it('refuses an owner number that could not be told from a free gate', () => {
    assert.throws(() => new WriteGate(WriteGate.shared(), 0), /integer from 1 to 256/);
    assert.throws(() => new WriteGate(WriteGate.shared(), 257), /integer from 1 to 256/);
  });
});
