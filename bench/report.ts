// The benchmark report: report.md, a self-contained report.html (the same
// text with the plots inlined as SVG, no scripts, no network), results.json
// and one .hgrm per histogram. The report opens with a one-screen summary
// (what each level costs against the echo floor and the peers), then the
// targets, then the evidence: the sweep, where the CPU goes, the scale
// phase, every cell, staleness, and the machine and configuration.

import fs from 'node:fs';
import path from 'node:path';
import type { Percentiles } from './histogram.js';
import type { ProfileSummary } from './profile.js';
import { compareSpreads, formatSpread, spreadOf } from './spread.js';
import type { Spread } from './spread.js';
import type { StalenessCurve } from './staleness.js';
import type { SweepPoint, SweepVerdict } from './sweep.js';

/** CPU per operation of a cell, in µs. Node CPU is null when the bench
 * did not start the cluster (it cannot see the processes). */
export interface CellCpu {
  readonly nodesUsPerOp: number | null;
  readonly clientUsPerOp: number;
  readonly totalUsPerOp: number | null;
  /** Cores busy on average over the cell (nodes + client; client only when
   * node CPU is unknown). */
  readonly cores: number;
}

export interface CellReport {
  readonly id: string;
  /** tunekv, or a peer's name. */
  readonly store: string;
  readonly phase: string;
  readonly workload: string;
  readonly distribution: string;
  readonly loop: 'closed' | 'open';
  /** A tunekv level, or the peer's name for a peer. */
  readonly level: string;
  /** 1-based run of this cell (repeats). */
  readonly run: number;
  readonly clients?: number;
  readonly offeredRate?: number;
  readonly elapsedMs: number;
  readonly ops: number;
  /** Reads and writes together, per second. */
  readonly throughput: number;
  readonly errors: Record<string, number>;
  readonly cpu: CellCpu;
  readonly read: Percentiles;
  readonly write: Percentiles;
  readonly readCurve: [number, number][];
  readonly writeCurve: [number, number][];
}

export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  /** null: not measured in this run (the reason is in `measured`). */
  readonly met: boolean | null;
}

export interface SweepCurve {
  readonly level: string;
  readonly points: (SweepPoint & { readonly verdict: SweepVerdict; readonly cpuUsPerOp: number | null })[];
  /** Why the sweep ended: saturation at a rate, or the highest rate tried. */
  readonly ended: string;
}

export type PeerReport =
  | { readonly name: string; readonly setup: string; readonly promise: string }
  | { readonly name: string; readonly skipped: string };

/** What the scale phase (bench/scale.ts, when present) returns; see
 * ScaleResult in bench.ts. */
export interface ScaleReport {
  readonly ran: boolean;
  readonly note: string;
  readonly points: { readonly keys: number; readonly opsPerSec: number; readonly cpuUsPerOp: number; readonly rssMb: readonly number[] }[];
}

export interface BenchReport {
  readonly startedAt: string;
  readonly header: Record<string, string>;
  readonly config: Record<string, unknown>;
  /** How CPU was counted (or why node CPU is unknown). */
  readonly cpuNote: string;
  readonly echo: Percentiles;
  readonly echoCurve: [number, number][];
  readonly cells: CellReport[];
  readonly staleness: StalenessCurve[];
  readonly targets: Target[];
  readonly sweep: SweepCurve[];
  readonly peers: PeerReport[];
  readonly profiles: ProfileSummary[];
  readonly profileNote: string;
  readonly scale: ScaleReport;
}

export interface Chart { readonly title: string; readonly file: string; readonly svg: string }

const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ratio = (ms: number, floor: number) => (floor > 0 ? `${(ms / floor).toFixed(1)}×` : '-');
const cpuText = (c: CellCpu) => (c.totalUsPerOp === null ? `client ${c.clientUsPerOp}` : `${c.totalUsPerOp} (${c.nodesUsPerOp} + ${c.clientUsPerOp})`);

// ---- the summary ----

type Group = CellReport[];

function groupOf(cells: CellReport[], phase: string, level: string, workload = 'A', distribution = 'uniform'): Group {
  return cells.filter((c) => c.phase === phase && c.level === level && c.workload === workload && c.distribution === distribution);
}

