// connect()'s options: nonsense is a TypeError naming the option and the
// value as given (red team: connectTimeoutMs: 0 was reported as
// "timeoutMs (0)" and INVALID_ARGUMENT, route: 'no' was accepted,
// retry.attempts '3' printed as "(3)"). Validated before any dial, so
// these need no node. Also the grace the client adds to a deadline.
import t from 'tap';
import { connect } from '../../src/index.js';
import { timeoutGraceMs } from '../../src/client/client.js';
import { retryPolicy } from '../../src/client/retry.js';

t.test('bad connect() options are TypeErrors that name the option', async (t) => {
  const hosts = ['127.0.0.1:1'];
  for (const [opts, want] of [
    [{ connectTimeoutMs: 0 }, /^connectTimeoutMs \(0\) must be/],
    [{ connectTimeoutMs: '5' }, /^connectTimeoutMs \("5"\) must be/],
    [{ timeoutMs: 0 }, /^timeoutMs \(0\) must be/],
    [{ timeoutMs: NaN }, /^timeoutMs \(NaN\) must be/],
    [{ route: 'no' }, /^route \("no"\) must be true or false/],
    [{ consistency: 'bogus' }, /^consistency \("bogus"\) must be/],
    [{ hostRetryMs: -1 }, /^hostRetryMs \(-1\)/],
    [{ ringRefreshMs: NaN }, /^ringRefreshMs \(NaN\)/],
    [{ retry: { attempts: '3' } }, /^retry\.attempts \("3"\) must be/],
    [{ retry: { baseDelayMs: Infinity } }, /^retry\.baseDelayMs \(Infinity\) must be/],
  ] as const) {
    const err = await connect({ hosts, ...(opts as object) }).then(async (kv) => { await kv.close(); return null; }, (e: unknown) => e);
    t.type(err, TypeError, JSON.stringify(opts, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
    t.match((err as Error).message, want);
  }
  t.throws(() => retryPolicy({ attempts: '3' as never }), { message: /\("3"\)/ });
});

t.test('the client waits a fifth of timeoutMs past it, between 200 ms and 1 s, for the node\'s TIMEOUT', async (t) => {
  t.equal(timeoutGraceMs(100), 200, 'a short deadline: the floor');
  t.equal(timeoutGraceMs(500), 200);
  t.equal(timeoutGraceMs(2000), 400, 'proportional');
  t.equal(timeoutGraceMs(5000), 1000, 'the default timeout: a second');
  t.equal(timeoutGraceMs(60_000), 1000, 'never more than a second');
});
