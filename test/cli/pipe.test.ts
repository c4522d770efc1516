// A reader that stops early (`| head`) ends the command quietly: exit 0 and
// no EPIPE stack trace (the README walk found `sim --trace | head` dying).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { cliEntry } from '../../cluster/launcher.js';

t.test('output into a pipe that closes early', async (t) => {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cliEntry}" sim --seed 42 --trace k3 | head -c 1 >/dev/null; exit \${PIPESTATUS[0]}`],
    { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  t.notMatch(r.stderr, /EPIPE|Error/, 'no stack trace');
});

t.test('a full disk is not success: exit 6, said on stderr', async (t) => {
  for (const args of [['--version'], ['--version', '--json']]) {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cliEntry}" ${args.join(' ')} >/dev/full`], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 6, `${args.join(' ')} > /dev/full`);
    t.match(r.stderr, /cannot write the output: ENOSPC/);
  }
});

t.test('Ctrl-C while a request is out: ABORTED, one JSON object, exit 3', async (t) => {
  // A server that accepts and never answers: the request hangs until the signal.
  const server = net.createServer((s) => { s.on('error', () => {}); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { server.close(); });
  const port = (server.address() as AddressInfo).port;
  const child = spawn(process.execPath, [cliEntry, 'put', 'k', 'v', '--host', `127.0.0.1:${port}`, '--json', '--timeout-ms', '30000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  await new Promise((resolve) => server.once('connection', resolve));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 3);
  const j = JSON.parse(out) as { error: { code: string; details: { maybeApplied: boolean } }; exitCode: number };
  t.same([j.error.code, j.error.details.maybeApplied, j.exitCode], ['ABORTED', true, 3]);
});
