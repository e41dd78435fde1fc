// Medians, ratios and the printed table.

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** "× better" for Berth: >1 means Berth did better, whichever direction is better. */
export function ratio(berth, reference, better) {
  if (!Number.isFinite(berth) || !Number.isFinite(reference) || berth <= 0 || reference <= 0) return NaN;
  return better === 'higher' ? berth / reference : reference / berth;
}

function fmt(v, digits) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  if (digits === undefined) digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : Math.abs(v) >= 1 ? 2 : 3;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(r) {
  if (!Number.isFinite(r)) return '—';
  return `${r.toFixed(2)}×`;
}

/**
 * Summarises metrics over rounds. `metrics`: [{ key, label, unit, better }];
 * `rounds`: [{ berth: {key: v}, reference: {key: v} }].
 */
export function summarise(metrics, rounds) {
  return metrics.map((m) => {
    const b = rounds.map((r) => r.berth[m.key]);
    const ref = rounds.map((r) => r.reference[m.key]);
    const perRound = rounds.map((_, i) => ratio(b[i], ref[i], m.better));
    return {
      ...m,
      berth: median(b),
      reference: median(ref),
      berthRounds: b,
      referenceRounds: ref,
      ratioRounds: perRound,
      ratio: median(perRound),
    };
  });
}

export function table(rows, { title } = {}) {
  const head = ['', 'unit', 'Berth', 'reference', 'Berth × better', 'per round'];
  const body = rows.map((r) =>
    r.section
      ? [r.section]
      : [r.label, r.unit + (r.better === 'lower' ? ' ↓' : ' ↑'), fmt(r.berth), fmt(r.reference), fmtRatio(r.ratio), r.ratioRounds.length > 1 ? r.ratioRounds.map(fmtRatio).join(' ') : ''],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.filter((row) => row.length > 1).map((row) => String(row[i]).length)));
  const line = (row) =>
    row
      .map((c, i) => (i === 0 || i === 1 || i === 5 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [];
  if (title) out.push(title);
  out.push(line(head));
  out.push(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const row of body) out.push(row.length === 1 ? `${row[0]}` : line(row));
  return out.join('\n');
}
