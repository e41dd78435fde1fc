/**
 * The Hub's discovery queries over the metadata store's database handle:
 * search, stars and follows, pull counts, repository descriptions and
 * READMEs, tag and platform details, activity and repository webhooks.
 * SQL only, written once where the engines agree; the search itself differs
 * (SQLite's FTS5 tables, PostgreSQL's tsvector and pg_trgm), see
 * migration 0012_hub_discovery.
 */
import type { Expression, RawBuilder, SqlBool, Transaction } from 'kysely';
import { sql } from './kysely.js';
import type { Database } from './schema.js';
import type { MetadataStore } from './store.js';

/** Days in a "recent pulls" window: pulls of the current and the previous window count as recent. */
export const PULL_WINDOW_MS = 7 * 24 * 3_600_000;
/** Fuzzy (trigram) matches of a name count from this share of the query's trigrams found in it. */
export const FUZZY_THRESHOLD = 0.5;
/** Candidates the fuzzy name match contributes at most, so a common trigram cannot flood a search. */
const FUZZY_CANDIDATES = 200;
/**
 * Full-text matches each source contributes at most (SQLite: the newest;
 * PostgreSQL: the first in table order), so a word that half the
 * repositories contain costs a bounded read and sort, not one of them all.
 * Names equal to or starting with the query, and the most starred names with
 * its words, are considered besides.
 */
export const MAX_CANDIDATES = 300;
const PREFIX_CANDIDATES = 200;
/** Repositories a search without words (browsing) orders at most. */
const BROWSE_CANDIDATES = 500;
/** The most starred repositories whose names are checked for the query's words, so popularity is never cut off. */
const POPULAR_CANDIDATES = 1000;
/** Rowids a trigram's count reads at most (SQLite's fuzzy match): enough to tell rare from common. */
const TRIGRAM_SAMPLE = 300;
/** Groups of trigrams ORed at most in one fuzzy match (SQLite). */
const MAX_TRIGRAM_GROUPS = 10;
/** Names with enough of the rarest trigrams checked at most (SQLite's fuzzy match). */
const FUZZY_SAMPLE = 500;

export type SearchSort = 'relevance' | 'stars' | 'pulls' | 'updated';

export interface SearchSpec {
  /** Lower-case words of the query (letters and digits); none browses everything readable. */
  terms: string[];
  /** The whole query, lower-cased and trimmed: compared with names for exact and prefix matches. */
  text: string;
  /** pg_trgm-style padded trigrams of the query's words (SQLite's fuzzy match). */
  trigrams: string[];
  /**
   * "Readable by the caller", over `r.name` and `r.visibility` (src/hub/listing.ts):
   * evaluated on the candidates only, which are materialized first, so a
   * planner cannot decide to test every repository.
   */
  readable: Expression<SqlBool>;
  namespace?: string;
  official?: boolean;
  minStars?: number;
  /** Only repositories with a tagged image for this platform (each part given must match). */
  platform?: { os?: string; architecture?: string; variant?: string };
  sort: SearchSort;
  limit: number;
  offset: number;
  /** Also match names by trigram similarity (typos); the service asks for it when the strict match finds few. */
  fuzzy?: boolean;
}

export interface RepositorySummary {
  name: string;
  namespace: string;
  shortName: string;
  description: string;
  official: boolean;
  starCount: number;
  pullCount: number;
  lastPushedAt: number | null;
  lastPulledAt: number | null;
  /** Why it matched, best first: 6 exact name, 5 name prefix, 4 words of the name, 3 name like it (typo), 2 description, 1 README, 0 browsing. */
  tier: number;
  /** The platforms of its tagged images (each index's children, or the image's own), each once, sorted. */
  platforms: SearchPlatform[];
}

export interface SearchPlatform {
  os: string;
  architecture: string;
  variant: string | null;
}

export interface RepositoryInfo {
  id: number;
  name: string;
  namespace: string;
  shortName: string;
  visibility: 'public' | 'private';
  description: string;
  descriptionSource: 'none' | 'image' | 'manual';
  readme: string;
  readmeSource: 'none' | 'image' | 'manual';
  official: boolean;
  starCount: number;
  pullCount: number;
  recentPulls: number;
  createdAt: number;
  updatedAt: number;
  lastPushedAt: number | null;
  lastPulledAt: number | null;
}

export interface PlatformRow {
  os: string;
  architecture: string;
  variant: string | null;
  digest: string;
  size: number;
  lastPulledAt: number | null;
}

export interface TagDetails {
  name: string;
  digest: string;
  mediaType: string;
  /** Compressed bytes: config + layers, or an index's children together; null when not known (pushed before 0012). */
  size: number | null;
  pushedAt: number;
  lastPulledAt: number | null;
  platforms: PlatformRow[];
}

export type TagSort = 'name' | 'updated' | 'pulled';

export interface ActivityEntry {
  id: number;
  at: number;
  repository: string | null;
  namespace: string;
  actor: string | null;
  action: string;
  tag: string | null;
  digest: string | null;
  detail: Record<string, unknown> | null;
}

export type NewActivity = Omit<ActivityEntry, 'id' | 'at' | 'detail'> & { actorId?: number | null; detail?: Record<string, unknown> | null };

export interface WebhookRow {
  id: number;
  repository: string;
  name: string;
  url: string;
  events: string[];
  active: boolean;
  createdBy: string | null;
  createdAt: number;
}

/** Pulls gathered by one process since its last flush (src/hub/pulls.ts). */
export interface PullBatch {
  /** repository → tag → GETs by that tag. */
  tags: Map<string, Map<string, number>>;
  /** repository → digest → GETs that served that manifest (by tag or digest). */
  served: Map<string, Map<string, number>>;
  /** repository → digest → GETs by that digest. */
  direct: Map<string, Map<string, number>>;
}

type Db = MetadataStore['db'] | Transaction<Database>;

