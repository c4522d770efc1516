// The benchmark's pieces: workloads, level parsing, histograms and the
// report (the full run is `make bench`, measured, never asserted on timing).
import t from 'tap';
import { chooser } from '../../bench/workload.js';
import { parseLevel } from '../../bench/loops.js';
import { curve, newHistogram, percentiles } from '../../bench/histogram.js';
import { html, latencyChart, markdown, stalenessChart } from '../../bench/report.js';
import type { BenchReport, CellReport } from '../../bench/report.js';
import { compareSpreads, formatSpread, spreadOf } from '../../bench/spread.js';
import { defaultSweepConfig, sweepRates, sweepVerdict } from '../../bench/sweep.js';
import { summarizeProfile } from '../../bench/profile.js';

t.test('key choice: uniform spreads, Zipfian concentrates on a few keys', async (t) => {
  const count = (d: 'uniform' | 'zipfian') => {
    const c = chooser(d, 1000, 1);
    const hits = new Map<number, number>();
    for (let i = 0; i < 100_000; i++) { const k = c.next(); hits.set(k, (hits.get(k) ?? 0) + 1); }
    return [...hits.values()].sort((a, b) => b - a);
  };
  const u = count('uniform');
  const z = count('zipfian');
  t.ok(u[0]! < 200, `uniform: the hottest key has ${u[0]} of 100,000`);
  t.ok(z[0]! > 5000, `zipfian: the hottest key has ${z[0]} of 100,000`);
  t.ok(z.slice(0, 10).reduce((a, b) => a + b, 0) > 25_000, 'zipfian: ten keys take a quarter of the load');
  const again = chooser('zipfian', 1000, 1);
  const first = chooser('zipfian', 1000, 1);
  t.same(Array.from({ length: 20 }, () => again.next()), Array.from({ length: 20 }, () => first.next()), 'seeded: repeatable');
});

t.test('levels parse', async (t) => {
  t.same(parseLevel('quorum'), { name: 'quorum', read: { consistency: 'quorum' }, write: { consistency: 'quorum' } });
  t.same(parseLevel('r=3,w=3'), { name: 'r=3,w=3', read: { r: 3 }, write: { w: 3 } });
  t.same(parseLevel('r1w2').name, 'r=1,w=2');
  t.throws(() => parseLevel('linearizable'), /must be eventual/);
});

t.test('histograms report percentiles in ms', async (t) => {
  const h = newHistogram();
  for (let i = 1; i <= 1000; i++) h.recordValue(i * 10); // 10 µs .. 10 ms
  const p = percentiles(h);
  t.equal(p.count, 1000);
  t.ok(Math.abs(p.p50 - 5) < 0.05, `p50 ${p.p50} ms`);
  t.ok(Math.abs(p.p99 - 9.9) < 0.05, `p99 ${p.p99} ms`);
  t.equal(curve(h).length, 10);
});

t.test('the report: markdown tables, a self-contained HTML page with SVG plots', async (t) => {
  const h = newHistogram();
  for (let i = 1; i <= 100; i++) h.recordValue(100 + i);
  const pct = percentiles(h);
  const cell = (level: string): CellReport => ({
    id: level, store: 'tunekv', phase: 'unloaded', workload: 'A', distribution: 'uniform', loop: 'closed', level, run: 1, clients: 1, elapsedMs: 1000,
    ops: 200, throughput: 200, errors: {}, cpu: { nodesUsPerOp: 300, clientUsPerOp: 40, totalUsPerOp: 340, cores: 0.07 },
    read: pct, write: pct, readCurve: curve(h), writeCurve: curve(h),
  });
  const staleness = [{ r: 1, w: 1, delay: 'none', points: [0, 5].map((tMs) => ({ tMs, trials: 10, fresh: 5, pFresh: 0.5, meanVersionsBehind: 1, maxVersionsBehind: 2, errors: 0 })) }];
  const report: BenchReport = {
    startedAt: '2026-01-01T00:00:00Z', header: { machine: 'test' }, config: { clients: 1 }, echo: pct, echoCurve: curve(h),
    cells: [cell('eventual'), cell('quorum')], staleness, targets: [{ name: 'x', goal: 'y', measured: 'z', met: false }],
    cpuNote: 'cpu note', sweep: [], peers: [{ name: 'etcd', skipped: 'not installed' }], profiles: [], profileNote: 'not profiled',
    scale: { ran: false, note: 'The scale phase was not run.', points: [] },
  };
  const md = markdown(report);
  t.match(md, /\| unloaded \| tunekv \| A \| uniform \| closed ×1 \| eventual \| 1 \| read \| 100 \| 200 \| 340 \(300 \+ 40\) \|/);
  t.ok(md.indexOf('## What each level costs') < md.indexOf('## Targets'), 'the summary comes before the targets');
  t.match(md, /\| tunekv `eventual` \|/);
  t.match(md, /\| etcd \| skipped: not installed \|/);
  t.match(md, /Each cell ran once, so no difference is called out/);
  t.match(md, /The scale phase was not run/);
  t.match(md, /\| 1 \| 1 \| none \| 50% \| 50% \| 1.00 \/ 2 \|/);
  const svg = latencyChart('t', report.cells, 'read', report.echoCurve);
  t.match(svg, /^<svg /);
  t.match(svg, /echo floor/);
  t.match(stalenessChart('s', staleness), /R=1 W=1/);
  const page = html(report, [{ file: 'latency-unloaded-get.svg', svg }]);
  t.match(page, /<svg /);
  t.notMatch(page, /<script|https?:\/\/(?!www\.w3\.org)/, 'no scripts, nothing fetched');
});

