#!/usr/bin/env node
// The write gate under contention, without a server: two threads × 16
// writers, each taking the gate, holding it 0.2 ms (busy), releasing it and
// doing 1 ms of other work in four slices between event-loop turns, for 5 s.
// Prints the distribution of the wait for the gate and how many times it
// was taken. Pass another build's gate.js to compare (an A/B run back to
// back is fair on a busy machine: both runs share its noise).
//   node bench/gate-contention.mjs [path/to/dist/src/metadata/gate.js]
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (isMainThread) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const mod = pathToFileURL(path.resolve(process.argv[2] ?? path.join(here, '../dist/src/metadata/gate.js'))).href;
  const { WriteGate } = await import(mod);
  const shared = WriteGate.shared();
  const results = await Promise.all(
    [1, 2].map(
      (owner) =>
        new Promise((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { mod, shared, owner } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const all = results.flatMap((r) => r.waits).sort((a, b) => a - b);
  const p = (q) => all[Math.min(all.length - 1, Math.floor(q * all.length))].toFixed(2);
  console.log(
    `${mod}\n  taken ${all.length} times (${results.map((r) => r.waits.length).join(' + ')}); wait p50 ${p(0.5)} ms, p90 ${p(0.9)}, p99 ${p(0.99)}, max ${all[all.length - 1].toFixed(1)}`,
  );
} else {
  const { WriteGate } = await import(workerData.mod);
  const gate = new WriteGate(workerData.shared, workerData.owner);
  const busy = (ms) => {
    const t = performance.now();
    while (performance.now() - t < ms);
  };
  const waits = [];
  const end = performance.now() + 5000;
  const writer = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const release = await gate.acquire();
      waits.push(performance.now() - t0);
      busy(0.2);
      release();
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setImmediate(r));
        busy(0.25);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, writer));
  parentPort.postMessage({ waits });
}
