// connect({ secret }) takes the cluster secret as the file's text or as
// the bytes readSecretFile returns (a red-team finding: the text was
// refused with a message that did not say what form it wanted).
import fs from 'node:fs';
import t from 'tap';
import { connect, readSecretFile } from '../../src/client/index.js';
import { secretFileOf } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

t.test('the secret as text or as bytes proves the cluster secret', async (t) => {
  const cluster = await testCluster(t);
  const file = secretFileOf(cluster.dir);
  for (const [what, secret] of [['text', fs.readFileSync(file, 'utf8')], ['bytes', readSecretFile(file)]] as const) {
    const kv = await connect({ hosts: [cluster.hosts[0]!], secret });
    const st = await kv.status() as { storage?: unknown; counters?: unknown };
    t.ok(st.storage !== undefined || st.counters !== undefined, `${what}: admin status (only an admin sees storage and counters)`);
    await kv.close();
  }
  await t.rejects(connect({ hosts: [cluster.hosts[0]!], secret: 'too short' }), /secret must be the cluster secret: the text of cluster.secret/,
    'a short secret names the two accepted forms');
});
