import t from 'tap';
import { merge, objectBytes, update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';
import { decidePut, deleteNeedsRead, overSiblingCap } from '../../src/core/coordinator/put-policy.js';
import type { PutDecision, PutPolicyInput } from '../../src/core/coordinator/put-policy.js';
import { TuneKvError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';

const nowMs = 1_000;
const small = Buffer.from('v');
const big = Buffer.alloc(limits.valueBytesMax);

function input(over: Partial<PutPolicyInput> = {}): PutPolicyInput {
  return { key: 'k', context: emptyClock, value: small, vtype: 0, actor: 'n3', nowMs, lww: false, wid: null, isMember: (id) => /^n[1-5]$/.test(id), ...over };
}

/** n blind puts coordinated by `actor`: n siblings, as a replica would hold them. */
function blind(actor: string, n: number, value: Uint8Array = small): VersionedObject | undefined {
  let obj: VersionedObject | undefined;
  for (let i = 0; i < n; i++) obj = update(obj, { ...input({ actor, value }), nowMs: nowMs + i });
  return obj;
}

/** The context covering only the oldest sibling `actor` wrote. */
function coveringOldest(obj: VersionedObject, actor: string): VClock {
  const s = obj.siblings.find((x) => x.actor === actor)!;
  return [[actor, s.counter, s.tsMs]];
}

const at99 = blind('n1', limits.siblingsMax - 1)!;
const atCap = blind('n1', limits.siblingsMax)!;
/** 75 + 75 blind puts on two coordinators, brought together by replica merges. */
const merged150 = merge(blind('n1', 75)!, blind('n2', 75)!);
const wid = Buffer.from('retry-id-0001');
const withWid = update(merged150, { ...input({ wid }) });
/** 18 siblings of 1 MiB, brought together by merges: objectBytesMax is
 * 16 MiB, so this stays over it even with one sibling fewer. */
const overBytes = merge(blind('n1', 9, big)!, blind('n2', 9, big)!);
/** The same with one small sibling by n4 beside the big ones. */
const overBytesSmall = update(overBytes, input({ actor: 'n4' }));

interface Case {
  name: string;
  current: VersionedObject | undefined;
  put: Partial<PutPolicyInput>;
  /** The decision's kind and sibling count, or the error code and details. */
  want: { kind: PutDecision['kind']; siblings: number; warning?: RegExp; overBytes?: true } | { code: string; details: object; message?: RegExp };
}

const cases: Case[] = [
  { name: 'first put of a new key', current: undefined, put: {}, want: { kind: 'write', siblings: 1 } },
  { name: 'blind put just under the cap: allowed, warned', current: at99, put: {},
    want: { kind: 'write', siblings: limits.siblingsMax, warning: /has 100 siblings \(siblingsWarn 25\)/ } },
  { name: '(b) blind put at the cap: refused', current: atCap, put: {},
    want: { code: 'SIBLINGS_LIMIT', details: { siblings: limits.siblingsMax + 1, limit: limits.siblingsMax },
      message: /read it and put with the context/ } },
  { name: '(a)(b) blind put after merges brought 150 siblings: refused on a third coordinator', current: merged150, put: {},
    want: { code: 'SIBLINGS_LIMIT', details: { siblings: 151, limit: limits.siblingsMax } } },
  { name: '(b) a put that supersedes one sibling over the cap does not reduce the count: refused', current: merged150,
    put: { context: coveringOldest(merged150, 'n1') },
    want: { code: 'SIBLINGS_LIMIT', details: { siblings: 150, limit: limits.siblingsMax } } },
  { name: '(c) resolving put over the cap (context covers all): allowed', current: merged150,
    put: { context: merged150.clock }, want: { kind: 'write', siblings: 1 } },
  { name: '(c) partly resolving put over the cap (covers n1 only): allowed, still flagged', current: merged150,
    put: { context: [merged150.clock.find(([a]) => a === 'n1')!] }, want: { kind: 'write', siblings: 76 } },
  { name: '(c) LWW blind put over the cap: allowed', current: merged150, put: { lww: true }, want: { kind: 'write', siblings: 1 } },
  { name: '(c) delete with the context over the cap: allowed', current: merged150,
    put: { value: null, context: merged150.clock }, want: { kind: 'write', siblings: 1 } },
  { name: 'retry with the same wid: unchanged, even over the cap', current: withWid, put: { wid },
    want: { kind: 'unchanged', siblings: 151 } },
  { name: 'a new wid on the same key is a new write', current: withWid, put: { wid: Buffer.from('retry-id-0002') },
    want: { code: 'SIBLINGS_LIMIT', details: { siblings: 152, limit: limits.siblingsMax } } },
  { name: '(d) blind put growing an object past objectBytesMax: TOO_LARGE', current: blind('n1', 15, big), put: { value: big },
    want: { code: 'TOO_LARGE', details: { limit: limits.objectBytesMax } } },
  { name: '(d) put that supersedes one 1 MiB sibling with a small value shrinks an oversized object: allowed',
    current: overBytes, put: { context: coveringOldest(overBytes, 'n1') }, want: { kind: 'write', siblings: 18, overBytes: true } },
  { name: '(d) put that supersedes one sibling but grows an oversized object: TOO_LARGE',
    current: overBytesSmall, put: { value: big, context: coveringOldest(overBytesSmall, 'n4') },
    want: { code: 'TOO_LARGE', details: { limit: limits.objectBytesMax } } },
];

function thrown(f: () => unknown): unknown {
  try { f(); } catch (e) { return e; }
  return undefined;
}

t.test('decidePut: a table of the rules', async (t) => {
  for (const c of cases) {
    if ('code' in c.want) {
      const e = thrown(() => decidePut(c.current, input(c.put)));
      t.ok(e instanceof TuneKvError, `${c.name}: a TuneKvError`);
      t.match(e, { code: c.want.code, details: c.want.details, message: c.want.message ?? /./ }, c.name);
      if (c.want.code === 'TOO_LARGE') {
        const size = (e as TuneKvError).details.size!;
        t.ok(size > limits.objectBytesMax && size > objectBytes(c.current!), `${c.name}: size ${size} is past the limit and grew`);
      }
      continue;
    }
    const d = decidePut(c.current, input(c.put));
    t.equal(d.kind, c.want.kind, c.name);
    t.equal(d.object.siblings.length, c.want.siblings, `${c.name}: siblings`);
    if (c.want.kind === 'unchanged') t.equal(d.object, c.current, `${c.name}: the very object held`);
    if (c.want.overBytes) t.ok(objectBytes(d.object) > limits.objectBytesMax, `${c.name}: still over objectBytesMax`);
    const warning = d.kind === 'write' ? d.warning : undefined;
    if (c.want.warning) t.match(warning, c.want.warning, `${c.name}: warning`);
    else t.equal(warning, undefined, `${c.name}: no warning`);
  }
});

t.test('the over-cap flag, and what it takes to clear it', async (t) => {
  t.notOk(overSiblingCap(atCap), 'at the cap: not flagged');
  t.ok(overSiblingCap(merged150), 'past the cap after merges: flagged');
  const partly = decidePut(merged150, input({ context: [merged150.clock.find(([a]) => a === 'n1')!] }));
  t.notOk(overSiblingCap(partly.object), 'a put that resolved what n1 wrote: 76 siblings, under the cap again');
  t.equal(decidePut(partly.object, input()).kind, 'write', 'and blind puts pass again');
});

t.test('warnings only when the count grew past siblingsWarn', async (t) => {
  const at30 = blind('n1', 30)!;
  const grew = decidePut(at30, input());
  t.match(grew.kind === 'write' ? grew.warning : undefined, /31 siblings/);
  const same = decidePut(at30, input({ context: coveringOldest(at30, 'n1') }));
  t.equal(same.kind === 'write' ? same.warning : 'not a write', undefined, 'same count: no warning');
  const under = decidePut(blind('n1', 10), input());
  t.equal(under.kind === 'write' ? under.warning : 'not a write', undefined, 'under siblingsWarn: no warning');
});

t.test('a poisoned context is refused by the policy too (update throws)', async (t) => {
  const stored = blind('n3', 1)!;
  t.throws(() => decidePut(stored, input({ context: [['n3', limits.clockCounterMax, 0]] })), { code: 'INVALID_ARGUMENT' });
});

t.test('deleteNeedsRead: a delete without a context reads first', async (t) => {
  t.equal(deleteNeedsRead(false), true, 'no context: read, then delete what the read saw');
  t.equal(deleteNeedsRead(true), false, 'a context: delete exactly what it covers');
});

t.test('forged contexts are refused: counters from the future, nodes that are not members', async (t) => {
  const stored = blind('n1', 1);
  const future = (nowMs + limits.contextFutureMaxMs) * 1000 + 1;
  const cases: [string, VClock, string | null][] = [
    ['a counter just at the horizon', [['n2', (nowMs + limits.contextFutureMaxMs) * 1000, nowMs]], null],
    ['a counter past the horizon', [['n2', future, nowMs]], 'future'],
    ['the largest counter a wire clock may carry', [['n2', limits.clockCounterMax, nowMs]], 'future'],
    ['a node that is not a member', [['z9', 5, nowMs]], 'not a member'],
    ['what the key already holds, even ahead of our clock', stored!.clock, null],
  ];
  for (const [name, context, want] of cases) {
    let got: string | null = null;
    try {
      decidePut(stored, input({ context, actor: 'n3' }));
    } catch (err) {
      got = (err as TuneKvError).message;
      t.equal((err as TuneKvError).code, 'INVALID_ARGUMENT', name);
    }
    if (want === null) t.equal(got, null, `${name}: accepted`);
    else t.match(got, want, `${name}: refused`);
  }
  // A stored clock ahead of our clock (a node with a fast clock wrote it) is
  // no reason to refuse a put that carries it.
  const ahead = update(undefined, { ...input({ actor: 'n1' }), nowMs: nowMs + 10 * limits.contextFutureMaxMs });
  t.doesNotThrow(() => decidePut(ahead, input({ context: ahead.clock })), 'a context equal to the stored clock is accepted');
});

t.test('every minted counter is at least the wall clock in µs, so a forged counter within the horizon is passed', async (t) => {
  const forgedAt = nowMs;
  const forged = (forgedAt + limits.contextFutureMaxMs) * 1000;
  // n2 writes later, without having seen the forged clock: its dot must
  // climb past the forged counter once the horizon has passed.
  const later = update(blind('n2', 1), { ...input({ actor: 'n2' }), nowMs: forgedAt + limits.contextFutureMaxMs + 1 });
  const dot = later.siblings.find((s) => s.actor === 'n2' && s.tsMs === forgedAt + limits.contextFutureMaxMs + 1)!;
  t.ok(dot.counter > forged, `n2's new dot ${dot.counter} > forged ${forged}`);
});
