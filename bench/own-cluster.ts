// For the small benchmarks that run against `--hosts` when given, and
// otherwise against a 3-node cluster of their own: started in a temp
// directory on free ports (fsync off), stopped and removed afterwards even
// when the measurement throws.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, stopCluster } from '../cluster/launcher.js';

/** Runs `measure` against `hosts`, or against a cluster started for it
 * (`prefix` names its temp directory). */
export async function withOwnCluster(hosts: string | undefined, prefix: string, measure: (hosts: string) => Promise<void>): Promise<void> {
  if (hosts !== undefined) return measure(hosts);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    const started = await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
    await measure(started.cluster.nodes.map((nd) => `${nd.host}:${nd.port}`).join(','));
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
