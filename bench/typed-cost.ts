// What counters and sets cost against plain puts and gets: one client, one
// request at a time (latency), then `--concurrency` requests in flight
// (throughput), at one consistency level, on the same cluster.
//
//   node dist/bench/typed-cost.js [--hosts H:P,...] [--ops 3000] [--warmup 500] [--keys 100]
//                                 [--set-size 100] [--concurrency 16] [--level quorum]
//
// Without --hosts it starts a 3-node cluster of its own in a temp directory
// on free ports (fsync off), and stops it afterwards. Sets are filled to
// --set-size members first: a set is one object rewritten whole on every
// operation, so its cost grows with its size. Plain values are 100 bytes.

import { parseArgs } from 'node:util';
import { withOwnCluster } from './own-cluster.js';
import { newHistogram, percentiles } from './histogram.js';
import { connect } from '../src/index.js';
import type { Consistency, TuneKvClient } from '../src/index.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string' },
    ops: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '500' },
    keys: { type: 'string', default: '100' },
    'set-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '16' },
    level: { type: 'string', default: 'quorum' },
  },
});
const ops = Number(values.ops);
const warmup = Number(values.warmup);
const keys = Number(values.keys);
const setSize = Number(values['set-size']);
const concurrency = Number(values.concurrency);
const level = values.level as Consistency;
const value = Buffer.alloc(100, 0x61);

type Op = (kv: TuneKvClient, i: number) => Promise<unknown>;
/** The last context each plain key's put returned: a put carries it, as an
 * application that read before writing would, so the keys do not pile up
 * siblings (a put without one is concurrent with what is stored, and 30
 * blind puts per key made the plain put and get the dearer ones). */
const contexts = new Map<number, string>();
async function putWithContext(kv: TuneKvClient, k: number): Promise<unknown> {
  const ctx = contexts.get(k);
  const res = await kv.put(`plain:${k}`, value, { consistency: level, ...(ctx === undefined ? {} : { context: ctx }) });
  contexts.set(k, res.context);
  return res;
}
const opsUnderTest: [string, Op][] = [
  ['put (100 B)', (kv, i) => putWithContext(kv, i % keys)],
  ['get', (kv, i) => kv.get(`plain:${i % keys}`, { consistency: level })],
  ['counter increment', (kv, i) => kv.counter(`c:${i % keys}`).increment(1, { consistency: level })],
  ['counter value', (kv, i) => kv.counter(`c:${i % keys}`).value({ consistency: level })],
  [`set add (set of ~${setSize})`, (kv, i) => kv.set(`s:${i % keys}`).add(`extra-${i}`, { consistency: level })],
  [`set remove (set of ~${setSize})`, (kv, i) => kv.set(`s:${i % keys}`).remove(`extra-${i}`, { consistency: level })],
  [`set members (set of ~${setSize})`, (kv, i) => kv.set(`s:${i % keys}`).members({ consistency: level })],
];

async function main(): Promise<void> {
  await withOwnCluster(values.hosts, 'tunekv-typed-cost-', measure);
}

async function measure(hosts: string): Promise<void> {
  const kv = await connect({ hosts: hosts.split(','), timeoutMs: 10_000 });
  console.log(`typed cost: level ${level}, ${keys} keys per type, sets of ${setSize} members, ${ops} ops after ${warmup} warm-up, `
    + `one client then ${concurrency} in flight; hosts ${hosts}; node ${process.version}`);
  for (let k = 0; k < keys; k++) {
    await putWithContext(kv, k);
    for (let m = 0; m < setSize; m++) await kv.set(`s:${k}`).add(`member-${m}`, { consistency: level });
  }
  console.log('| op | p50 ms | p90 ms | p99 ms | ops/s (1 client) | ops/s (' + concurrency + ' in flight) |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, op] of opsUnderTest) {
    for (let i = 0; i < warmup; i++) await op(kv, i);
    const h = newHistogram();
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) {
      const s = process.hrtime.bigint();
      await op(kv, i);
      h.recordValue(Math.max(1, Math.round(Number(process.hrtime.bigint() - s) / 1000)));
    }
    const serial = ops / (Number(process.hrtime.bigint() - t0) / 1e9);
    let next = 0;
    t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < ops) await op(kv, ops + next++);
    }));
    const parallel = ops / (Number(process.hrtime.bigint() - t0) / 1e9);
    const p = percentiles(h);
    console.log(`| ${name} | ${p.p50.toFixed(3)} | ${p.p90.toFixed(3)} | ${p.p99.toFixed(3)} | ${serial.toFixed(0)} | ${parallel.toFixed(0)} |`);
  }
  await kv.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
