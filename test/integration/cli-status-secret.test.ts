// `tunekv status --host` at a node of another cluster, run from a directory
// holding a local cluster: the local secret is offered by default, the
// other cluster refuses it, and status answers as a reader instead of
// failing with UNAUTHORIZED (the README walk, issue 11). A standby node of
// the local cluster, not listed in its cluster.json, still gets the secret
// (change.test.ts: transfer-limit to a standby).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

function tunekv(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  for (const k of ['TUNEKV_HOST', 'TUNEKV_CONFIG', 'TUNEKV_USER', 'TUNEKV_PASSWORD_FILE', 'TUNEKV_SECRET_FILE']) delete env[k];
  const r = spawnSync(process.execPath, [cliEntry, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('status of another cluster from a local cluster\'s directory', async (t) => {
  const local = await testCluster(t, { localLayout: true });
  const other = await testCluster(t);
  const mine = tunekv(local.root, 'status', '--host', local.hosts[0]!, '--json');
  t.equal(mine.code, 0, mine.err);
  t.ok('hints' in (JSON.parse(mine.out) as object), 'the local cluster shows its admin details (the local secret was proven)');
  const theirs = tunekv(local.root, 'status', '--host', other.hosts[0]!, '--json');
  t.equal(theirs.code, 0, `another cluster answers as to a reader: ${theirs.err}${theirs.out}`);
  const st = JSON.parse(theirs.out) as { nodeId: string };
  t.equal(st.nodeId, 'n1');
  t.notOk('hints' in st, 'without the admin details');
  const refused = tunekv(local.root, 'transfer-limit', '5', '--host', other.hosts[0]!);
  t.equal(refused.code, 4, 'an admin command there is still refused (exit 4): no fallback for admin');
});
