// The token-auth phase (`small-auth`): what credentials cost on the small
// requests. Berth with accounts on (`auth: accounts`) is measured against
// the same Berth build with auth off, both started fresh for the phase with
// the same image in the same repository, under the same load as the `small`
// phase, alternated. The issue's budget: with a Bearer token, at most 1.2×
// the no-auth CPU per request.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry, agent, pushSmallImage, request } from './client.mjs';
import { median } from './report.mjs';
import { NoiseMeter, treeCpuSeconds } from './proc.mjs';
import { startBerth, trackChild } from './servers.mjs';

export const AUTH_TARGET = 1.2;
const USER = 'bench';

/** Runs `node main.js ARGS --config FILE` (the Hub's CLI), with `input` on stdin; resolves to stdout. */
function cli(mainJs, configFile, args, input = '') {
  return new Promise((resolve, reject) => {
    // Only the config file speaks for the configuration: no REGISTRY_* of the caller's.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const child = trackChild(spawn(process.execPath, [mainJs, ...args, '--config', configFile], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`berth ${args.join(' ')} exited ${code}: ${err.trim()}`))));
    child.stdin.end(input);
  });
}

const basic = (user, secret) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

/** The parameters of a `WWW-Authenticate: Bearer k="v",…` challenge. */
function challengeParams(header) {
  if (!/^Bearer\s/i.test(header ?? '')) throw new Error(`expected a Bearer challenge, got ${JSON.stringify(header)}`);
  const params = {};
  for (const m of header.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/gi)) params[m[1].toLowerCase()] = m[2].replace(/\\(.)/g, '$1');
  return params;
}

/**
 * Berth with accounts on, in `dir`: a config file with `auth: accounts`, the
 * first administrator made with `user add bench --admin` (the password on
 * stdin), then served; `img` pushed to `repo` with the password, the
 * repository made public, and a personal access token (read) made for bench.
 */
export async function startAccountsBerth(mainJs, dir, opts, { repo, img }) {
  const root = path.join(dir, 'data');
  mkdirSync(root, { recursive: true });
  const configFile = path.join(dir, 'config.yml');
  // JSON is YAML. `auth: accounts` turns accounts on with their defaults.
  writeFileSync(configFile, JSON.stringify({ version: 0.1, storage: { filesystem: { rootdirectory: root } }, auth: 'accounts' }));
  const password = randomBytes(16).toString('hex');
  await cli(mainJs, configFile, ['user', 'add', USER, '--admin'], `${password}\n`);
  const srv = await startBerth(mainJs, root, { ...opts, extraEnv: { ...opts.extraEnv, REGISTRY_CONFIGURATION_PATH: configFile } });
  try {
    const reg = new Registry(srv.base, 16, { Authorization: basic(USER, password) });
    await pushSmallImage(reg, repo, img, 'latest');
    reg.close();
    await cli(mainJs, configFile, ['repo', 'visibility', repo, 'public']);
    const pat = (await cli(mainJs, configFile, ['token', 'add', USER, 'bench-pat', '--scope', 'read'])).trim();
    if (!/^\S+$/.test(pat)) throw new Error(`token add printed ${JSON.stringify(pat)}, expected one secret`);
    // Where tokens come from, as a client learns it: the challenge of an anonymous GET /v2/.
    const ag = agent(1);
    const res = await request(ag, 'GET', new URL('/v2/', srv.base));
    ag.destroy();
    if (res.status !== 401) throw new Error(`anonymous GET /v2/ with accounts on: expected 401, got ${res.status}`);
    const { realm, service } = challengeParams(res.headers['www-authenticate']);
    if (!realm || !service) throw new Error(`challenge without realm or service: ${res.headers['www-authenticate']}`);
    return { srv, configFile, realm, service, password, pat, user: USER };
  } catch (err) {
    await srv.stop();
    throw err;
  }
}

/** A token as docker, podman and skopeo ask for one: GET realm?service=…&scope=… with Basic credentials. */
export async function fetchToken(acc, scope, secret = acc.password) {
  const url = new URL(acc.realm);
  if (url.hostname !== '127.0.0.1') throw new Error(`token realm ${acc.realm} is not on 127.0.0.1`);
  url.searchParams.set('service', acc.service);
  url.searchParams.set('scope', scope);
  const ag = agent(1);
  try {
    const res = await request(ag, 'GET', url, { headers: { Authorization: basic(acc.user, secret) } });
    if (res.status !== 200) throw new Error(`GET ${url.pathname}${url.search}: ${res.status} ${res.body.toString().slice(0, 300)}`);
    const token = JSON.parse(res.body.toString()).token;
    if (typeof token !== 'string' || token.split('.').length !== 3) throw new Error('the token endpoint answered without a JWT');
    return token;
  } finally {
    ag.destroy();
  }
}

