// Per-command help: every command prints its own synopsis, every flag it
// takes on one line, and examples; `tunekv --help` is a short list.
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { helpTopics } from '../../src/cli/help.js';
import {
  benchOptions, changeOptions, conflictsOptions, delOptions, getOptions, putOptions, simOptions, statusOptions, typedOptions, usersOptions,
} from '../../src/cli/args.js';
import type { Options } from '../../src/cli/args.js';

function tunekv(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tables: Record<string, Options> = {
  get: getOptions, put: putOptions, del: delOptions, counter: typedOptions, set: typedOptions, status: statusOptions,
  join: changeOptions, leave: changeOptions, remove: changeOptions, replace: changeOptions, plan: changeOptions, commit: changeOptions,
  'transfer-limit': changeOptions, conflicts: conflictsOptions, users: usersOptions, sim: simOptions, bench: benchOptions,
  'cluster start': { nodes: { type: 'string' }, 'base-port': { type: 'string' }, 'metrics-base-port': { type: 'string' }, dir: { type: 'string' }, n: { type: 'string' }, q: { type: 'string' }, fsync: { type: 'boolean' }, detach: { type: 'boolean' }, 'distinct-addresses': { type: 'boolean' }, host: { type: 'string' }, json: { type: 'boolean' } },
  'cluster faults': { 'delay-ms': { type: 'string' }, 'jitter-ms': { type: 'string' }, loss: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' } },
};

t.test('every command has its own help', async (t) => {
  const seen = new Set<string>();
  for (const topic of helpTopics) {
    const words = topic.split(' ');
    const viaFlag = tunekv(...words, '--help');
    t.equal(viaFlag.code, 0, `${topic} --help exits 0`);
    t.ok(viaFlag.out.startsWith(`usage: tunekv ${topic}`), `${topic}: its synopsis first`);
    const examples = viaFlag.out.split('examples:\n')[1]?.trimEnd().split('\n') ?? [];
    t.ok(examples.length >= 1 && examples.length <= 3 && examples.every((e) => e.startsWith('  ') && e.includes('tunekv ')), `${topic}: 1 to 3 examples`);
    t.notOk(seen.has(viaFlag.out), `${topic}: not the same text as another command`);
    seen.add(viaFlag.out);
    if (topic !== 'help') t.equal(tunekv('help', ...words).out, viaFlag.out, `tunekv help ${topic} is the same`);
    for (const flag of Object.keys(tables[topic] ?? {})) t.match(viaFlag.out, new RegExp(`^  .*--${flag}\\b`, 'm'), `${topic} lists --${flag}`);
  }
  t.ok(helpTopics.includes('cluster faults') && helpTopics.includes('counter') && helpTopics.includes('bench'));
  t.equal(tunekv('get', 'k', '-h').out, tunekv('get', '--help').out, '-h anywhere in the command');
});

t.test('cluster start --help names --metrics-base-port', async (t) => {
  t.match(tunekv('cluster', 'start', '--help').out, /--metrics-base-port N\s+metrics on N, N\+1, \.\.\.; 0 picks free ports; default base port \+ 2000/);
});

t.test('the short list', async (t) => {
  const top = tunekv('--help');
  t.equal(top.code, 0);
  t.ok(top.out.split('\n').length < 40, 'short');
  for (const cmd of ['get', 'put', 'del', 'counter', 'set', 'conflicts', 'status', 'join', 'plan', 'commit', 'node', 'users', 'sim', 'bench']) {
    t.match(top.out, new RegExp(`^  ${cmd} `, 'm'), `lists ${cmd}`);
  }
  t.match(top.out, /cluster start\|stop\|status/);
  t.equal(tunekv().out, top.out, 'no command prints the list');
  t.equal(tunekv('cluster', '--help').code, 0);
  t.match(tunekv('cluster', '--help').out, /^ {2}faults /m);
  const bad = tunekv('help', 'frobnicate');
  t.equal(bad.code, 2, 'help for no such command is a usage error');
});

t.test('--version and -V print package.json\'s version', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(tunekv('--version').out, `${pkg.version}\n`);
  t.equal(tunekv('-V').out, `${pkg.version}\n`);
  t.same(JSON.parse(tunekv('--version', '--json').out), { version: pkg.version });
});
