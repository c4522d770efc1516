import t from 'tap';
import { addFailure, addSuccess, majority, newTally, verdict } from '../../src/core/quorum/tally.js';
import { resolveLevel } from '../../src/core/quorum/levels.js';

t.test('tally verdicts: a table', async (t) => {
  // [required, candidates, successes, failures, verdict]
  const rows: [number, number, number, number, string][] = [
    [2, 3, 0, 0, 'pending'],
    [2, 3, 1, 0, 'pending'],
    [2, 3, 2, 0, 'met'],
    [2, 3, 1, 1, 'pending'],
    [2, 3, 0, 2, 'unreachable'],
    [2, 3, 1, 2, 'unreachable'],
    [3, 3, 2, 1, 'unreachable'],
    [1, 3, 0, 2, 'pending'],
    [1, 3, 0, 3, 'unreachable'],
    [3, 2, 0, 0, 'unreachable'],
    [0, 3, 0, 0, 'met'],
  ];
  for (const [req, cand, ok, fail, want] of rows) {
    let tally = newTally(req, cand);
    for (let i = 0; i < ok; i++) tally = addSuccess(tally);
    for (let i = 0; i < fail; i++) tally = addFailure(tally);
    t.equal(verdict(tally), want, `R=${req} of ${cand}, ${ok} ok ${fail} failed`);
  }
  t.throws(() => newTally(-1, 3));
});

t.test('majority', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4]);
});

t.test('levels resolve to R/W as in the SPEC table', async (t) => {
  t.same(resolveLevel({ consistency: 'eventual' }, 3), { level: 'eventual', r: 1, w: 1, strong: false });
  t.same(resolveLevel({}, 3), { level: 'quorum', r: 2, w: 2, strong: false }, 'quorum is the default');
  t.same(resolveLevel({ consistency: 'quorum' }, 5), { level: 'quorum', r: 3, w: 3, strong: false });
  t.same(resolveLevel({ consistency: 'strong' }, 3), { level: 'strong', r: 2, w: 2, strong: true });
  t.same(resolveLevel({ r: 3, w: 3 }, 3), { level: 'custom', r: 3, w: 3, strong: false });
  t.same(resolveLevel({ r: 1 }, 3), { level: 'custom', r: 1, w: 2, strong: false }, 'unnamed side keeps quorum');
  t.same(resolveLevel({ consistency: 'eventual', w: 3 }, 3), { level: 'custom', r: 1, w: 3, strong: false });
});

t.test('levels: bad input is refused in plain words', async (t) => {
  t.equal(resolveLevel({ r: 4 }, 3), 'r (4) cannot exceed n (3)');
  t.equal(resolveLevel({ w: 0 }, 3), 'w (0) must be an integer of at least 1');
  t.match(resolveLevel({ consistency: 'all' as never }, 3), /consistency must be one of eventual, quorum, strong/);
  t.match(resolveLevel({ consistency: 'strong', r: 2 }, 3), /strong chooses its own/);
});
