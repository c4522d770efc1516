// The tunekv command as a user runs it: --json output, exit codes, values
// from stdin and files, --raw, labelled output, hosts and connection files.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

interface Run { code: number | null; out: string; err: string; bytes: Buffer }

function run(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  // The tests' own environment must not choose hosts or users.
  for (const k of ['TUNEKV_HOST', 'TUNEKV_CONFIG', 'TUNEKV_USER', 'TUNEKV_PASSWORD_FILE', 'TUNEKV_SECRET_FILE']) if (!(opts.env && k in opts.env)) delete env[k];
  const r = spawnSync(process.execPath, [cliEntry, ...args], { timeout: 30_000, input: opts.input ?? '', env, cwd: opts.cwd });
  return { code: r.status, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8'), bytes: r.stdout };
}

function tunekv(...args: string[]): Run {
  return run(args);
}

t.test('the CLI against a real cluster', async (t) => {
  const cluster = await testCluster(t);
  const host = cluster.hosts[1]!;

  const put = tunekv('put', 'cli:key', 'hello', '--host', host, '--json');
  t.equal(put.code, 0, put.err);
  const putJson = JSON.parse(put.out) as { context: string; level: string; replicas: unknown[] };
  t.equal(putJson.level, 'quorum');
  t.equal(putJson.replicas.length, 3);

  for (const level of ['eventual', 'quorum', 'strong']) {
    const got = tunekv('get', 'cli:key', '--consistency', level, '--host', host, '--json');
    t.equal(got.code, 0);
    const j = JSON.parse(got.out) as { found: boolean; values: string[]; level: string };
    t.same([j.found, j.values, j.level], [true, ['hello'], level], `get --consistency ${level}`);
  }

  const second = tunekv('put', 'cli:key', 'world', '--host', host, '--json');
  t.equal(second.code, 0);
  const siblings = JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { values: string[]; context: string };
  t.same(siblings.values.sort(), ['hello', 'world'], 'a put without --context makes a sibling');
  const resolved = tunekv('put', 'cli:key', 'hello world', '--context', siblings.context, '--host', host, '--json');
  t.equal(resolved.code, 0);
  t.same((JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { values: string[] }).values, ['hello world']);

  const human = tunekv('get', 'cli:key', '--host', host);
  t.equal(human.out.trim(), 'hello world', 'plain output prints the value');
  t.match(human.err, /context: /, 'and the context on stderr');

  const del = tunekv('del', 'cli:key', '--host', host, '--json');
  t.equal(del.code, 0);
  t.equal((JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { found: boolean }).found, false, 'del without context deletes what it reads');

  const bad = tunekv('get', 'cli:key', '--r', '9', '--host', host, '--json');
  t.equal(bad.code, 2, 'a request the node calls malformed exits 2, as a usage error does');
  t.same(Object.keys((JSON.parse(bad.out) as { error: object }).error).sort(), ['code', 'details', 'message']);
  t.equal((JSON.parse(bad.out) as { exitCode: number }).exitCode, 2, 'the JSON error says the exit status');
  t.equal((JSON.parse(bad.out) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');

  const usage = tunekv('get', '--json');
  t.equal(usage.code, 2, 'usage errors exit 2');

  const status = tunekv('status', '--host', host, '--json');
  t.equal(status.code, 0);
  const st = JSON.parse(status.out) as { nodeId: string; ring: { members: unknown[]; n: number; q: number } };
  t.equal(st.nodeId, 'n2');
  t.same([st.ring.members.length, st.ring.n, st.ring.q], [3, 3, 64]);

  const cs = tunekv('cluster', 'status', '--dir', cluster.dir, '--json');
  t.equal(cs.code, 0);
  const nodes = (JSON.parse(cs.out) as { nodes: { id: string; answering: boolean }[] }).nodes;
  t.same(nodes.map((n) => [n.id, n.answering]), [['n1', true], ['n2', true], ['n3', true]]);

  const kill = tunekv('cluster', 'kill', 'n1', '--dir', cluster.dir);
  t.equal(kill.code, 0);
  const afterKill = tunekv('get', 'cli:other', '--host', cluster.hosts[0]!, '--json');
  t.equal(afterKill.code, 3, 'the only seed given is dead: unavailable');
  t.equal((JSON.parse(afterKill.out) as { error: { code: string } }).error.code, 'UNAVAILABLE');
  const viaOther = tunekv('put', 'cli:other', 'x', '--host', host, '--json');
  t.equal(viaOther.code, 0, 'through a live node the cluster still takes quorum writes');
  const restart = tunekv('cluster', 'restart', 'n1', '--dir', cluster.dir);
  t.equal(restart.code, 0, restart.err);
  t.equal(tunekv('get', 'cli:other', '--host', cluster.hosts[0]!, '--json').code, 0, 'n1 answers again');
});

t.test('values, output and hosts', async (t) => {
  const cluster = await testCluster(t);
  const host = cluster.hosts[0]!;
  const port = host.slice(host.lastIndexOf(':') + 1);

  const missing = tunekv('get', 'cli:missing', '--host', host);
  t.same([missing.code, missing.out], [1, ''], 'a missing key: nothing on stdout, exit 1');
  t.match(missing.err, /^# quorum r=2 via n1: /m, 'the replica report still goes to stderr');
  const missingJson = tunekv('get', 'cli:missing', '--host', host, '--json');
  t.equal(missingJson.code, 1);
  t.equal((JSON.parse(missingJson.out) as { found: boolean }).found, false, '--json: {"found":false,...}');

  const fromStdin = run(['put', 'cli:stdin', '-', '--host', host], { input: 'hello\n' });
  t.equal(fromStdin.code, 0, fromStdin.err);
  const readBack = JSON.parse(tunekv('get', 'cli:stdin', '--host', host, '--json').out) as { values: unknown[] };
  t.same(readBack.values, [{ base64: Buffer.from('hello\n').toString('base64') }], 'stdin: the exact bytes, newline kept, as bytes');
  t.equal(tunekv('get', 'cli:stdin', '--host', host).out, '(bytes, 6) "hello\\n"\n', 'bytes print labelled');
  const raw = tunekv('get', 'cli:stdin', '--host', host, '--raw');
  t.same([raw.code, raw.bytes], [0, Buffer.from('hello\n')], '--raw writes the bytes, nothing added');

  const file = path.join(cluster.root, 'value.bin');
  const binary = Buffer.from([0, 1, 2, 255, 10, 13]);
  fs.writeFileSync(file, binary);
  t.equal(tunekv('put', 'cli:file', `@${file}`, '--host', host).code, 0);
  t.same(tunekv('get', 'cli:file', '--host', host, '--raw').bytes, binary, '@FILE: the exact bytes');
  t.equal(tunekv('get', 'cli:file', '--host', host).out, '(bytes, 6) hex:000102ff0a0d\n', 'bytes that are not UTF-8 print as hex');

  t.equal(tunekv('put', 'cli:lit', '-', '--literal', '--host', host).code, 0);
  t.equal(tunekv('get', 'cli:lit', '--host', host).out, '-\n', '--literal stores "-"');
  t.equal(tunekv('put', 'cli:lit2', '@x', '--literal', '--host', host).code, 0);
  t.same((JSON.parse(tunekv('get', 'cli:lit2', '--host', host, '--json').out) as { values: unknown[] }).values, ['@x'], '--literal stores "@x" as a string');

  const big = Buffer.alloc(1024 * 1024 + 1, 0x61);
  const tooBig = run(['put', 'cli:big', '-', '--host', '127.0.0.1:1', '--json'], { input: big });
  t.equal(tooBig.code, 2, 'over valueBytesMax: exit 2');
  t.equal((JSON.parse(tooBig.out) as { error: { code: string } }).error.code, 'TOO_LARGE', 'TOO_LARGE before connecting (the host is not a node)');
  fs.writeFileSync(file, big);
  t.equal(tunekv('put', 'cli:big', `@${file}`, '--host', '127.0.0.1:1').code, 2);
  fs.writeFileSync(file, big.subarray(1));
  t.equal(tunekv('put', 'cli:big', `@${file}`, '--host', host).code, 0, 'exactly 1 MiB from a file is stored (no argument list limit)');
  t.equal(tunekv('get', 'cli:big', '--host', host, '--raw').bytes.length, 1024 * 1024);

  t.equal(tunekv('put', 'cli:sib', 'hello', '--host', host).code, 0);
  t.equal(tunekv('put', 'cli:sib', 'hi', '--host', host).code, 0);
  const sib = tunekv('get', 'cli:sib', '--host', host);
  const lines = sib.out.split('\n');
  t.equal(lines[0], '2 siblings:', 'siblings: a count line');
  t.same(lines.slice(1, 3).map((l) => l.slice(0, 4)), ['[1] ', '[2] '], 'then one numbered line each');
  t.same(lines.slice(1, 3).map((l) => l.slice(4)).sort(), ['hello', 'hi']);
  const rawSib = tunekv('get', 'cli:sib', '--host', host, '--raw');
  t.same([rawSib.code, rawSib.out], [5, ''], '--raw on siblings: exit 5, nothing on stdout');
  t.match(rawSib.err, /2 siblings; resolve or read with --json/);
  t.equal(tunekv('get', 'cli:sib', '--raw', '--json', '--host', host).code, 2, '--raw with --json is a usage error');

  t.equal(tunekv('put', 'cli:nl', 'a\nb', '--host', host).code, 0);
  t.equal(tunekv('get', 'cli:nl', '--host', host).out, '(string, 3 bytes) "a\\nb"\n', 'a string with a newline prints escaped, labelled');

  const viaLocalhost = tunekv('get', 'cli:lit', '--host', `localhost:${port}`);
  t.same([viaLocalhost.code, viaLocalhost.out], [0, '-\n'], '--host localhost:PORT');
  const noPort = tunekv('get', 'cli:lit', '--host', 'localhost', '--timeout-ms', '500', '--json');
  t.not((JSON.parse(noPort.out) as { error?: { code: string } }).error?.code, 'INTERNAL', '--host localhost (port 7001) is never INTERNAL');
  t.equal(tunekv('get', 'cli:lit', '--host', `${host},${host}`).code, 2, '--host takes one node');

  const listed = run(['get', 'cli:lit'], { env: { TUNEKV_HOST: `127.0.0.1:1,${cluster.hosts[1]!}` } });
  t.same([listed.code, listed.out], [0, '-\n'], 'TUNEKV_HOST may list hosts; a dead first one is skipped');

  const confDir = path.join(cluster.root, 'conf');
  fs.mkdirSync(confDir);
  const secretRel = path.relative(confDir, path.join(cluster.dir, 'cluster.secret'));
  fs.writeFileSync(path.join(confDir, 'tunekv.json'), JSON.stringify({ hosts: [cluster.hosts[2]!], secretFile: secretRel }));
  const conf = path.join(confDir, 'tunekv.json');
  const viaFile = run(['status', '--config', conf, '--json'], { cwd: cluster.root });
  t.equal(viaFile.code, 0, viaFile.err);
  const st = JSON.parse(viaFile.out) as { nodeId: string; stats?: unknown };
  t.equal(st.nodeId, 'n3', 'the connection file\'s hosts');
  t.ok(st.stats !== undefined, 'its secretFile (relative to the file) makes the CLI an admin');
  t.equal((JSON.parse(run(['status', '--json'], { cwd: cluster.root, env: { TUNEKV_CONFIG: conf } }).out) as { nodeId: string }).nodeId, 'n3', 'TUNEKV_CONFIG');
  t.equal((JSON.parse(run(['status', '--json'], { cwd: cluster.root, env: { TUNEKV_CONFIG: conf, TUNEKV_HOST: cluster.hosts[1]! } }).out) as { nodeId: string }).nodeId, 'n2', 'the environment wins over the file');
  t.equal((JSON.parse(run(['status', '--json', '--host', host], { cwd: cluster.root, env: { TUNEKV_CONFIG: conf, TUNEKV_HOST: cluster.hosts[1]! } }).out) as { nodeId: string }).nodeId, 'n1', 'a flag wins over both');
  fs.writeFileSync(conf, JSON.stringify({ hosts: [host], pasword: 'x' }));
  const unknown = run(['get', 'k', '--config', conf]);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /unknown field\(s\) "pasword"/, 'an unknown field is refused by name');
});
