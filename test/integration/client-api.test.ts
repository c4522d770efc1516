// The client library's API over real node processes (issue 11): getMany /
// putMany, AbortSignal on calls, route: false keeping the given order,
// host strings (localhost, no port), a client pointed at an HTTP port,
// hostDown / hostUp events, retry with back-off across a cluster restart,
// and typed replies (get<T>, status()).
import http from 'node:http';
import { getEventListeners, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { connect, TuneKvError, limits } from '../../src/index.js';
import type { TuneKvClient } from '../../src/index.js';
import { setLinkFaults } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

/** The first `event` the client emits, or a test failure after `ms`. */
function nextEvent<A extends unknown[]>(kv: TuneKvClient, event: 'hostDown' | 'hostUp', ms: number): Promise<A> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no ${event} in ${ms} ms`)), ms);
  return (once(kv, event, { signal: ac.signal }) as Promise<A>).finally(() => clearTimeout(timer));
}

t.test('the client API against a real cluster', async (t) => {
  const cluster = await testCluster(t, { nodes: 3 });
  const hosts = cluster.hosts as [string, string, string];
  const kv = await connect({ hosts: [hosts[0]], timeoutMs: 4000, hostRetryMs: 200 });
  t.teardown(() => kv.close());

  t.test('putMany and getMany: one result per key in input order, a failing key fails alone', async (t) => {
    const entries = Array.from({ length: 60 }, (_, i) => ({ key: `many:${i}`, value: { i } }));
    const bad = { key: 'x'.repeat(limits.keyBytesMax + 1), value: 'too long a key' };
    const put = await kv.putMany([...entries.slice(0, 30), bad, ...entries.slice(30)], { consistency: 'quorum' });
    t.equal(put.length, 61);
    t.same(put.map((r) => r.key), [...entries.slice(0, 30).map((e) => e.key), bad.key, ...entries.slice(30).map((e) => e.key)], 'input order');
    t.same(put.filter((r) => !r.ok).map((r) => r.key), [bad.key], 'only the bad key failed');
    const failed = put[30]!;
    t.ok(!failed.ok && failed.error instanceof TuneKvError && ['TOO_LARGE', 'INVALID_ARGUMENT'].includes(failed.error.code), 'with a TuneKvError');

    const got = await kv.getMany<{ i: number }>([...entries.map((e) => e.key), 'many:missing'], { consistency: 'strong' });
    t.equal(got.length, 61);
    const values = got.slice(0, 60).map((r) => (r.ok ? r.result.values[0]?.i : -1));
    t.same(values, entries.map((_, i) => i), 'every value back, typed, in order');
    const missing = got[60]!;
    t.ok(missing.ok && !missing.result.found, 'a missing key is found: false, not an error');

    // A put with a context through putMany supersedes what the read saw.
    const first = got[0]!;
    if (!first.ok) throw first.error;
    const again = await kv.putMany([{ key: 'many:0', value: { i: 100 }, context: first.result.context }]);
    t.equal(again[0]!.ok && again[0]!.result.siblings, 1, 'the context is used per entry');

    await t.rejects(kv.getMany(Array.from({ length: limits.manyKeysMax + 1 }, (_, i) => `k${i}`)), { code: 'TOO_LARGE' },
      'more than manyKeysMax keys is TOO_LARGE');
    await t.rejects(kv.getMany('many:0' as never), TypeError, 'not an array is a TypeError');
  });

  t.test('AbortSignal: an aborted call rejects with ABORTED, an aborted signal sends nothing, no listener stays', async (t) => {
    const done = new AbortController();
    done.abort();
    await t.rejects(kv.put('abort:never', 'x', { signal: done.signal }), { code: 'ABORTED', details: { maybeApplied: false } });
    await t.rejects(kv.putMany([{ key: 'abort:never2', value: 'x' }], { signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.counter('abort:c').increment(1, { signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.set('abort:s').add('m', { signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.status({ signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.update('abort:u', () => 'x', { signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.session().get('abort:never', { signal: done.signal }), { code: 'ABORTED' });
    await t.rejects(kv.conflicts({ signal: done.signal }), { code: 'ABORTED' });
    t.equal((await kv.get('abort:never', { consistency: 'strong' })).found, false, 'the aborted put was never sent');
    t.equal((await kv.counter('abort:c').value({ consistency: 'strong' })).value, 0n, 'nor the increment');
    await t.rejects(kv.get('k', { signal: 'no' as never }), TypeError, 'a signal that is not an AbortSignal is a TypeError');

    // Slow every link so a strong request takes far longer than the abort.
    await setLinkFaults(cluster.dir, { delayMs: 1500, jitterMs: 0, loss: 0 });
    t.teardown(() => setLinkFaults(cluster.dir, { delayMs: 0, jitterMs: 0, loss: 0 }));
    const ac = new AbortController();
    const put = kv.put('abort:slow', 'v', { consistency: 'strong', signal: ac.signal });
    const get = kv.get('abort:slow', { consistency: 'strong', signal: ac.signal });
    setTimeout(() => ac.abort(new Error('caller gave up')), 100);
    const [p, g] = await Promise.allSettled([put, get]);
    t.ok(p.status === 'rejected' && p.reason instanceof TuneKvError && p.reason.code === 'ABORTED', 'the put rejects with ABORTED');
    t.equal(p.status === 'rejected' && (p.reason as TuneKvError).details.maybeApplied, true, 'a sent write may have been applied');
    t.ok(g.status === 'rejected' && (g.reason as TuneKvError).code === 'ABORTED' && (g.reason as TuneKvError).details.maybeApplied === false,
      'a read is never maybeApplied');
    t.match((g as PromiseRejectedResult).reason.message, /caller gave up/, 'the message carries the reason');
    await setLinkFaults(cluster.dir, { delayMs: 0, jitterMs: 0, loss: 0 });

    const shared = new AbortController();
    for (let i = 0; i < 20; i++) await kv.get(`abort:l${i}`, { signal: shared.signal });
    await kv.getMany(['a', 'b', 'c'], { signal: shared.signal });
    await kv.counter('abort:l').value({ signal: shared.signal });
    t.equal(getEventListeners(shared.signal, 'abort').length, 0, 'no abort listener left after the calls');
  });

  t.test('500 concurrent puts from one client all succeed: past the node\'s in-flight limit they wait in the client', async (t) => {
    t.ok(500 > limits.clientInFlightPerConnectionMax * 3, 'more than the three connections may have in flight');
    const res = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => kv.put(`burst:${i}`, 'v')));
    const failed = res.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as TuneKvError).code);
    t.same(failed, [], 'no OVERLOADED (red team: 116 of 500 were)');
  });

  t.test('one signal over a putMany of 100 and 200 concurrent gets: no MaxListenersExceededWarning', async (t) => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`); };
    process.on('warning', onWarning);
    t.teardown(() => { process.off('warning', onWarning); });
    const ac = new AbortController();
    const put = await kv.putMany(Array.from({ length: 100 }, (_, i) => ({ key: `sig:${i}`, value: 'x' })), { signal: ac.signal });
    t.ok(put.every((r) => r.ok), 'every put succeeded');
    await Promise.all(Array.from({ length: 200 }, (_, i) => kv.get(`sig:${i}`, { signal: ac.signal })));
    await new Promise((r) => setImmediate(r));
    t.same(warnings, [], 'no warning');
    t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no listener left');
  });

  t.test('getMany/putMany name the bad index with a TypeError; duplicate keys in one putMany become siblings', async (t) => {
    await t.rejects(kv.getMany(['ok', 42, null] as never), { name: 'TypeError', message: 'getMany() keys[1] must be a string; got 42' });
    await t.rejects(kv.putMany([{ key: 'a', value: 'x' }, null] as never), { name: 'TypeError', message: /^putMany\(\) entries\[1\] must be/ });
    await t.rejects(kv.putMany([{ key: 7, value: 'x' }] as never), { name: 'TypeError', message: /^putMany\(\) entries\[0\]\.key must be a string/ });
    const dup = await kv.putMany([{ key: 'dup:1', value: 'a' }, { key: 'dup:1', value: 'b' }, { key: 'dup:1', value: 'c' }]);
    t.ok(dup.every((r) => r.ok), 'all three puts succeed');
    const got = await kv.get<string>('dup:1', { consistency: 'strong' });
    t.same([...got.values].sort(), ['a', 'b', 'c'], 'three concurrent puts without a context: three siblings, as the README says');
  });

  t.test('route: false sends to the hosts given, in their order', async (t) => {
    for (const [given, want] of [[[hosts[1]], 'n2'], [[hosts[2], hosts[0]], 'n3'], [[hosts[0], hosts[2]], 'n1']] as const) {
      const direct = await connect({ hosts: [...given], route: false });
      for (let i = 0; i < 5; i++) {
        const res = await direct.put(`route:${i}`, 'v');
        t.equal(res.coordinator, want, `hosts ${given.join(',')}: put ${i} coordinated by ${want}`);
        t.equal((await direct.get(`route:${i}`)).coordinator, want, `and the get too`);
      }
      await direct.close();
    }
    const routed = await connect({ hosts: [hosts[1]] });
    const coordinators = new Set<string>();
    for (let i = 0; i < 30; i++) coordinators.add((await routed.get(`route:${i}`)).coordinator);
    t.ok(coordinators.size > 1, `with routing, keys go to their replicas (${[...coordinators].join(', ')})`);
    await routed.close();
  });

  t.test('host strings: localhost works; a host with no port is port 7001', async (t) => {
    const port = hosts[0].split(':')[1]!;
    const local = await connect({ hosts: [`localhost:${port}`] });
    await local.put('host:local', 'x');
    t.equal((await local.get('host:local')).values[0], 'x', 'localhost:PORT reads and writes');
    t.equal((await local.status(`localhost:${port}`)).nodeId, 'n1', 'and names a node for status');
    await local.close();
    // Nothing of this test listens on 7001, but some other process may:
    // either way the host is understood (no TypeError, no INTERNAL).
    const bare = await connect({ hosts: ['localhost'], connectTimeoutMs: 1000 }).then((c) => c.close().then(() => null), (e: unknown) => e);
    if (bare !== null) {
      t.ok(bare instanceof TuneKvError, 'a bare host fails as a TuneKvError if nothing answers there');
      t.match((bare as Error).message, /localhost:7001/, 'naming localhost:7001');
    } else t.pass('a bare host reached something on 7001');
    await t.rejects(connect({ hosts: ['::1'] }), TypeError, 'a bare IPv6 address is refused (brackets needed)');
  });

  t.test('a client pointed at an HTTP port says so', async (t) => {
    const server = http.createServer((_req, res) => res.end('metrics'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await t.rejects(connect({ hosts: [addr] }), {
      code: 'PROTOCOL_ERROR', message: new RegExp(`${addr.replace(/\./g, '\\.')} answered in HTTP, not the tunekv protocol: is that the metrics port\\?`),
    });
    await t.rejects(kv.status(addr), { code: 'PROTOCOL_ERROR', message: /answered in HTTP/ }, 'for a single request to it too');
  });

  t.test('status() is typed', async (t) => {
    const st = await kv.status(hosts[1]);
    t.equal(st.nodeId, 'n2');
    t.equal(st.addr, hosts[1]);
    t.equal(st.ready, true);
    t.same(st.ring?.members.map((m) => m.id), ['n1', 'n2', 'n3']);
    t.ok(st.peers.every((p) => ['up', 'suspect', 'down'].includes(p.state)));
  });

  t.test('hostDown when a node it used stops, hostUp when it answers again', async (t) => {
    const events: string[] = [];
    kv.on('hostDown', (h, err) => events.push(`down ${h} ${err.code}`));
    kv.on('hostUp', (h) => events.push(`up ${h}`));
    for (const h of hosts) await kv.status(h);
    const down = nextEvent<[string, TuneKvError]>(kv, 'hostDown', 20_000);
    await cluster.kill('n3');
    const [h, err] = await down;
    t.equal(h, hosts[2], 'hostDown names the killed node');
    t.equal(err.code, 'UNAVAILABLE');
    const up = nextEvent<[string]>(kv, 'hostUp', 30_000);
    await cluster.restart('n3');
    t.same(await up, [hosts[2]], 'hostUp once it is back');
    t.same(events, [`down ${hosts[2]} UNAVAILABLE`, `up ${hosts[2]}`], 'one event each, for that node only');
    kv.removeAllListeners();
  });

  t.test('retry: a client with attempts rides out a whole-cluster restart; one without fails', async (t) => {
    await t.rejects(connect({ hosts, retry: { attempts: 0 } }), TypeError, 'nonsense retry options are a TypeError');
    // w=3: every replica holds it, so the eventual read below (R=1, from
    // whichever node answers first after the restart) must find it; with
    // strong, the third replica may have missed it and an eventual read
    // may rightly come back empty (it did once under load).
    await kv.put('retry:k', 'kept', { w: 3 });
    const patient = await connect({ hosts, retry: { attempts: 100, baseDelayMs: 50, maxDelayMs: 200, jitter: false } });
    t.teardown(() => patient.close());
    const hasty = await connect({ hosts });
    t.teardown(() => hasty.close());
    await patient.get('retry:k');
    await hasty.get('retry:k');
    await cluster.stop();
    await t.rejects(hasty.get('retry:k'), { code: 'UNAVAILABLE' }, 'without retry, every node down is UNAVAILABLE at once');
    const read = patient.get('retry:k', { consistency: 'eventual' });
    await cluster.start();
    t.same((await read).values, ['kept'], 'with retry, the read started while every node was down succeeds once they are back');
  });
});
