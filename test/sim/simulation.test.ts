// The seeded simulator over 1,000 seeds (TUNEKV_SIM_SEEDS to change how
// many). Each seed is a whole cluster under crashes, pauses, partitions, a
// lossy, reordering network and changes of shape (joins, leaves, removes,
// replacements, a joiner killed mid-transfer); see src/sim/simulator.ts
// for the checkers. A failure prints the seed, every knob and the replay
// command.
//
// Known failures: none today. The list is for a seed that breaks a checker
// and cannot be mended at once: the test demands that the failing seeds are
// exactly the listed ones, so a new failure fails it, and so does a listed
// seed that starts passing (take it off the list).
import t from 'tap';
import { knobsFor, replayCommand, simulate } from '../../src/sim/simulator.js';

const seeds = Number(process.env.TUNEKV_SIM_SEEDS ?? 1000);
const from = Number(process.env.TUNEKV_SIM_FROM ?? 1);

const knownFailing = new Set<number>([]);

t.test(`${seeds} seeded simulations`, async (t) => {
  let acked = 0;
  let faults = 0;
  let repairs = 0;
  let shapeChanges = 0;
  const failing: number[] = [];
  for (let seed = from; seed < from + seeds; seed++) {
    const knobs = knobsFor(seed);
    const r = await simulate(knobs);
    acked += r.stats.acked;
    faults += r.stats.faults.length;
    shapeChanges += r.stats.faults.filter((f) => / (join|leave|remove|replace) /.test(f) && !f.includes('refused') && !f.includes('gave up')).length;
    repairs += r.stats.aaeRepairs + r.stats.readRepairs + r.stats.handoffs;
    if (!r.ok) {
      failing.push(seed);
      if (!knownFailing.has(seed)) {
        t.fail(`seed ${seed}: ${r.violations.join('; ')}\n  knobs: ${JSON.stringify(knobs)}\n  replay: ${replayCommand(knobs)}`);
      }
    }
  }
  const expected = [...knownFailing].filter((s) => s >= from && s < from + seeds);
  t.same(failing.filter((s) => knownFailing.has(s)), expected, 'the known failing seeds (issue 8, open) still fail, and no other');
  t.ok(acked > seeds * 5, `${acked} acknowledged writes checked`);
  t.ok(faults > seeds, `${faults} faults injected`);
  t.ok(shapeChanges > seeds / 2, `${shapeChanges} joins, leaves, removes and replacements committed`);
  t.ok(repairs > seeds, `${repairs} repairs (anti-entropy, read repair, handoff) made`);
});

t.test('a seed replays exactly', async (t) => {
  const knobs = knobsFor(7);
  const a = await simulate(knobs);
  const b = await simulate(knobs);
  t.same(a.stats, b.stats, 'same messages, faults, repairs and timings');
});
