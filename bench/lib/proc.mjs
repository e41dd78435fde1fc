// Process-tree CPU and memory from /proc, and the machine's own load.
// A server may fork workers, so everything is measured over the tree rooted
// at the pid we started (children found by walking /proc/*/stat for ppids).
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // 100 on every Linux we run on.
}
export const CLK_TCK = clkTck;

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parens). */
function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = text.lastIndexOf(')');
  // fields[0] is state (field 3 in proc(5)); so proc(5) field k is fields[k - 3].
  return text.slice(close + 2).split(' ');
}

/** All descendants of root (including root) that are alive now. */
export function processTree(root) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(entry)[1]);
      let list = children.get(ppid);
      if (!list) children.set(ppid, (list = []));
      list.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out;
}

/**
 * CPU seconds used by a process tree: utime+stime of every live member (all
 * threads included) plus cutime+cstime (children that already exited and were
 * reaped are counted by their parent, so nothing is counted twice).
 */
export function treeCpuSeconds(root) {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const f = statFields(pid);
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // Exited while we looked.
    }
  }
  return ticks / CLK_TCK;
}

function statusKiB(pid, key) {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples a process tree's memory every `intervalMs`: the sum of VmRSS (the
 * tree's current footprint) and, per pid, the largest VmHWM seen (so workers
 * that exit still count). `mark()` starts a new phase window for peak RSS.
 */
export class MemorySampler {
  constructor(root, intervalMs = 200) {
    this.root = root;
    this.hwm = new Map(); // pid -> max VmHWM KiB
    this.windowPeakKiB = 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  sample() {
    let rss = 0;
    for (const pid of processTree(this.root)) {
      rss += statusKiB(pid, 'VmRSS');
      const h = statusKiB(pid, 'VmHWM');
      if (h > (this.hwm.get(pid) ?? 0)) this.hwm.set(pid, h);
    }
    if (rss > this.windowPeakKiB) this.windowPeakKiB = rss;
    this.lastRssKiB = rss;
    return rss;
  }
  /** Starts a window; returns the peak tree RSS (MiB) of the window that ended. */
  mark() {
    this.sample();
    const peak = this.windowPeakKiB;
    this.windowPeakKiB = this.lastRssKiB;
    return peak / 1024;
  }
  /** Sum over the tree's processes of each one's VmHWM, MiB. */
  peakHwmMiB() {
    this.sample();
    let sum = 0;
    for (const v of this.hwm.values()) sum += v;
    return sum / 1024;
  }
  stop() {
    clearInterval(this.timer);
  }
}

/** Machine-wide CPU ticks from /proc/stat: busy (everything but idle+iowait), steal, total. */
export function machineTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = v;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: user + nice + system + irq + softirq, steal, total };
}

/** CPU seconds of this process plus its reaped children (wrk, tsc). */
export function selfCpuSeconds() {
  return treeCpuSeconds(process.pid);
}

/**
 * Watches how much of the machine other processes use while we measure:
 * machine busy CPU minus this process tree's (the servers and load
 * generators are our children, so they are inside it).
 */
export class NoiseMeter {
  constructor() {
    this.reset();
  }
  reset() {
    this.m0 = machineTicks();
    this.own0 = selfCpuSeconds();
    this.t0 = process.hrtime.bigint();
  }
  /** { otherPct: % of all CPUs used by other processes, stealPct, busyPct } since reset. */
  read() {
    const m1 = machineTicks();
    const own1 = selfCpuSeconds();
    const secs = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const ncpu = os.cpus().length;
    const capacity = secs * ncpu;
    const busy = (m1.busy - this.m0.busy) / CLK_TCK;
    const steal = (m1.steal - this.m0.steal) / CLK_TCK;
    const own = own1 - this.own0;
    return {
      seconds: secs,
      busyPct: (100 * busy) / capacity,
      ownPct: (100 * own) / capacity,
      otherPct: Math.max(0, (100 * (busy - own)) / capacity),
      stealPct: (100 * steal) / capacity,
    };
  }
}

/** A short look at the machine before the run: load average and 2 s of /proc/stat. */
export async function machineBefore(sampleMs = 2000) {
  const meter = new NoiseMeter();
  await new Promise((r) => setTimeout(r, sampleMs));
  const r = meter.read();
  const [l1, l5, l15] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return { loadavg: [l1, l5, l15], cpus: os.cpus().length, otherPct: r.otherPct, stealPct: r.stealPct, sampleSeconds: r.seconds };
}
