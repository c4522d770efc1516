// The benchmark report: report.md, a self-contained report.html (inline SVG
// plots, no scripts, no network), results.json and one .hgrm per histogram.

import fs from 'node:fs';
import path from 'node:path';
import type { Percentiles } from './histogram.js';
import type { StalenessCurve } from './staleness.js';

export interface CellReport {
  readonly id: string;
  readonly phase: string;
  readonly workload: string;
  readonly distribution: string;
  readonly loop: 'closed' | 'open';
  readonly level: string;
  readonly clients?: number;
  readonly offeredRate?: number;
  readonly elapsedMs: number;
  readonly ops: number;
  readonly throughput: number;
  readonly errors: Record<string, number>;
  readonly read: Percentiles;
  readonly write: Percentiles;
  readonly readCurve: [number, number][];
  readonly writeCurve: [number, number][];
}

export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly header: Record<string, string>;
  readonly config: Record<string, unknown>;
  readonly echo: Percentiles;
  readonly echoCurve: [number, number][];
  readonly cells: CellReport[];
  readonly staleness: StalenessCurve[];
  readonly targets: Target[];
}

const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));
const ratio = (ms: number, floor: number) => (floor > 0 ? `${(ms / floor).toFixed(1)}×` : '-');

function latencyTable(cells: CellReport[], echo: Percentiles): string {
  const rows = ['| phase | workload | keys | loop | level | op | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p50 / echo p50 | p99 / echo p99 | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const c of cells) {
    for (const [op, p] of [['read', c.read], ['write', c.write]] as const) {
      if (p.count === 0) continue;
      const share = c.ops > 0 ? Math.round((c.throughput * p.count) / c.ops) : 0;
      const errors = Object.entries(c.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
      rows.push(`| ${c.phase} | ${c.workload} | ${c.distribution} | ${c.loop}${c.loop === 'open' ? ` @${c.offeredRate}/s` : ` ×${c.clients}`} | ${c.level} | ${op} | ${share} | ${f(p.p50)} | ${f(p.p90)} | ${f(p.p99)} | ${f(p.p999)} | ${f(p.max)} | ${ratio(p.p50, echo.p50)} | ${ratio(p.p99, echo.p99)} | ${errors} |`);
    }
  }
  return rows.join('\n');
}

function stalenessTable(curves: StalenessCurve[]): string {
  if (curves.length === 0) return '(not measured)';
  const ts = curves[0]!.points.map((p) => p.tMs);
  const rows = [`| R | W | links | ${ts.map((t) => `t=${t} ms`).join(' | ')} | versions behind when stale (mean / max) |`,
    `|---|---|---|${ts.map(() => '---').join('|')}|---|`];
  for (const c of curves) {
    const stale = c.points.filter((p) => p.trials - p.fresh - p.errors > 0);
    const mean = stale.length > 0 ? (stale.reduce((a, p) => a + p.meanVersionsBehind, 0) / stale.length).toFixed(2) : '0';
    const max = Math.max(0, ...c.points.map((p) => p.maxVersionsBehind));
    rows.push(`| ${c.r} | ${c.w} | ${c.delay} | ${c.points.map((p) => `${(p.pFresh * 100).toFixed(0)}%`).join(' | ')} | ${mean} / ${max} |`);
  }
  return rows.join('\n');
}

export function markdown(r: BenchReport): string {
  const header = Object.entries(r.header).map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  const targets = r.targets.map((t) => `| ${t.name} | ${t.goal} | ${t.measured} | ${t.met ? 'met' : 'missed'} |`).join('\n');
  return `# tunekv benchmark, ${r.startedAt}

| | |
|---|---|
${header}

Configuration: \`${JSON.stringify(r.config)}\`

## The floor

A plain \`node:net\` echo round trip (128 bytes, two processes), measured in
this run: p50 ${f(r.echo.p50)} ms, p90 ${f(r.echo.p90)} ms, p99 ${f(r.echo.p99)} ms,
p99.9 ${f(r.echo.p999)} ms, max ${f(r.echo.max)} ms (${r.echo.count} round trips).
Ratios below divide a latency by the echo at the same percentile.

## Targets

| target | goal | measured | |
|---|---|---|---|
${targets}

## Latency and throughput

Closed loop: the given number of clients, each sending its next request
when the last one answers. Open loop: requests on a fixed schedule, each
timed from when it was due (coordinated omission corrected). Reads and
writes are reported apart; ops/s is the rate of that operation.

${latencyTable(r.cells, r.echo)}

## Staleness

Probability that a read at R, issued t ms after a write was acknowledged at
W, returns it (PBS t-visibility); the write goes through the key's first
primary and the read through its second. When a read is stale, how many
versions behind it is (k-staleness).

${stalenessTable(r.staleness)}

Raw results: \`results.json\`; histograms: \`*.hgrm\`.
`;
}

// ---- SVG ----

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Series { name: string; points: [number, number][]; dashed?: boolean }

/** A line chart; x and y may be log-scaled. */
function chart(title: string, xLabel: string, yLabel: string, series: Series[], opts: {
  xTicks: [number, string][]; xOf: (x: number) => number; yLog: boolean; yMin?: number; yMax?: number;
}): string {
  const W = 720;
  const H = 380;
  const m = { l: 70, r: 170, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => Number.isFinite(y) && (!opts.yLog || y > 0));
  let yMin = opts.yMin ?? Math.min(...all);
  let yMax = opts.yMax ?? Math.max(...all);
  if (opts.yLog) { yMin = 10 ** Math.floor(Math.log10(Math.max(yMin, 1e-3))); yMax = 10 ** Math.ceil(Math.log10(Math.max(yMax, yMin * 10))); }
  if (yMax <= yMin) yMax = yMin + 1;
  const xs = opts.xTicks.map(([x]) => opts.xOf(x));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const px = (x: number) => m.l + ((opts.xOf(x) - xMin) / (xMax - xMin || 1)) * (W - m.l - m.r);
  const yv = (y: number) => (opts.yLog ? Math.log10(Math.max(y, yMin)) : y);
  const py = (y: number) => H - m.b - ((yv(y) - yv(yMin)) / (yv(yMax) - yv(yMin) || 1)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  const yTicks: number[] = [];
  if (opts.yLog) for (let v = yMin; v <= yMax * 1.0001; v *= 10) yTicks.push(v);
  else for (let i = 0; i <= 5; i++) yTicks.push(yMin + ((yMax - yMin) * i) / 5);
  for (const v of yTicks) {
    const y = py(v);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${opts.yLog ? (v >= 1 ? v.toFixed(0) : String(v)) : (v * (yMax <= 1 ? 100 : 1)).toFixed(0) + (yMax <= 1 ? '%' : '')}</text>`);
  }
  for (const [x, label] of opts.xTicks) {
    const X = px(x);
    parts.push(`<line x1="${X}" x2="${X}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(`<text x="${X}" y="${H - m.b + 16}" text-anchor="middle">${esc(label)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = palette[i % palette.length]!;
    const pts = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const [x, y] of s.points) if (Number.isFinite(y)) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    const ly = m.t + 10 + i * 18;
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${W - m.r + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Percentile axis spaced by "nines": 0, 90, 99, 99.9, 99.99. */
const ninesOf = (p: number) => (p >= 100 ? 5 : -Math.log10(1 - p / 100));
const percentileTicks: [number, string][] = [[0, '0'], [50, '50'], [90, '90'], [99, '99'], [99.9, '99.9'], [99.99, '99.99']];

export function latencyChart(title: string, cells: CellReport[], op: 'read' | 'write', echoCurve: [number, number][]): string {
  const series: Series[] = cells
    .filter((c) => (op === 'read' ? c.read.count : c.write.count) > 0)
    .map((c) => ({ name: `${c.level}`, points: op === 'read' ? c.readCurve : c.writeCurve }));
  series.push({ name: 'echo floor', points: echoCurve, dashed: true });
  return chart(title, 'percentile', 'latency (ms, log scale)', series, { xTicks: percentileTicks, xOf: ninesOf, yLog: true });
}

export function stalenessChart(title: string, curves: StalenessCurve[]): string {
  const ts = curves[0]?.points.map((p) => p.tMs) ?? [0];
  const xOf = (t: number) => Math.log10(t + 1);
  const series = curves.map((c) => ({ name: `R=${c.r} W=${c.w}`, points: c.points.map((p) => [p.tMs, p.pFresh] as [number, number]) }));
  return chart(title, 't: ms after the write was acknowledged (log scale)', 'reads returning the write', series,
    { xTicks: ts.map((t) => [t, String(t)]), xOf, yLog: false, yMin: 0, yMax: 1 });
}

function mdToHtmlTable(md: string): string {
  const lines = md.split('\n').filter((l) => l.startsWith('|'));
  if (lines.length < 2) return `<p>${esc(md)}</p>`;
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => esc(c.trim()));
  const head = `<tr>${cells(lines[0]!).map((c) => `<th>${c}</th>`).join('')}</tr>`;
  const body = lines.slice(2).map((l) => `<tr>${cells(l).map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table>${head}\n${body}</table>`;
}

export function html(r: BenchReport, charts: { title: string; svg: string }[]): string {
  const header = Object.entries(r.header).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n');
  const targets = r.targets.map((t) => `<tr><td>${esc(t.name)}</td><td>${esc(t.goal)}</td><td>${esc(t.measured)}</td><td class="${t.met ? 'met' : 'missed'}">${t.met ? 'met' : 'missed'}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunekv benchmark ${esc(r.startedAt)}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1500px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.met { color: #1a7f37; font-weight: bold; } .missed { color: #c62828; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
code { background: #f5f5f5; padding: 1px 4px; }
</style></head><body>
<h1>tunekv benchmark</h1>
<p>${esc(r.startedAt)}</p>
<table>${header}</table>
<p>Configuration: <code>${esc(JSON.stringify(r.config))}</code></p>
<h2>The floor</h2>
<p>A plain node:net echo round trip (128 bytes, two processes), measured in this run: p50 ${f(r.echo.p50)} ms, p99 ${f(r.echo.p99)} ms.</p>
<h2>Targets</h2>
<table><tr><th>target</th><th>goal</th><th>measured</th><th></th></tr>${targets}</table>
<h2>Plots</h2>
<div class="charts">
${charts.map((c) => `<figure>${c.svg}</figure>`).join('\n')}
</div>
<h2>Latency and throughput</h2>
${mdToHtmlTable(latencyTable(r.cells, r.echo))}
<h2>Staleness</h2>
${mdToHtmlTable(stalenessTable(r.staleness))}
</body></html>
`;
}

export function writeReport(dir: string, r: BenchReport, hgrms: Map<string, string>, charts: { title: string; file: string; svg: string }[]): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'report.md'), markdown(r));
  fs.writeFileSync(path.join(dir, 'report.html'), html(r, charts));
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(r, null, 2));
  for (const [name, text] of hgrms) fs.writeFileSync(path.join(dir, `${name}.hgrm`), text);
  for (const c of charts) fs.writeFileSync(path.join(dir, c.file), c.svg);
}
