// The seeded simulator over a few hundred seeds (TUNEKV_SIM_SEEDS to change
// how many). Each seed is a whole cluster under crashes, pauses,
// partitions and a lossy, reordering network; see src/sim/simulator.ts for
// the checkers. A failure prints the seed, every knob and the replay command.
import t from 'tap';
import { knobsFor, replayCommand, simulate } from '../../src/sim/simulator.js';

const seeds = Number(process.env.TUNEKV_SIM_SEEDS ?? 300);
const from = Number(process.env.TUNEKV_SIM_FROM ?? 1);

t.test(`${seeds} seeded simulations`, async (t) => {
  let acked = 0;
  let faults = 0;
  let repairs = 0;
  for (let seed = from; seed < from + seeds; seed++) {
    const knobs = knobsFor(seed);
    const r = await simulate(knobs);
    acked += r.stats.acked;
    faults += r.stats.faults.length;
    repairs += r.stats.aaeRepairs + r.stats.readRepairs + r.stats.handoffs;
    if (!r.ok) {
      t.fail(`seed ${seed}: ${r.violations.join('; ')}\n  knobs: ${JSON.stringify(knobs)}\n  replay: ${replayCommand(knobs)}`);
    }
  }
  t.ok(acked > seeds * 5, `${acked} acknowledged writes checked`);
  t.ok(faults > seeds, `${faults} faults injected`);
  t.ok(repairs > seeds, `${repairs} repairs (anti-entropy, read repair, handoff) made`);
});

t.test('a seed replays exactly', async (t) => {
  const knobs = knobsFor(7);
  const a = await simulate(knobs);
  const b = await simulate(knobs);
  t.same(a.stats, b.stats, 'same messages, faults, repairs and timings');
});
