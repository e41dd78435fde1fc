/**
 * A bounded map that forgets the least recently used entries first, nearly:
 * an entry read within the last max/2 insertions is never the one evicted.
 * A read moves an entry to the young end only once that many insertions
 * have passed it, not on every hit: the move is a delete and an insert of
 * the key, which for a token verifier's keys (JWTs over a kilobyte) was a
 * noticeable part of a small request's CPU.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; tick: number }>();
  /** Insertions so far: an entry's `tick` says when it was (re)inserted. */
  private tick = 0;
  private readonly refreshAfter: number;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError('Lru: max must be at least 1');
    this.refreshAfter = Math.max(1, Math.floor(max / 2));
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    // Map keeps insertion order: re-inserting makes this the most recent.
    if (this.tick - e.tick >= this.refreshAfter) {
      this.map.delete(key);
      e.tick = ++this.tick;
      this.map.set(key, e);
    }
    return e.value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, { value, tick: ++this.tick });
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
