// Client requests as the node parses them: a value marked msgpack must be
// msgpack a client can decode (red team finding F3: such values made a key
// unreadable for every reader, context included).

import t from 'tap';
import { pack } from '../../src/protocol/codec.js';
import { parsePut } from '../../src/server/requests.js';
import { TuneKvError } from '../../src/errors.js';

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

t.test('msgpack values are checked on the node', async (t) => {
  const cases: [string, Uint8Array, boolean][] = [
    ['a map', pack({ a: 1, b: [1, 2] }), true],
    ['the reserved byte 0xc1', Uint8Array.of(0xc1), false],
    ['trailing bytes', Uint8Array.of(0x01, 0x02), false],
    ['40 levels deep', pack(deep(40)), false],
    ['an extension type', Uint8Array.of(0xd4, 0x05, 0x00), false],
    ['nothing', new Uint8Array(0), false],
  ];
  for (const [name, value, ok] of cases) {
    const put = (): unknown => parsePut({ key: 'k', value, vtype: 2 }, 3, false);
    if (ok) t.doesNotThrow(put, `${name}: accepted`);
    else {
      let code: string | undefined;
      try { put(); } catch (e) { code = e instanceof TuneKvError ? e.code : 'not a TuneKvError'; }
      t.equal(code, 'INVALID_ARGUMENT', `${name}: INVALID_ARGUMENT`);
    }
  }
  t.doesNotThrow(() => parsePut({ key: 'k', value: Uint8Array.of(0xc1), vtype: 0 }, 3, false), 'bytes are opaque');
});
