// What a client refuses to store, before anything is sent: every refusal is
// INVALID_ARGUMENT, never a bare RangeError or TypeError from the encoder.
import t from 'tap';
import { decodeValue, encodeValue } from '../../src/client/client.js';

t.test('values a reader could not get back are refused with a code', async (t) => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  t.throws(() => encodeValue(cyclic), { code: 'INVALID_ARGUMENT' }, 'a cyclic object (a resolver returned one, red team)');
  t.throws(() => encodeValue(undefined), { code: 'INVALID_ARGUMENT' });
  t.throws(() => encodeValue(() => 1), { code: 'INVALID_ARGUMENT' });
  t.throws(() => encodeValue(new Date(0)), { code: 'INVALID_ARGUMENT' }, 'an extension type the wire bounds refuse');
  const ok = encodeValue({ cart: ['apple', 'kiwi'] });
  t.same(decodeValue(ok.vtype, ok.bytes), { cart: ['apple', 'kiwi'] }, 'a plain object round-trips');
});
