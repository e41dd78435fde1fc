/**
 * ServingThreads with real worker threads: connections dealt round-robin
 * (the descriptor handed over, none leaked), a crashed worker replaced,
 * metrics gathered, and a clean stop.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { BroadcastChannel } from 'node:worker_threads';
import { afterBusy, retireEarlyConnections, ServingThreads } from './threads.js';

type Answer = { index: number; threadId: number; body: string };

function get(port: number, path = '/', agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as Answer));
      })
      .on('error', reject);
  });
}

const openDescriptors = () => readdirSync('/proc/self/fd').length;

/** A keep-alive agent whose one connection was dealt to a worker thread, and that worker's first answer. */
async function connectionOnWorker(port: number): Promise<{ agent: http.Agent; answer: Answer }> {
  for (;;) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const answer = await get(port, '/', agent);
    if (answer.index !== 0) return { agent, answer };
    agent.destroy();
  }
}

describe('ServingThreads', () => {
  const here = http.createServer((_req, res) => res.end(JSON.stringify({ index: 0, threadId: 0, body: '' })));
  let balancer: net.Server;
  let threads: ServingThreads;
  let port: number;
  let crashLoop = false;
  const exited: number[] = [];

  before(async () => {
    threads = new ServingThreads({
      count: 2,
      entry: new URL('./threads.fixture.js', import.meta.url),
      data: {},
      serveHere: (socket) => {
        here.emit('connection', socket);
        socket.resume();
      },
      log: pino({ level: 'silent' }),
      onCrashLoop: () => (crashLoop = true),
      onExit: (index) => exited.push(index),
    });
    const started = threads.start();
    threads.release();
    await started;
    balancer = net.createServer({ pauseOnConnect: true }, (socket) => threads.deal(socket));
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    port = (balancer.address() as net.AddressInfo).port;
  });
  after(async () => {
    balancer.close();
    here.closeAllConnections();
    await threads.stop();
  });

  it('deals connections in turn to the main thread and each worker', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 30; i++) seen.push((await get(port)).index);
    for (const index of [0, 1, 2]) assert.equal(seen.filter((s) => s === index).length, 10, `thread ${index} got ${seen.join(',')}`);
  });

  it('a dealt connection serves many requests and large responses', async () => {
    const { agent, answer } = await connectionOnWorker(port);
    const answers = [answer];
    for (let i = 0; i < 3; i++) answers.push(await get(port, i === 1 ? '/big' : '/', agent));
    agent.destroy();
    assert.deepEqual(new Set(answers.map((a) => a.threadId)), new Set([answer.threadId]), 'one connection, one thread');
    assert.equal(answers[2]!.body.length, 4 * 1024 * 1024);
  });

  it('leaks no descriptors: the main thread closes its copy of every dealt connection', async () => {
    for (let i = 0; i < 6; i++) await get(port); // warm up: lazily opened descriptors
    const before = openDescriptors();
    for (let i = 0; i < 60; i++) await get(port);
    // A thread closes its end a moment after the client has the answer: wait for that, not a fixed time.
    const deadline = Date.now() + 20_000;
    while (openDescriptors() > before + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(openDescriptors() <= before + 2, `descriptors ${before} → ${openDescriptors()}`);
  });

  it('gathers every worker’s metrics', async () => {
    const metrics = (await threads.metrics()).flat() as { index: number }[];
    assert.deepEqual(metrics.map((m) => m.index).sort(), [1, 2]);
  });

  it('replaces a worker that dies, and keeps serving', async () => {
    const { agent, answer: victim } = await connectionOnWorker(port);
    await get(port, '/crash', agent).catch(() => {}); // the worker dies before it answers
    agent.destroy();
    let replaced = false;
    // A replacement starts 200 ms after the death; the deadline only bounds a broken pool.
    const deadline = Date.now() + 30_000;
    while (!replaced && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      replaced = threads.readyWorkers().length === 2;
      if (replaced) {
        const answers = await Promise.all(Array.from({ length: 6 }, () => get(port)));
        replaced = answers.some((a) => a.index === victim.index && a.threadId !== victim.threadId);
      }
    }
    assert.ok(replaced, `worker ${victim.index} came back as a new thread`);
    // What the dead thread held (the database write gate, in serve.ts) is released for it.
    assert.deepEqual(exited, [victim.index]);
    assert.equal(crashLoop, false);
  });
});

