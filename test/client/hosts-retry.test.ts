// Host strings as users type them, the retry option's validation and
// back-off, and the bounded pipeline behind getMany/putMany (pure parts;
// the behaviour over a cluster is in test/integration/client-api.test.ts).
import t from 'tap';
import { normalizeHost, dialTarget } from '../../src/client/hosts.js';
import { retryDelayMs, retryPolicy } from '../../src/client/retry.js';
import { checkManyInput, pipelined } from '../../src/client/many.js';
import { TuneKvError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';

t.test('host strings', async (t) => {
  const table: [unknown, string | null][] = [
    ['localhost:7001', 'localhost:7001'],
    ['localhost', 'localhost:7001'],
    ['127.0.0.1', '127.0.0.1:7001'],
    [' 10.0.0.5:7002 ', '10.0.0.5:7002'],
    ['[::1]:7003', '[::1]:7003'],
    ['[::1]', '[::1]:7001'],
    ['::1', null],
    ['host:0', null],
    ['host:65536', null],
    ['host:', null],
    ['host:12a', null],
    ['', null],
    ['http://host:7001', null],
    ['a b', null],
    ['[nothex]:1', null],
    [7001, null],
    [undefined, null],
  ];
  for (const [input, want] of table) t.equal(normalizeHost(input), want, `${JSON.stringify(input)} -> ${want}`);
  t.same(dialTarget('[::1]:7003'), { host: '::1', port: 7003 });
  t.same(dialTarget('localhost:7001'), { host: 'localhost', port: 7001 });
});

t.test('retry options: defaults, validation, back-off', async (t) => {
  t.same(retryPolicy(undefined), { attempts: 1, baseDelayMs: 100, maxDelayMs: 2000, jitter: true });
  t.same(retryPolicy({ attempts: 5, baseDelayMs: 10, maxDelayMs: 50, jitter: false }), { attempts: 5, baseDelayMs: 10, maxDelayMs: 50, jitter: false });
  t.equal(retryPolicy({ baseDelayMs: 5000 }).maxDelayMs, 5000, 'maxDelayMs defaults to at least baseDelayMs');
  for (const bad of [null, 3, [], { attempts: 0 }, { attempts: 1.5 }, { attempts: 101 }, { attempts: '3' }, { baseDelayMs: -1 },
    { baseDelayMs: 100, maxDelayMs: 50 }, { maxDelayMs: 60_001 }, { jitter: 'yes' }, { attempt: 3 }]) {
    t.throws(() => retryPolicy(bad as never), TypeError, `${JSON.stringify(bad)} is a TypeError`);
  }
  const p = retryPolicy({ attempts: 10, baseDelayMs: 100, maxDelayMs: 1000, jitter: false });
  t.same([1, 2, 3, 4, 5, 9].map((a) => retryDelayMs(p, a)), [100, 200, 400, 800, 1000, 1000], 'doubles up to maxDelayMs');
  const j = retryPolicy({ attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 });
  t.equal(retryDelayMs(j, 3, () => 0), 0, 'full jitter: from 0');
  t.equal(retryDelayMs(j, 3, () => 0.999999), 400, 'to the computed delay');
});

t.test('the getMany/putMany pipeline: order, per-key errors, bounded in flight, bounded input', async (t) => {
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
  let inFlight = 0;
  let most = 0;
  const out = await pipelined(keys, 7, undefined, async (k) => {
    inFlight++;
    most = Math.max(most, inFlight);
    // Later keys finish first: the results must still come back in input order.
    await new Promise((r) => setTimeout(r, 100 - Number(k.slice(1))));
    inFlight--;
    if (k === 'k13') throw new TuneKvError('TIMEOUT', 'slow');
    return k.toUpperCase();
  });
  t.equal(most, 7, 'at most 7 in flight');
  t.same(out.map((r) => r.key), keys, 'one result per key, in input order');
  t.same(out.filter((r) => !r.ok).map((r) => [r.key, !r.ok && r.error.code]), [['k13', 'TIMEOUT']], 'one key fails alone');
  t.equal(out[0]!.ok && out[0]!.result, 'K0');
  t.same(await pipelined([], 7, undefined, async () => 1), [], 'no keys, no results');
  await t.rejects(pipelined(['a', 'b'], 2, undefined, async (k) => { if (k === 'b') throw new RangeError('bug'); return 1; }), RangeError,
    'a non-TuneKvError (a bug) rejects the call');
  const ac = new AbortController();
  let started = 0;
  await pipelined(keys, 2, ac.signal, async () => { if (++started === 3) ac.abort(); });
  t.equal(started, 3, 'no new key starts after the signal fired');
  t.doesNotThrow(() => checkManyInput(limits.manyKeysMax));
  t.throws(() => checkManyInput(limits.manyKeysMax + 1), { code: 'TOO_LARGE' });
});