const spreadBy = (g: Group, pick: (c: CellReport) => number | null): Spread | undefined => {
  const v = g.map(pick).filter((x): x is number => x !== null);
  return v.length > 0 ? spreadOf(v) : undefined;
};

/** The (R, W) whose staleness a level shows in the summary. */
function levelRw(level: string): [number, number] | undefined {
  if (level === 'eventual') return [1, 1];
  if (level === 'quorum' || level === 'strong') return [2, 2];
  const m = /^r=(\d+),w=(\d+)$/.exec(level);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function stalenessText(r: BenchReport, level: string): string {
  const rw = levelRw(level);
  if (!rw) return '';
  const curves = r.staleness.filter((c) => c.r === rw[0] && c.w === rw[1]);
  if (curves.length === 0) return `R=${rw[0]} W=${rw[1]} not measured`;
  const at0 = curves.map((c) => `${((c.points[0]?.pFresh ?? 0) * 100).toFixed(0)}%`);
  return `R=${rw[0]} W=${rw[1]}: ${at0.join(' / ')} fresh at t=0`;
}

function loadedName(r: BenchReport): string {
  return `YCSB A, ${r.config.clients} clients`;
}

function summaryRow(r: BenchReport, name: string, level: string, staleness: string): string {
  const un = groupOf(r.cells, 'unloaded', level);
  const lo = groupOf(r.cells, 'loaded', level);
  const lat = (g: Group, op: 'read' | 'write') => {
    const p50 = spreadBy(g, (c) => (c[op].count > 0 ? c[op].p50 : null));
    const p99 = spreadBy(g, (c) => (c[op].count > 0 ? c[op].p99 : null));
    return p50 && p99 ? `${f(p50.median)} / ${f(p99.median)}` : '-';
  };
  const ops = spreadBy(lo, (c) => c.throughput);
  const cpu = spreadBy(lo, (c) => c.cpu.totalUsPerOp);
  const clientCpu = spreadBy(lo, (c) => c.cpu.clientUsPerOp);
  const cpuCell = cpu ? formatSpread(cpu, int) : clientCpu ? `client ${formatSpread(clientCpu, int)}` : '-';
  const get = un.length > 0 ? lat(un, 'read') : '-';
  return `| ${name} | ${get} | ${un.length > 0 ? lat(un, 'write') : '-'} | ${lat(lo, 'read')} | ${lat(lo, 'write')} | ${ops ? formatSpread(ops, int) : '-'} | ${cpuCell} | ${staleness} |`;
}

/** Level pairs whose loaded ops/s or CPU/op differ beyond the spread. */
function callouts(r: BenchReport, levels: string[]): string[] {
  const out: string[] = [];
  const metric = (name: string, pick: (c: CellReport) => number | null, better: 'higher' | 'lower') => {
    for (let i = 0; i < levels.length; i++) {
      for (let j = i + 1; j < levels.length; j++) {
        const a = spreadBy(groupOf(r.cells, 'loaded', levels[i]!), pick);
        const b = spreadBy(groupOf(r.cells, 'loaded', levels[j]!), pick);
        if (!a || !b) continue;
        const cmp = compareSpreads(a, b);
        if (cmp === 'within') continue;
        const [hi, lo] = cmp === 'higher' ? [levels[i]!, levels[j]!] : [levels[j]!, levels[i]!];
        const [hiS, loS] = cmp === 'higher' ? [a, b] : [b, a];
        out.push(`- ${name}: \`${hi}\` ${int(hiS.min)}–${int(hiS.max)} above \`${lo}\` ${int(loS.min)}–${int(loS.max)} (${better === 'higher' ? `\`${hi}\` is faster` : `\`${lo}\` is cheaper`})`);
      }
    }
  };
  metric('ops/s', (c) => c.throughput, 'higher');
  metric('CPU µs/op', (c) => c.cpu.totalUsPerOp, 'lower');
  return out;
}

export function summary(r: BenchReport): string {
  const levels = [...new Set(r.cells.filter((c) => c.store === 'tunekv' && c.phase === 'unloaded').map((c) => c.level))];
  const runs = Math.max(0, ...r.cells.filter((c) => c.phase === 'loaded').map((c) => c.run));
  const rows = [
    `| store / level | get p50 / p99 ms, 1 client | put p50 / p99 ms, 1 client | get p50 / p99 ms, loaded | put p50 / p99 ms, loaded | ${loadedName(r)}: ops/s | CPU µs/op (nodes + client) | staleness |`,
    '|---|---|---|---|---|---|---|---|',
    `| echo floor | ${f(r.echo.p50)} / ${f(r.echo.p99)} | (round trip) | | | | | |`,
  ];
  for (const level of levels) rows.push(summaryRow(r, `tunekv \`${level}\``, level, stalenessText(r, level)));
  const peerStale: Record<string, string> = { redis: 'one copy: never stale', etcd: 'linearizable: never stale' };
  for (const p of r.peers) {
    if ('skipped' in p) rows.push(`| ${p.name} | skipped: ${p.skipped} | | | | | | |`);
    else rows.push(summaryRow(r, p.name, p.name, peerStale[p.name] ?? ''));
  }
  // Between tunekv's levels only: the peers promise other things, and
  // their gap to tunekv is the summary's own subject.
  const calls = callouts(r, levels);
  const spreadNote = runs < 2
    ? 'Each cell ran once, so no difference is called out: on a shared machine one run moves by more than most gaps between levels (`--full` repeats each cell).'
    : `Each loaded cell ran ${runs} times: the median, then the range (min–max). Differences between levels beyond the range:\n\n${calls.length > 0 ? calls.join('\n') : '- none: every level\'s range overlaps every other\'s.'}`;
  const peerLines = r.peers.filter((p) => !('skipped' in p)).map((p) => `- **${p.name}**: ${(p as { promise: string }).promise}. ${(p as { setup: string }).setup}.`);
  if (r.peers.length === 0) peerLines.push('- The peers (redis, etcd) were not run: `--full` or `--peers redis,etcd` runs them with the same load.');
  return `${rows.join('\n')}

Staleness: the share of reads at R returning a write acknowledged at W just before (t = 0), without / with the injected delay (the level's R and W; \`strong\` reads a majority and writes the merge back). ${r.cpuNote}

${spreadNote}

What the stores promise differs, so the figures are costs, not a ranking:

- **tunekv \`strong\`**: no stale read of acknowledged writes (a read returns every write acknowledged with \`strong\` before it began); concurrent writes are kept as siblings for the client to merge. \`quorum\` and \`r=3,w=3\` overlap read and write sets (R + W > N); \`eventual\` answers from one replica.
${peerLines.join('\n')}`;
}

// ---- tables ----

function latencyTable(cells: CellReport[], echo: Percentiles): string {
  const rows = ['| phase | store | workload | keys | loop | level | run | op | ops/s (op) | ops/s (total) | CPU µs/op (nodes + client) | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p50 / echo p50 | p99 / echo p99 | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const c of cells) {
    for (const [op, p] of [['read', c.read], ['write', c.write]] as const) {
      if (p.count === 0) continue;
      const share = c.ops > 0 ? Math.round((c.throughput * p.count) / c.ops) : 0;
      const errors = Object.entries(c.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
      rows.push(`| ${c.phase} | ${c.store} | ${c.workload} | ${c.distribution} | ${c.loop}${c.loop === 'open' ? ` @${c.offeredRate}/s` : ` ×${c.clients}`} | ${c.level} | ${c.run} | ${op} | ${share} | ${c.throughput} | ${cpuText(c.cpu)} | ${f(p.p50)} | ${f(p.p90)} | ${f(p.p99)} | ${f(p.p999)} | ${f(p.max)} | ${ratio(p.p50, echo.p50)} | ${ratio(p.p99, echo.p99)} | ${errors} |`);
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

function sweepSection(r: BenchReport): string {
  if (r.sweep.length === 0) return 'Not run (`--full` runs it).';
  const rows = ['| level | offered ops/s | achieved ops/s | p50 ms | p99 ms | CPU µs/op | |', '|---|---|---|---|---|---|---|'];
  for (const s of r.sweep) {
    for (const p of s.points) {
      rows.push(`| ${s.level} | ${int(p.offered)} | ${int(p.achieved)} | ${f(p.p50Ms)} | ${f(p.p99Ms)} | ${p.cpuUsPerOp ?? '-'} | ${p.verdict === 'ok' ? '' : p.verdict === 'rate-short' ? 'saturated: achieved < 90% of offered' : 'saturated: p99 exploded'} |`);
    }
  }
  const ended = r.sweep.map((s) => `- \`${s.level}\`: ${s.ended}`).join('\n');
  return `An open loop (YCSB A, requests on a schedule, each timed from when it was due, so queueing is charged: coordinated omission corrected) at rising offered rates, per level, until the store is saturated: it achieves less than 90% of the offered rate, or its p99 grows past both 10× the p99 of the first step and 100 ms.

![Latency against throughput](sweep.svg)

${ended}

${rows.join('\n')}`;
}

function profileSection(r: BenchReport): string {
  if (r.profiles.length === 0) return r.profileNote;
  const parts = [r.profileNote];
  for (const p of r.profiles) {
    const total = p.busyMs + p.idleMs;
    const rows = ['| by self time | ms | share of busy | by inclusive time | ms | share of busy |', '|---|---|---|---|---|---|'];
    for (let i = 0; i < Math.max(p.self.length, p.inclusive.length); i++) {
      const s = p.self[i];
      const n = p.inclusive[i];
      rows.push(`| ${s ? `\`${s.name}\`` : ''} | ${s ? s.ms.toFixed(0) : ''} | ${s ? `${(s.share * 100).toFixed(1)}%` : ''} | ${n ? `\`${n.name}\`` : ''} | ${n ? n.ms.toFixed(0) : ''} | ${n ? `${(n.share * 100).toFixed(1)}%` : ''} |`);
    }
    parts.push(`### ${p.process}\n\nBusy ${p.busyMs.toFixed(0)} ms of ${total.toFixed(0)} ms sampled (${total > 0 ? ((100 * p.idleMs) / total).toFixed(0) : 0}% idle, excluded below).\n\n${rows.join('\n')}`);
  }
  return parts.join('\n\n');
}

function scaleSection(r: BenchReport): string {
  if (!r.scale.ran) return r.scale.note;
  const rows = ['| keys stored | ops/s | CPU µs/op | RSS MB per node |', '|---|---|---|---|'];
  for (const p of r.scale.points) rows.push(`| ${int(p.keys)} | ${int(p.opsPerSec)} | ${int(p.cpuUsPerOp)} | ${p.rssMb.map((x) => x.toFixed(0)).join(', ')} |`);
  return `${r.scale.note}\n\n![ops/s against keys stored](scale-ops.svg)\n\n![CPU per operation against keys stored](scale-cpu.svg)\n\n![RSS per node against keys stored](scale-rss.svg)\n\n${rows.join('\n')}`;
}

/** The report as markdown; plots are referenced by file, and a plot this
 * run did not draw is left out. */
export function markdown(r: BenchReport, charts: readonly { file?: string }[] = []): string {
  const drawn = new Set(charts.map((c) => c.file));
  return markdownText(r).split('\n').filter((l) => {
    const img = /^!\[[^\]]*\]\(([^)]+)\)$/.exec(l);
    return img === null || drawn.has(img[1]);
  }).join('\n').replace(/\n{3,}/g, '\n\n');
}

function markdownText(r: BenchReport): string {
  const header = Object.entries(r.header).map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  const metText = (m: boolean | null) => (m === null ? 'not measured' : m ? 'met' : 'missed');
  const targets = r.targets.map((t) => `| ${t.name} | ${t.goal} | ${t.measured} | ${metText(t.met)} |`).join('\n');
  const charts = (prefix: string, names: string[]) => names.map((n) => `![${prefix}](${n})`).join('\n\n');
  return `# tunekv benchmark, ${r.startedAt}

${r.header.machine ?? ''}; ${r.header.cluster ?? ''}; tunekv ${r.header.tunekv ?? ''}.

## What each level costs

${summary(r)}

## Targets

Issue 9's targets, on this machine; figures on a busy shared machine move with the neighbours (CPU per operation much less than ops/s).

| target | goal | measured | |
|---|---|---|---|
${targets}

## Latency against throughput

${sweepSection(r)}

## Where the CPU goes

${profileSection(r)}

## Cost against keys stored

${scaleSection(r)}

## Every cell

Closed loop: the given number of clients, each sending its next request when the last one answers. Open loop: requests on a fixed schedule, each timed from when it was due (coordinated omission corrected). ops/s (op) is that operation's rate; ops/s (total) adds reads and writes. CPU per operation counts every server process and the load client (${r.cpuNote})

${charts('latency', ['latency-unloaded-get.svg', 'latency-unloaded-put.svg', 'latency-loaded-get.svg', 'latency-loaded-put.svg', 'latency-delay-get.svg', 'latency-delay-put.svg'])}

${latencyTable(r.cells, r.echo)}

## Staleness

Probability that a read at R, issued t ms after a write was acknowledged at W, returns it (PBS t-visibility); the write goes through the key's first primary and the read through its second. When a read is stale, how many versions behind it is (k-staleness).

${charts('staleness', ['staleness-0.svg', 'staleness-1.svg'])}

${stalenessTable(r.staleness)}

## The floor

A plain \`node:net\` echo round trip (128 bytes, two processes), measured in this run: p50 ${f(r.echo.p50)} ms, p90 ${f(r.echo.p90)} ms, p99 ${f(r.echo.p99)} ms, p99.9 ${f(r.echo.p999)} ms, max ${f(r.echo.max)} ms (${r.echo.count} round trips). Ratios divide a latency by the echo at the same percentile.

## Machine and configuration

| | |
|---|---|
${header}

Configuration: \`${JSON.stringify(r.config)}\`

Raw results: \`results.json\`; histograms: \`*.hgrm\`; plots: \`*.svg\`.
`;
}

// ---- SVG ----

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
/** Dash patterns and marker shapes per series, so curves that lie on one
 * another (levels often do) stay distinguishable. */
const dashes = ['', '8 4', '2 3', '10 3 2 3', '4 2', '1 4'];
const markers = ['circle', 'square', 'triangle', 'diamond', 'cross', 'triangle-down'] as const;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function marker(shape: typeof markers[number], x: number, y: number, color: string): string {
  const s = 3.5;
  switch (shape) {
    case 'circle': return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${s - 0.5}" fill="${color}"/>`;
    case 'square': return `<rect x="${(x - s + 0.5).toFixed(1)}" y="${(y - s + 0.5).toFixed(1)}" width="${2 * s - 1}" height="${2 * s - 1}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
    case 'triangle': return `<polygon points="${x.toFixed(1)},${(y - s).toFixed(1)} ${(x - s).toFixed(1)},${(y + s).toFixed(1)} ${(x + s).toFixed(1)},${(y + s).toFixed(1)}" fill="${color}"/>`;
    case 'triangle-down': return `<polygon points="${x.toFixed(1)},${(y + s).toFixed(1)} ${(x - s).toFixed(1)},${(y - s).toFixed(1)} ${(x + s).toFixed(1)},${(y - s).toFixed(1)}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
    case 'diamond': return `<polygon points="${x.toFixed(1)},${(y - s).toFixed(1)} ${(x - s).toFixed(1)},${y.toFixed(1)} ${x.toFixed(1)},${(y + s).toFixed(1)} ${(x + s).toFixed(1)},${y.toFixed(1)}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
    case 'cross': return `<path d="M${(x - s).toFixed(1)},${(y - s).toFixed(1)}L${(x + s).toFixed(1)},${(y + s).toFixed(1)}M${(x - s).toFixed(1)},${(y + s).toFixed(1)}L${(x + s).toFixed(1)},${(y - s).toFixed(1)}" stroke="${color}" stroke-width="1.5"/>`;
    default: { const never: never = shape; return never; }
  }
}

interface Series {
  name: string;
  points: [number, number][];
  /** Series sharing a style index share colour and marker (p50 and p99 of one level). */
  style?: number;
  /** A dash pattern instead of the style's own. */
  dash?: string;
}

/** A line chart; x and y may be log-scaled. */
function chart(title: string, xLabel: string, yLabel: string, series: Series[], opts: {
  xTicks: [number, string][]; xOf: (x: number) => number; yLog: boolean; yMin?: number; yMax?: number; yPercent?: boolean;
}): string {
  const W = 720;
  const H = 380;
  const m = { l: 70, r: 190, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => Number.isFinite(y) && (!opts.yLog || y > 0));
  let yMin = opts.yMin ?? Math.min(...all, opts.yLog ? 1 : 0);
  let yMax = opts.yMax ?? Math.max(...all, 1e-3);
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
    const label = opts.yLog ? (v >= 1 ? v.toFixed(0) : String(Number(v.toPrecision(1))))
      : opts.yPercent ? `${(v * 100).toFixed(0)}%` : int(v);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${label}</text>`);
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
    const style = s.style ?? i;
    const color = palette[style % palette.length]!;
    const dash = s.dash ?? dashes[style % dashes.length]!;
    const shape = markers[style % markers.length]!;
    const dashAttr = dash === '' ? '' : ` stroke-dasharray="${dash}"`;
    const pts = s.points.filter(([, y]) => Number.isFinite(y));
    parts.push(`<polyline points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dashAttr}/>`);
    for (const [x, y] of pts) parts.push(marker(shape, px(x), py(y), color));
    const ly = m.t + 10 + i * 18;
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dashAttr}/>`);
    parts.push(marker(shape, W - m.r + 26, ly, color));
    parts.push(`<text x="${W - m.r + 46}" y="${ly + 4}">${esc(s.name)}</text>`);
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
  series.push({ name: 'echo floor', points: echoCurve, dash: '3 3' });
  return chart(title, 'percentile', 'latency (ms, log scale)', series, { xTicks: percentileTicks, xOf: ninesOf, yLog: true });
}

export function stalenessChart(title: string, curves: StalenessCurve[]): string {
  const ts = curves[0]?.points.map((p) => p.tMs) ?? [0];
  const xOf = (t: number) => Math.log10(t + 1);
  const series = curves.map((c) => ({ name: `R=${c.r} W=${c.w}`, points: c.points.map((p) => [p.tMs, p.pFresh] as [number, number]) }));
  return chart(title, 't: ms after the write was acknowledged (log scale)', 'reads returning the write', series,
    { xTicks: ts.map((t) => [t, String(t)]), xOf, yLog: false, yMin: 0, yMax: 1, yPercent: true });
}

/** Round ticks for a linear axis from 0 to max. */
function linearTicks(max: number, format: (x: number) => string): [number, string][] {
  const raw = Math.max(max, 1) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const ticks: [number, string][] = [];
  for (let x = 0; x <= max + step * 0.999; x += step) ticks.push([x, format(x)]);
  return ticks;
}

/** p50 (solid) and p99 (dashed) against achieved ops/s, one colour and
 * marker per level. */
export function sweepChart(title: string, curves: SweepCurve[]): string {
  const series: Series[] = curves.flatMap((c, i) => [
    { name: `${c.level} p50`, points: c.points.map((p) => [p.achieved, p.p50Ms] as [number, number]), style: i, dash: '' },
    { name: `${c.level} p99`, points: c.points.map((p) => [p.achieved, p.p99Ms] as [number, number]), style: i, dash: '6 4' },
  ]);
  const xMax = Math.max(1, ...curves.flatMap((c) => c.points.map((p) => p.achieved)));
  return chart(title, 'achieved ops/s (reads + writes)', 'latency (ms, log scale)', series,
    { xTicks: linearTicks(xMax, int), xOf: (x) => x, yLog: true });
}

/** One figure of the scale phase against keys stored (log axis). */
export function scaleChart(title: string, yLabel: string, series: Series[]): string {
  const keys = series.flatMap((s) => s.points.map(([x]) => x));
  const lo = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...keys))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(10, ...keys)));
  const ticks: [number, string][] = [];
  for (let k = lo; k <= hi; k *= 10) ticks.push([k, k >= 1e6 ? `${k / 1e6}M` : k >= 1e3 ? `${k / 1e3}k` : String(k)]);
  return chart(title, 'keys stored (log scale)', yLabel, series, { xTicks: ticks, xOf: (x) => Math.log10(Math.max(1, x)), yLog: false, yMin: 0 });
}

export function scaleCharts(s: ScaleReport): Chart[] {
  if (!s.ran || s.points.length === 0) return [];
  const pts = (pick: (p: ScaleReport['points'][number]) => number): [number, number][] => s.points.map((p) => [p.keys, pick(p)]);
  const nodes = Math.max(0, ...s.points.map((p) => p.rssMb.length));
  return [
    { title: 'ops/s against keys stored', file: 'scale-ops.svg', svg: scaleChart('ops/s against keys stored', 'ops/s', [{ name: 'ops/s', points: pts((p) => p.opsPerSec) }]) },
    { title: 'CPU per operation against keys stored', file: 'scale-cpu.svg', svg: scaleChart('CPU per operation against keys stored', 'CPU µs per operation', [{ name: 'CPU µs/op', points: pts((p) => p.cpuUsPerOp) }]) },
    { title: 'RSS per node against keys stored', file: 'scale-rss.svg', svg: scaleChart('RSS per node against keys stored', 'RSS MB', Array.from({ length: nodes }, (_, i) => ({ name: `node ${i + 1}`, points: pts((p) => p.rssMb[i] ?? NaN) }))) },
  ];
}

// ---- HTML: the markdown, converted line by line, plots inlined ----

function inline(text: string): string {
  return esc(text).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<b>$1</b>');
}

function tableHtml(lines: string[]): string {
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => inline(c.trim()));
  const head = `<tr>${cells(lines[0]!).map((c) => `<th>${c}</th>`).join('')}</tr>`;
  const body = lines.slice(2).map((l) => `<tr>${cells(l).map((c) => `<td class="${c === 'met' ? 'met' : c === 'missed' ? 'missed' : ''}">${c}</td>`).join('')}</tr>`).join('\n');
  return `<table>${head}\n${body}</table>`;
}

/** The markdown this file writes, as HTML: headings, tables, lists,
 * paragraphs, and each ![title](file.svg) replaced by that chart's SVG. */
export function markdownToHtml(md: string, charts: readonly { file?: string; svg: string }[]): string {
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length;) {
    const line = lines[i]!;
    const img = /^!\[[^\]]*\]\(([^)]+)\)$/.exec(line);
    if (line.startsWith('|')) {
      const block: string[] = [];
      while (i < lines.length && lines[i]!.startsWith('|')) block.push(lines[i++]!);
      out.push(tableHtml(block));
      continue;
    }
    if (line.startsWith('- ')) {
      const items: string[] = [];
      while (i < lines.length && lines[i]!.startsWith('- ')) items.push(`<li>${inline(lines[i++]!.slice(2))}</li>`);
      out.push(`<ul>${items.join('')}</ul>`);
      continue;
    }
    i++;
    if (img) {
      const c = charts.find((x) => x.file === img[1]);
      if (c) out.push(`<figure>${c.svg}</figure>`);
    } else if (line.startsWith('### ')) out.push(`<h3>${inline(line.slice(4))}</h3>`);
    else if (line.startsWith('## ')) out.push(`<h2>${inline(line.slice(3))}</h2>`);
    else if (line.startsWith('# ')) out.push(`<h1>${inline(line.slice(2))}</h1>`);
    else if (line.trim() !== '') out.push(`<p>${inline(line)}</p>`);
  }
  return out.join('\n');
}

export function html(r: BenchReport, charts: readonly { file?: string; svg: string }[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunekv benchmark ${esc(r.startedAt)}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1500px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.met { color: #1a7f37; font-weight: bold; } .missed { color: #c62828; font-weight: bold; }
figure { display: inline-block; margin: 6px; }
code { background: #f5f5f5; padding: 1px 4px; }
</style></head><body>
${markdownToHtml(markdown(r, charts), charts)}
</body></html>
`;
}

export function writeReport(dir: string, r: BenchReport, hgrms: Map<string, string>, charts: Chart[]): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'report.md'), markdown(r, charts));
  fs.writeFileSync(path.join(dir, 'report.html'), html(r, charts));
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(r, null, 2));
  for (const [name, text] of hgrms) fs.writeFileSync(path.join(dir, `${name}.hgrm`), text);
  for (const c of charts) fs.writeFileSync(path.join(dir, c.file), c.svg);
}
