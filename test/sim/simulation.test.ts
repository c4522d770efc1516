// The seeded simulator: a quarter of the 1,000 seeds make test runs (the
// rest are simulation-2, -3 and -4.test.ts: tap runs two files at once and
// stops a file after 240 s, and 500 seeds in one file passed that on a
// busy machine). Each seed is a whole cluster under crashes,
// pauses, partitions, a lossy, reordering network and changes of shape
// (joins, leaves, removes, replacements, a joiner killed mid-transfer); see
// src/sim/simulator.ts for the checkers and test/sim/run-seeds.ts for the
// known-failures list. A failure prints the seed, every knob and the replay
// command.
import t from 'tap';
import { knobsFor, simulate } from '../../src/sim/simulator.js';
import { runSeeds } from './run-seeds.js';

// Seeds 1..250 here, 251..1000 in simulation-2..4.test.ts (TUNEKV_SIM_FROM
// and TUNEKV_SIM_SEEDS choose another range for this file alone).
const seeds = Number(process.env.TUNEKV_SIM_SEEDS ?? 250);
const from = Number(process.env.TUNEKV_SIM_FROM ?? 1);

t.test(`${seeds} seeded simulations from seed ${from}`, (t) => runSeeds(t, from, seeds));

t.test('a seed replays exactly', async (t) => {
  const knobs = knobsFor(7);
  const a = await simulate(knobs);
  const b = await simulate(knobs);
  t.same(a.stats, b.stats, 'same messages, faults, repairs and timings');
});