/** One request with `headers`, which must be answered 200: the load would otherwise measure refusals. */
async function expectOk(base, op, headers) {
  const ag = agent(1);
  try {
    const res = await request(ag, op.method, new URL(op.path, base), { headers: { ...op.headers, ...headers } });
    if (res.status !== 200) throw new Error(`${op.method} ${op.path} with ${Object.keys(headers).length ? headers.Authorization.split(' ')[0] : 'no credentials'}: ${res.status} ${res.body?.toString().slice(0, 300)}`);
  } finally {
    ag.destroy();
  }
}

/**
 * The phase. `load(base, op, seconds)` is the `small` phase's load (same
 * generator and connections); `ops` its four requests. Each alternation runs
 * every operation under every kind of credentials, the order of the kinds
 * turned by one each time, so no kind always goes first.
 */
export async function runSmallAuth({ mainJs, dir, berthOpts, servers, repo, img, ops, load, cfg, log, setStep }) {
  const plain = await startBerth(mainJs, path.join(dir, 'plain'), berthOpts);
  servers.push(plain);
  const plainReg = new Registry(plain.base, 16);
  await pushSmallImage(plainReg, repo, img, 'latest');
  plainReg.close();
  const acc = await startAccountsBerth(mainJs, path.join(dir, 'accounts'), berthOpts, { repo, img });
  servers.push(acc.srv);
  log(`small-auth: Berth with auth off ${plain.base} (pid ${plain.pid}), with accounts ${acc.srv.base} (pid ${acc.srv.pid}), service "${acc.service}"`);

  const scope = `repository:${repo}:pull`;
  let token = await fetchToken(acc, scope);
  const modes = [
    { key: 'none', label: 'no credentials, auth off', srv: plain, headers: () => ({}) },
    { key: 'bearer', label: 'Bearer token (accounts)', srv: acc.srv, headers: () => ({ Authorization: `Bearer ${token}` }) },
    { key: 'basic', label: 'Basic, PAT as password (accounts)', srv: acc.srv, headers: () => ({ Authorization: basic(acc.user, acc.pat) }) },
    { key: 'anonymous', label: 'anonymous, public repository (accounts)', srv: acc.srv, headers: () => ({}) },
  ];
  for (const op of ops) for (const m of modes) await expectOk(m.srv.base, op, m.headers());

  const withHeaders = (op, m) => ({ ...op, headers: { ...op.headers, ...m.headers() } });
  if (cfg.authWarmupSeconds > 0) {
    // Untimed, once: every serving thread of both servers warm on every path.
    for (const op of ops) for (const m of modes) {
      setStep(`small-auth: warm-up ${op.label}, ${m.label}`);
      await load(m.srv.base, withHeaders(op, m), cfg.authWarmupSeconds);
    }
  }

  const noise = new NoiseMeter();
  const alternations = [];
  for (let a = 0; a < cfg.authRounds; a++) {
    // A fresh token each alternation, as clients fetch one every few minutes.
    token = await fetchToken(acc, scope);
    const order = modes.map((_, i) => modes[(i + a) % modes.length]);
    const out = {};
    for (const op of ops) {
      out[op.key] = {};
      for (const m of order) {
        setStep(`small-auth ${a + 1}/${cfg.authRounds}: ${op.label}, ${m.label}`);
        const o = withHeaders(op, m);
        if (cfg.warmupSeconds > 0) await load(m.srv.base, o, cfg.warmupSeconds);
        const c0 = treeCpuSeconds(m.srv.pid);
        const w = await load(m.srv.base, o, cfg.authSeconds);
        const cpu = treeCpuSeconds(m.srv.pid) - c0;
        if (w.errors > 0) log(`small-auth ${op.label}, ${m.label}: ${w.errors} errors of ${w.requests} requests`);
        out[op.key][m.key] = { rps: w.rps, cpuUs: (1e6 * cpu) / w.requests, p50: w.p50, p99: w.p99, errors: w.errors, requests: w.requests };
      }
    }
    // The cost of a token itself: scrypt for a password, SHA-256 for a PAT; plus signing, the audit row.
    out.token = {};
    for (const [key, secret] of a % 2 ? [['pat', acc.pat], ['password', acc.password]] : [['password', acc.password], ['pat', acc.pat]]) {
      setStep(`small-auth ${a + 1}/${cfg.authRounds}: GET /token with a ${key}`);
      const url = new URL(acc.realm);
      url.searchParams.set('service', acc.service);
      url.searchParams.set('scope', scope);
      const op = { method: 'GET', path: `${url.pathname}${url.search}`, headers: { Authorization: basic(acc.user, secret) } };
      const c0 = treeCpuSeconds(acc.srv.pid);
      const w = await load(acc.srv.base, op, cfg.tokenSeconds, cfg.tokenConnections);
      const cpu = treeCpuSeconds(acc.srv.pid) - c0;
      if (w.errors > 0) log(`small-auth GET /token with a ${key}: ${w.errors} errors of ${w.requests} requests`);
      out.token[key] = { perSec: w.rps, cpuMs: (1e3 * cpu) / w.requests, requests: w.requests, errors: w.errors };
    }
    alternations.push(out);
    log(
      `small-auth ${a + 1}/${cfg.authRounds}: CPU µs/req ` +
        ops.map((op) => `${op.key} ${modes.map((m) => out[op.key][m.key].cpuUs.toFixed(0)).join('/')}`).join(', ') +
        ` (${modes.map((m) => m.key).join('/')}); tokens/s password ${out.token.password.perSec.toFixed(1)}, PAT ${out.token.pat.perSec.toFixed(0)}`,
    );
  }
  const machine = noise.read();
  await Promise.all([plain.stop(), acc.srv.stop()]);

  const summary = { ops: {}, token: {} };
  for (const op of ops) {
    const s = (summary.ops[op.key] = { label: op.label });
    for (const m of modes) {
      const rows = alternations.map((r) => r[op.key][m.key]);
      const ratios = alternations.map((r) => r[op.key][m.key].cpuUs / r[op.key].none.cpuUs);
      const rpsRatios = alternations.map((r) => r[op.key][m.key].rps / r[op.key].none.rps);
      s[m.key] = {
        label: m.label,
        rps: median(rows.map((r) => r.rps)),
        cpuUs: median(rows.map((r) => r.cpuUs)),
        p50: median(rows.map((r) => r.p50)),
        p99: median(rows.map((r) => r.p99)),
        errors: rows.reduce((n, r) => n + r.errors, 0),
        cpuRatio: median(ratios),
        cpuRatios: ratios,
        rpsRatio: median(rpsRatios),
      };
    }
  }
  for (const key of ['password', 'pat']) {
    const rows = alternations.map((r) => r.token[key]);
    summary.token[key] = { perSec: median(rows.map((r) => r.perSec)), cpuMs: median(rows.map((r) => r.cpuMs)), errors: rows.reduce((n, r) => n + r.errors, 0) };
  }
  return { service: acc.service, modes: modes.map(({ key, label }) => ({ key, label })), machine, alternations, summary };
}

