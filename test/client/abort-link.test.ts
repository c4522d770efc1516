// One caller's AbortSignal shared by many calls at once gets one listener
// from the client, not one per call (red team: a putMany of 100 entries
// with one signal printed MaxListenersExceededWarning), and none once the
// calls settle; an abort still reaches every call; details.reason is text.
import { getEventListeners } from 'node:events';
import t from 'tap';
import { abortedError, reasonText, withSignal } from '../../src/client/abort.js';
import { TuneKvError } from '../../src/errors.js';

t.test('500 concurrent calls on one signal: one listener, no warning, all aborted, none left', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => { warnings.push(w); };
  process.on('warning', onWarning);
  t.teardown(() => { process.off('warning', onWarning); });
  const ac = new AbortController();
  const calls = Array.from({ length: 500 }, () => withSignal(ac.signal, () => new Promise<never>(() => {}),
    () => abortedError(ac.signal, false)));
  t.equal(getEventListeners(ac.signal, 'abort').length, 1, 'one listener on the caller\'s signal while they run');
  ac.abort(new Error('stop'));
  const settled = await Promise.allSettled(calls);
  t.ok(settled.every((s) => s.status === 'rejected' && s.reason instanceof TuneKvError && s.reason.code === 'ABORTED'), 'every call aborted');
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'none left after');
  // A warning is emitted on the next tick.
  await new Promise((r) => setImmediate(r));
  t.same(warnings.map((w) => w.name), [], 'no MaxListenersExceededWarning');
});

t.test('calls that finish release the link; a later call links again', async (t) => {
  const ac = new AbortController();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => withSignal(ac.signal, async () => i, () => abortedError(ac.signal, false))));
  t.equal(results.length, 50);
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no listener once they settled');
  const p = withSignal(ac.signal, () => new Promise<never>(() => {}), () => abortedError(ac.signal, true));
  t.equal(getEventListeners(ac.signal, 'abort').length, 1);
  ac.abort();
  await t.rejects(p, { code: 'ABORTED', details: { maybeApplied: true } });
  t.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

t.test('details.reason is the reason as text', async (t) => {
  t.equal(reasonText(new Error('mine')), 'mine');
  t.equal(reasonText(new DOMException('This operation was aborted', 'AbortError')), 'This operation was aborted');
  t.equal(reasonText(Object.assign(new Error(''), { name: 'Quit' })), 'Quit', 'an Error without a message: its name');
  t.equal(reasonText('bye'), 'bye');
  t.equal(reasonText(7), '7');
  t.equal(reasonText({}), undefined, '{} has nothing to say: no reason, not "[object Object]"');
  t.equal(reasonText({ message: 'custom' }), 'custom');
  const ac = new AbortController();
  ac.abort({});
  const err = abortedError(ac.signal, false);
  t.equal(typeof (err.details as { reason?: unknown }).reason, 'undefined', 'an object reason is not copied into details');
  const ac2 = new AbortController();
  ac2.abort(new Error('caller gave up'));
  t.equal((abortedError(ac2.signal, false).details as { reason?: unknown }).reason, 'caller gave up');
});
