// Runs seeds [from, from + seeds) of the simulator as one tap test; the
// simulation test files split the 1,000 seeds make test runs between them,
// so each file stays well inside tap's per-file timeout on a busy 2-core
// machine (the whole range took 95-270 s in one file).
import type { Test } from 'tap';
import { knobsFor, replayCommand, simulate } from '../../src/sim/simulator.js';

/** Seeds that break a checker and cannot be mended at once.
 * Each range demands that its failing seeds are exactly the listed ones,
 * so a new failure fails it, and so does a listed seed that starts passing
 * (take it off the list). None at present: 550 (a standby node that took
 * a receiver's copy before it had a ring, then lost its join) is mended
 * (replica.ts refuses replica requests on a node with no ring). */
const knownFailing = new Set<number>([]);

export async function runSeeds(t: Test, from: number, seeds: number): Promise<void> {
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
  t.same(failing.filter((s) => knownFailing.has(s)), expected, 'the known failing seeds still fail, and no other');
  t.ok(acked > seeds * 5, `${acked} acknowledged writes checked`);
  t.ok(faults > seeds, `${faults} faults injected`);
  t.ok(shapeChanges > seeds / 2, `${shapeChanges} joins, leaves, removes and replacements committed`);
  t.ok(repairs > seeds, `${repairs} repairs (anti-entropy, read repair, handoff) made`);
}
