// Why a W=1 put can be slower than a W=2 put with --fsync: one client,
// puts only, the levels taking turns put by put, back to back and then
// with a pause between puts. With a pause every replica's log is idle when a put arrives; back
// to back, a put acknowledged at W=1 leaves the other replicas' fsyncs in
// flight, and the next put (coordinated by another replica of its key)
// waits behind one of them before its own fsync starts.
//
//   node dist/bench/fsync-levels.js [--puts 1000] [--pause-ms 5]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readCluster, secretFileOf, startCluster, stopCluster } from '../cluster/launcher.js';
import { readSecretFile } from '../src/security/secret.js';
import { connect } from '../src/client/index.js';
import type { Consistency } from '../src/client/index.js';

const { values } = parseArgs({ options: { puts: { type: 'string', default: '1000' }, 'pause-ms': { type: 'string', default: '5' } } });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const puts = Number(values.puts);
  const pauseMs = Number(values['pause-ms']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-fsync-'));
  try {
    await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: true, detach: true, log: () => {} });
    const c = readCluster(dir)!;
    const kv = await connect({ hosts: c.nodes.map((nd) => `${nd.host}:${nd.port}`), timeoutMs: 10_000, secret: readSecretFile(secretFileOf(dir)) });
    const value = Buffer.alloc(100, 0x78);
    const levels: Consistency[] = ['eventual', 'quorum', 'strong'];
    for (const pause of [0, pauseMs]) {
      // Levels take turns put by put, so each sees the same disk and machine.
      const ms = new Map<Consistency, number[]>(levels.map((l) => [l, []]));
      for (let i = 0; i < puts; i++) {
        for (const level of levels) {
          const t0 = performance.now();
          await kv.put(`fsync:${level}:${pause}:${i}`, value, { consistency: level });
          ms.get(level)!.push(performance.now() - t0);
          if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        }
      }
      for (const level of levels) {
        const xs = ms.get(level)!;
        console.log(`${pause === 0 ? 'back to back' : `${pause} ms apart`.padEnd(12)} ${level.padEnd(8)} put p50 ${pct(xs, 50).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`);
      }
    }
    await kv.close();
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
