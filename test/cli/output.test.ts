// Plain output never lets one kind of value pass for another; --json keeps
// strings as strings and wraps everything else.
import t from 'tap';
import { replicasLine, safeJson, valueJson, valueText } from '../../src/cli/output.js';

t.test('plain values are unambiguous', async (t) => {
  t.equal(valueText('hello'), 'hello', 'a plain string prints as is');
  t.equal(valueText('hello world'), 'hello world');
  t.equal(valueText(''), '(string, 0 bytes) ""', 'the empty string is visible');
  t.equal(valueText('a\nb'), '(string, 3 bytes) "a\\nb"', 'a newline cannot fake a second value');
  t.equal(valueText('(bytes, 5) "hello"'), '(string, 18 bytes) "(bytes, 5) \\"hello\\""', 'a string that looks like a label is labelled');
  t.equal(valueText('[2] hi'), '(string, 6 bytes) "[2] hi"', 'a string that looks like a sibling is labelled');
  t.equal(valueText('2 siblings:'), '(string, 11 bytes) "2 siblings:"');
  t.equal(valueText('\u001b[31mred'), '(string, 8 bytes) "\\u001b[31mred"', 'no terminal escapes');
  t.equal(valueText('a\u202eb'), '(string, 5 bytes) "a\\u202eb"', 'no bidi overrides');
  t.equal(valueText('x\u061cy'), '(string, 4 bytes) "x\\u061cy"', 'the Arabic letter mark is a bidi control too');
  t.equal(valueText('a\u007fb'), '(string, 3 bytes) "a\\u007fb"', 'DEL is labelled and escaped, not left raw in the quotes');
  for (const c of ['\u200b', '\u00ad', '\ufeff', '\u2060']) {
    t.match(valueText(`a${c}b`), /^\(string, \d bytes\) "a\\u[0-9a-f]{4}b"$/, `an invisible U+${c.charCodeAt(0).toString(16)} cannot make two values look alike`);
  }
  t.equal(valueText(new Uint8Array(Buffer.from('hello\n'))), '(bytes, 6) "hello\\n"', 'UTF-8 bytes as escaped text');
  t.equal(valueText(new Uint8Array([0xff, 0x00, 0x10])), '(bytes, 3) hex:ff0010', 'other bytes as hex');
  t.equal(valueText({ a: 1 }), '(msgpack) {"a":1}');
  t.equal(valueText(5n), '(msgpack) "5"');
});

t.test('--json values', async (t) => {
  t.equal(valueJson('hi'), 'hi');
  t.same(valueJson(new Uint8Array(Buffer.from('hi'))), { base64: 'aGk=' });
  t.same(valueJson({ base64: 'aGk=' }), { msgpack: { base64: 'aGk=' } }, 'an object value can never pass for bytes');
  t.equal(safeJson('\u0085'), '"\\u0085"');
});

t.test('the replica report prints every outcome alike, notsent too', async (t) => {
  t.equal(replicasLine([
    { node: 'n1', role: 'primary', outcome: 'ok' },
    { node: 'n2', role: 'primary', outcome: 'notsent' },
    { node: 'n4', role: 'fallback', outcome: 'ok', hintFor: 'n3', stale: true },
  ]), 'n1(primary ok) n2(primary notsent) n4(fallback for n3 ok stale)');
});
