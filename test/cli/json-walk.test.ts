// `--json` on every command prints exactly one JSON object on stdout and
// never prose, for answers and errors alike; the exit status agrees with
// it. The walk starts its own cluster through the CLI (cluster start is
// one of the commands) in a temp directory and stops it even on failure.
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';

interface Run { args: string[]; code: number | null; out: string; err: string }

function run(args: string[], opts: { cwd?: string; input?: string } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of ['TUNEKV_HOST', 'TUNEKV_CONFIG', 'TUNEKV_USER', 'TUNEKV_PASSWORD_FILE', 'TUNEKV_SECRET_FILE']) delete env[k];
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 120_000, env, cwd: opts.cwd, input: opts.input ?? '' });
  return { args, code: r.status, out: r.stdout, err: r.stderr };
}

/** Exactly one JSON object, alone on stdout; errors carry a code and the
 * exit status; answers exit 0 (1 for a missing key). */
function oneObject(t: Test, r: Run, expect: 'ok' | 'error' | 'notfound'): Record<string, unknown> {
  const what = `tunekv ${r.args.join(' ')}`;
  const text = r.out.trimEnd();
  t.notOk(text.includes('\n'), `${what}: one line on stdout`);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    t.fail(`${what}: stdout is not JSON: ${JSON.stringify(r.out.slice(0, 200))} (stderr ${r.err.slice(0, 300)})`);
    return {};
  }
  t.ok(typeof obj === 'object' && obj !== null && !Array.isArray(obj), `${what}: a JSON object`);
  const o = obj as Record<string, unknown>;
  if (expect === 'error') {
    t.ok(o.error !== undefined, `${what}: an error object`);
    t.equal(r.code, (o as { exitCode?: number }).exitCode, `${what}: exits with the status it reports`);
    t.not(r.code, 0, `${what}: a failure exits non-zero`);
  } else {
    t.equal(o.error, undefined, `${what}: no error (${JSON.stringify(o.error)})`);
    t.equal(r.code, expect === 'ok' ? 0 : 1, `${what}: exit ${expect === 'ok' ? 0 : 1}`);
  }
  return o;
}

