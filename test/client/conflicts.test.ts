// The client side of the conflict log: --since parsing, request bodies,
// replies checked field by field, and the CLI's text and JSON forms.
import t from 'tap';
import { conflictsBody, parseConflictsReply, parseSince } from '../../src/client/conflicts.js';
import { conflictsJson, conflictsText } from '../../src/cli/conflicts.js';
import { limits } from '../../src/limits.js';

const now = Date.parse('2026-11-24T06:00:00Z');

t.test('--since: durations back from now, ISO times, nothing else', async (t) => {
  t.equal(parseSince('90s', now), now - 90_000);
  t.equal(parseSince('10m', now), now - 600_000);
  t.equal(parseSince('2h', now), now - 7_200_000);
  t.equal(parseSince('7d', now), now - 7 * 86_400_000);
  t.equal(parseSince('2026-11-24T05:00:00Z', now), now - 3_600_000);
  t.equal(parseSince('2026-11-24', now), Date.parse('2026-11-24T00:00:00Z'), 'a date alone is midnight UTC');
  t.equal(parseSince('2026-11-24T07:00:00+01:00', now), now, 'with an offset');
  t.equal(parseSince('2026-11-24T06:00:00', now), now, 'a time without a zone is UTC, whatever the host\'s zone');
  t.equal(parseSince('2026-11-24T06:00', now), now, 'without seconds too');
  for (const bad of ['', '10', 'm', '10 m', '-5m', '10y', 'yesterday', '2026-13-45', '1e3s', '0x10m', '2026-02-30', '2026-11-24T25:00:00Z', '2026-11-24T06:61']) {
    t.throws(() => parseSince(bad, now), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
});

t.test('request bodies are checked before sending', async (t) => {
  t.same(conflictsBody({ key: 'k', since: new Date(now), after: 7, limit: 10 }), { key: 'k', sinceMs: now, afterSeq: 7, limit: 10 });
  t.same(conflictsBody({}), {});
  t.throws(() => conflictsBody({ limit: limits.conflictsPageMax + 1 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => conflictsBody({ since: new Date('nope') }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => conflictsBody({ after: -1 }), { code: 'INVALID_ARGUMENT' });
});

const record = (seq: number, key: string, value: Uint8Array | null, vtype = 1) =>
  [seq, now + seq, key, 'siblings kept', 'n1', 'a blind put (no context) left 2 versions', [['n1:5', now, vtype, value === null ? 1 : 0, value?.length ?? 0, value, null]], 0];

t.test('replies are checked; values decoded as reads decode them', async (t) => {
  const page = parseConflictsReply({ node: 'n1', records: [record(1, 'cart', Buffer.from('apple'))], next: null });
  t.equal(page.records[0]!.versions[0]!.value, 'apple');
  t.equal(page.records[0]!.time, new Date(now + 1).toISOString());
  for (const bad of [null, { node: 'n1', records: [], next: -1 }, { node: 'bad node\u001b', records: [], next: null },
    { node: 'n1', records: [[1, 2, 3]], next: null }, { node: 'n1', records: 'x', next: null }]) {
    t.throws(() => parseConflictsReply(bad), { code: 'PROTOCOL_ERROR' }, JSON.stringify(bad));
  }
});

t.test('text and JSON forms; keys cannot drive a terminal', async (t) => {
  const evil = 'k\u001b[2J';
  const n1 = parseConflictsReply({ node: 'n1', records: [record(2, evil, Buffer.from('x\u001b]0;pwned\u0007'))], next: null });
  const n2 = parseConflictsReply({ node: 'n2', records: [record(1, 'b', Uint8Array.of(1, 2), 0)], next: null });
  const logs = [{ node: 'n1', records: n1.records }, { node: 'n2', records: n2.records }, { node: '127.0.0.1:9', error: { code: 'UNAVAILABLE', message: 'down' } }];
  const lines = conflictsText(logs);
  t.notOk(lines.join('\n').includes('\u001b'), 'no raw escape characters');
  const sneaky = parseConflictsReply({ node: 'n1', records: [record(3, 'k\u009b2J\u202egnp.exe\u2028x', Buffer.from('v\u2066'))], next: null });
  const more = conflictsText([{ node: 'n1', records: sneaky.records }]).join('\n');
  t.notOk(/[\u0080-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(more), 'no raw C1 control, separator or bidi override either');
  t.match(more, '\\u009b', 'they are printed escaped');
  t.match(lines[0]!, /n2 siblings kept "b"/, 'oldest first across nodes');
  const j = conflictsJson(logs) as { records: { node: string; versions: { value: unknown }[] }[]; nodes: string[]; errors: { node: string; code: string }[] };
  t.same(j.records.map((r) => r.node), ['n2', 'n1']);
  t.same(j.records[0]!.versions[0]!.value, { base64: 'AQI=' }, 'bytes as base64');
  t.same(j.nodes, ['n1', 'n2']);
  t.same(j.errors, [{ node: '127.0.0.1:9', code: 'UNAVAILABLE', message: 'down' }]);
  t.same(conflictsText([]), ['(no conflicts recorded)']);
});
