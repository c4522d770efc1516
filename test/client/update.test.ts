// kv.update() against a small in-process model of a key's siblings (a put
// supersedes exactly the versions its context names, as a node does), so
// concurrent writers can be placed exactly between a round's read and its
// write. The same behaviour over real nodes is in test/integration/resolve.test.ts.
import t from 'tap';
import { deleted, update } from '../../src/client/update.js';
import type { UpdateTarget } from '../../src/client/update.js';
import { limits } from '../../src/limits.js';

interface Version { id: number; value: unknown }

class ModelKey implements UpdateTarget {
  versions: Version[] = [];
  private next = 1;
  puts: { value: unknown; resolved: number | undefined }[] = [];
  /** Runs after a read and before the write that follows it (a concurrent writer). */
  between: ((round: number) => void) | undefined;
  private round = 0;

  blind(value: unknown): void {
    this.versions.push({ id: this.next++, value });
  }

  async get(): Promise<{ found: boolean; values: unknown[]; tombstones: number; context: string; siblings: number }> {
    this.round++;
    const live = this.versions.filter((v) => v.value !== null);
    return {
      found: live.length > 0, values: live.map((v) => v.value), tombstones: this.versions.length - live.length,
      context: JSON.stringify(this.versions.map((v) => v.id)), siblings: this.versions.length,
    };
  }

  private write(value: unknown, o: { context: string; resolved?: number }): { context: string; siblings: number } {
    this.between?.(this.round);
    const seen = new Set(JSON.parse(o.context) as number[]);
    this.versions = this.versions.filter((v) => !seen.has(v.id));
    this.versions.push({ id: this.next++, value });
    this.puts.push({ value, resolved: o.resolved });
    return { context: JSON.stringify(this.versions.map((v) => v.id)), siblings: this.versions.length };
  }

  async put(_k: string, value: unknown, o: { context: string; resolved?: number }): Promise<{ context: string; siblings: number }> {
    return this.write(value, o);
  }

  async delete(_k: string, o: { context: string; resolved?: number }): Promise<{ context: string; siblings: number }> {
    return this.write(null, o);
  }
}

const union = (values: unknown[]): string[] => [...new Set(values.flatMap((v) => v as string[]))].sort();

t.test('a union resolver merges siblings in one round and says how many it resolved', async (t) => {
  const kv = new ModelKey();
  kv.blind(['apple']);
  kv.blind(['pear']);
  const res = await update(kv, 'cart', (values) => union(values));
  t.same(res.value, ['apple', 'pear']);
  t.equal(res.rounds, 1);
  t.equal(res.settled, true);
  t.same(kv.versions.map((v) => v.value), [['apple', 'pear']], 'one version left');
  t.same(kv.puts.map((p) => p.resolved), [2], 'the put said it resolved 2 siblings');
});

t.test('a concurrent writer between read and write forces a second round, which keeps its write', async (t) => {
  const kv = new ModelKey();
  kv.blind(['apple']);
  kv.between = (round) => { if (round === 1) kv.blind(['plum']); };
  const seen: unknown[][] = [];
  const res = await update(kv, 'cart', (values, info) => {
    seen.push(values);
    return info.round === 1 ? union([...values, ['pear']]) : union(values);
  });
  t.equal(res.rounds, 2, 'the first write left a sibling, so it ran again');
  t.same(seen[1]!.map((v) => v).sort(), [['apple', 'pear'], ['plum']], 'round 2 saw our write and the concurrent one');
  t.same(res.value, ['apple', 'pear', 'plum'], 'nothing the concurrent writer added was lost');
  t.equal(res.settled, true);
  t.same(kv.puts.map((p) => p.resolved), [undefined, 2], 'round 1 resolved nothing, round 2 two siblings');
});

t.test('rounds are bounded: a key written concurrently every round is left unsettled, not looped on', async (t) => {
  const kv = new ModelKey();
  kv.between = () => kv.blind(['again']);
  let calls = 0;
  const res = await update(kv, 'hot', (values) => { calls++; return union(values); }, { roundsMax: 4 });
  t.equal(calls, 4);
  t.equal(res.rounds, 4);
  t.equal(res.settled, false, 'the last resolution is stored beside the concurrent write');
  t.equal(res.siblings, 2);
  await t.rejects(update(kv, 'hot', (v) => v, { roundsMax: limits.updateRoundsMax + 1 }), { code: 'INVALID_ARGUMENT' }, 'roundsMax past updateRoundsMax');
  await t.rejects(update(kv, 'hot', (v) => v, { roundsMax: 0 }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(update(kv, 'hot', 'nope' as never), TypeError);
});

t.test('an error from the resolver propagates unchanged and nothing is written', async (t) => {
  const kv = new ModelKey();
  kv.blind('a');
  kv.blind('b');
  const boom = new RangeError('cannot merge these');
  await t.rejects(update(kv, 'k', () => { throw boom; }), boom);
  await t.rejects(update(kv, 'k', async () => Promise.reject(boom)), boom, 'async too');
  t.same(kv.puts, [], 'no write');
  t.equal(kv.versions.length, 2, 'the siblings are as they were');
});

t.test('a resolver may delete; deleting nothing writes nothing', async (t) => {
  const kv = new ModelKey();
  kv.blind('a');
  kv.blind('b');
  const res = await update(kv, 'k', () => deleted);
  t.equal(res.deleted, true);
  t.same(kv.versions.map((v) => v.value), [null], 'a tombstone superseding both');
  const empty = new ModelKey();
  const none = await update(empty, 'k', () => deleted);
  t.equal(none.deleted, true);
  t.same(empty.puts, [], 'nothing to delete: no tombstone written');
  const info: unknown[] = [];
  await update(kv, 'k', (values, i) => { info.push([values, i]); return 'back'; });
  t.same(info, [[[], { tombstones: 1, found: false, round: 1 }]], 'the resolver is told of the tombstone');
});