t.test('every command with --json prints one JSON object', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-json-'));
  const dir = path.join(root, 'c');
  t.teardown(() => {
    run(['cluster', 'stop', '--dir', dir]);
    // Last resort: kill whatever cluster.json still lists.
    try {
      const c = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as { nodes: { pid: number | null }[] };
      for (const nd of c.nodes) if (nd.pid !== null) try { process.kill(nd.pid, 'SIGKILL'); } catch { /* gone */ }
    } catch { /* no file */ }
    fs.rmSync(root, { recursive: true, force: true });
  });
  const started = oneObject(t, run(['cluster', 'start', '--detach', '--base-port', '0', '--dir', dir, '--json']), 'ok');
  const nodes = started.nodes as { id: string; host: string; port: number }[];
  t.equal(nodes.length, 3, 'cluster start --json lists the nodes');
  const host = `${nodes[0]!.host}:${nodes[0]!.port}`;
  const admin = ['--host', host, '--secret-file', path.join(dir, 'cluster.secret')];
  const d = ['--dir', dir];
  const pw = path.join(root, 'pw');
  fs.writeFileSync(pw, 'secret-password\n');

  const walk: [string[], 'ok' | 'error' | 'notfound'][] = [
    [['cluster', 'status', ...d], 'ok'],
    [['put', 'k', 'v', '--host', host], 'ok'],
    [['put', 'k', '-', '--host', host], 'ok'],
    [['get', 'k', '--host', host], 'ok'],
    [['get', 'missing', '--host', host], 'notfound'],
    [['del', 'k', '--host', host], 'ok'],
    [['status', ...admin], 'ok'],
    [['counter', 'c', 'incr', '2', '--host', host], 'ok'],
    [['counter', 'c', '--host', host], 'ok'],
    [['set', 's', 'add', 'm', '--host', host], 'ok'],
    [['set', 's', 'members', '--host', host], 'ok'],
    [['conflicts', '--host', host], 'ok'],
    [['conflicts', '--all', '--host', host], 'ok'],
    [['plan', ...admin], 'ok'],
    [['transfer-limit', '50', ...admin], 'ok'],
    [['commit', ...admin], 'error'], // nothing staged
    [['join', '127.0.0.1:1', ...admin], 'error'],
    [['leave', 'n9', ...admin], 'error'],
    [['remove', 'n9', ...admin], 'error'],
    [['replace', 'n9', '127.0.0.1:1', ...admin], 'error'],
    [['users', 'add', 'alice', '--role', 'read', '--password-file', pw], 'ok'],
    [['users', 'add', 'bob', '--role', 'write', '--password-file', pw, '--file', path.join(root, 'users')], 'ok'],
    [['users', 'add', 'eve', '--role', 'god', '--password-file', pw], 'error'],
    [['cluster', 'faults', '--delay-ms', '1', '--jitter-ms', '1', '--loss', '0', ...d], 'ok'],
    [['cluster', 'faults', '--loss', '2', ...d], 'error'],
    [['cluster', 'faults', '--loss', 'NaN', ...d], 'error'],
    [['cluster', 'faults', '--delay-ms', '-1', ...d], 'error'],
    [['cluster', 'faults', '--jitter-ms', 'lots', ...d], 'error'],
    [['cluster', 'faults', ...d], 'ok'],
    [['cluster', 'partition', 'n1,n2', 'n3', ...d], 'ok'],
    [['cluster', 'heal', ...d], 'ok'],
    [['cluster', 'pause', 'n3', ...d], 'ok'],
    [['cluster', 'resume', 'n3', ...d], 'ok'],
    [['cluster', 'kill', 'n3', ...d], 'ok'],
    [['cluster', 'kill', 'n3', ...d], 'error'], // not running
    [['cluster', 'restart', 'n3', ...d], 'ok'],
    [['cluster', 'add', '--nodes', '2', '--wait', ...d], 'ok'],
    [['cluster', 'leave', 'n5', '--wait', ...d], 'ok'],
    [['cluster', 'kill', 'n4', ...d], 'ok'],
    [['cluster', 'remove', 'n4', '--wait', ...d], 'ok'],
    [['cluster', 'frob', ...d], 'error'],
    [['sim', '--seeds', '2'], 'ok'],
    [['sim', '--knobs', '{nope'], 'error'],
    [['bench', '--clients', 'many'], 'error'],
    [['node', '--id', 'n1'], 'error'], // node takes no --json: refused as JSON
    [['frobnicate'], 'error'],
    [['get'], 'error'],
    [['--version'], 'ok'],
    [['get', '--help'], 'ok'],
    [['cluster', 'stop', ...d], 'ok'],
    [['cluster', 'start', '--detach', ...d], 'ok'],
    [['cluster', 'stop', ...d], 'ok'],
  ];
  for (const [args, expect] of walk) {
    const r = run([...args, '--json'], { cwd: root, input: 'from stdin' });
    oneObject(t, r, expect);
  }
  const faults = oneObject(t, run(['cluster', 'status', ...d, '--json']), 'ok');
  t.ok(Array.isArray(faults.nodes), 'a stopped cluster still has a status');
});

t.test('refused fault settings apply nothing', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-faults-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'cluster.json'), JSON.stringify({ nodes: [], n: 3, q: 64 }));
  const before = fs.readFileSync(path.join(root, 'cluster.json'), 'utf8');
  for (const bad of [['--loss', '2'], ['--loss', '-0.1'], ['--loss', 'NaN'], ['--delay-ms', '-5'], ['--jitter-ms', 'Infinity'], ['--delay-ms', '1e99']]) {
    const r = run(['cluster', 'faults', ...bad, '--dir', root]);
    t.equal(r.code, 2, `${bad.join(' ')}: exit 2`);
  }
  t.equal(fs.readFileSync(path.join(root, 'cluster.json'), 'utf8'), before, 'cluster.json untouched');
});
