// Summaries, the markdown table and a hand-written SVG bar chart of the same figures.

// plain: switchboard itself without the feature a row measures (the wire protocol's row).
export const LABELS = ['switchboard', 'ws', 'net', 'bun', 'plain'];
const COLORS = { switchboard: '#2b6cb0', ws: '#8a8a8a', net: '#c27c0e', bun: '#6b46c1', plain: '#68a0d8' };

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(values) {
  const ok = values.filter((v) => Number.isFinite(v));
  if (ok.length === 0) return null;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

export function fmt(v, unit) {
  if (!Number.isFinite(v)) return 'n/a';
  if (unit === 'B/conn') return v >= 1024 ? `${(v / 1024).toFixed(2)} KiB` : `${Math.round(v)} B`;
  if (unit === 'MB') return `${v.toFixed(1)} MB`;
  if (unit === 'conns') return String(Math.round(v));
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

/** One scenario's figures: per server the summary and flags, the ratio to the baseline, the target verdict. */
export function scenarioSummary(scenario, runs) {
  const per = {};
  for (const label of LABELS) {
    const rs = runs[label];
    if (!rs || rs.length === 0) continue;
    const s = summarize(rs.map((r) => r.value));
    per[label] = {
      ...s,
      clientBound: rs.filter((r) => r.flags.includes('client-bound')).length,
      noisy: rs.filter((r) => r.flags.includes('noisy')).length,
      failed: rs.filter((r) => !Number.isFinite(r.value)).length,
      runs: rs.length,
      notes: [...new Set(rs.flatMap((r) => r.notes ?? []))],
    };
  }
  const sb = per.switchboard;
  const base = per[scenario.baseline];
  let ratio = null;
  if (sb && base && sb.median > 0 && base.median > 0) {
    ratio = scenario.better === 'lower' ? base.median / sb.median : sb.median / base.median;
  }
  let verdict = 'n/a';
  const t = scenario.target;
  if (t && sb) {
    if (t.ratio !== undefined && ratio !== null) verdict = ratio >= t.ratio ? 'met' : 'missed';
    if (t.max !== undefined) verdict = sb.median <= t.max ? 'met' : 'missed';
    if (t.min !== undefined) verdict = sb.median >= t.min ? 'met' : 'missed';
    if (t.bounded) verdict = runs.switchboard.every((r) => r.bounded) ? 'met' : 'missed';
  }
  return { scenario, per, ratio, verdict };
}

function cell(p, unit) {
  if (!p) return '–';
  let s = p.n > 1 ? `${fmt(p.median, unit)} (${fmt(p.min, unit)}–${fmt(p.max, unit)})` : fmt(p.median, unit);
  if (p.failed) s += ` [${p.failed}/${p.runs} failed]`;
  if (p.clientBound) s += ` †${p.clientBound}`;
  if (p.noisy) s += ` ‡${p.noisy}`;
  return s;
}

function targetText(scenario) {
  const t = scenario.target;
  if (!t) return '';
  if (t.ratio !== undefined) return `≥ ${t.ratio}x ${scenario.baseline}`;
  if (t.max !== undefined) return `≤ ${fmt(t.max, scenario.unit)}`;
  if (t.min !== undefined) return `≥ ${fmt(t.min, scenario.unit)}`;
  if (t.bounded) return 'bounded (flat 2nd half)';
  return '';
}

export function markdown(summaries, meta) {
  const lines = [];
  lines.push(`# switchboard benchmark${meta.quick ? ' (quick smoke run)' : ''}`, '');
  lines.push(`${meta.date} · ${meta.machine} · node ${meta.node} · ${meta.runsEach} run(s) each, interleaved · ` +
    `server pinned to core ${meta.serverCore}, load generator (sockload) on core ${meta.loadCore}`, '');
  lines.push('Figures: median (min–max). † = runs that were client-bound (server CPU < 95%, the figure is a lower bound for ' +
    'that server), ‡ = noisy runs (other processes > 10% CPU). Ratio = switchboard vs the baseline (for memory: baseline / switchboard).', '');
  // Bun (--bun) is a reference, not a baseline: its column and its ratio appear only when it ran.
  const withBun = summaries.some((s) => s.per.bun);
  if (withBun) lines.push(`Bun ${meta.bun ?? ''} (Bun.serve, whose WebSocket server is uWebSockets) ran as a reference; "vs bun" = switchboard / Bun.`, '');
  const withPlain = summaries.some((s) => s.per.plain);
  if (withPlain) lines.push('"plain" = switchboard with plain messages, beside the same server with the feature its row measures.', '');
  lines.push(`| Scenario | unit | switchboard | ws | net |${withBun ? ' bun | vs bun |' : ''}${withPlain ? ' plain |' : ''} ratio | target | verdict |`);
  lines.push(`|---|---|---|---|---|${withBun ? '---|---|' : ''}${withPlain ? '---|' : ''}---|---|---|`);
  for (const s of summaries) {
    const sc = s.scenario;
    const ratio = s.ratio === null ? '–' : `${s.ratio.toFixed(2)}x vs ${sc.baseline}`;
    const sb = s.per.switchboard?.median;
    const vsBun = s.per.bun && sb > 0 && s.per.bun.median > 0 ? `${(sb / s.per.bun.median).toFixed(2)}x` : '–';
    lines.push(`| ${sc.title} | ${sc.unit} | ${cell(s.per.switchboard, sc.unit)} | ${cell(s.per.ws, sc.unit)} | ` +
      `${cell(s.per.net, sc.unit)} |${withBun ? ` ${cell(s.per.bun, sc.unit)} | ${vsBun} |` : ''}${withPlain ? ` ${cell(s.per.plain, sc.unit)} |` : ''} ${ratio} | ${targetText(sc)} | ${s.verdict} |`);
  }
  const notes = [];
  for (const s of summaries) {
    for (const label of LABELS) {
      for (const n of s.per[label]?.notes ?? []) notes.push(`- ${s.scenario.name} / ${label}: ${n}`);
    }
  }
  if (notes.length) lines.push('', 'Notes:', '', ...notes);
  return lines.join('\n') + '\n';
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal grouped bars, one group per scenario, each bar scaled to the largest in its group. */
export function svg(summaries, meta) {
  const width = 900;
  const labelW = 330;
  const barMax = width - labelW - 150;
  const barH = 14;
  const gap = 3;
  let y = 52;
  const parts = [];
  for (const s of summaries) {
    const present = LABELS.filter((l) => s.per[l]);
    if (present.length === 0) continue;
    const top = Math.max(...present.map((l) => s.per[l].median), 1e-9);
    const groupH = present.length * (barH + gap);
    const sub = s.ratio === null ? '' : ` · ${s.ratio.toFixed(2)}x ${s.scenario.baseline}`;
    // Titles longer than the label column would run under the bars.
    const title = s.scenario.title.length > 46 ? `${s.scenario.title.slice(0, 45)}…` : s.scenario.title;
    parts.push(`<text x="10" y="${y + groupH / 2 - 2}" font-size="12" font-weight="bold"><title>${esc(s.scenario.title)}</title>${esc(title)}</text>`);
    parts.push(`<text x="10" y="${y + groupH / 2 + 12}" font-size="11" fill="#555">${esc(s.scenario.unit)}${s.scenario.better === 'lower' ? ' (lower is better)' : ''}${esc(sub)} · ${esc(s.verdict)}</text>`);
    present.forEach((l, i) => {
      const p = s.per[l];
      const by = y + i * (barH + gap);
      const w = Math.max(1, (p.median / top) * barMax);
      parts.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[l]}"/>`);
      if (p.n > 1) {
        const x0 = labelW + (p.min / top) * barMax;
        const x1 = labelW + (p.max / top) * barMax;
        parts.push(`<line x1="${x0.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${by + barH / 2}" y2="${by + barH / 2}" stroke="#000" stroke-width="1"/>`);
      }
      parts.push(`<text x="${labelW + w + 6}" y="${by + barH - 3}" font-size="11">${esc(l)} ${esc(fmt(p.median, s.scenario.unit))}</text>`);
    });
    y += groupH + 18;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n` +
    `<text x="10" y="22" font-size="15" font-weight="bold">switchboard vs ws vs node:net${summaries.some((s) => s.per.bun) ? ' (and Bun)' : ''}${meta.quick ? ' (quick run)' : ''}</text>\n` +
    `<text x="10" y="40" font-size="11" fill="#555">${esc(`${meta.machine} · node ${meta.node} · median of ${meta.runsEach}, line = min–max · ${meta.date}`)}</text>\n` +
    parts.join('\n') + '\n</svg>\n';
}
