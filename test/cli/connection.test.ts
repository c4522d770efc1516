// The connection file, hosts and their precedence: flags > environment >
// connection file > local cluster > 127.0.0.1:7001.
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentialsOf, hostsOf, normalizeHost, readConnectionFile } from '../../src/cli/connection.js';
import { UsageError } from '../../src/cli/exit-codes.js';
import { readValueArg } from '../../src/cli/value-input.js';
import { limits } from '../../src/limits.js';

function tmp(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function withEnv(t: Test, env: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });
}

const noEnv = { TUNEKV_HOST: undefined, TUNEKV_USER: undefined, TUNEKV_PASSWORD_FILE: undefined, TUNEKV_SECRET_FILE: undefined, TUNEKV_CONFIG: undefined };

t.test('hosts: a port is optional, lists are checked', async (t) => {
  t.equal(normalizeHost('localhost', 'x'), 'localhost:7001');
  t.equal(normalizeHost('10.0.0.1:7002', 'x'), '10.0.0.1:7002');
  t.equal(normalizeHost('[::1]', 'x'), '[::1]:7001');
  t.equal(normalizeHost('[::1]:9', 'x'), '[::1]:9');
  t.throws(() => normalizeHost('a:b:c', 'x'), UsageError);
  t.throws(() => normalizeHost('h:0', 'x'), UsageError);
  t.throws(() => normalizeHost('h:70000', 'x'), UsageError);
  t.throws(() => normalizeHost('', 'x'), UsageError);
});

t.test('precedence: --host > TUNEKV_HOST > connection file > default', async (t) => {
  const dir = tmp(t);
  const cwd = process.cwd();
  process.chdir(dir); // no ./data/cluster here
  t.teardown(() => process.chdir(cwd));
  withEnv(t, noEnv);
  const file = path.join(dir, 'conn.json');
  fs.writeFileSync(file, JSON.stringify({ hosts: ['10.0.0.1', '10.0.0.2:7005'] }));
  const conn = readConnectionFile(file);
  t.same(hostsOf({}, undefined), ['127.0.0.1:7001'], 'the default');
  t.same(hostsOf({}, conn), ['10.0.0.1:7001', '10.0.0.2:7005'], 'the file');
  process.env.TUNEKV_HOST = '127.0.0.1:7001, 127.0.0.1:7002';
  t.same(hostsOf({}, conn), ['127.0.0.1:7001', '127.0.0.1:7002'], 'the environment, a list');
  t.same(hostsOf({ host: 'localhost' }, conn), ['localhost:7001'], 'the flag');
  t.throws(() => hostsOf({ host: 'a:1,b:2' }, conn), UsageError, '--host names one node');
  process.env.TUNEKV_HOST = 'bad:host:x';
  t.throws(() => hostsOf({}, conn), /TUNEKV_HOST/);
});

t.test('the connection file: fields, relative paths, unknown fields, size', async (t) => {
  const dir = tmp(t);
  withEnv(t, noEnv);
  fs.writeFileSync(path.join(dir, 'pw'), 'pa55word\n');
  fs.writeFileSync(path.join(dir, 'ca.pem'), 'CA');
  const file = path.join(dir, 'conn.json');
  fs.writeFileSync(file, JSON.stringify({ hosts: ['h:1'], user: 'alice', passwordFile: 'pw', tls: { ca: 'ca.pem' } }));
  const conn = readConnectionFile(file);
  t.equal(conn.passwordFile, path.join(dir, 'pw'), 'relative to the file');
  const creds = await credentialsOf({}, conn, false);
  t.same([creds.user, creds.password, Buffer.from(creds.tls!.ca as Buffer).toString()], ['alice', 'pa55word', 'CA']);
  fs.writeFileSync(path.join(dir, 'pw2'), 'other');
  const flagged = await credentialsOf({ user: 'bob', 'password-file': path.join(dir, 'pw2') }, conn, false);
  t.same([flagged.user, flagged.password], ['bob', 'other'], 'flags win over the file');
  process.env.TUNEKV_USER = 'carol';
  t.equal((await credentialsOf({}, conn, false)).user, 'carol', 'the environment wins over the file');

  fs.writeFileSync(file, JSON.stringify({ hosts: ['h:1'], pasword: 'x', extra: 1 }));
  t.throws(() => readConnectionFile(file), /unknown field\(s\) "pasword", "extra"/, 'unknown fields are named');
  fs.writeFileSync(file, JSON.stringify({ tls: { ca: 'x', crt: 'y' } }));
  t.throws(() => readConnectionFile(file), /"crt"/);
  fs.writeFileSync(file, JSON.stringify({ hosts: 'h:1' }));
  t.throws(() => readConnectionFile(file), /"hosts" must be a list/);
  fs.writeFileSync(file, '[1]');
  t.throws(() => readConnectionFile(file), /one JSON object/);
  fs.writeFileSync(file, '{');
  t.throws(() => readConnectionFile(file), /not JSON/);
  fs.writeFileSync(file, `{"hosts":["h:1"]${' '.repeat(limits.cliConfigBytesMax)}}`);
  t.throws(() => readConnectionFile(file), /larger than/, 'size-bounded');
  t.throws(() => readConnectionFile(path.join(dir, 'absent.json')), UsageError);
});

t.test('put values: literal, @FILE, bounded', async (t) => {
  const dir = tmp(t);
  t.equal(await readValueArg('hello', false), 'hello');
  t.equal(await readValueArg('-', true), '-', '--literal stores "-"');
  t.equal(await readValueArg('@x', true), '@x', '--literal stores "@x"');
  const f = path.join(dir, 'v');
  fs.writeFileSync(f, 'line\n');
  t.same(Buffer.from(await readValueArg(`@${f}`, false) as Uint8Array), Buffer.from('line\n'), '@FILE gives the exact bytes');
  fs.writeFileSync(f, Buffer.alloc(limits.valueBytesMax + 1));
  await t.rejects(readValueArg(`@${f}`, false), { name: 'TuneKvError', code: 'TOO_LARGE' });
  await t.rejects(readValueArg('x'.repeat(limits.valueBytesMax + 1), false), { name: 'TuneKvError', code: 'TOO_LARGE' });
  await t.rejects(readValueArg('@', false), UsageError);
  await t.rejects(readValueArg(`@${path.join(dir, 'absent')}`, false), UsageError);
});
