// Node settings: what configProblem refuses, in words that name the field,
// and how the CLI reads numbers (decimal only).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cliEntry } from '../cluster/launcher.js';
import { makeConfig } from '../src/config.js';

const base = { id: 'n1', listen: '127.0.0.1:7001', dataDir: '/tmp/x' };

t.test('read settings: defaults and bounds', async (t) => {
  const c = makeConfig(base);
  t.equal(c.readRepairChance, 0.1);
  t.equal(c.speculativeRetryMs, 20);
  t.ok(c.speculativeRetryMs < c.requestTimeoutMs, 'the default retry comes before the default deadline');
  for (const readRepairChance of [-0.1, 1.5, Number.NaN]) {
    t.throws(() => makeConfig({ ...base, readRepairChance }), /readRepairChance .* must be a number from 0 to 1/, `readRepairChance ${readRepairChance}`);
  }
  t.equal(makeConfig({ ...base, readRepairChance: 1 }).readRepairChance, 1, '1 asks all replicas: allowed');
  for (const speculativeRetryMs of [0, -5, 1.5, 5000, 60_000]) {
    t.throws(() => makeConfig({ ...base, speculativeRetryMs }), /speculativeRetryMs .* below requestTimeoutMs/, `speculativeRetryMs ${speculativeRetryMs}`);
  }
  t.equal(makeConfig({ ...base, requestTimeoutMs: 1000, speculativeRetryMs: 999 }).speculativeRetryMs, 999);
});

t.test('heap growth: default, bounds, 0 leaves it to V8', async (t) => {
  t.equal(makeConfig(base).heapGrowthPercent, 50);
  t.equal(makeConfig({ ...base, heapGrowthPercent: 0 }).heapGrowthPercent, 0);
  t.equal(makeConfig({ ...base, heapGrowthPercent: 300 }).heapGrowthPercent, 300);
  for (const heapGrowthPercent of [-1, 301, 12.5, Number.NaN]) {
    t.throws(() => makeConfig({ ...base, heapGrowthPercent }), /heapGrowthPercent .* must be an integer from 0 \(V8 decides\) to 300/, `heapGrowthPercent ${heapGrowthPercent}`);
  }
});

t.test('the CLI takes decimal integers only', async (t) => {
  const data = path.join(os.tmpdir(), `tunekv-config-test-${process.pid}`);
  const node = (...extra: string[]) => spawnSync(process.execPath, [cliEntry, 'node', '--id', 'n1', '--listen', '127.0.0.1:0', '--data', data, ...extra],
    { encoding: 'utf8', timeout: 30_000 });
  for (const bad of [['--speculative-retry-ms='], ['--speculative-retry-ms=0x10'], ['--speculative-retry-ms= 7'], ['--timeout-ms=0x7d0'],
    ['--read-repair-chance', ' 0.5'], ['--read-repair-chance', '0x1'], ['--speculative-retry-ms', '60000'], ['--heap-growth-percent', '400'],
    ['--heap-growth-percent', '0x32']]) {
    const r = node(...bad);
    t.equal(r.status, 2, `${bad.join(' ')}: a usage error (${r.stderr.trim().split('\n')[0]})`);
    t.match(r.stderr, /INVALID_ARGUMENT|must be/, 'with a message that says what is wrong');
  }
});
