// The small-request load: `wrk` (C, cheap on a 2-core machine) when
// available, else a node:http keep-alive load generator. Both report
// requests, errors, req/s and latency percentiles.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { trackChild } from './servers.mjs';

function toMs(value, unit) {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 'ms' ? v : unit === 's' ? v * 1000 : unit === 'm' ? v * 60000 : NaN;
}

/** Parses `wrk --latency` output. */
export function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1], m[2]) : undefined;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const requests = num(/(\d+) requests in/);
  return {
    requests,
    seconds: (() => {
      const m = /requests in ([\d.]+)(us|ms|s|m)/.exec(text);
      return m ? toMs(m[1], m[2]) / 1000 : undefined;
    })(),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct(50),
    p99: pct(99),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

export function runWrk(wrkBin, tmpDir, { url, method, headers, connections, seconds, threads }) {
  const script = path.join(tmpDir, `wrk-${method}-${Math.random().toString(36).slice(2)}.lua`);
  const lines = [`wrk.method = ${JSON.stringify(method)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(script, lines.join('\n') + '\n');
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${Math.max(1, Math.round(seconds))}s`, '--latency', '--timeout', '10s', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn(wrkBin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      const r = parseWrk(out);
      if (r.requests === undefined || r.rps === undefined) return reject(new Error(`could not parse wrk output:\n${out}`));
      resolve({ ...r, errors: r.non2xx + r.socketErrors, tool: 'wrk' });
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Reads HTTP/1.1 responses off a keep-alive socket, one after another, and
 * calls `onResponse(status, head)` once each has wholly arrived (`head`: the
 * status line and headers as text). A minimal parser (Content-Length or
 * chunked, no body for HEAD, 204 or 304) keeps a load generator's CPU per
 * request far below node:http's, which matters on a 2-core machine.
 */
export function responseReader(isHead, onResponse) {
  let buf = Buffer.alloc(0);
  let need = -1; // bytes of the current body still to come, -1 = reading headers
  let chunked = false;
  let status = 0;
  let head = '';
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (need === -1) {
        const endOfHeaders = buf.indexOf('\r\n\r\n');
        if (endOfHeaders === -1) return;
        head = buf.toString('latin1', 0, endOfHeaders);
        status = Number(head.slice(9, 12));
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
        need = isHead || status === 204 || status === 304 ? 0 : cl ? Number(cl[1]) : 0;
        buf = buf.subarray(endOfHeaders + 4);
      }
      if (chunked && !isHead) {
        // Rare here (registries send Content-Length); wait for the terminating chunk.
        const term = buf.indexOf('\r\n0\r\n\r\n');
        const atStart = buf.indexOf('0\r\n\r\n') === 0;
        if (term === -1 && !atStart) return;
        buf = buf.subarray(atStart ? 5 : term + 7);
      } else {
        if (buf.length < need) return;
        buf = buf.subarray(need);
      }
      chunked = false;
      need = -1;
      onResponse(status, head);
      if (buf.length === 0) return;
    }
  };
}

/**
 * One keep-alive connection for request/response round trips, opened
 * again when the server said `Connection: close` (Berth does so on the
 * connections its main thread took alone while its workers were starting)
 * or closed it between requests.
 */
export function keepAliveConnection(u) {
  let sock;
  let answer = null;
  let closing = false;
  const open = () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: u.hostname, port: Number(u.port) });
      s.setNoDelay(true);
      s.on(
        'data',
        responseReader(false, (status, head) => {
          if (/\r\nconnection:\s*close/i.test(head)) closing = true;
          const a = answer;
          answer = null;
          a?.res({ status, head });
        }),
      );
      s.on('close', () => {
        if (sock === s) sock = undefined;
        answer?.rej(new Error('the server closed the connection mid-request'));
      });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        s.on('error', () => {});
        resolve(s);
      });
    });
  return {
    async roundTrip(request) {
      if (closing && sock) {
        sock.destroy();
        sock = undefined;
      }
      closing = false;
      sock ??= await open();
      const s = sock;
      return new Promise((res, rej) => {
        answer = { res, rej };
        s.write(request);
      });
    },
    close() {
      sock?.end();
      sock = undefined;
    },
  };
}

