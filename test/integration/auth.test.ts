// Users, roles and TLS against real node processes: a cluster started with
// --users-file (so no protected mode) and mutual TLS for peers, with
// certificates made by the openssl command for this test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { connect, TuneKvError } from '../../src/index.js';
import type { ConnectOptions, TuneKvClient } from '../../src/index.js';
import { RpcConnection } from '../../src/io/connection.js';
import { MsgType } from '../../src/protocol/messages.js';
import { clusterKey, readSecretFile } from '../../src/security/secret.js';
import { userLine } from '../../src/security/users.js';
import { secretFileOf } from '../../cluster/launcher.js';
import { makeCerts } from '../helpers/certs.js';
import { testCluster } from '../helpers/cluster.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-auth-'));
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

async function expectCode(t: { ok(v: boolean, m: string): void; fail(m: string): void }, p: Promise<unknown>, code: string, what: string): Promise<TuneKvError | undefined> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, it succeeded`);
    return undefined;
  } catch (err) {
    t.ok(err instanceof TuneKvError && err.code === code, `${what}: ${code} (${(err as Error).message})`);
    return err as TuneKvError;
  }
}

t.test('users, roles and mutual TLS on real processes', async (t) => {
  const certs = makeCerts(path.join(work, 'certs'));
  const usersFile = path.join(work, 'users.txt');
  const lines = await Promise.all([
    userLine('reader', 'read-pw', 'read'),
    userLine('writer', 'write-pw', 'write'),
    userLine('boss', 'admin-pw', 'admin'),
  ]);
  fs.writeFileSync(usersFile, `# test users\n${lines.join('\n')}\n`, { mode: 0o600 });
  const cluster = await testCluster(t, {
    nodeArgs: ['--users-file', usersFile, '--tls-cert', certs.nodeCert, '--tls-key', certs.nodeKey, '--tls-ca', certs.ca],
  });
  const tls = { ca: fs.readFileSync(certs.ca) };
  const clients: TuneKvClient[] = [];
  t.teardown(async () => { for (const c of clients) await c.close(); });
  const client = async (opts: Partial<ConnectOptions>): Promise<TuneKvClient> => {
    const kv = await connect({ hosts: cluster.hosts, tls, timeoutMs: 5000, ...opts });
    clients.push(kv);
    return kv;
  };

  await t.test('a writer writes and reads over TLS; the reply is from the real cluster', async (t) => {
    const kv = await client({ user: 'writer', password: 'write-pw' });
    await kv.put('auth:k', 'v1', { consistency: 'strong' });
    const got = await kv.get('auth:k', { consistency: 'strong' });
    t.same(got.values, ['v1']);
  });

  await t.test('a reader reads but may not write or set faults', async (t) => {
    const kv = await client({ user: 'reader', password: 'read-pw' });
    t.same((await kv.get('auth:k')).values, ['v1'], 'read allowed');
    await expectCode(t, kv.put('auth:k', 'reader was here'), 'FORBIDDEN', 'put with the read role');
    const st = await kv.status();
    t.equal(st.nodeId !== undefined, true, 'status summary is readable');
    t.equal(st.hints, undefined, 'status details are for admins only');
  });

  await t.test('an admin sees status details', async (t) => {
    const kv = await client({ user: 'boss', password: 'admin-pw' });
    const st = await kv.status();
    t.ok(st.hints !== undefined && st.security !== undefined, 'details present');
    t.equal((st.security as { mode: string }).mode, 'users');
  });

  await t.test('a wrong password or unknown user is UNAUTHORIZED, and nothing changed', async (t) => {
    await expectCode(t, connect({ hosts: cluster.hosts, tls, user: 'writer', password: 'nope' }), 'UNAUTHORIZED', 'wrong password');
    await expectCode(t, connect({ hosts: cluster.hosts, tls, user: 'mallory', password: 'x' }), 'UNAUTHORIZED', 'unknown user');
    const kv = await client({ user: 'writer', password: 'write-pw' });
    t.same((await kv.get('auth:k', { consistency: 'strong' })).values, ['v1']);
  });

  await t.test('with a users file, loopback clients are not trusted (no protected mode)', async (t) => {
    await expectCode(t, connect({ hosts: cluster.hosts, tls }), 'UNAUTHORIZED', 'anonymous ring fetch');
  });

  await t.test('plain TCP to a TLS node gets nowhere', async (t) => {
    await expectCode(t, connect({ hosts: [cluster.hosts[0]!], connectTimeoutMs: 1000, user: 'writer', password: 'write-pw' }),
      'UNAVAILABLE', 'no TLS');
  });

  await t.test('a TLS client that does not trust the cluster CA is refused', async (t) => {
    await expectCode(t, connect({ hosts: [cluster.hosts[0]!], tls: { ca: fs.readFileSync(certs.otherCa) }, user: 'writer', password: 'write-pw' }),
      'UNAVAILABLE', 'unknown server certificate');
  });

  await t.test('the cluster secret without a CA-signed certificate does not make a peer', async (t) => {
    const key = clusterKey(readSecretFile(secretFileOf(cluster.dir)));
    const [host, port] = cluster.hosts[0]!.split(':') as [string, string];
    const conn = new RpcConnection({
      host, port: Number(port), agent: 'test', connectTimeoutMs: 2000, tls: { ca: fs.readFileSync(certs.ca) },
      auth: { kind: 'secret', key, as: 'node:n2' },
    });
    t.teardown(() => conn.close());
    const err = await new Promise<TuneKvError | null>((resolve) => {
      conn.request(MsgType.REPLICA_READ, { key: 'auth:k' }, 5000, (e) => resolve(e));
    });
    t.equal(err?.code, 'UNAUTHORIZED', `secret proof without a client certificate: ${err?.message ?? 'accepted'}`);
    const ok = new RpcConnection({
      host, port: Number(port), agent: 'test', connectTimeoutMs: 2000,
      tls: { ca: fs.readFileSync(certs.ca), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) },
      auth: { kind: 'secret', key, as: 'admin' },
    });
    t.teardown(() => ok.close());
    const body = await new Promise<unknown>((resolve, reject) => {
      ok.request(MsgType.STATUS, {}, 5000, (e, _t, b) => (e ? reject(e) : resolve(b)));
    });
    t.ok((body as { security?: unknown }).security !== undefined, 'with a CA-signed client certificate the secret proof is accepted');
  });

  await t.test('a conflict record names the user who wrote the put', async (t) => {
    const kv = await client({ user: 'writer', password: 'write-pw' });
    const reader = await client({ user: 'reader', password: 'read-pw' });
    for (const host of cluster.hosts) await kv.put('auth:conflict', `from ${host}`, { host });
    const records = (await Promise.all(cluster.hosts.map((host) => reader.conflicts({ key: 'auth:conflict', host }))))
      .flatMap((page) => page.records).filter((r) => r.kind === 'siblings kept');
    t.ok(records.length >= 2, `blind puts left siblings, recorded by their coordinators (${records.length})`);
    for (const r of records) t.match(r.by, /^n\d+ for user writer$/, `by: ${r.by} (${r.note})`);
  });

  await t.test('peers reach each other over mutual TLS: a strong write needs two of them', async (t) => {
    const kv = await client({ user: 'writer', password: 'write-pw' });
    const res = await kv.put('auth:peers', 'x', { consistency: 'strong', w: undefined });
    t.ok(res.replicas.filter((r) => r.outcome === 'ok').length >= 2, 'a majority of primaries acknowledged');
  });
});
