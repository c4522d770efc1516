// Ports: `cluster start --metrics-base-port`, a taken port named as
// PORT_IN_USE (from `tunekv node` and from `cluster start`), and flags that
// differ from what an existing --dir holds: refused or applied, never
// ignored.
import t from 'tap';
import { limits } from '../../src/limits.js';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliEntry, readCluster, stopCluster } from '../../cluster/launcher.js';

function tunekv(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A port we hold ourselves (listen on 0, read it back). */
async function occupy(t: { teardown(fn: () => void): void }): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => { s.close(); });
  return (s.address() as net.AddressInfo).port;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `count` consecutive ports that are free now, below 32768 is not needed:
 * the kernel offers the first, the rest are bind-tested. */
async function consecutiveFree(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
    const first = (s.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if (first + count > 65_535) continue;
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await canBind(first + i);
    if (ok) return first;
  }
  throw new Error('no run of free ports');
}

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function tempDir(t: { teardown(fn: () => void | Promise<void>): void }, cluster = false): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-ops-'));
  t.teardown(async () => {
    if (cluster) await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

t.test('tunekv node names a taken port: PORT_IN_USE, whose, which, where', async (t) => {
  const dir = tempDir(t);
  const taken = await occupy(t);
  const metrics = tunekv('node', '--id', 'n9', '--listen', '127.0.0.1:0', '--data', path.join(dir, 'a'), '--metrics', `127.0.0.1:${taken}`);
  t.not(metrics.code, 0);
  t.match(metrics.err, `PORT_IN_USE: n9's metrics port ${taken} on 127.0.0.1 is in use`);
  t.notMatch(metrics.err, /EADDRINUSE|INTERNAL/);
  const line = metrics.out.split('\n').filter((l) => l.includes('node_start_failed'))[0];
  t.match(JSON.parse(line ?? '{}'), { level: 'error', node: 'n9', event: 'node_start_failed', code: 'PORT_IN_USE' }, 'and logs it as an event');
  const own = tunekv('node', '--id', 'n9', '--listen', `127.0.0.1:${taken}`, '--data', path.join(dir, 'b'), '--metrics', 'off');
  t.not(own.code, 0);
  t.match(own.err, `PORT_IN_USE: n9's port ${taken} on 127.0.0.1 is in use`);
});

t.test('cluster start names a taken port: PORT_IN_USE, and leaves nothing running', async (t) => {
  const dir = tempDir(t, true);
  const taken = await occupy(t);
  const r = tunekv('cluster', 'start', '--dir', dir, '--base-port', '0', '--metrics-base-port', String(taken), '--detach');
  t.not(r.code, 0);
  t.match(r.err, `PORT_IN_USE: n1's metrics port ${taken} on 127.0.0.1 is in use`);
  t.ok((readCluster(dir)?.nodes ?? []).every((nd) => nd.pid === null), 'no node left running');
  const dir2 = tempDir(t, true);
  const r2 = tunekv('cluster', 'start', '--dir', dir2, '--base-port', String(taken), '--detach');
  t.not(r2.code, 0);
  t.match(r2.err, `PORT_IN_USE: n1's port ${taken} on 127.0.0.1 is in use`);
});

t.test('--metrics-base-port: 0 picks free ports; a new one is applied on restart and followed by restart and add; a different --base-port, --n or --q is refused', async (t) => {
  const dir = tempDir(t, true);
  const first = tunekv('cluster', 'start', '--dir', dir, '--base-port', '0', '--metrics-base-port', '0', '--detach');
  t.equal(first.code, 0, first.err);
  let c = readCluster(dir)!;
  t.equal(c.metricsBasePort, 0, 'kept in cluster.json');
  const ports = c.nodes.flatMap((nd) => [nd.port, nd.metricsPort!]);
  t.equal(new Set(ports).size, 6, 'six distinct ports');
  for (const nd of c.nodes) t.equal((await get(nd.metricsPort!, '/health')).status, 200, `${nd.id} serves /health on its picked port`);

  t.equal(tunekv('cluster', 'stop', '--dir', dir).code, 0);
  const base = await consecutiveFree(4);
  const again = tunekv('cluster', 'start', '--dir', dir, '--metrics-base-port', String(base), '--detach');
  t.equal(again.code, 0, again.err);
  t.match(again.out, `metrics base port ${base} applied`, 'the change is said');
  c = readCluster(dir)!;
  t.same(c.nodes.map((nd) => nd.metricsPort), [base, base + 1, base + 2], 'node i on base + i - 1');
  t.equal(c.metricsBasePort, base);
  t.equal((await get(base + 1, '/metrics')).status, 200, 'n2 serves metrics on base + 1');

  const restart = tunekv('cluster', 'restart', 'n2', '--dir', dir);
  t.equal(restart.code, 0, restart.err);
  t.equal((await get(base + 1, '/health')).status, 200, 'a restarted node keeps its metrics port');

  const add = tunekv('cluster', 'add', '--dir', dir);
  t.equal(add.code, 0, add.err);
  const n4 = readCluster(dir)!.nodes.find((nd) => nd.id === 'n4')!;
  t.equal(n4.metricsPort, base + 3, 'cluster add follows the metrics base port');
  t.equal((await get(base + 3, '/health')).status, 200);

  t.equal(tunekv('cluster', 'stop', '--dir', dir).code, 0);
  for (const [flag, value, stored] of [['--base-port', '7001', '0 (free ports)'], ['--n', '5', '3'], ['--q', '128', '64']] as const) {
    const r = tunekv('cluster', 'start', '--dir', dir, flag, value, '--detach');
    t.not(r.code, 0, `${flag} ${value} is refused`);
    t.match(r.err, `INVALID_ARGUMENT: ${dir} holds a cluster started with ${flag} ${stored}`, 'naming the stored value');
  }
  t.ok(readCluster(dir)!.nodes.every((nd) => nd.pid === null), 'nothing was started');
});

t.test('/health and /ready on a standby node: alive, not ready, with reasons', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, [cliEntry, 'node', '--id', 'n7', '--listen', '127.0.0.1:0', '--data', path.join(dir, 'd'),
    '--metrics', '127.0.0.1:0', '--standby'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (const line of buf.split('\n')) {
        if (!line.includes('"node_listening"')) continue;
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.on('exit', (code) => reject(new Error(`node exited (${code})`)));
  });
  t.match(listening, { node: 'n7', event: 'node_listening', standby: true });
  const port = Number(/:(\d+)\/metrics$/.exec(String(listening.metrics))![1]);
  const health = await get(port, '/health');
  t.equal(health.status, 200);
  t.same(JSON.parse(health.body), { status: 'ok', node: 'n7' });
  const ready = await get(port, '/ready');
  t.equal(ready.status, 503, 'a standby node is not ready');
  const body = JSON.parse(ready.body) as { status: string; reasons: string[] };
  t.equal(body.status, 'not ready');
  t.match(body.reasons.join('; '), /standby/);
  t.equal((await get(port, '/nope')).status, 404);

  // Idle connections past metricsConnectionsMax are dropped at once (an
  // outsider opening thousands took every file descriptor of the node).
  const extra = 20;
  const sockets = await Promise.all(Array.from({ length: limits.metricsConnectionsMax + extra }, () => new Promise<net.Socket>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => {});
  })));
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const closed = await Promise.all(sockets.map((s) => new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 2_000);
    s.once('close', () => { clearTimeout(timer); resolve(true); });
  })));
  t.ok(closed.filter((c) => c).length >= extra, `connections past ${limits.metricsConnectionsMax} are closed (${closed.filter((c) => c).length} of ${sockets.length})`);
  t.ok(closed.filter((c) => !c).length <= limits.metricsConnectionsMax, 'and no more than the limit are held');
});
