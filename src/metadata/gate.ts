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
 * The gate is one 32-bit word in shared memory: 0 when free, otherwise the
 * owner number of the thread holding it. A thread that dies holding it
 * cannot release it; whoever watches that thread (the main thread) calls
 * `releaseIfHeldBy`.
 */

// In Node 20 (V8 11.3), but in TypeScript's lib only from ES2024, whose other parts Node 20 lacks.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** How long a waiter sleeps before it looks again, should a wake-up be lost. */
const RECHECK_MS = 1000;

export class WriteGate {
  private readonly word: Int32Array;

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
    if (!Number.isInteger(owner) || owner <= 0) throw new Error(`write gate owner must be a positive integer, not ${owner}`);
    this.word = new Int32Array(shared, 0, 1);
  }

  static shared(): SharedArrayBuffer {
    return new SharedArrayBuffer(4);
  }

  /** Waits for the gate without blocking this thread; resolves with its release. */
  async acquire(): Promise<() => void> {
    const deadline = Date.now() + this.giveUpMs;
    for (;;) {
      const holder = Atomics.compareExchange(this.word, 0, 0, this.owner);
      if (holder === 0) return () => this.release();
      if (Date.now() > deadline) throw new Error(`the database write gate has been held by thread ${holder - 1} for over ${this.giveUpMs} ms`);
      const wait = waitAsync(this.word, 0, holder, Math.min(RECHECK_MS, Math.max(1, deadline - Date.now() + 1)));
      if (!wait.async) continue;
      // A pending waitAsync does not keep the event loop alive; this timer does.
      const alive = setTimeout(() => {}, RECHECK_MS);
      await wait.value;
      clearTimeout(alive);
    }
  }

  private release(): void {
    // Every waiter is woken (there are a few at most): one whose thread is busy must not keep the others asleep.
    if (Atomics.compareExchange(this.word, 0, this.owner, 0) === this.owner) Atomics.notify(this.word, 0);
  }

  /** Frees the gate if thread `owner` holds it (it has died). */
  static releaseIfHeldBy(shared: SharedArrayBuffer, owner: number): void {
    const word = new Int32Array(shared, 0, 1);
    if (Atomics.compareExchange(word, 0, owner, 0) === owner) Atomics.notify(word, 0);
  }
}