/** GET with the answer's Connection header. */
function getWithConnection(port: number, agent: http.Agent): Promise<Answer & { connection?: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ ...(JSON.parse(text) as Answer), connection: res.headers.connection }));
      })
      .on('error', reject);
  });
}

/** Resolves when `count` fixture workers have loaded and wait to be released. */
function loadedWorkers(count: number): { all: Promise<number[]>; close(): void } {
  const channel = new BroadcastChannel('threads-fixture-loaded');
  const seen: number[] = [];
  const all = new Promise<number[]>((resolve) => {
    channel.onmessage = (event) => {
      seen.push((event as MessageEvent).data as number);
      if (seen.length === count) resolve(seen.sort());
    };
  });
  return { all, close: () => channel.close() };
}

describe('ServingThreads while the workers start', () => {
  const options = {
    entry: new URL('./threads.fixture.js', import.meta.url),
    serveHere: (socket: net.Socket) => socket.destroy(),
    log: pino({ level: 'silent' }),
    onCrashLoop: () => {},
  };

  it('workers load at once but start only when released', async () => {
    const loaded = loadedWorkers(2);
    const threads = new ServingThreads({ ...options, count: 2, data: {} });
    try {
      const started = threads.start();
      assert.deepEqual(await loaded.all, [1, 2]);
      // Loaded, and waiting: a worker that did not wait would be ready a moment after it said so.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(threads.readyWorkers(), []);
      threads.release();
      await started;
      assert.deepEqual(threads.readyWorkers().sort(), [1, 2]);
    } finally {
      loaded.close();
      await threads.stop();
    }
  });

  it('replaces a worker that fails to start, and starts with its replacement', async () => {
    const failStarts = new SharedArrayBuffer(4);
    new Int32Array(failStarts)[0] = 1;
    const exited: number[] = [];
    let crashLoop = false;
    const threads = new ServingThreads({ ...options, count: 2, data: { failStarts }, onExit: (index) => exited.push(index), onCrashLoop: () => (crashLoop = true) });
    try {
      const started = threads.start();
      threads.release();
      await started;
      assert.deepEqual(threads.readyWorkers().sort(), [1, 2]);
      assert.equal(exited.length, 1, 'one worker failed and was replaced');
      assert.equal(crashLoop, false);
    } finally {
      await threads.stop();
    }
  });

  it('a stop ends a worker whose drain hangs once the limit it was given is up', async () => {
    const exited: number[] = [];
    const threads = new ServingThreads({ ...options, count: 1, data: { holdStop: true }, onExit: (index) => exited.push(index) });
    const started = threads.start();
    threads.release();
    await started;
    const t0 = Date.now();
    await threads.stop(300);
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 5000, `stopped in ${took} ms`);
    assert.deepEqual(exited, [1]);
    assert.deepEqual(threads.readyWorkers(), []);
  });

  it('a stop before the release ends the waiting workers', async () => {
    const loaded = loadedWorkers(2);
    const exited: number[] = [];
    const threads = new ServingThreads({ ...options, count: 2, data: {}, onExit: (index) => exited.push(index) });
    try {
      void threads.start().catch(() => {});
      await loaded.all;
      await threads.stop();
      assert.deepEqual(exited.sort(), [1, 2]);
      assert.deepEqual(threads.readyWorkers(), []);
    } finally {
      loaded.close();
    }
  });

  it('serves connections on the main thread until a worker is ready, then moves keep-alive ones over', async () => {
    const here = http.createServer((_req, res) => res.end(JSON.stringify({ index: 0, threadId: 0, body: '' })));
    let starting = true;
    retireEarlyConnections(here, () => starting);
    const threads = new ServingThreads({
      count: 1,
      entry: new URL('./threads.fixture.js', import.meta.url),
      data: { holdReady: true },
      serveHere: (socket) => {
        here.emit('connection', socket);
        socket.resume();
      },
      log: pino({ level: 'silent' }),
      onCrashLoop: () => {},
    });
    const balancer = net.createServer({ pauseOnConnect: true }, (socket) => threads.deal(socket));
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const port = (balancer.address() as net.AddressInfo).port;
    const channel = new BroadcastChannel('threads-fixture-hold');
    const held = new Promise<void>((resolve) => {
      channel.onmessage = (event) => {
        if ((event as MessageEvent).data === 'held') resolve();
      };
    });
    const started = threads.start();
    threads.release();
    await held;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // The worker holds its ready: every connection, new or kept alive, is served here meanwhile.
      const kept = [await getWithConnection(port, agent), await getWithConnection(port, agent)];
      const fresh = await Promise.all(Array.from({ length: 4 }, () => get(port)));
      assert.deepEqual([...kept, ...fresh].map((a) => a.index), [0, 0, 0, 0, 0, 0]);
      assert.equal(threads.readyWorkers().length, 0);
      assert.notEqual(kept[1]!.connection, 'close', 'kept alive while the workers start');

      channel.postMessage('go');
      await started;
      starting = false;
      // The early keep-alive connection answers once more, here, and closes.
      const last = await getWithConnection(port, agent);
      assert.equal(last.index, 0);
      assert.equal(last.connection, 'close');
      // The agent reconnects; new connections are dealt to both threads.
      const after = [(await getWithConnection(port, agent)).index, ...(await Promise.all(Array.from({ length: 5 }, () => get(port)))).map((a) => a.index)];
      assert.deepEqual(new Set(after), new Set([0, 1]));
    } finally {
      channel.close();
      agent.destroy();
      balancer.close();
      here.closeAllConnections();
      await threads.stop();
    }
  });

  it('held: ready workers take no connections until join, then the keep-alive ones taken alone move over', async () => {
    const here = http.createServer((_req, res) => res.end(JSON.stringify({ index: 0, threadId: 0, body: '' })));
    let alone = true;
    retireEarlyConnections(here, () => alone);
    const threads = new ServingThreads({
      count: 2,
      entry: new URL('./threads.fixture.js', import.meta.url),
      data: {},
      held: true,
      serveHere: (socket) => {
        here.emit('connection', socket);
        socket.resume();
      },
      log: pino({ level: 'silent' }),
      onCrashLoop: () => {},
    });
    const balancer = net.createServer({ pauseOnConnect: true }, (socket) => threads.deal(socket));
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const port = (balancer.address() as net.AddressInfo).port;
    const started = threads.start();
    threads.release();
    await started;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.deepEqual(threads.readyWorkers().sort(), [1, 2]);
      const kept = await getWithConnection(port, agent);
      const fresh = await Promise.all(Array.from({ length: 9 }, () => get(port)));
      assert.deepEqual([kept, ...fresh].map((a) => a.index), Array(10).fill(0), 'every connection served here while held');

      threads.join();
      alone = false;
      const last = await getWithConnection(port, agent);
      assert.deepEqual([last.index, last.connection], [0, 'close'], 'the keep-alive connection taken alone answers once more and closes');
      const seen: number[] = [];
      for (let i = 0; i < 9; i++) seen.push((await get(port)).index);
      for (const index of [0, 1, 2]) assert.equal(seen.filter((s) => s === index).length, 3, `joined, dealt in turn: ${seen.join(',')}`);
    } finally {
      agent.destroy();
      balancer.close();
      here.closeAllConnections();
      await threads.stop();
    }
  });
});

describe('afterBusy', () => {
  const spin = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const settledWithin = async (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it('counts the time the event loop was busy, not the time that passed', async () => {
    const warm = afterBusy(300);
    // Idle for longer than the threshold: not yet.
    assert.equal(await settledWithin(warm, 500), false, 'idle time counted');
    // Busy in slices, with idle gaps between them: 4 × 100 ms of work.
    for (let i = 0; i < 4; i++) {
      spin(100);
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(await settledWithin(warm, 500), true, 'not resolved after 400 ms of work');
  });
});

