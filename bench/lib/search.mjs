// The search phase: Hub search over N repositories, in process (no HTTP),
// against the 20 ms target of issue 16. Seeds a fresh metadata store (SQLite,
// or a throwaway PostgreSQL cluster with --search-postgres) through Berth's
// compiled modules, then times SearchService.search and dockerSearch per kind
// of query.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { prng } from './prng.mjs';

export const SEARCH_TARGET_MS = 20;


/** Pronounceable distinct words (so a typo still shares trigrams with the word it misspells). */
function vocabulary(n) {
  const c = 'bcdfghjklmnprstvz';
  const v = 'aeiou';
  const words = [];
  for (let i = 0; words.length < n; i++) {
    let x = i;
    let w = '';
    do {
      w += c[x % c.length] + v[Math.floor(x / c.length) % v.length];
      x = Math.floor(x / (c.length * v.length));
    } while (x > 0);
    if (w.length >= 4) words.push(w);
  }
  return words;
}

/** Picks a rank with probability ∝ 1/(rank+1): a Zipf law, so a few words are in most texts and most are rare. */
function zipf(n, random) {
  const cum = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) cum[i] = s += 1 / (i + 1);
  return () => {
    const x = random() * s;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/**
 * Seeds `repos` repositories (every one with a manifest, `describedShare` of
 * them with a description of 6–14 Zipf-drawn words) and times each kind of
 * query `runs` times. Resolves to { seedSeconds, dbMiB, kinds: { kind: {query, median, p95, max, total, met} } }.
 */
export async function runSearchBench({ repoRoot, repos, runs = 50, warmup = 5, describedShare = 0.7, engine = 'sqlite', log = () => {} }) {
  const dist = (p) => pathToFileURL(path.join(repoRoot, 'dist', p)).href;
  const { MetadataStore } = await import(dist('src/metadata/store.js'));
  const { createDiscovery } = await import(dist('src/hub/discovery.js'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-search-'));
  const sqlitePath = path.join(dir, 'metadata.db');
  let pg;
  if (engine === 'postgres') {
    // The tests' throwaway cluster (Debian's postgresql, installed if missing), on a free port of 127.0.0.1.
    const { startPostgres } = await import(dist('test/support/postgres.js'));
    pg = await startPostgres();
    log(`search: PostgreSQL at ${pg.url.replace(/^.*@/, '')}`);
  }
  const store = await (pg ? MetadataStore.open({ url: pg.url }) : MetadataStore.open({ sqlitePath }));
  const tag = engine === 'postgres' ? 'search (postgres)' : 'search';
  log = ((inner) => (m) => inner(m.replace(/^search:/, `${tag}:`)))(log);
  try {
    const random = prng(16);
    const words = vocabulary(20000);
    const draw = zipf(words.length, random);
    const namespaces = 2000;
    const drawNs = zipf(namespaces, random);
    const counts = new Map();
    const names = [];
    const t0 = Date.now();
    const batch = 2000;
    for (let start = 0; start < repos; start += batch) {
      const rows = [];
      for (let i = start; i < Math.min(repos, start + batch); i++) {
        // Names from the same vocabulary (two words and a number), namespaces Zipf-sized too.
        const name = `${words[drawNs() + 50]}/${words[draw()]}-${words[draw()]}-${i}`;
        let description = '';
        if (random() < describedShare) {
          const len = 6 + Math.floor(random() * 9);
          const ws = new Set();
          for (let k = 0; k < len; k++) ws.add(words[draw()]);
          for (const w of ws) counts.set(w, (counts.get(w) ?? 0) + 1);
          description = [...ws].join(' ');
        }
        rows.push({ name, description });
        names.push(name);
      }
      // One transaction per batch: the store's own creation path (ensureRepository, whose trigger
      // creates repository_info), then a manifest (search lists only repositories with one) and the
      // description, set in repository_info as the pages setter does (its trigger reindexes the text).
      await store.db.transaction().execute(async (trx) => {
        const now = Date.now();
        for (const r of rows) {
          const id = await store.registry.ensureRepository(r.name, trx);
          await sql`INSERT INTO manifests (repository_id, digest, media_type, size, created_at)
                    VALUES (${id}, ${`sha256:${id.toString(16).padStart(64, '0')}`}, 'application/vnd.oci.image.manifest.v1+json', 500, ${now})`.execute(trx);
          if (r.description) await sql`UPDATE repository_info SET description = ${r.description} WHERE repository_id = ${id}`.execute(trx);
        }
      });
      if ((start / batch) % 10 === 9) log(`search: seeded ${start + batch} repositories`);
    }
    // What autovacuum does on a server that grew to this size: planner statistics, and the GIN indexes'
    // pending lists merged (a fresh bulk load leaves every new entry there, read linearly by each search).
    if (pg) await sql`VACUUM ANALYZE`.execute(store.db);
    const seedSeconds = (Date.now() - t0) / 1000;
    log(`search: seeded ${repos} repositories in ${seedSeconds.toFixed(0)} s`);

    // Query words chosen by how many descriptions hold them, so each kind means the same at any N.
    const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    const near = (target) => byCount.reduce((best, e) => (Math.abs(e[1] - target) < Math.abs(best[1] - target) ? e : best));
    const common = byCount[0];
    const mid = near(repos * 0.01);
    const rare = near(3);
    const exact = names[Math.floor(repos / 2)];
    const [ns, rest] = exact.split('/');
    const typoWord = rest.split('-')[0];
    const typo = typoWord.slice(0, 1) + (typoWord[1] === 'x' ? 'y' : 'x') + typoWord.slice(2) + '-' + rest.split('-')[1];
    const busiestNs = words[50];
    const discovery = createDiscovery(store, { mode: 'open', blobs: {}, log: undefined });
    const anonymous = { kind: 'anonymous' };
    const kinds = {
      'exact name': { q: exact, run: () => discovery.search.search(anonymous, { query: exact }) },
      'name prefix': { q: `${ns}/${rest.slice(0, 3)}`, run: () => discovery.search.search(anonymous, { query: `${ns}/${rest.slice(0, 3)}` }) },
      'rare word': { q: `${rare[0]} (in ${rare[1]})`, run: () => discovery.search.search(anonymous, { query: rare[0] }) },
      'mid word': { q: `${mid[0]} (in ${mid[1]})`, run: () => discovery.search.search(anonymous, { query: mid[0] }) },
      'common word': { q: `${common[0]} (in ${common[1]})`, run: () => discovery.search.search(anonymous, { query: common[0] }) },
      'two words': { q: `${common[0]} ${mid[0]}`, run: () => discovery.search.search(anonymous, { query: `${common[0]} ${mid[0]}` }) },
      typo: { q: typo, run: () => discovery.search.search(anonymous, { query: typo }) },
      'namespace filter': { q: `${mid[0]} in ${busiestNs}/`, run: () => discovery.search.search(anonymous, { query: mid[0], namespace: busiestNs }) },
      'no match': { q: 'qqxzzy', run: () => discovery.search.search(anonymous, { query: 'qqxzzy' }) },
      // No words: what an explore page's shelves ask for.
      'browse, most starred': { q: '(none) n=6', run: () => discovery.search.search(anonymous, { query: '', sort: 'stars', pageSize: 6 }) },
      'browse, last pushed': { q: '(none) n=6', run: () => discovery.search.search(anonymous, { query: '', sort: 'updated', pageSize: 6 }) },
      'docker search, common word': { q: `${common[0]} n=25`, run: () => discovery.search.dockerSearch(anonymous, { q: common[0], n: 25 }, false) },
      'docker search, mid word': { q: `${mid[0]} n=25`, run: () => discovery.search.dockerSearch(anonymous, { q: mid[0], n: 25 }, false) },
    };
    const out = {};
    for (const [kind, k] of Object.entries(kinds)) {
      let total = 0;
      for (let i = 0; i < warmup; i++) {
        const r = await k.run();
        total = r.total ?? r.num_results;
      }
      const ms = [];
      for (let i = 0; i < runs; i++) {
        const t = process.hrtime.bigint();
        await k.run();
        ms.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      const median = pct(ms, 0.5);
      const p95 = pct(ms, 0.95);
      out[kind] = { query: k.q, total, median, p95, max: Math.max(...ms), met: p95 < SEARCH_TARGET_MS };
      log(`search: ${kind.padEnd(27)} ${String(k.q).padEnd(30)} ${String(total).padStart(6)} hits  median ${median.toFixed(2)} ms  p95 ${p95.toFixed(2)} ms  ${out[kind].met ? 'met' : 'OVER'}`);
    }
    await discovery.close();
    const size = pg
      ? Number((await sql`SELECT pg_database_size(current_database()) AS size`.execute(store.db)).rows[0].size)
      : (await import('node:fs')).statSync(sqlitePath).size;
    return { engine, repos, runs, seedSeconds, dbMiB: size / 2 ** 20, kinds: out };
  } finally {
    await store.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The phase's report: one line per kind, against the target (p95 under it = met). */
export function searchReport(r) {
  const lines = [`search over ${r.repos} repositories (${r.engine === 'postgres' ? 'PostgreSQL' : 'SQLite'}, in process, ${r.runs} runs per kind; target: under ${SEARCH_TARGET_MS} ms; seeded in ${r.seedSeconds.toFixed(0)} s, ${r.dbMiB.toFixed(0)} MiB)`];
  lines.push(`  ${'kind'.padEnd(28)}${'query'.padEnd(34)}${'hits'.padStart(7)}${'median'.padStart(10)}${'p95'.padStart(10)}  verdict`);
  for (const [kind, k] of Object.entries(r.kinds)) {
    lines.push(`  ${kind.padEnd(28)}${String(k.query).slice(0, 33).padEnd(34)}${String(k.total).padStart(7)}${k.median.toFixed(2).padStart(8)} ms${k.p95.toFixed(2).padStart(7)} ms  ${k.met ? 'met' : 'OVER'}`);
  }
  return lines.join('\n');
}
