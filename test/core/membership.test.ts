import t from 'tap';
import { Membership } from '../../src/core/membership/membership.js';
import { selectTargets } from '../../src/core/coordinator/targets.js';

const cfg = { suspectAfterMs: 1000, downAfterMs: 3000 };

/** Moves a detector's time forward the way a running node does: it looks at
 * the clock every gossip round (100 ms here), never skipping more. */
function advance(m: Membership, from: number, to: number): void {
  for (let now = from + 100; now < to; now += 100) m.refresh(now);
  m.refresh(to);
}

t.test('a silent peer goes up → suspect → down, and back up on a new heartbeat', async (t) => {
  const a = new Membership('a', 1, cfg);
  const b = new Membership('b', 1, cfg);
  a.track(['a', 'b'], 0);
  b.track(['a', 'b'], 0);
  a.merge(b.tick(0, 0), 0);
  t.equal(a.stateOf('b'), 'up');
  advance(a, 0, 999);
  t.equal(a.stateOf('b'), 'up', 'just under the suspect threshold');
  advance(a, 999, 1000);
  t.equal(a.stateOf('b'), 'suspect');
  advance(a, 1000, 3000);
  t.equal(a.stateOf('b'), 'down');
  t.equal(a.statuses()[0]!.sinceMs, 3000, 'since when');
  a.merge(b.tick(3500, 7), 3500);
  t.equal(a.stateOf('b'), 'up', 'its heartbeat grew');
  t.equal(a.lastHeard('b')?.hintsPending, 7, 'hint counts travel with heartbeats');
});

t.test('an old heartbeat does not revive a peer; a restart (new generation) does', async (t) => {
  const a = new Membership('a', 1, cfg);
  a.track(['a', 'b'], 0);
  a.merge([['b', 5, 10, 0]], 0);
  advance(a, 0, 5000);
  t.equal(a.stateOf('b'), 'down');
  a.merge([['b', 5, 9, 0]], 5000);
  t.equal(a.stateOf('b'), 'down', 'a stale heartbeat changes nothing');
  a.merge([['b', 6, 1, 0]], 5001);
  t.equal(a.stateOf('b'), 'up', 'a later generation wins even with a smaller counter');
});

t.test('a refused connection is down at once until the peer is heard from', async (t) => {
  const a = new Membership('a', 1, cfg);
  a.track(['a', 'b'], 0);
  a.refused('b', 10);
  t.equal(a.stateOf('b'), 'down');
  a.refresh(20);
  t.equal(a.stateOf('b'), 'down', 'silence thresholds do not undo direct evidence');
  a.heardFrom('b', 30);
  t.equal(a.stateOf('b'), 'up');
  t.ok(a.isUp('a'), 'a node never suspects itself');
});

t.test('gossip targets: deterministic for a given random source', async (t) => {
  const a = new Membership('a', 1, cfg);
  a.track(['a', 'b', 'c', 'd', 'e'], 0);
  let x = 0.1;
  const rnd = () => { x = (x * 9301 + 0.49297) % 1; return x; };
  const first = a.gossipTargets(2, rnd);
  x = 0.1;
  t.same(a.gossipTargets(2, rnd), first);
  t.equal(new Set(first).size, first.length, 'no peer twice');
});

t.test('sloppy targets: fallbacks stand in for down primaries, strong never uses them', async (t) => {
  const pl = { partition: 0, primaries: ['a', 'b', 'c'], fallbacks: ['d', 'e'] };
  const up = (down: string[]) => (id: string) => !down.includes(id);
  t.same(selectTargets(pl, up([]), true).targets.map((x) => x.node), ['a', 'b', 'c']);
  const one = selectTargets(pl, up(['b']), true);
  t.same(one.targets, [{ node: 'a', role: 'primary' }, { node: 'c', role: 'primary' }, { node: 'd', role: 'fallback', hintFor: 'b' }]);
  t.same(one.down, []);
  const skip = selectTargets(pl, up(['b', 'd']), true);
  t.same(skip.targets.at(-1), { node: 'e', role: 'fallback', hintFor: 'b' }, 'the next live fallback');
  const tooMany = selectTargets(pl, up(['a', 'b', 'c', 'd']), true);
  t.same(tooMany.targets.map((x) => [x.node, x.hintFor]), [['e', 'a']]);
  t.same(tooMany.down, ['b', 'c'], 'no fallback left for b and c');
  const strong = selectTargets(pl, up(['b']), false);
  t.same(strong.targets.map((x) => x.node), ['a', 'c']);
  t.same(strong.down, ['b']);
});

t.test('a node that was itself stalled does not declare everyone down when it wakes', async (t) => {
  const a = new Membership('a', 1, cfg);
  a.track(['a', 'b', 'c'], 0);
  a.tick(0, 0);
  a.merge([['b', 1, 1, 0], ['c', 1, 1, 0]], 100);
  a.refresh(200);
  a.refresh(10_000); // nothing ran for ten seconds: we were paused
  t.equal(a.stateOf('b'), 'up', 'the silence was ours');
  t.equal(a.stateOf('c'), 'up');
  advance(a, 10_000, 13_000);
  t.equal(a.stateOf('b'), 'down', 'but a peer that stays silent afterwards still goes down');
});
