/**
 * One writer at a time among the serving threads of one process (SQLite).
 *
 * SQLite lets one connection write at a time. A connection that finds
 * the write lock taken is put to sleep by its busy handler for at least a
 * millisecond, and with better-sqlite3 that sleep blocks its whole thread,
 * every request on it included. Threads that share a gate take turns
 * before they ask SQLite for the lock: a thread that has to wait keeps
 * serving its other requests, and it is woken the moment the lock is free.
 * SQLite's own locking still guards against other processes (`berth gc`).
 *
 * Within a thread, waiters queue in arrival order and only the first of
 * them contends with the other threads. A thread that holds the gate
 * passes it straight to its next waiter, up to MAX_PASSES times in a row
 * while another thread waits, then lets that thread go first. Without this,
 * every release woke every waiter of every thread and the first to run
 * won: under a mixed soak at 64 connections a write's median wait for the
 * gate was 0 ms and its 99th percentile 270 ms (holds: 0.2 ms median, 3 ms
 * p99), most of the push requests' tail. A queue shared by all threads
 * instead (a ticket lock) made every hand-over wait for one given thread
 * to wake, about a millisecond, and was no better.
 *
 * 32-bit words in shared memory: the owner number of the thread holding
 * the gate (0 when free), then a bit per thread whose first waiter is
 * waiting for it, one for each owner number up to MAX_OWNERS (two threads
 * sharing a bit would clear each other's, and a holder would take its own
 * bit for the other's and hand the gate round its own waiters for as long
 * as they come). A thread that dies holding the gate cannot release
 * it; whoever watches that thread (the main thread) calls `releaseIfHeldBy`.
 */
// In Node 20 (V8 11.3), but in TypeScript's lib only from ES2024, whose other parts Node 20 lacks.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** How long a waiter sleeps before it looks again, should a wake-up be lost. */
const RECHECK_MS = 1000;

/** Owner numbers a gate tells apart: as many threads as berth.workers allows. */
export const MAX_OWNERS = 256;
/** Words of the shared buffer: the holder, then the waiting bits from WAITING on. */
const HOLDER = 0;
const WAITING = 1;
const WORDS = WAITING + MAX_OWNERS / 32;

/** The word and the bit of `owner`'s waiting flag. */
function waitingBit(owner: number): [word: number, bit: number] {
  return [WAITING + Math.floor((owner - 1) / 32), 1 << (owner - 1) % 32];
}
/** Hand-overs within a thread in a row while another thread waits. */
const MAX_PASSES = 8;
/** How long a thread that let another go first leaves it to take the gate. */
const YIELD_MS = 5;

interface Waiter {
  resolve(release: () => void): void;
  reject(err: Error): void;
  deadline: number;
}

export class WriteGate {
  private readonly word: Int32Array;
  private readonly waitingWord: number;
  private readonly bit: number;
  /** This thread holds the shared word (for the running writer or one just handed the gate). */
  private held = false;
  private passes = 0;
  private readonly queue: Waiter[] = [];
  private contending = false;

  /**
   * `shared`: from `WriteGate.shared()`, the same buffer in every thread;
   * `owner`: this thread's number, unique among them and not 0;
   * `giveUpMs`: as SQLite's busy_timeout, a write that waits longer fails
   * rather than hangs.
   */
  constructor(
    readonly shared: SharedArrayBuffer,
    private readonly owner: number,
    private readonly giveUpMs = 10_000,
  ) {
    if (!Number.isInteger(owner) || owner <= 0 || owner > MAX_OWNERS) throw new Error(`write gate owner must be an integer from 1 to ${MAX_OWNERS}, not ${owner}`);
    this.word = new Int32Array(shared, 0, WORDS);
    [this.waitingWord, this.bit] = waitingBit(owner);
  }

  static shared(): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * WORDS);
  }

  /** Waits for the gate without blocking this thread; resolves with its release. */
  acquire(): Promise<() => void> {
    if (!this.held && this.queue.length === 0 && Atomics.compareExchange(this.word, HOLDER, 0, this.owner) === 0) {
      this.held = true;
      this.passes = 0;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject, deadline: Date.now() + this.giveUpMs });
      if (!this.held) void this.contend(false);
    });
  }

  /** A release that works once. */
  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.release();
    };
  }

  /** Whether another thread's first waiter is waiting for the gate. */
  private othersWaiting(): boolean {
    for (let i = WAITING; i < WORDS; i++) {
      const bits = Atomics.load(this.word, i);
      if ((i === this.waitingWord ? bits & ~this.bit : bits) !== 0) return true;
    }
    return false;
  }

  private release(): void {
    const othersWaiting = this.othersWaiting();
    if (this.queue.length > 0 && (!othersWaiting || this.passes < MAX_PASSES)) {
      this.passes++;
      this.queue.shift()!.resolve(this.releaser());
      return;
    }
    this.held = false;
    if (Atomics.compareExchange(this.word, HOLDER, this.owner, 0) === this.owner) Atomics.notify(this.word, HOLDER);
    if (this.queue.length > 0) void this.contend(othersWaiting);
  }

  /** The first waiter's turn to take the shared word, for this thread's queue. */
  private async contend(yieldFirst: boolean): Promise<void> {
    if (this.contending) return;
    this.contending = true;
    try {
      if (yieldFirst) await this.waitWhile(0, YIELD_MS);
      for (;;) {
        this.dropExpired();
        if (this.queue.length === 0) return;
        const holder = Atomics.compareExchange(this.word, HOLDER, 0, this.owner);
        if (holder === 0) {
          this.held = true;
          this.passes = 0;
          this.queue.shift()!.resolve(this.releaser());
          return;
        }
        Atomics.or(this.word, this.waitingWord, this.bit);
        try {
          await this.waitWhile(holder, Math.min(RECHECK_MS, Math.max(1, this.queue[0]!.deadline - Date.now() + 1)));
        } finally {
          Atomics.and(this.word, this.waitingWord, ~this.bit);
        }
      }
    } finally {
      this.contending = false;
    }
  }

  /** Sleeps, without blocking the thread, until the holder word is no longer `value` or `ms` pass. */
  private async waitWhile(value: number, ms: number): Promise<void> {
    const wait = waitAsync(this.word, HOLDER, value, ms);
    if (!wait.async) return;
    // A pending waitAsync does not keep the event loop alive; this timer does,
    // and outlasts the wait's own timeout, which may fire after it.
    const alive = setTimeout(() => {}, ms + 100);
    await wait.value;
    clearTimeout(alive);
  }

  /** Waiters that have waited longer than giveUpMs fail, as SQLite's busy_timeout would. */
  private dropExpired(): void {
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.deadline < now) {
      const holder = Atomics.load(this.word, HOLDER);
      this.queue.shift()!.reject(new Error(`the database write gate has been held by thread ${holder - 1} for over ${this.giveUpMs} ms`));
    }
  }

  /** Frees the gate if thread `owner` holds it (it has died). */
  static releaseIfHeldBy(shared: SharedArrayBuffer, owner: number): void {
    const word = new Int32Array(shared, 0, WORDS);
    // Its bit too, should it have died waiting.
    const [waiting, bit] = waitingBit(owner);
    Atomics.and(word, waiting, ~bit);
    if (Atomics.compareExchange(word, HOLDER, owner, 0) === owner) Atomics.notify(word, HOLDER);
  }
}
