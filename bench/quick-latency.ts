// One client, one request at a time: p50 / p99 of get and put at each
// consistency level against a running cluster. A quick measurement, not the
// benchmark proper (that is `tunekv bench`): no open loop, no injected delay.
//
//   node dist/bench/quick-latency.js [--hosts 127.0.0.1:7001] [--ops 5000] [--warmup 1000] [--value-bytes 100]
//
// Without --hosts it starts a 3-node cluster of its own in a temp directory
// on free ports, and stops it afterwards.

import { parseArgs } from 'node:util';
import { withOwnCluster } from './own-cluster.js';
import * as hdr from 'hdr-histogram-js';
import { connect } from '../src/index.js';
import type { GetOptions } from '../src/index.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string' },
    ops: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '1000' },
    'value-bytes': { type: 'string', default: '100' },
  },
});

const ops = Number(values.ops);
const warmup = Number(values.warmup);
const value = Buffer.alloc(Number(values['value-bytes']), 0x61);
const levels: [string, GetOptions & { w?: number }][] = [
  ['eventual', { consistency: 'eventual' }],
  ['quorum', { consistency: 'quorum' }],
  ['strong', { consistency: 'strong' }],
  ['r=3,w=3', { r: 3, w: 3 }],
];

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

const ms = (h: hdr.Histogram, p: number) => (h.getValueAtPercentile(p) / 1e6).toFixed(3);

async function main(): Promise<void> {
  await withOwnCluster(values.hosts, 'tunekv-quick-', measure);
}

async function measure(hosts: string): Promise<void> {
  const kv = await connect({ hosts: hosts.split(','), timeoutMs: 10_000 });
  console.log(`quick latency: ${ops} ops per level after ${warmup} warm-up, ${value.length}-byte values, one client, hosts ${hosts}`);
  console.log('| level | op | p50 ms | p90 ms | p99 ms | max ms | ops/s |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, opts] of levels) {
    const { r, w, consistency } = opts;
    const prefix = `quick:${name}:${Date.now()}:`;
    for (let i = 0; i < warmup; i++) {
      await kv.put(`${prefix}w${i}`, value, { consistency, w });
      await kv.get(`${prefix}w${i}`, { consistency, r });
    }
    const puts = histogram();
    const gets = histogram();
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) {
      const s = process.hrtime.bigint();
      await kv.put(`${prefix}${i}`, value, { consistency, w });
      puts.recordValue(Number(process.hrtime.bigint() - s));
    }
    const putSecs = Number(process.hrtime.bigint() - t0) / 1e9;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) {
      const s = process.hrtime.bigint();
      await kv.get(`${prefix}${i}`, { consistency, r });
      gets.recordValue(Number(process.hrtime.bigint() - s));
    }
    const getSecs = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const [op, h, secs] of [['get', gets, getSecs], ['put', puts, putSecs]] as const) {
      console.log(`| ${name} | ${op} | ${ms(h, 50)} | ${ms(h, 90)} | ${ms(h, 99)} | ${(h.maxValue / 1e6).toFixed(3)} | ${Math.round(ops / secs)} |`);
    }
  }
  await kv.close();
}

main().catch((err: Error) => { console.error(err); process.exit(1); });
