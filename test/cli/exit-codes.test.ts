// The exit statuses are a contract for scripts: every error code has an
// explicit row, and the README's table says what the code does.
import t from 'tap';
import fs from 'node:fs';
import { TuneKvError, errorCodes } from '../../src/errors.js';
import { RefusedError, UsageError, describeError, exitStatus, exitStatusOfCode, mappedCodes } from '../../src/cli/exit-codes.js';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test('every code in src/errors.ts has an explicit row', async (t) => {
  const rows = mappedCodes();
  for (const code of Object.keys(errorCodes)) t.ok(rows.includes(code), `${code} is mapped`);
});

t.test('the split: usage, unavailable, auth, refused, internal', async (t) => {
  const want: Record<string, number> = {
    INVALID_ARGUMENT: 2, TOO_LARGE: 2,
    UNAVAILABLE: 3, QUORUM_UNAVAILABLE: 3, SESSION_UNAVAILABLE: 3, TIMEOUT: 3, OVERLOADED: 3, STALE_RING: 3, ABORTED: 3, PORT_IN_USE: 3,
    UNAUTHORIZED: 4, FORBIDDEN: 4,
    SIBLINGS_LIMIT: 5, COUNTER_OVERFLOW: 5, SET_MEMBERS_LIMIT: 5, CHANGE_REFUSED: 5, NODE_REMOVED: 5, STORAGE_FAILED: 5,
    PROTOCOL_ERROR: 6, INTERNAL: 6,
  };
  for (const [code, status] of Object.entries(want)) t.equal(exitStatusOfCode(code), status, code);
  t.equal(exitStatusOfCode('FROM_A_NEWER_NODE'), 6, 'an unknown code is a protocol matter');
  t.equal(exitStatusOfCode('toString'), 6, 'no inherited property is a row');
});

t.test('every caught error goes through one mapping', async (t) => {
  t.equal(describeError(new UsageError('x')).status, exitStatus.usage);
  t.equal((describeError(new UsageError('x')).error as TuneKvError).code, 'INVALID_ARGUMENT');
  t.equal(describeError(new TuneKvError('FORBIDDEN', 'no')).status, 4);
  t.equal(describeError(new RefusedError('2 siblings')).status, 5);
  t.equal(describeError(new Error('boom')).status, 6);
  t.equal(describeError('thrown string').status, 6);
});

t.test('the README\'s exit code table matches', async (t) => {
  const start = readme.indexOf('### Exit codes\n');
  t.ok(start > 0, 'README has an Exit codes section');
  const section = readme.slice(start, readme.indexOf('\n### ', start + 1));
  const rows = [...section.matchAll(/^\| (\d) \| [^|]+ \|([^|]*)\|/gm)];
  t.same(rows.map((r) => Number(r[1])), [0, 1, 2, 3, 4, 5, 6], 'one row per status');
  for (const code of mappedCodes()) {
    const row = rows.find((r) => r[2]!.includes(`\`${code}\``));
    t.ok(row, `${code} is in the table`);
    if (row) t.equal(Number(row[1]), exitStatusOfCode(code), `${code} documented with its status`);
  }
});
