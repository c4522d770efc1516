// The benchmark's pieces: workloads, level parsing, histograms and the
// report (the full run is `make bench`, measured, never asserted on timing).
import t from 'tap';
import { chooser } from '../../bench/workload.js';
import { parseLevel } from '../../bench/loops.js';
import { curve, newHistogram, percentiles } from '../../bench/histogram.js';
import { html, latencyChart, markdown, stalenessChart } from '../../bench/report.js';
import type { BenchReport, CellReport } from '../../bench/report.js';

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
    id: level, phase: 'unloaded', workload: 'A', distribution: 'uniform', loop: 'closed', level, clients: 1, elapsedMs: 1000,
    ops: 200, throughput: 200, errors: {}, read: pct, write: pct, readCurve: curve(h), writeCurve: curve(h),
  });
  const staleness = [{ r: 1, w: 1, delay: 'none', points: [0, 5].map((tMs) => ({ tMs, trials: 10, fresh: 5, pFresh: 0.5, meanVersionsBehind: 1, maxVersionsBehind: 2, errors: 0 })) }];
  const report: BenchReport = {
    startedAt: '2026-01-01T00:00:00Z', header: { machine: 'test' }, config: { clients: 1 }, echo: pct, echoCurve: curve(h),
    cells: [cell('eventual'), cell('quorum')], staleness, targets: [{ name: 'x', goal: 'y', measured: 'z', met: false }],
  };
  const md = markdown(report);
  t.match(md, /\| unloaded \| A \| uniform \| closed ×1 \| eventual \| read \|/);
  t.match(md, /\| 1 \| 1 \| none \| 50% \| 50% \| 1.00 \/ 2 \|/);
  const svg = latencyChart('t', report.cells, 'read', report.echoCurve);
  t.match(svg, /^<svg /);
  t.match(svg, /echo floor/);
  t.match(stalenessChart('s', staleness), /R=1 W=1/);
  const page = html(report, [{ title: 'a', svg }]);
  t.match(page, /<svg /);
  t.notMatch(page, /<script|https?:\/\/(?!www\.w3\.org)/, 'no scripts, nothing fetched');
});
