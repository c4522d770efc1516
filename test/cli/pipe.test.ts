// A reader that stops early (`| head`) ends the command quietly: exit 0 and
// no EPIPE stack trace (the README walk found `sim --trace | head` dying).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';

t.test('output into a pipe that closes early', async (t) => {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cliEntry}" sim --seed 42 --trace k3 | head -c 1 >/dev/null; exit \${PIPESTATUS[0]}`],
    { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  t.notMatch(r.stderr, /EPIPE|Error/, 'no stack trace');
});
