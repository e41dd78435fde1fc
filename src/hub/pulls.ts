/**
 * Pull counting, off the hot path. The edge calls `pulled` once for each
 * manifest GET it answered 200 (never a HEAD): a few map operations, no
 * await, no allocation but a map entry the first time a (repository,
 * reference) is seen in a flush interval. Counts are flushed in one
 * transaction of additive updates every `intervalMs`, as soon as `maxPending`
 * GETs are waiting, and on close (so a clean shutdown loses nothing). After a
 * crash, at most the GETs since the last flush are lost: one interval, and
 * never more than `maxPending`. A failed flush keeps its counts for the next.
 *
 * What counts (as Docker Hub counts pulls, a manifest GET by a client):
 * - the repository: every GET by tag, and every GET by digest of a manifest
 *   that no index of the repository lists (the platform manifest a client
 *   fetches after the index is the same pull);
 * - a tag: GETs by that tag name;
 * - a manifest (digest): every GET that served it, by tag or by digest. A
 *   tag's "last pulled" on a page is the later of its own and its current
 *   manifest's, so a pull by digest (containerd resolves a tag with HEAD, then
 *   GETs by digest) shows on the tags pointing at it.
 */
import type { Logger } from 'pino';
import { DiscoveryQueries, type PullBatch } from '../metadata/discovery.js';
import type { MetadataStore } from '../metadata/store.js';

export interface PullCounterOptions {
  intervalMs?: number;
  maxPending?: number;
  log?: Pick<Logger, 'warn'>;
}

const empty = (): PullBatch => ({ tags: new Map(), served: new Map(), direct: new Map() });

function bump(map: Map<string, Map<string, number>>, repository: string, key: string, n = 1): void {
  let inner = map.get(repository);
  if (inner === undefined) {
    inner = new Map();
    map.set(repository, inner);
  }
  inner.set(key, (inner.get(key) ?? 0) + n);
}

export class PullCounter {
  private batch: PullBatch = empty();
  private pending = 0;
  private readonly intervalMs: number;
  private readonly maxPending: number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;
  private closed = false;
  private readonly queries: DiscoveryQueries;

  constructor(
    store: MetadataStore,
    private readonly options: PullCounterOptions = {},
  ) {
    this.queries = new DiscoveryQueries(store);
    this.intervalMs = options.intervalMs ?? 5_000;
    this.maxPending = options.maxPending ?? 10_000;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * One manifest GET answered with `digest`, asked for by `reference` (a tag
   * or that digest). Synchronous and O(1).
   */
  pulled(repository: string, reference: string, digest: string): void {
    if (this.closed) return;
    if (reference === digest) bump(this.batch.direct, repository, digest);
    else bump(this.batch.tags, repository, reference);
    bump(this.batch.served, repository, digest);
    if (++this.pending >= this.maxPending && this.flushing === null) void this.flush();
  }

  /** GETs gathered and not yet written. */
  get unflushed(): number {
    return this.pending;
  }

  /** Writes what was gathered; concurrent calls share one flush. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.pending > 0 ? this.flush() : undefined));
    if (this.pending === 0) return Promise.resolve();
    const batch = this.batch;
    const count = this.pending;
    this.batch = empty();
    this.pending = 0;
    this.flushing = this.queries
      .addPulls(batch)
      .catch((err: unknown) => {
        // Rolled back: nothing of it was written; merged back for the next flush.
        for (const key of ['tags', 'served', 'direct'] as const) for (const [repo, inner] of batch[key]) for (const [k, n] of inner) bump(this.batch[key], repo, k, n);
        this.pending += count;
        this.options.log?.warn({ err, pending: this.pending }, 'could not write pull counts; they are kept for the next flush');
        if (this.closed) throw err;
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  /** Stops the timer and writes everything gathered (a clean shutdown loses no pull). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // A flush that fails keeps its counts (flush merges them back): at shutdown, try again a few
    // times (another thread may hold the database's write lock while it closes) before giving up.
    for (let attempt = 0; ; attempt++) {
      await this.flush();
      if (this.pending === 0 || attempt >= 4) break;
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
    this.closed = true;
    if (this.pending > 0) throw new Error(`${this.pending} pulls could not be written at shutdown`);
  }
}