/**
 * The same load from node: `connections` keep-alive sockets on node:net,
 * each sending one prebuilt request and waiting for the whole response
 * before the next. wrk cannot do HEAD: it waits for the Content-Length
 * bytes of a HEAD response and hangs.
 */
export async function runNodeLoad({ url, method, headers, connections, seconds }) {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1') throw new Error('loopback only');
  const head = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'User-Agent: berth-bench', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const request = Buffer.from(head.join('\r\n') + '\r\n\r\n');
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  const end = started + BigInt(Math.round(seconds * 1e9));

  const connection = () =>
    new Promise((resolve) => {
      const sock = net.connect({ host: u.hostname, port: Number(u.port) });
      sock.setNoDelay(true);
      let t0 = 0n;
      // The server said Connection: close: go on with a new connection once this one closes.
      let reopen = false;
      const send = () => {
        if (process.hrtime.bigint() >= end) {
          sock.end();
          return;
        }
        t0 = process.hrtime.bigint();
        sock.write(request);
      };
      const done = (status, head) => {
        if (status >= 400) errors++;
        if (n === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[n++] = Number(process.hrtime.bigint() - t0) / 1e6;
        if (/\r\nconnection:\s*close/i.test(head)) {
          reopen = true;
          sock.end();
          return;
        }
        send();
      };
      sock.on('data', responseReader(method === 'HEAD', done));
      sock.on('connect', send);
      sock.on('error', () => {
        if (!reopen) errors++;
      });
      sock.on('close', () => resolve(reopen && process.hrtime.bigint() < end ? connection() : undefined));
    });

  await Promise.all(Array.from({ length: connections }, connection));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = lat.subarray(0, n).sort();
  return { requests: n, seconds: secs, rps: n / secs, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors, tool: 'node' };
}

/**
 * Pushes whole blobs as docker does (POST an upload, then PUT it with
 * ?digest= and the bytes), over `connections` keep-alive node:net sockets,
 * each pushing one blob after another. Lean for the same reason as
 * runNodeLoad: node:http's client cost about 0.9 ms of CPU per blob here,
 * as much as the server under test, on the same two cores.
 */
export async function pushBlobs({ base, repo, blobs, digests, connections }) {
  const u = new URL(base);
  if (u.hostname !== '127.0.0.1') throw new Error('loopback only');
  const post = Buffer.from(`POST /v2/${repo}/blobs/uploads/ HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: berth-bench\r\nContent-Length: 0\r\n\r\n`);
  let next = 0;

  const connection = async () => {
    const conn = keepAliveConnection(u);
    try {
      for (let i = next++; i < blobs.length; i = next++) {
        const started = await conn.roundTrip(post);
        const location = /\r\nlocation:\s*([^\r]*)/i.exec(started.head)?.[1];
        if (started.status !== 202 || !location) throw new Error(`POST upload to ${repo}: ${started.status}, Location ${location}`);
        const target = new URL(location, base);
        if (target.host !== u.host) throw new Error(`upload Location ${location} leaves ${u.host}`);
        target.searchParams.set('digest', digests[i]);
        const head = `PUT ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: berth-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blobs[i].byteLength}\r\n\r\n`;
        const put = await conn.roundTrip(Buffer.concat([Buffer.from(head, 'latin1'), blobs[i]]));
        if (put.status !== 201) throw new Error(`PUT blob ${digests[i]} to ${repo}: ${put.status}`);
      }
    } catch (err) {
      err.message = `pushing to ${repo}: ${err.message}`;
      throw err;
    } finally {
      conn.close();
    }
  };

  await Promise.all(Array.from({ length: connections }, connection));
}
