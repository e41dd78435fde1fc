/**
 * A period job for the schedulers (garbage collection, upload purging):
 * runs `tick` every `periodMs`, exactly that period, however long. Node's
 * setInterval would fire every millisecond for a period above 2^31-1 ms
 * (24.8 days), so long periods are waited out in steps.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The shortest period accepted (the configuration refuses shorter ones, naming the key). */
export const MIN_PERIOD_MS = 1000;

export function every(periodMs: number, tick: () => void): () => void {
  if (!Number.isFinite(periodMs) || periodMs < MIN_PERIOD_MS) throw new RangeError(`a scheduled job's period must be at least ${MIN_PERIOD_MS}ms, got ${periodMs}`);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const wait = (remaining: number) => {
    timer = setTimeout(() => {
      if (stopped) return;
      if (remaining > MAX_TIMER_MS) return wait(remaining - MAX_TIMER_MS);
      tick();
      wait(periodMs);
    }, Math.min(remaining, MAX_TIMER_MS));
    timer.unref();
  };
  wait(periodMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