const n = (v, d) => (Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—');

/** The phase's table, as text. */
export function authReport(r, cfg, loadgen) {
  const lines = [];
  lines.push(
    `3b. credentials on the small requests: Berth with accounts on vs the same build with auth off, ${cfg.connections} connections × ${cfg.authSeconds} s, ` +
      `${cfg.authRounds} alternation${cfg.authRounds === 1 ? '' : 's'} (${loadgen}); medians; "CPU ×" = CPU per request / auth off's, target for Bearer ≤ ${AUTH_TARGET.toFixed(2)}×`,
  );
  const head = ['', 'req/s', 'CPU-µs/req', 'p99 ms', 'CPU ×', 'per alternation', 'req/s ×'];
  const body = [];
  for (const s of Object.values(r.summary.ops)) {
    body.push([s.label]);
    for (const m of r.modes) {
      const v = s[m.key];
      const base = m.key === 'none';
      const verdict = m.key === 'bearer' ? (v.cpuRatio <= AUTH_TARGET ? ' met' : ' OVER') : '';
      body.push([
        `  ${v.label}${v.errors ? ` (${v.errors} errors)` : ''}`,
        n(v.rps, 0),
        n(v.cpuUs, 1),
        n(v.p99, 2),
        base ? '' : `${n(v.cpuRatio, 2)}×${verdict}`,
        base || v.cpuRatios.length < 2 ? '' : v.cpuRatios.map((x) => n(x, 2)).join(' '),
        base ? '' : `${n(v.rpsRatio, 2)}×`,
      ]);
    }
  }
  body.push([`GET /token?service=…&scope=…, ${cfg.tokenConnections} connections × ${cfg.tokenSeconds} s per alternation`]);
  for (const [key, label] of [['password', 'Basic with the password (scrypt)'], ['pat', 'Basic with a PAT (SHA-256)']]) {
    const t = r.summary.token[key];
    body.push([`  ${label}${t.errors ? ` (${t.errors} errors)` : ''}`, `${n(t.perSec, t.perSec < 100 ? 1 : 0)} tokens/s`, `${n(t.cpuMs, 2)} CPU-ms/token`, '', '', '', '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.filter((row) => row.length > 1).map((row) => String(row[i]).length)));
  const line = (row) => row.map((c, i) => (i === 0 || i === 5 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ').trimEnd();
  lines.push(line(head));
  lines.push(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const row of body) lines.push(row.length === 1 ? row[0] : line(row));
  lines.push(`machine during the phase: other processes ${r.machine.otherPct.toFixed(0)}%, steal ${r.machine.stealPct.toFixed(1)}% of the CPUs`);
  return lines.join('\n');
}