t.test('percentiles never exceed the recorded max', async (t) => {
  const h = newHistogram();
  h.recordValue(5);
  h.recordValue(10_001); // its bucket's highest value is 10,007 at 3 significant digits
  t.ok(h.getValueAtPercentile(99.9) > h.maxValue, 'the raw histogram answer is above max');
  const p = percentiles(h);
  t.equal(p.max, 10.001);
  t.ok(p.p999 <= p.max && p.p99 <= p.max, `p99 ${p.p99} p99.9 ${p.p999} ≤ max ${p.max}`);
  t.ok(curve(h).every(([, ms]) => ms <= p.max), 'the plotted curve too');
});

t.test('sweep: geometric rates, stop when the rate falls short or p99 explodes', async (t) => {
  const c = { ...defaultSweepConfig, startRate: 1000, factor: 2, maxRate: 8000 };
  t.same(sweepRates(c), [1000, 2000, 4000, 8000]);
  t.throws(() => sweepRates({ ...c, factor: 1 }), /factor > 1/);
  const first = { offered: 1000, achieved: 1000, p50Ms: 0.3, p99Ms: 1 };
  t.equal(sweepVerdict(first, first, c), 'ok');
  t.equal(sweepVerdict({ offered: 1000, achieved: 850, p50Ms: 0.3, p99Ms: 1 }, undefined, c), 'rate-short', 'the first step judges only its rate');
  t.equal(sweepVerdict({ offered: 4000, achieved: 3700, p50Ms: 1, p99Ms: 9 }, first, c), 'ok', '92.5% achieved, p99 9×');
  t.equal(sweepVerdict({ offered: 4000, achieved: 3500, p50Ms: 1, p99Ms: 2 }, first, c), 'rate-short', '87.5% achieved');
  t.equal(sweepVerdict({ offered: 4000, achieved: 4000, p50Ms: 5, p99Ms: 11 }, first, c), 'ok', 'p99 11× but 11 ms: queueing, not saturation');
  t.equal(sweepVerdict({ offered: 4000, achieved: 4000, p50Ms: 5, p99Ms: 101 }, first, c), 'p99-exploded', 'past 10× and past 100 ms');
  const slow = { offered: 1000, achieved: 1000, p50Ms: 5, p99Ms: 20 };
  t.equal(sweepVerdict({ offered: 4000, achieved: 4000, p50Ms: 50, p99Ms: 150 }, slow, c), 'ok', 'past 100 ms but under 10× a slow first step');
});

t.test('spread: a difference is called out only beyond both ranges', async (t) => {
  t.same(spreadOf([3, 1, 2]), { n: 3, min: 1, max: 3, median: 2 });
  t.equal(spreadOf([1, 2, 3, 10]).median, 2.5);
  t.throws(() => spreadOf([]), TypeError);
  t.equal(compareSpreads(spreadOf([10, 11, 12]), spreadOf([5, 6, 7])), 'higher');
  t.equal(compareSpreads(spreadOf([5, 6, 7]), spreadOf([10, 11, 12])), 'lower');
  t.equal(compareSpreads(spreadOf([5, 8, 10]), spreadOf([9, 11, 12])), 'within', 'overlapping ranges');
  t.equal(compareSpreads(spreadOf([100]), spreadOf([1])), 'within', 'one run has no spread');
  t.equal(formatSpread(spreadOf([4900, 5000, 5100]), String), '5000 (4900–5100)');
  t.equal(formatSpread(spreadOf([5000]), String), '5000');
});

t.test('profile summary: self and inclusive time, idle excluded, recursion counted once', async (t) => {
  const frame = (functionName: string, url = 'file:///x/dist/src/a.js', lineNumber = 0) => ({ functionName, url, lineNumber });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 5] },
      { id: 2, callFrame: frame('(idle)', ''), children: [] },
      { id: 3, callFrame: frame('outer'), children: [4] },
      { id: 4, callFrame: frame('outer'), children: [6] },
      { id: 5, callFrame: frame('(garbage collector)', ''), children: [] },
      { id: 6, callFrame: frame('leaf', 'file:///x/node_modules/msgpackr/pack.js', 9), children: [] },
    ],
    // every sample stands for the next delta: 1 ms each
    samples: [2, 2, 2, 2, 3, 4, 6, 6, 5, 2],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };
  const s = summarizeProfile('n1', profile, 3);
  t.equal(s.idleMs, 5);
  t.equal(s.busyMs, 5);
  t.same(s.self.map((x) => [x.name, x.ms]), [['leaf msgpackr/pack.js:10', 2], ['outer src/a.js:1', 2], ['(garbage collector)', 1]]);
  t.same(s.inclusive[0], { name: 'outer src/a.js:1', ms: 4, share: 0.8 }, 'outer → outer → leaf counts once');
});