const num = (v: unknown): number => Number(v ?? 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A name as the index's words ('acme/api-server' → 'acme api server'). */
const nameWords = (name: RawBuilder<unknown>) => sql`replace(replace(replace(replace(${name}, '/', ' '), '-', ' '), '_', ' '), '.', ' ')`;
/** Whether each term starts a word of the name (the "words of the name" tier). */
const nameHasWords = (name: RawBuilder<unknown>, terms: string[]) =>
  sql.join(terms.map((t) => sql`instr(' ' || ${nameWords(name)}, ${` ${t}`}) > 0`), sql` AND `);
const choose = (n: number, k: number): number => (k === 0 ? 1 : (choose(n - 1, k - 1) * n) / k);
/** Every way to choose k of xs (few: see MAX_TRIGRAM_GROUPS). */
function combinations<T>(xs: T[], k: number): T[][] {
  if (k === 0) return [[]];
  const out: T[][] = [];
  for (let i = 0; i + k <= xs.length; i++) for (const rest of combinations(xs.slice(i + 1), k - 1)) out.push([xs[i]!, ...rest]);
  return out;
}
/** Trigrams of n a name must share to be "like" the query. */
const fuzzyShare = (n: number) => Math.max(1, Math.ceil(FUZZY_THRESHOLD * n - 1e-9));

export class DiscoveryQueries {
  constructor(private readonly store: MetadataStore) {}

  private get db() {
    return this.store.db;
  }

  // ---- search ------------------------------------------------------------------

  /** One page of matches, best first, with the number of matches in all. */
  async search(spec: SearchSpec): Promise<{ total: number; best: number; results: RepositorySummary[] }> {
    const postgres = this.store.dialect === 'postgres';
    const browsing = spec.terms.length === 0;
    const q = spec.text;
    const filters: RawBuilder<unknown>[] = [];
    if (spec.namespace !== undefined) filters.push(sql`AND i.namespace = ${spec.namespace}`);
    if (spec.official !== undefined) filters.push(sql`AND i.official = ${spec.official ? 1 : 0}`);
    if (spec.minStars !== undefined && spec.minStars > 0) filters.push(sql`AND i.star_count >= ${spec.minStars}`);
    if (spec.platform && (spec.platform.os || spec.platform.architecture || spec.platform.variant)) {
      const p = spec.platform;
      filters.push(sql`AND EXISTS (SELECT 1 FROM tags t JOIN manifest_platforms p ON p.manifest_id = t.manifest_id
        WHERE t.repository_id = i.repository_id
        ${p.os ? sql`AND p.os = ${p.os}` : sql``} ${p.architecture ? sql`AND p.architecture = ${p.architecture}` : sql``}
        ${p.variant ? sql`AND p.variant = ${p.variant}` : sql``})`);
    }
    const week = Math.floor((await this.store.clock()) / PULL_WINDOW_MS);
    const recent = sql`CASE WHEN i.pulls_window = ${week} THEN i.pulls_current + i.pulls_previous WHEN i.pulls_window = ${week - 1} THEN i.pulls_current ELSE 0 END`;
    const exact = sql`(i.name = ${q} OR i.short_name = ${q})`;
    const prefix = q.length ? sql`(substr(i.short_name, 1, ${q.length}) = ${q} OR substr(i.name, 1, ${q.length}) = ${q})` : sql`1 = 0`;

    let source: RawBuilder<unknown>;
    let tier: RawBuilder<unknown>;
    if (browsing) {
      // Browsing (no words) is bounded too: the first BROWSE_CANDIDATES by the sort's own key through its index
      // (most stars, most pulls, last pushed; within equal keys in index order), or with a platform filter the
      // first repositories tagging an image of that platform, then ordered in full as any search.
      const nsf = spec.namespace !== undefined ? sql`AND namespace = ${spec.namespace}` : sql``;
      const p = spec.platform;
      let ids: RawBuilder<unknown>;
      if (p && (p.os || p.architecture || p.variant)) {
        ids = sql`SELECT DISTINCT t.repository_id FROM manifest_platforms mp JOIN tags t ON t.manifest_id = mp.manifest_id
          WHERE 1 = 1 ${p.os ? sql`AND mp.os = ${p.os}` : sql``} ${p.architecture ? sql`AND mp.architecture = ${p.architecture}` : sql``}
          ${p.variant ? sql`AND mp.variant = ${p.variant}` : sql``} LIMIT ${BROWSE_CANDIDATES}`;
      } else if (spec.sort === 'updated') {
        ids = sql`SELECT repository_id FROM (SELECT repository_id FROM repository_info WHERE last_pushed_at IS NOT NULL ${nsf} ORDER BY last_pushed_at DESC LIMIT ${BROWSE_CANDIDATES}) a
          UNION ALL SELECT repository_id FROM (SELECT repository_id FROM repository_info WHERE last_pushed_at IS NULL ${nsf} LIMIT ${BROWSE_CANDIDATES}) b`;
      } else {
        const key = spec.sort === 'pulls' ? sql.ref('pull_count') : sql.ref('star_count');
        ids = sql`SELECT repository_id FROM repository_info WHERE 1 = 1 ${nsf} ORDER BY ${key} DESC LIMIT ${BROWSE_CANDIDATES}`;
      }
      source = sql`(SELECT repository_id AS id FROM (${ids}) b) c ${postgres ? sql`JOIN` : sql`CROSS JOIN`} repository_info i ON i.repository_id = c.id`;
      tier = sql`0`;
    } else if (!postgres) {
      // Every word whole, the last one also as a prefix (what is being typed): a prefix of a short word expands to many.
      let all = spec.terms.map((t, n) => (n === spec.terms.length - 1 ? `"${t}"*` : `"${t}"`)).join(' AND ');
      // A namespace filter narrows the full-text matches themselves (its words as a phrase; the exact test follows),
      // so the bounded candidates are that namespace's, not the few of it among everyone's.
      const nsWords = spec.namespace?.toLowerCase().match(/[\p{L}\p{N}]+/gu);
      if (nsWords) all = `(${all}) AND {namespace} : (${nsWords.map((w) => `"${w}"`).join(' + ')})`;
      const inNames = `{short_name namespace} : (${all})`;
      const inText = `{short_name namespace description} : (${all})`;
      const end = `${q}\u007f`;
      // The candidates, each source bounded and none ranked over all its matches (BM25 over every match of a
      // common word cost more than the whole search may): the newest MAX_CANDIDATES matches in the names, in
      // names and descriptions, and anywhere (README too), each labelled with the tier its match alone earns;
      // names equal to or starting with the query (by index); the most starred repositories whose name has the
      // words (so a popular one is never lost among many newer matches); with `fuzzy`, names like the query
      // (3, checked there). FTS5 yields rowids in order, so the newest K of a narrower source are among the
      // newest K of a wider one: a repository's label does not depend on which source found it.
      const fts = (match: string, label: number) =>
        sql`SELECT id, ${label} AS label FROM (SELECT rowid AS id FROM repository_text WHERE repository_text MATCH ${match} ORDER BY rowid DESC LIMIT ${MAX_CANDIDATES})`;
      source = sql`(SELECT id, max(label) AS label FROM (
            ${fts(inNames, 4)} UNION ALL ${fts(inText, 2)} UNION ALL ${fts(all, 1)}
          ${q.length ? sql`UNION ALL SELECT repository_id, 0 FROM repository_info WHERE short_name = ${q} OR name = ${q}
          UNION ALL SELECT repository_id, 0 FROM (SELECT repository_id FROM repository_info WHERE short_name >= ${q} AND short_name < ${end} ORDER BY short_name LIMIT ${PREFIX_CANDIDATES})
          UNION ALL SELECT repository_id, 0 FROM (SELECT repository_id FROM repository_info WHERE name >= ${q} AND name < ${end} ORDER BY name LIMIT ${PREFIX_CANDIDATES})` : sql``}
          UNION ALL SELECT repository_id, 4 FROM (SELECT repository_id, name FROM repository_info WHERE star_count > 0 ORDER BY star_count DESC LIMIT ${POPULAR_CANDIDATES}) p
            WHERE ${nameHasWords(sql`p.name`, spec.terms)}
          ${spec.fuzzy ? sql`UNION ALL SELECT id, 3 FROM (${await this.similarNames(spec)})` : sql``}
        ) GROUP BY id) c CROSS JOIN repository_info i ON i.repository_id = c.id`;
      // CROSS JOIN: SQLite keeps the candidates outside, never scanning a filter's index (a busy namespace) instead.
      tier = sql`CASE WHEN ${exact} THEN 6 WHEN ${prefix} THEN 5 ELSE c.label END`;
    } else {
      // Every word whole, the last also as a prefix; `ABC`: in the name, namespace or description (not the README).
      const words = (weights: string) => spec.terms.map((t, n) => (n === spec.terms.length - 1 ? `${t}:*${weights}` : `${t}:${weights}`)).join(' & ');
      const tsq = sql`to_tsquery('simple', ${words('')})`;
      const inText = sql`to_tsquery('simple', ${words('ABC')})`;
      const wordQuery = spec.terms.join(' ');
      const end = `${q}\u007f`;
      const ns = spec.namespace !== undefined ? sql`AND namespace = ${spec.namespace}` : sql``;
      // The candidates, as on SQLite: each source through an index and bounded, none sorted over all its matches
      // (a top-N sort reads every matching row, tens of thousands for a common word; ORDER BY id may walk the whole
      // primary key for a word the planner thinks common): the first MAX_CANDIDATES matches in table order (see
      // the transaction below) in the names, in names and descriptions, and anywhere, labelled with the tier
      // the match alone earns; names equal to or starting with the query (btrees in byte order, COLLATE "C"); the
      // most starred repositories whose names have the words; with `fuzzy`, the first names like the query (pg_trgm's
      // GIN, the threshold its <% operator uses being set for the transaction; not the most alike: that sort computes
      // the similarity of every name over the threshold, and the tier orders them by stars anyway). A namespace
      // filter goes inside.
      const gin = (column: string, query: RawBuilder<unknown>, label: number) =>
        sql`SELECT repository_id AS id, ${sql.lit(label)} AS label FROM (SELECT repository_id FROM repository_info WHERE ${sql.ref(column)} @@ ${query} ${ns} LIMIT ${MAX_CANDIDATES}) ${sql.ref(`s${label}${column}`)}`;
      source = sql`(SELECT id, max(label) AS label FROM (
            ${gin('names', tsq, 4)} UNION ALL ${gin('document', inText, 2)} UNION ALL ${gin('document', tsq, 1)}
          ${q.length ? sql`UNION ALL SELECT repository_id, 0 FROM (SELECT repository_id FROM repository_info WHERE short_name >= ${q} AND short_name < ${end} ${ns} ORDER BY short_name LIMIT ${PREFIX_CANDIDATES}) p
          UNION ALL SELECT repository_id, 0 FROM (SELECT repository_id FROM repository_info WHERE name >= ${q} AND name < ${end} ${ns} ORDER BY name LIMIT ${PREFIX_CANDIDATES}) n` : sql``}
          UNION ALL SELECT repository_id, 4 FROM (SELECT repository_id, names FROM repository_info WHERE star_count > 0 ORDER BY star_count DESC LIMIT ${POPULAR_CANDIDATES}) s
            WHERE s.names @@ ${tsq}
          ${spec.fuzzy ? sql`UNION ALL SELECT repository_id, 3 FROM (SELECT repository_id FROM repository_info WHERE ${wordQuery}::text <% name ${ns} LIMIT ${FUZZY_CANDIDATES}) f` : sql``}
        ) x GROUP BY id) c JOIN repository_info i ON i.repository_id = c.id`;
      // Every source yields rows in table order (a bitmap heap scan visits blocks in order, as a sequential scan
      // does from the first block), so here too the first K of a narrower source are among the first K of a wider.
      tier = sql`CASE WHEN ${exact} THEN 6 WHEN ${prefix} THEN 5 ELSE c.label END`;
    }
    const order = {
      relevance: sql`tier DESC, star_count DESC, recent DESC, pull_count DESC, name`,
      stars: sql`star_count DESC, tier DESC, recent DESC, name`,
      pulls: sql`pull_count DESC, tier DESC, star_count DESC, name`,
      updated: sql`COALESCE(last_pushed_at, 0) DESC, tier DESC, name`,
    }[spec.sort];
    const query = sql<{
      id: number;
      name: string;
      namespace: string;
      short_name: string;
      description: string;
      official: number;
      star_count: number;
      pull_count: number;
      last_pushed_at: number | null;
      last_pulled_at: number | null;
      tier: number;
      total: number;
      best: number;
    }>`WITH r AS MATERIALIZED (
        SELECT i.repository_id AS id, i.name, (SELECT v.visibility FROM repositories v WHERE v.id = i.repository_id) AS visibility,
               i.namespace, i.short_name, i.description, i.official, i.star_count, i.pull_count,
               i.last_pushed_at, i.last_pulled_at, ${recent} AS recent, ${tier} AS tier
        FROM ${source}
        -- A correlated LIMIT 1, not EXISTS: PostgreSQL may turn an EXISTS into a semi join over every manifest.
        WHERE (SELECT 1 FROM manifests h WHERE h.repository_id = i.repository_id LIMIT 1) IS NOT NULL
          ${sql.join(filters, sql` `)}
      )
      SELECT r.*, COUNT(*) OVER () AS total, MAX(r.tier) OVER () AS best FROM r
      WHERE ${spec.readable} ${browsing ? sql`` : sql`AND r.tier > 0`}
      ORDER BY ${order}
      LIMIT ${spec.limit} OFFSET ${spec.offset}`;
    const rows = postgres
      ? await this.db.transaction().execute(async (trx) => {
          // For this transaction only: the threshold of pg_trgm's <% operator (its index condition); and scans that
          // yield rows in one order, so the same search takes the same first candidates (a page follows the last):
          // no parallel workers, no sequential scan joining another's in the middle of the table.
          await sql`SELECT set_config('pg_trgm.word_similarity_threshold', ${String(FUZZY_THRESHOLD)}, true),
            set_config('synchronize_seqscans', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`.execute(trx);
          return (await query.execute(trx)).rows;
        })
      : (await query.execute(this.db)).rows;
    let total = rows.length ? num(rows[0]!.total) : 0;
    let best = rows.length ? num(rows[0]!.best) : 0;
    if (rows.length === 0 && spec.offset > 0) ({ total, best } = await this.search({ ...spec, offset: 0, limit: 1 }));
    const platforms = await this.platformsOf(rows.map((r) => num(r.id)));
    return {
      total,
      best,
      results: rows.map((r) => ({
        name: r.name,
        namespace: r.namespace,
        shortName: r.short_name,
        description: r.description,
        official: num(r.official) === 1,
        starCount: num(r.star_count),
        pullCount: num(r.pull_count),
        lastPushedAt: numOrNull(r.last_pushed_at),
        lastPulledAt: numOrNull(r.last_pulled_at),
        tier: num(r.tier),
        platforms: platforms.get(num(r.id)) ?? [],
      })),
    };
  }

  /** Each repository's platforms: the union over its tags (as its tag pages list them). */
  private async platformsOf(ids: number[]): Promise<Map<number, SearchPlatform[]>> {
    const out = new Map<number, SearchPlatform[]>();
    if (ids.length === 0) return out;
    const rows = await sql<{ repository_id: number; os: string; architecture: string; variant: string | null }>`
      SELECT DISTINCT t.repository_id, p.os, p.architecture, p.variant
      FROM tags t JOIN manifest_platforms p ON p.manifest_id = t.manifest_id
      WHERE t.repository_id IN (${sql.join(ids)})`.execute(this.db);
    const key = (p: SearchPlatform) => `${p.os}/${p.architecture}/${p.variant ?? ''}`;
    for (const r of rows.rows) {
      const list = out.get(num(r.repository_id)) ?? [];
      list.push({ os: r.os, architecture: r.architecture, variant: r.variant });
      out.set(num(r.repository_id), list);
    }
    // Sorted here: the engines order NULL variants differently.
    for (const list of out.values()) list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    return out;
  }

  /**
   * SQLite: the names most like the query, as a query yielding `id`s: those
   * with at least `need` of the query's trigrams. Trigrams no name has are
   * counted out first (each count capped); of the n left, such a name has at
   * least k of the n - need + k rarest, which FTS5 finds by merging their
   * doclists (each k ANDed, the groups ORed), k as large as keeps the groups
   * few, so no name with only common trigrams is read; the candidates are
   * then counted exactly. A query of very many words finds no typos.
   */
  private async similarNames(spec: SearchSpec): Promise<RawBuilder<unknown>> {
    const trigrams = spec.trigrams;
    const need = fuzzyShare(trigrams.length);
    const counted = await sql<Record<string, number>>`SELECT ${sql.join(
      trigrams.map(
        (t, n) =>
          sql`(SELECT count(*) FROM (SELECT 1 FROM repository_words WHERE repository_words MATCH ${`"${t}"`} LIMIT ${TRIGRAM_SAMPLE})) AS ${sql.ref(`c${n}`)}`,
      ),
    )}`.execute(this.db);
    const row = counted.rows[0] ?? {};
    const present = trigrams
      .map((t, n) => ({ t, count: num(row[`c${n}`]) }))
      .filter((x) => x.count > 0)
      .sort((a, b) => a.count - b.count)
      .map((x) => `"${x.t}"`);
    if (present.length < need) return sql`SELECT NULL AS id WHERE 0`;
    // The most trigrams required together whose groups stay few: k of s, s - k being the trigrams a match may lack.
    let together = need;
    while (together > 1 && choose(present.length - need + together, together) > MAX_TRIGRAM_GROUPS) together--;
    const rarest = present.slice(0, present.length - need + together);
    const groups = together === 1 && rarest.length > MAX_TRIGRAM_GROUPS ? null : combinations(rarest, together).map((g) => `(${g.join(' AND ')})`);
    if (!groups) return sql`SELECT NULL AS id WHERE 0`;
    // repository_words holds the names already padded; materialized, so the sum is computed once per name.
    const shared = sql.join(trigrams.map((t) => sql`(instr(w.words, ${t}) > 0)`), sql` + `);
    // Names with every trigram found come first (a sample of the groups' matches could miss the closest names).
    return sql`WITH s AS MATERIALIZED (SELECT w.rowid AS id, ${shared} AS shared FROM (
          SELECT id FROM (SELECT rowid AS id FROM repository_words WHERE repository_words MATCH ${present.join(' AND ')} LIMIT ${FUZZY_CANDIDATES})
          UNION SELECT id FROM (SELECT rowid AS id FROM repository_words WHERE repository_words MATCH ${groups.join(' OR ')} LIMIT ${FUZZY_SAMPLE})
        ) x JOIN repository_words w ON w.rowid = x.id)
      SELECT id FROM s WHERE shared >= ${need} ORDER BY shared DESC LIMIT ${FUZZY_CANDIDATES}`;
  }

  /** The query plan of a search (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN): for tests that want an index, not a scan. */
  async explainSearch(text: string): Promise<string> {
    if (this.store.dialect === 'sqlite') {
      const r = await sql<{ detail: string }>`EXPLAIN QUERY PLAN SELECT rowid FROM repository_text WHERE repository_text MATCH ${`"${text}"*`}`.execute(this.db);
      return r.rows.map((x) => x.detail).join('\n');
    }
    return this.db.transaction().execute(async (trx) => {
      await sql`SET LOCAL enable_seqscan = off`.execute(trx);
      const r = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT repository_id FROM repository_info i WHERE i.document @@ to_tsquery('simple', ${`${text}:*`}) OR ${text}::text <% i.name`.execute(trx);
      return r.rows.map((x) => x['QUERY PLAN']).join('\n');
    });
  }

  // ---- repository info --------------------------------------------------------

  async info(name: string): Promise<RepositoryInfo | null> {
    const r = await this.db
      .selectFrom('repository_info as i')
      .innerJoin('repositories as r', 'r.id', 'i.repository_id')
      .select([
        'i.repository_id',
        'i.name',
        'i.namespace',
        'i.short_name',
        'r.visibility',
        'i.description',
        'i.description_source',
        'i.readme',
        'i.readme_source',
        'i.official',
        'i.star_count',
        'i.pull_count',
        'i.pulls_window',
        'i.pulls_current',
        'i.pulls_previous',
        'r.created_at',
        'i.updated_at',
        'i.last_pushed_at',
        'i.last_pulled_at',
      ])
      .where('i.name', '=', name)
      .executeTakeFirst();
    if (!r) return null;
    const week = Math.floor((await this.store.clock()) / PULL_WINDOW_MS);
    const w = num(r.pulls_window);
    return {
      id: num(r.repository_id),
      name: r.name,
      namespace: r.namespace,
      shortName: r.short_name,
      visibility: r.visibility,
      description: r.description,
      descriptionSource: r.description_source,
      readme: r.readme,
      readmeSource: r.readme_source,
      official: num(r.official) === 1,
      starCount: num(r.star_count),
      pullCount: num(r.pull_count),
      recentPulls: w === week ? num(r.pulls_current) + num(r.pulls_previous) : w === week - 1 ? num(r.pulls_current) : 0,
      createdAt: num(r.created_at),
      updatedAt: num(r.updated_at),
      lastPushedAt: numOrNull(r.last_pushed_at),
      lastPulledAt: numOrNull(r.last_pulled_at),
    };
  }

  /**
   * Sets the description or README. `source` 'image' writes only where
   * nobody set the field by hand; 'manual' always writes. Returns whether
   * the repository exists and the field was written.
   */
  async setText(name: string, field: 'description' | 'readme', value: string, source: 'image' | 'manual'): Promise<boolean> {
    return this.store.writing(async () => {
      const at = await this.store.clock();
      const set = field === 'description' ? { description: value, description_source: source, updated_at: at } : { readme: value, readme_source: source, updated_at: at };
      let q = this.db.updateTable('repository_info').set(set).where('name', '=', name);
      if (source === 'image') q = q.where(field === 'description' ? 'description_source' : 'readme_source', '!=', 'manual');
      return Number((await q.executeTakeFirst()).numUpdatedRows) > 0;
    });
  }

  /** Clears a hand-set description or README, so the image's may take its place again. */
  async clearText(name: string, field: 'description' | 'readme'): Promise<boolean> {
    return this.store.writing(async () => {
      const at = await this.store.clock();
      const set = field === 'description' ? { description: '', description_source: 'none' as const, updated_at: at } : { readme: '', readme_source: 'none' as const, updated_at: at };
      return Number((await this.db.updateTable('repository_info').set(set).where('name', '=', name).executeTakeFirst()).numUpdatedRows) > 0;
    });
  }

  async setOfficial(name: string, official: boolean): Promise<boolean> {
    const r = await this.store.writing(() => this.db.updateTable('repository_info').set({ official: official ? 1 : 0 }).where('name', '=', name).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * What a manifest push leaves for the pages: the manifest's size and
   * platforms (read from its config or its index once, here), and the
   * repository's last push. Written once per manifest.
   */
  async recordManifest(repository: string, digest: string, details: { totalSize: number; platforms: Omit<PlatformRow, 'lastPulledAt'>[] }, pushed = true): Promise<void> {
    await this.store.writeTransaction(async (trx) => {
      const m = await trx
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(['m.id', 'm.repository_id'])
        .where('r.name', '=', repository)
        .where('m.digest', '=', digest)
        .executeTakeFirst();
      if (!m) return;
      if (pushed) {
        const at = await this.store.clock(trx);
        await trx.updateTable('repository_info').set({ last_pushed_at: at, updated_at: at }).where('repository_id', '=', m.repository_id).execute();
      }
      const inserted = await trx.insertInto('manifest_info').values({ manifest_id: m.id, total_size: details.totalSize }).onConflict((oc) => oc.column('manifest_id').doNothing()).executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0 || details.platforms.length === 0) return;
      await trx
        .insertInto('manifest_platforms')
        .values(details.platforms.slice(0, 1000).map((p, position) => ({ manifest_id: m.id, position, os: p.os, architecture: p.architecture, variant: p.variant, digest: p.digest, size: p.size })))
        .execute();
    });
  }

  /**
   * Manifests with no recorded details (pushed before migration 0012), a
   * page at a time by id: image manifests first (`indexes` false), then
   * indexes, whose sizes add up their children's.
   */
  async manifestsWithoutDetails(indexes: boolean, afterId: number, limit: number): Promise<{ id: number; repository: string; digest: string; mediaType: string }[]> {
    const kinds = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .leftJoin('manifest_info as x', 'x.manifest_id', 'm.id')
      .select(['m.id', 'r.name', 'm.digest', 'm.media_type'])
      .where('x.manifest_id', 'is', null)
      .where('m.id', '>', afterId)
      .where('m.media_type', indexes ? 'in' : 'not in', kinds)
      .orderBy('m.id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: num(r.id), repository: r.name, digest: r.digest, mediaType: r.media_type }));
  }

  /** The recorded compressed size of manifests of a repository (an index sums its children's). */
  async manifestSizes(repository: string, digests: string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .innerJoin('manifest_info as x', 'x.manifest_id', 'm.id')
      .select(['m.digest', 'x.total_size'])
      .where('r.name', '=', repository)
      .where('m.digest', 'in', digests.slice(0, 1000))
      .execute();
    return new Map(rows.map((r) => [r.digest, num(r.total_size)]));
  }

  /** A repository's tags with what a page shows, sorted and paginated. */
  async tags(repository: string, page: { sort: TagSort; limit: number; offset: number; filter?: string }): Promise<{ total: number; tags: TagDetails[] }> {
    const repositoryId = await this.store.registry.repositoryId(repository);
    if (repositoryId === null) return { total: 0, tags: [] };
    const order = {
      name: sql`t.name`,
      updated: sql`t.updated_at DESC, t.name`,
      pulled: sql`COALESCE(last_pulled_at, 0) DESC, t.name`,
    }[page.sort];
    const rows = (
      await sql<{ name: string; manifest_id: number; digest: string; media_type: string; updated_at: number; total_size: number | null; last_pulled_at: number | null; total: number }>`
        SELECT t.name, t.manifest_id, m.digest, m.media_type, t.updated_at, x.total_size,
          CASE WHEN tp.last_pulled_at IS NULL THEN mp.last_pulled_at WHEN mp.last_pulled_at IS NULL OR tp.last_pulled_at > mp.last_pulled_at THEN tp.last_pulled_at ELSE mp.last_pulled_at END AS last_pulled_at,
          COUNT(*) OVER () AS total
        FROM tags t JOIN manifests m ON m.id = t.manifest_id
        LEFT JOIN manifest_info x ON x.manifest_id = m.id
        LEFT JOIN tag_pulls tp ON tp.repository_id = t.repository_id AND tp.name = t.name
        LEFT JOIN manifest_pulls mp ON mp.repository_id = t.repository_id AND mp.digest = m.digest
        WHERE t.repository_id = ${repositoryId}
        ${page.filter ? sql`AND t.name LIKE ${`%${page.filter.replace(/[\\%_]/g, (c) => `\\${c}`)}%`} ESCAPE '\\'` : sql``}
        ORDER BY ${order}
        LIMIT ${page.limit} OFFSET ${page.offset}`.execute(this.db)
    ).rows;
    const ids = [...new Set(rows.map((r) => num(r.manifest_id)))];
    const platforms = new Map<number, PlatformRow[]>();
    if (ids.length) {
      const prow = (
        await sql<{ manifest_id: number; os: string; architecture: string; variant: string | null; digest: string; size: number; last_pulled_at: number | null }>`
          SELECT p.manifest_id, p.os, p.architecture, p.variant, p.digest, p.size, mp.last_pulled_at
          FROM manifest_platforms p LEFT JOIN manifest_pulls mp ON mp.repository_id = ${repositoryId} AND mp.digest = p.digest
          WHERE p.manifest_id IN (${sql.join(ids)}) ORDER BY p.manifest_id, p.position`.execute(this.db)
      ).rows;
      for (const p of prow) {
        const list = platforms.get(num(p.manifest_id)) ?? [];
        list.push({ os: p.os, architecture: p.architecture, variant: p.variant, digest: p.digest, size: num(p.size), lastPulledAt: numOrNull(p.last_pulled_at) });
        platforms.set(num(p.manifest_id), list);
      }
    }
    return {
      total: rows.length ? num(rows[0]!.total) : 0,
      tags: rows.map((r) => ({
        name: r.name,
        digest: r.digest,
        mediaType: r.media_type,
        size: numOrNull(r.total_size),
        pushedAt: num(r.updated_at),
        lastPulledAt: numOrNull(r.last_pulled_at),
        platforms: platforms.get(num(r.manifest_id)) ?? [],
      })),
    };
  }

  // ---- stars and follows ----------------------------------------------------------

  /** Stars (or unstars) a repository; returns whether anything changed, or null when there is no such repository. */
  async setStar(accountId: number, repository: string, starred: boolean): Promise<boolean | null> {
    return this.store.writeTransaction(async (trx) => {
      const repositoryId = await this.store.registry.repositoryId(repository, trx);
      if (repositoryId === null) return null;
      let changed: boolean;
      if (starred) {
        const r = await trx
          .insertInto('stars')
          .values({ account_id: accountId, repository_id: repositoryId, created_at: await this.store.clock(trx) })
          .onConflict((oc) => oc.columns(['account_id', 'repository_id']).doNothing())
          .executeTakeFirst();
        changed = Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
      } else {
        const r = await trx.deleteFrom('stars').where('account_id', '=', accountId).where('repository_id', '=', repositoryId).executeTakeFirst();
        changed = Number(r.numDeletedRows) > 0;
      }
      if (changed) {
        await trx
          .updateTable('repository_info')
          .set({ star_count: sql`star_count + ${starred ? 1 : -1}` })
          .where('repository_id', '=', repositoryId)
          .execute();
      }
      return changed;
    });
  }

  async hasStarred(accountId: number, repository: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('stars as s')
      .innerJoin('repositories as r', 'r.id', 's.repository_id')
      .select('s.created_at')
      .where('s.account_id', '=', accountId)
      .where('r.name', '=', repository)
      .executeTakeFirst();
    return r !== undefined;
  }

  /** Repositories an account starred (those readable by the caller), newest star first. */
  async starred(accountId: number, readable: Expression<SqlBool>, page: { limit: number; offset: number }): Promise<{ name: string; starredAt: number }[]> {
    const rows = await sql<{ name: string; created_at: number }>`
      SELECT r.name, s.created_at FROM stars s JOIN repositories r ON r.id = s.repository_id
      WHERE s.account_id = ${accountId} AND ${readable}
      ORDER BY s.created_at DESC, r.name LIMIT ${page.limit} OFFSET ${page.offset}`.execute(this.db);
    return rows.rows.map((r) => ({ name: r.name, starredAt: num(r.created_at) }));
  }

  async setFollow(accountId: number, kind: 'account' | 'repository', target: string, following: boolean): Promise<boolean> {
    return this.store.writing(async () => {
      if (following) {
        const r = await this.db
          .insertInto('follows')
          .values({ account_id: accountId, kind, target, created_at: await this.store.clock() })
          .onConflict((oc) => oc.columns(['account_id', 'kind', 'target']).doNothing())
          .executeTakeFirst();
        return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
      }
      const r = await this.db.deleteFrom('follows').where('account_id', '=', accountId).where('kind', '=', kind).where('target', '=', target).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async following(accountId: number): Promise<{ kind: 'account' | 'repository'; target: string; since: number }[]> {
    const rows = await this.db.selectFrom('follows').select(['kind', 'target', 'created_at']).where('account_id', '=', accountId).orderBy('kind').orderBy('target').execute();
    return rows.map((r) => ({ kind: r.kind, target: r.target, since: num(r.created_at) }));
  }

  // ---- activity -------------------------------------------------------------------

  async appendActivity(entries: NewActivity[], db?: Db): Promise<void> {
    if (entries.length === 0) return;
    const run = async (d: Db) => {
      const at = await this.store.clock(d);
      const rows = entries.map((e) => ({
        at,
        repository: e.repository,
        namespace: e.namespace,
        actor: e.actor,
        actor_id: e.actorId ?? null,
        action: e.action,
        tag: e.tag,
        digest: e.digest,
        detail: e.detail ? JSON.stringify(e.detail) : null,
      }));
      for (let i = 0; i < rows.length; i += 500) await d.insertInto('activity').values(rows.slice(i, i + 500)).execute();
    };
    if (db) return run(db);
    await this.store.writing(() => run(this.db));
  }

  /**
   * Activity newest first, older than `before` (an id), of one repository,
   * one namespace, or what an account follows (repositories by name;
   * accounts: their namespace and what they did). `readable` is over
   * `r.name` and `r.visibility`, `r` being the repository if it still exists.
   */
  async activity(
    scope: { repository: string } | { namespace: string } | { follower: number },
    readable: Expression<SqlBool>,
    page: { before?: number; limit: number },
  ): Promise<ActivityEntry[]> {
    const where =
      'repository' in scope
        ? sql`a.repository = ${scope.repository}`
        : 'namespace' in scope
          ? sql`a.namespace = ${scope.namespace}`
          : sql`(a.repository IN (SELECT f.target FROM follows f WHERE f.account_id = ${scope.follower} AND f.kind = 'repository')
               OR a.namespace IN (SELECT f.target FROM follows f WHERE f.account_id = ${scope.follower} AND f.kind = 'account')
               OR a.actor IN (SELECT f.target FROM follows f WHERE f.account_id = ${scope.follower} AND f.kind = 'account'))`;
    // An entry about a repository shows to whoever may read that name now (a deleted one: whoever could if it existed),
    // and only if it is about the repository of that name now: a name deleted and used again starts a history of its own,
    // so a private repository's past does not show under a public one of the same name.
    const rows = await sql<{ id: number; at: number; repository: string | null; namespace: string; actor: string | null; action: string; tag: string | null; digest: string | null; detail: string | null }>`
      SELECT a.id, a.at, a.repository, a.namespace, a.actor, a.action, a.tag, a.digest, a.detail
      FROM activity a LEFT JOIN repositories r ON r.name = a.repository
      WHERE ${where} AND a.id < ${page.before ?? Number.MAX_SAFE_INTEGER}
        AND (a.repository IS NULL OR ${readable})
        AND (r.id IS NULL OR a.at >= r.created_at)
      ORDER BY a.id DESC LIMIT ${page.limit}`.execute(this.db);
    return rows.rows.map((r) => ({
      id: num(r.id),
      at: num(r.at),
      repository: r.repository,
      namespace: r.namespace,
      actor: r.actor,
      action: r.action,
      tag: r.tag,
      digest: r.digest,
      detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    }));
  }

  /**
   * Whether `tag` points at a manifest that was in the repository before the
   * tag last moved: a tag given to an existing image, not a new push (a
   * manifest write stamps the manifest and its tags with one time).
   */
  async retagged(repository: string, tag: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .innerJoin('manifests as m', 'm.id', 't.manifest_id')
      .select(['m.created_at', 't.updated_at'])
      .where('r.name', '=', repository)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    return r !== undefined && num(r.created_at) < num(r.updated_at);
  }

  // ---- pull counts ------------------------------------------------------------------

  /**
   * Adds one process's gathered pulls, in one transaction of additive
   * UPDATEs (and upserts), so several processes flushing at once add up.
   * Rows are written in name order, so two flushes lock them in one order.
   * A repository's count adds the GETs by tag and the GETs by digest of a
   * manifest that no index of the repository lists (a platform's manifest
   * fetched after its index is the same pull).
   */
  async addPulls(batch: PullBatch): Promise<void> {
    const repositories = [...new Set([...batch.tags.keys(), ...batch.served.keys(), ...batch.direct.keys()])].sort();
    if (repositories.length === 0) return;
    await this.store.writeTransaction(async (trx) => {
      const at = await this.store.clock(trx);
      const week = Math.floor(at / PULL_WINDOW_MS);
      for (const repository of repositories) {
        const repositoryId = await this.store.registry.repositoryId(repository, trx);
        if (repositoryId === null) continue;
        let pulls = 0;
        for (const n of batch.tags.get(repository)?.values() ?? []) pulls += n;
        const direct = batch.direct.get(repository);
        if (direct && direct.size) {
          const digests = [...direct.keys()];
          const children = new Set<string>();
          for (let i = 0; i < digests.length; i += 500) {
            const rows = await trx
              .selectFrom('manifest_references')
              .select('digest')
              .where('repository_id', '=', repositoryId)
              .where('kind', '=', 'manifest')
              .where('digest', 'in', digests.slice(i, i + 500))
              .execute();
            for (const r of rows) children.add(r.digest);
          }
          for (const [digest, n] of direct) if (!children.has(digest)) pulls += n;
        }
        if (pulls > 0) {
          await trx
            .updateTable('repository_info')
            .set({
              pull_count: sql`pull_count + ${pulls}`,
              pulls_previous: sql`CASE WHEN pulls_window = ${week} THEN pulls_previous WHEN pulls_window = ${week - 1} THEN pulls_current ELSE 0 END`,
              pulls_current: sql`CASE WHEN pulls_window = ${week} THEN pulls_current + ${pulls} ELSE ${pulls} END`,
              pulls_window: week,
              last_pulled_at: at,
            })
            .where('repository_id', '=', repositoryId)
            .execute();
        }
        for (const [table, counts] of [
          ['tag_pulls', batch.tags.get(repository)],
          ['manifest_pulls', batch.served.get(repository)],
        ] as const) {
          if (!counts) continue;
          for (const key of [...counts.keys()].sort()) {
            const n = counts.get(key)!;
            if (table === 'tag_pulls') {
              await trx
                .insertInto('tag_pulls')
                .values({ repository_id: repositoryId, name: key, pull_count: n, last_pulled_at: at })
                .onConflict((oc) => oc.columns(['repository_id', 'name']).doUpdateSet({ pull_count: sql`tag_pulls.pull_count + ${n}`, last_pulled_at: at }))
                .execute();
            } else {
              await trx
                .insertInto('manifest_pulls')
                .values({ repository_id: repositoryId, digest: key, pull_count: n, last_pulled_at: at })
                .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet({ pull_count: sql`manifest_pulls.pull_count + ${n}`, last_pulled_at: at }))
                .execute();
            }
          }
        }
      }
    });
  }

  /** Pull count and last pull of one tag (GETs by that tag). */
  async tagPulls(repository: string, tag: string): Promise<{ count: number; lastPulledAt: number | null }> {
    const r = await this.db
      .selectFrom('tag_pulls as p')
      .innerJoin('repositories as r', 'r.id', 'p.repository_id')
      .select(['p.pull_count', 'p.last_pulled_at'])
      .where('r.name', '=', repository)
      .where('p.name', '=', tag)
      .executeTakeFirst();
    return { count: num(r?.pull_count), lastPulledAt: numOrNull(r?.last_pulled_at) };
  }

  // ---- webhooks ---------------------------------------------------------------------

  async createWebhook(repository: string, w: { name: string; url: string; events: string[]; createdBy: string | null }): Promise<WebhookRow | null | 'taken'> {
    return this.store.writeTransaction(async (trx) => {
      const repositoryId = await this.store.registry.repositoryId(repository, trx);
      if (repositoryId === null) return null;
      const r = await trx
        .insertInto('webhooks')
        .values({ repository_id: repositoryId, name: w.name, url: w.url, events: w.events.join(','), active: 1, created_by: w.createdBy, created_at: await this.store.clock(trx) })
        .onConflict((oc) => oc.columns(['repository_id', 'name']).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!r) return 'taken';
      return (await this.webhooks(repository, trx)).find((x) => x.id === Number(r.id)) ?? null;
    });
  }

  async webhooks(repository: string, db: Db = this.db): Promise<WebhookRow[]> {
    const rows = await db
      .selectFrom('webhooks as w')
      .innerJoin('repositories as r', 'r.id', 'w.repository_id')
      .select(['w.id', 'r.name as repository', 'w.name', 'w.url', 'w.events', 'w.active', 'w.created_by', 'w.created_at'])
      .where('r.name', '=', repository)
      .orderBy('w.id')
      .execute();
    return rows.map(toWebhook);
  }

  async webhookById(id: number): Promise<WebhookRow | null> {
    const r = await this.db
      .selectFrom('webhooks as w')
      .innerJoin('repositories as r', 'r.id', 'w.repository_id')
      .select(['w.id', 'r.name as repository', 'w.name', 'w.url', 'w.events', 'w.active', 'w.created_by', 'w.created_at'])
      .where('w.id', '=', id)
      .executeTakeFirst();
    return r ? toWebhook(r) : null;
  }

  async updateWebhook(repository: string, id: number, change: { url?: string; events?: string[]; active?: boolean }): Promise<boolean> {
    const set: { url?: string; events?: string; active?: number } = {};
    if (change.url !== undefined) set.url = change.url;
    if (change.events !== undefined) set.events = change.events.join(',');
    if (change.active !== undefined) set.active = change.active ? 1 : 0;
    const repositoryId = await this.store.registry.repositoryId(repository);
    if (repositoryId === null) return false;
    if (Object.keys(set).length === 0) return (await this.webhookById(id))?.repository === repository;
    const r = await this.store.writing(() => this.db.updateTable('webhooks').set(set).where('id', '=', id).where('repository_id', '=', repositoryId).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  /** Deletes a webhook and its undelivered events. */
  async deleteWebhook(repository: string, id: number): Promise<boolean> {
    return this.store.writeTransaction(async (trx) => {
      const repositoryId = await this.store.registry.repositoryId(repository, trx);
      if (repositoryId === null) return false;
      const r = await trx.deleteFrom('webhooks').where('id', '=', id).where('repository_id', '=', repositoryId).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await trx.deleteFrom('notification_queue').where('endpoint', '=', webhookEndpoint(id)).execute();
      await trx.deleteFrom('notification_endpoints').where('endpoint', '=', webhookEndpoint(id)).execute();
      return true;
    });
  }

  /** Queues one payload for each active webhook of `repository` that wants `action`; returns how many were queued. */
  async enqueueWebhooks(repository: string, action: string, payload: (hook: WebhookRow) => string): Promise<number> {
    const hooks = (await this.webhooks(repository)).filter((h) => h.active && h.events.includes(action));
    if (hooks.length === 0) return 0;
    const t = Date.now();
    await this.store.writing(() =>
      this.db
        .insertInto('notification_queue')
        .values(hooks.map((h) => ({ endpoint: webhookEndpoint(h.id), payload: payload(h), created_at: t })))
        .execute(),
    );
    return hooks.length;
  }

  /** Webhook endpoints with events waiting (their queue names). */
  async pendingWebhookEndpoints(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('notification_queue')
      .select('endpoint')
      .where('endpoint', '>=', 'webhook:')
      .where('endpoint', '<', 'webhook;')
      .groupBy('endpoint')
      .execute();
    return rows.map((r) => r.endpoint);
  }
}

/** The notification queue's endpoint name of a webhook. */
export function webhookEndpoint(id: number): string {
  return `webhook:${id}`;
}

function toWebhook(r: { id: number; repository: string; name: string; url: string; events: string; active: number; created_by: string | null; created_at: number }): WebhookRow {
  return {
    id: num(r.id),
    repository: r.repository,
    name: r.name,
    url: r.url,
    events: r.events.split(',').filter(Boolean),
    active: num(r.active) === 1,
    createdBy: r.created_by,
    createdAt: num(r.created_at),
  };
}
