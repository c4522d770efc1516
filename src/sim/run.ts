// `tunekv sim`: run the seeded simulator from the command line.
//
//   tunekv sim --seeds 5000            seeds 1..5000, knobs drawn from each seed
//   tunekv sim --seed 42               one seed, printing its knobs and stats
//   tunekv sim --seed 42 --knobs JSON  replay a run exactly (the failure line prints this)
//   tunekv sim --seed 42 --trace k3    also log every client operation on key k3

import { knobsFor, replayCommand, simulate } from './simulator.js';
import type { SimKnobs } from './simulator.js';

export interface SimCommand {
  readonly seed?: number;
  readonly seeds?: number;
  readonly from?: number;
  readonly knobs?: string;
  readonly trace?: string;
  readonly json?: boolean;
}

export async function runSimCommand(cmd: SimCommand): Promise<boolean> {
  const fixed = cmd.knobs ? JSON.parse(cmd.knobs) as Partial<SimKnobs> : {};
  const first = cmd.seed ?? cmd.from ?? 1;
  const count = cmd.seed !== undefined ? 1 : cmd.seeds ?? 100;
  let failures = 0;
  const started = Date.now();
  for (let seed = first; seed < first + count; seed++) {
    const knobs = knobsFor(seed, { ...fixed, seed });
    const report = await simulate(knobs, { trace: cmd.trace });
    if (cmd.json) console.log(JSON.stringify(report));
    else if (!report.ok) {
      failures++;
      console.log(`seed ${seed} FAILED: ${report.violations.join('; ')}`);
      console.log(`  knobs: ${JSON.stringify(knobs)}`);
      console.log(`  stats: ${JSON.stringify(report.stats)}`);
      console.log(`  replay: ${replayCommand(knobs)}`);
    } else if (count === 1) {
      console.log(`seed ${seed} ok: ${JSON.stringify(report.stats)}`);
      console.log(`  knobs: ${JSON.stringify(knobs)}`);
    }
    if (!report.ok && cmd.json) failures++;
  }
  if (!cmd.json) console.log(`${count - failures} of ${count} seeds passed (${first}..${first + count - 1}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failures === 0;
}
