/**
 * Structured logs with pino: JSON lines by default (log.formatter: json or
 * logstash), or logrus-style `key=value` text (log.formatter: text), as
 * distribution writes them.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Config } from './config/index.js';

/**
 * Levels by name, as logrus writes them (distribution's logger): `warn` is
 * `warning`. Log pipelines match on these names; pino's numbers mean
 * nothing to them.
 */
const LEVEL_NAMES: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'fatal' };

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[A-Za-z0-9._:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

/** One JSON log line → `time=… level=… msg=… key=value…`. */
export function toText(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, ...rest } = entry;
  const parts = [`time=${quote(time)}`, `level=${String(level)}`, `msg=${quote(msg ?? '')}`];
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) parts.push(`${k}=${quote(v)}`);
  return parts.join(' ');
}

function textDestination(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk, _enc, cb) {
      pending += String(chunk);
      let nl = pending.indexOf('\n');
      while (nl !== -1) {
        out.write(`${toText(pending.slice(0, nl))}\n`);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
      cb();
    },
  });
}

export function createLogger(config: Config, destination?: NodeJS.WritableStream): Logger {
  const opts: pino.LoggerOptions = {
    level: config.log.level,
    base: { service: 'berth', ...config.log.fields },
    timestamp: pino.stdTimeFunctions.isoTime,
    // pino renders this once per level, not per line.
    formatters: { level: (label) => ({ level: LEVEL_NAMES[label] ?? label }) },
  };
  const out = destination ?? process.stdout;
  const dest = config.log.formatter === 'text' ? textDestination(out) : destination;
  return dest ? pino(opts, dest as pino.DestinationStream) : pino(opts);
}
