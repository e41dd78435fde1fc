/**
 * Health checks as distribution's `health:` section defines them: each
 * check runs every `interval`; it turns unhealthy after `threshold`
 * consecutive failures and healthy again after one success.
 */
import { access } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';

export type Check = () => Promise<void>;

interface Registered {
  name: string;
  check: Check;
  threshold: number;
  failures: number;
  lastError: string | null;
  timer?: NodeJS.Timeout;
}

export class HealthChecks {
  private readonly checks: Registered[] = [];

  constructor(private readonly log?: Logger) {}

  /** Registers a periodic check and runs it once straight away. */
  add(name: string, check: Check, intervalMs: number, threshold = 1): void {
    const r: Registered = { name, check, threshold: Math.max(1, threshold), failures: 0, lastError: null };
    this.checks.push(r);
    const run = async () => {
      try {
        await check();
        if (r.lastError) this.log?.info({ check: name }, 'health check recovered');
        r.failures = 0;
        r.lastError = null;
      } catch (err) {
        r.failures += 1;
        const message = (err as Error).message || String(err);
        if (r.failures >= r.threshold) {
          if (!r.lastError) this.log?.warn({ check: name, error: message }, 'health check failing');
          r.lastError = message;
        }
      }
    };
    void run();
    r.timer = setInterval(() => void run(), Math.max(50, intervalMs));
    r.timer.unref();
  }

  /** Failing checks by name; empty when healthy. */
  status(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of this.checks) if (c.lastError) out[c.name] = c.lastError;
    return out;
  }

  healthy(): boolean {
    return this.checks.every((c) => !c.lastError);
  }

  stop(): void {
    for (const c of this.checks) clearInterval(c.timer);
  }
}

/** distribution's file check: unhealthy while the file exists (a maintenance switch). */
export function fileCheck(file: string): Check {
  return async () => {
    let exists = true;
    try {
      await access(file);
    } catch {
      exists = false;
    }
    if (exists) throw new Error(`file exists: ${file}`);
  };
}

export function httpCheck(uri: string, expectStatus: number, timeoutMs: number, headers: Record<string, string[]>): Check {
  return async () => {
    const h = new Headers();
    for (const [k, vs] of Object.entries(headers)) for (const v of vs) h.append(k, v);
    const res = await fetch(uri, { method: 'HEAD', headers: h, signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== expectStatus) throw new Error(`${uri} answered ${res.status}, expected ${expectStatus}`);
  };
}

export function tcpCheck(addr: string, timeoutMs: number): Check {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(addr.slice(i + 1));
  return () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connection to ${addr} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.end();
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`connection to ${addr} failed: ${err.message}`));
      });
    });
}
