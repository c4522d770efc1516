#!/usr/bin/env node
// The `tunekv` command: run a node, drive a local cluster, and get / put /
// del / status from a shell. `--json` prints exactly one JSON object on
// stdout; a failed request exits 1 and prints {"error":{"code","message"}}.

import fs from 'node:fs';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import {
  activeNodes, addNodes, clusterStatus, heal, killNode, leaveNode, partition, pauseNode, readCluster, removeNode, restartNode, resumeNode,
  setLinkFaults, startCluster, stopCluster,
} from '../../cluster/launcher.js';
import type { ChangeResult, ClusterStatus, NodeStatus } from '../../cluster/launcher.js';
import { connect } from '../client/client.js';
import type { ConnectOptions, GetResult, PutResult, TuneKvClient } from '../client/client.js';
import { readSecretFile, secretFileName } from '../security/secret.js';
import { userLine } from '../security/users.js';
import { isConsistency } from '../core/quorum/levels.js';
import type { Consistency } from '../core/quorum/levels.js';
import { TuneKvError } from '../errors.js';
import { parseSince } from '../client/conflicts.js';
import { conflictsJson, conflictsText, readAllLogs, readNodeLog } from './conflicts.js';
import type { NodeConflicts } from './conflicts.js';
import { startNode } from '../server/start-node.js';
import { runSimCommand } from '../sim/run.js';
import { cmdCounter, cmdSet } from './typed-commands.js';
import type { TypedCliDeps } from './typed-commands.js';
import { fullBenchOptions, runBench } from '../../bench/bench.js';
import type { BenchOptions } from '../../bench/bench.js';

const usage = `usage:
  tunekv node --id n1 --listen 127.0.0.1:7001 --data DIR [--join HOST:PORT,... | --standby] [--n 3] [--q 64] [--fsync] [--lww] [--metrics HOST:PORT|off]
              [--transfer-mbps 20] [--read-repair-chance 0.1] [--speculative-retry-ms 20] [--cache-mb 32]
              [--heap-growth-percent 50]
              [--secret-file FILE] [--users-file FILE] [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]
  tunekv users add NAME --role read|write|admin [--password-file FILE] [--file USERS_FILE]
  tunekv cluster start [--nodes 3] [--base-port 7001] [--dir ./data/cluster] [--n 3] [--q 64] [--fsync] [--detach]
                       [--distinct-addresses]          (node i on 127.0.0.i, all on the base port)
  tunekv cluster stop|status [--dir DIR] [--json]
  tunekv cluster add [--nodes 1] [--wait] [--timeout-ms MS] [--dir DIR] [--json]   (start nodes, join them in one plan)
  tunekv cluster leave NODE [--wait] [--timeout-ms MS] [--dir DIR] [--json]        (hand off, then exit; any node, n1 too)
  tunekv cluster remove NODE [--wait] [--dir DIR] [--json]                         (a dead node: kill it first)
  tunekv cluster kill|restart|pause|resume NODE [--dir DIR]
  tunekv cluster partition NODES NODES... | heal [--dir DIR]          (NODES: n1,n2)
  tunekv cluster faults [--delay-ms MS] [--jitter-ms MS] [--loss P] [--dir DIR]
  tunekv get KEY [--consistency L] [--r R] [--host HOST:PORT] [--timeout-ms MS] [--json]
  tunekv put KEY VALUE [--consistency L] [--w W] [--context CTX] [--lww] [--host HOST:PORT] [--json]
  tunekv del KEY [--context CTX] [--consistency L] [--w W] [--host HOST:PORT] [--json]
  tunekv status [--host HOST:PORT] [--json]
  tunekv counter KEY [get | incr N | decr N | reset] [--consistency L] [--r R | --w W] [--host HOST:PORT] [--json]   (N may be negative)
  tunekv set KEY [members | add MEMBER | rm MEMBER | del] [--consistency L] [--r R | --w W] [--host HOST:PORT] [--json]
  tunekv join HOST:PORT | leave NODE | remove NODE | replace NODE HOST:PORT   (stage a change; admin) [--host H:P] [--json]
  tunekv plan | commit [--host HOST:PORT] [--json]                           (see, then apply, what is staged)
  tunekv transfer-limit MBPS [--host HOST:PORT]                              (every member's transfer limit, or one node's)
  tunekv conflicts [--key K] [--since 10m|ISO-TIME] [--host HOST:PORT] [--all] [--json]   (a node's conflict log, or every member's; role read)
client flags (get, put, del, status, conflicts): [--user U --password-file F] [--secret-file F] [--tls-ca F [--tls-cert F --tls-key F]]
  or TUNEKV_USER, TUNEKV_PASSWORD_FILE, TUNEKV_SECRET_FILE; status uses ./data/cluster/cluster.secret when present
  tunekv sim [--seeds N] [--from F] | [--seed S [--knobs JSON] [--trace KEY]] [--json]
  tunekv bench [--hosts H:P,...] [--nodes 3] [--level L]... [--workload A:uniform|B:zipfian]... [--keys 10000]
               [--value-bytes 100] [--clients 32] [--duration-ms 2500] [--warmup-ms 2000] [--rate 3000]
               [--delay-ms 5] [--jitter-ms 2] [--staleness-pairs 1/1,1/2,2/1,2/2] [--staleness-t 0,1,2,5,10,20,50]
               [--staleness-trials 30] [--out DIR] [--seed 1] [--json]
               [--full] [--repeats N] [--sweep] [--profile] [--peers redis,etcd] [--scale]
               (--full: 3 repeats, the sweep, the profile, the peers and the scale phase; it prints how long it takes)
levels: eventual | quorum (default) | strong`;

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

const requestOptions: Options = {
  consistency: { type: 'string' },
  r: { type: 'string' },
  w: { type: 'string' },
  context: { type: 'string' },
  lww: { type: 'boolean' },
  host: { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
  ...authOptions(),
};

/** Flags every client command takes to prove who it is. */
function authOptions(): Options {
  return {
    user: { type: 'string' }, 'password-file': { type: 'string' }, 'secret-file': { type: 'string' },
    'tls-ca': { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
  };
}

/** A file's content without its trailing newline (password files). */
function readTextFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/** Connection options from the auth flags and the environment. `status`
 * falls back to the local cluster's secret (`make cluster`), since its
 * details are for admins. */
function authFrom(values: Record<string, unknown>, useLocalSecret: boolean): Partial<ConnectOptions> {
  const out: { user?: string; password?: string; secret?: Uint8Array; tls?: ConnectionOptions } = {};
  const user = str(values, 'user') ?? process.env.TUNEKV_USER;
  const secretFile = str(values, 'secret-file') ?? process.env.TUNEKV_SECRET_FILE
    ?? (useLocalSecret && user === undefined && fs.existsSync(localSecret) ? localSecret : undefined);
  if (user !== undefined) {
    const pwFile = str(values, 'password-file') ?? process.env.TUNEKV_PASSWORD_FILE;
    if (pwFile === undefined) throw new UsageError('--user needs --password-file (or TUNEKV_PASSWORD_FILE)');
    out.user = user;
    out.password = readTextFile(pwFile, 'password file');
  } else if (secretFile !== undefined) {
    out.secret = readSecretFile(secretFile);
  }
  const ca = str(values, 'tls-ca');
  const cert = str(values, 'tls-cert');
  const key = str(values, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (ca !== undefined || cert !== undefined) {
    out.tls = {
      ...(ca !== undefined ? { ca: fs.readFileSync(ca) } : {}),
      ...(cert !== undefined && key !== undefined ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } : {}),
    };
  }
  return out;
}

/** Where `make cluster` (and `cluster start` without --dir) keeps its
 * cluster, relative to the working directory. */
const localClusterDir = path.join('data', 'cluster');
const localSecret = path.join(localClusterDir, secretFileName);

function parse(args: string[], options: Options): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function intOption(values: Record<string, unknown>, name: string, fallback?: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  // Decimal digits only: Number() would take '' as 0, '0x10' as 16 and
  // ' 7' as 7, none of which anyone typing a count means.
  const v = typeof raw === 'string' && /^[+-]?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(v)) throw new UsageError(`--${name} must be a decimal integer; got "${String(raw)}"`);
  return v;
}

function floatOption(values: Record<string, unknown>, name: string): number {
  const raw = values[name];
  if (raw === undefined) return 0;
  const v = decimal(raw);
  if (!Number.isFinite(v) || v < 0) throw new UsageError(`--${name} must be a non-negative number; got ${String(raw)}`);
  return v;
}

/** A plain decimal number (1, 0.5, 2e3), or NaN: Number() would also take
 * hex, binary and blank strings. */
function decimal(raw: unknown): number {
  return typeof raw === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
}

function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function levelOption(values: Record<string, unknown>): Consistency | undefined {
  const c = str(values, 'consistency');
  if (c !== undefined && !isConsistency(c)) throw new UsageError(`--consistency must be eventual, quorum or strong; got ${c}`);
  return c;
}

/** Without --host the CLI connects through TUNEKV_HOST, else through
 * every node of the local cluster (./data/cluster/cluster.json), else
 * 127.0.0.1:7001, and routes each request to a replica of its key, failing
 * over as the library does. Every listed node, not only n1: any node may be
 * down or may have left, n1 included. With --host it talks to that node
 * only, as a client stuck on one side of a partition would: that node
 * coordinates. */
function defaultHosts(): string[] {
  const env = process.env.TUNEKV_HOST;
  if (env !== undefined && env.length > 0) return [env];
  let local;
  try {
    local = readCluster(localClusterDir);
  } catch {
    // A torn or hand-edited file: the fixed default still works for `make cluster`.
    local = undefined;
  }
  // Nodes that left or were removed are no one to ask.
  const listed = (local ? activeNodes(local) : []).map((nd) => `${nd.host}:${nd.port}`);
  return listed.length > 0 ? listed : ['127.0.0.1:7001'];
}

function hostsOf(values: Record<string, unknown>): string[] {
  const host = str(values, 'host');
  return host !== undefined ? [host] : defaultHosts();
}

async function withClient<T>(values: Record<string, unknown>, fn: (kv: TuneKvClient) => Promise<T>, useLocalSecret = false): Promise<T> {
  const kv = await connect({
    hosts: hostsOf(values), timeoutMs: intOption(values, 'timeout-ms'), ...authFrom(values, useLocalSecret),
  });
  try {
    return await fn(kv);
  } finally {
    await kv.close();
  }
}

function jsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
  return v;
}

function replicasLine(r: GetResult['replicas']): string {
  return r.map((x) => `${x.node}(${x.role}${x.hintFor ? ` for ${x.hintFor}` : ''} ${x.outcome}${x.stale ? ' stale' : ''})`).join(' ');
}

function printGet(got: GetResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ ...got, values: got.values.map(jsonValue) }));
    return;
  }
  if (!got.found) console.log('(not found)');
  else if (got.values.length > 1) console.log(`${got.values.length} siblings:`);
  for (const v of got.values) console.log(typeof v === 'string' ? v : JSON.stringify(jsonValue(v)));
  console.error(`# ${got.level === 'custom' ? '' : `${got.level} `}r=${got.r} via ${got.coordinator}: ${replicasLine(got.replicas)}`);
  console.error(`# context: ${got.context}`);
}

function printPut(res: PutResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(res));
    return;
  }
  console.log(`ok${res.siblings > 1 ? ` (${res.siblings} siblings)` : ''}`);
  console.error(`# ${res.level === 'custom' ? '' : `${res.level} `}w=${res.w} via ${res.coordinator}: ${replicasLine(res.replicas)}`);
  console.error(`# context: ${res.context}`);
}

async function cmdNode(args: string[]): Promise<void> {
  const { values } = parse(args, {
    id: { type: 'string' }, listen: { type: 'string' }, data: { type: 'string' }, join: { type: 'string' },
    n: { type: 'string' }, q: { type: 'string' }, fsync: { type: 'boolean' }, lww: { type: 'boolean' },
    'timeout-ms': { type: 'string' }, 'gossip-ms': { type: 'string' }, 'suspect-ms': { type: 'string' },
    'down-ms': { type: 'string' }, 'handoff-ms': { type: 'string' }, 'hint-age-ms': { type: 'string' },
    'aae-interval-ms': { type: 'string' }, 'aae-keys-per-sec': { type: 'string' }, 'reap-delay-ms': { type: 'string' },
    'handoff-keys-per-sec': { type: 'string' }, metrics: { type: 'string' }, standby: { type: 'boolean' },
    'transfer-mbps': { type: 'string' }, 'transfer-interval-ms': { type: 'string' }, 'cache-mb': { type: 'string' },
    'read-repair-chance': { type: 'string' }, 'speculative-retry-ms': { type: 'string' }, 'heap-growth-percent': { type: 'string' },
    'secret-file': { type: 'string' }, 'users-file': { type: 'string' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-ca': { type: 'string' },
    'log-level': { type: 'string' }, 'log-file': { type: 'string' },
  });
  const id = str(values, 'id');
  const listen = str(values, 'listen');
  const dataDir = str(values, 'data');
  if (!id || !listen || !dataDir) throw new UsageError('node needs --id, --listen and --data');
  const join = str(values, 'join')?.split(',').map((s) => s.trim()).filter((s) => s.length > 0) ?? [];
  if (values.standby === true && join.length > 0) throw new UsageError('node takes --join (join through these seeds now) or --standby (wait to be joined), not both');
  // One JSON line per event (server/log.ts), to stdout or --log-file.
  // Imported here so no other command loads pino.
  const { NodeLogger, parseLogLevel } = await import('../server/log.js');
  let logger: InstanceType<typeof NodeLogger>;
  try {
    logger = new NodeLogger({ node: id, level: parseLogLevel(str(values, 'log-level')), destination: str(values, 'log-file') ?? 1 });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
  logger.event('info', 'node_starting', { pid: process.pid, dataDir, listen, nodeVersion: process.version });
  let running;
  try {
    running = await startNode({
      id, listen, dataDir, join, n: intOption(values, 'n'), q: intOption(values, 'q'),
      fsync: values.fsync === true, lww: values.lww === true, requestTimeoutMs: intOption(values, 'timeout-ms'),
      gossipIntervalMs: intOption(values, 'gossip-ms'), suspectAfterMs: intOption(values, 'suspect-ms'),
      downAfterMs: intOption(values, 'down-ms'), handoffIntervalMs: intOption(values, 'handoff-ms'),
      hintAgeMaxMs: intOption(values, 'hint-age-ms'), aaeIntervalMs: intOption(values, 'aae-interval-ms'),
      aaeKeysPerSecMax: intOption(values, 'aae-keys-per-sec'), tombstoneReapDelayMs: intOption(values, 'reap-delay-ms'),
      handoffKeysPerSecMax: intOption(values, 'handoff-keys-per-sec'),
      standby: values.standby === true, transferMBps: values['transfer-mbps'] === undefined ? undefined : floatOption(values, 'transfer-mbps'),
      transferIntervalMs: intOption(values, 'transfer-interval-ms'),
      readRepairChance: values['read-repair-chance'] === undefined ? undefined : floatOption(values, 'read-repair-chance'),
      speculativeRetryMs: intOption(values, 'speculative-retry-ms'), heapGrowthPercent: intOption(values, 'heap-growth-percent'),
      objectCacheBytes: values['cache-mb'] === undefined ? undefined : Math.round(floatOption(values, 'cache-mb') * 1024 * 1024),
      secretFile: str(values, 'secret-file') ?? null, usersFile: str(values, 'users-file') ?? null,
      tlsCert: str(values, 'tls-cert') ?? null, tlsKey: str(values, 'tls-key') ?? null, tlsCa: str(values, 'tls-ca') ?? null,
      ...(values.metrics === undefined ? {} : { metricsListen: values.metrics === 'off' ? null : str(values, 'metrics')! }),
    }, logger);
  } catch (err) {
    logger.event('error', 'node_start_failed', { code: (err as { code?: unknown }).code ?? null, error: (err as Error).message });
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.event('info', 'node_stopping', { signal });
    running.stop().then(() => process.exit(0), (err: Error) => {
      logger.event('error', 'node_stop_failed', { error: err.message });
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  void running.exited.then(() => {
    if (stopping) return;
    stopping = true;
    logger.event('info', 'node_left', { msg: 'left the cluster and stopped' });
    process.exit(0);
  });
}

async function cmdCluster(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, {
    nodes: { type: 'string' }, 'base-port': { type: 'string' }, dir: { type: 'string' }, n: { type: 'string' },
    q: { type: 'string' }, fsync: { type: 'boolean' }, detach: { type: 'boolean' }, host: { type: 'string' }, json: { type: 'boolean' },
    'distinct-addresses': { type: 'boolean' }, 'delay-ms': { type: 'string' }, 'jitter-ms': { type: 'string' }, loss: { type: 'string' },
    wait: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, 'metrics-base-port': { type: 'string' },
  });
  const dir = str(values, 'dir') ?? './data/cluster';
  switch (sub) {
    case 'start': return clusterStart(values, dir);
    case 'stop': await stopCluster(dir); return;
    case 'status': {
      const st = await clusterStatus(dir);
      if (values.json) { console.log(JSON.stringify({ dir, ...st })); return; }
      printClusterStatus(st);
      return;
    }
    case 'add':
    case 'leave':
    case 'remove': return clusterChange(sub, values, positionals, dir);
    case 'kill':
    case 'restart':
    case 'pause':
    case 'resume': {
      const id = positionals[0];
      if (!id || positionals.length !== 1) throw new UsageError(`cluster ${sub} needs one node id`);
      const actions = { kill: killNode, restart: restartNode, pause: pauseNode, resume: resumeNode };
      await actions[sub](dir, id);
      const said = { kill: 'killed (SIGKILL)', restart: 'restarted', pause: 'paused (SIGSTOP)', resume: 'resumed (SIGCONT)' };
      console.log(`${id} ${said[sub]}`);
      return;
    }
    case 'partition': {
      if (positionals.length < 1) throw new UsageError('cluster partition needs groups, e.g. n1,n2 n3,n4,n5');
      const missed = await partition(dir, positionals.map((g) => g.split(',').filter((x) => x.length > 0)));
      console.log(`partitioned: ${positionals.join(' | ')}${missed.length > 0 ? ` (not applied on ${missed.join(', ')}: not running; applied when it restarts)` : ''}`);
      return;
    }
    case 'heal': {
      const missed = await heal(dir);
      console.log(`healed${missed.length > 0 ? ` (not applied on ${missed.join(', ')}: not running)` : ''}`);
      return;
    }
    case 'faults': {
      const link = { delayMs: floatOption(values, 'delay-ms'), jitterMs: floatOption(values, 'jitter-ms'), loss: floatOption(values, 'loss') };
      const missed = await setLinkFaults(dir, link);
      console.log(`links: delay ${link.delayMs} ms + up to ${link.jitterMs} ms jitter, loss ${link.loss}${missed.length > 0 ? ` (not applied on ${missed.join(', ')})` : ''}`);
      return;
    }
    default:
      throw new UsageError(`unknown cluster command ${sub ?? '(none)'}`);
  }
}

async function clusterStart(values: Record<string, unknown>, dir: string): Promise<void> {
  const detach = values.detach === true;
  const distinctAddresses = values['distinct-addresses'] === true;
  if (distinctAddresses && values.host !== undefined) {
    throw new UsageError('--distinct-addresses gives node i the address 127.0.0.i; it cannot be combined with --host');
  }
  let started;
  try {
    started = await startCluster({
      // Without --nodes: 3 for a new cluster, and an existing one restarts
      // with the nodes cluster.json lists (add and leave change them).
      // --base-port, --n and --q only when given: a new cluster gets the
      // defaults (7001, 3, 64), an existing one refuses a different value
      // (its ring holds them) rather than ignore it.
      dir, nodes: intOption(values, 'nodes'), basePort: intOption(values, 'base-port'),
      metricsBasePort: intOption(values, 'metrics-base-port'),
      host: str(values, 'host') ?? '127.0.0.1', distinctAddresses, n: intOption(values, 'n'), q: intOption(values, 'q'),
      fsync: values.fsync === true, detach,
    });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
  const nodes = activeNodes(started.cluster);
  const addrs = nodes.map((nd) => `${nd.id}=${nd.host}:${nd.port}`).join(' ');
  console.log(`cluster ready: ${addrs} (n=${started.cluster.n}, q=${started.cluster.q}, data in ${dir})`);
  console.log(`metrics: ${nodes.map((nd) => `${nd.id}=http://${nd.host}:${nd.metricsPort}/metrics`).join(' ')}; logs: ${path.join(dir, 'nN.log')} (one JSON line per event)`);
  if (detach) {
    console.log(`stop it with: tunekv cluster stop --dir ${dir}`);
    return;
  }
  const first = nodes[0]!;
  console.log(`connect: tunekv put hello world --host ${first.host}:${first.port}; tunekv get hello`);
  console.log('press Ctrl-C to stop the cluster');
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('stopping the cluster...');
    stopCluster(dir).then(() => { console.log('cluster stopped'); process.exit(0); }, (err: Error) => {
      console.error(`stop failed: ${err.message}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  for (const [id, child] of started.children) {
    child.on('exit', (code, signal) => {
      if (!stopping) console.log(`[${id}] exited (${signal ?? `code ${code}`}); restart it with: tunekv cluster restart ${id} --dir ${dir}`);
    });
  }
}

/** `cluster add|leave|remove`: the launcher stages and commits the change
 * through a running node (the cluster secret is admin). */
async function clusterChange(sub: 'add' | 'leave' | 'remove', values: Record<string, unknown>, positionals: string[], dir: string): Promise<void> {
  const json = values.json === true;
  const opts = {
    wait: values.wait === true, waitTimeoutMs: intOption(values, 'timeout-ms'),
    log: json ? () => {} : (line: string) => console.log(line),
  };
  let result: ChangeResult;
  try {
    if (sub === 'add') {
      if (positionals.length !== 0) throw new UsageError('cluster add takes no node ids: it names the new nodes itself (--nodes K)');
      result = await addNodes(dir, intOption(values, 'nodes', 1)!, opts);
    } else {
      const id = positionals[0];
      if (!id || positionals.length !== 1) throw new UsageError(`cluster ${sub} needs one node id`);
      result = sub === 'leave' ? await leaveNode(dir, id, opts) : await removeNode(dir, id, opts);
    }
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
  const { ring, ...rest } = result;
  if (json) {
    console.log(JSON.stringify({ ...rest, ring: { version: ring.version, members: ring.members.map((m) => ({ id: m.id, addr: m.addr, state: m.state ?? 'valid' })), inTransition: ring.next !== null && ring.next !== undefined } }));
    return;
  }
  console.log(result.complete
    ? `done: ring v${ring.version} with ${ring.members.length} members`
    : `ring v${ring.version}: the transition runs in the background; follow it with: tunekv cluster status --dir ${dir}`);
}

function printClusterStatus(st: ClusterStatus): void {
  if (st.ring) {
    const tr = st.ring.transition;
    console.log(`ring v${st.ring.version}: ${st.ring.members} members, n=${st.ring.n} q=${st.ring.q}`
      + `${tr ? `; plan ${tr.plan} in transition: ${Object.entries(tr.phases).map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}`);
  } else {
    console.log('no node answered with a ring');
  }
  for (const s of st.nodes) console.log(nodeStatusLine(s));
}

function nodeStatusLine(s: NodeStatus): string {
  const parts = [s.id.padEnd(4), s.addr.padEnd(21), (s.state ?? '-').padEnd(8)];
  if (s.state === 'left' || s.state === 'removed') return parts.join('  ').trimEnd();
  parts.push(s.running ? `pid ${s.pid}${s.paused ? ' (paused)' : ''}` : 'not running');
  if (s.owns !== null && s.share !== null) {
    parts.push(`owns ${s.owns}${s.ownsNext !== null && s.ownsNext !== s.owns ? `->${s.ownsNext}` : ''} (${(s.share * 100).toFixed(1)}%), replicates ${s.replicates}`);
  }
  if (s.keys !== null) parts.push(`${s.keys} keys${s.dataBytes !== null ? `, ${(s.dataBytes / 1e6).toFixed(1)} MB` : ''}`);
  if (s.answering) parts.push(`ring v${s.ringVersion ?? '-'}`);
  else if (s.running && !s.paused) parts.push('not answering');
  const t = s.transfers;
  if (t && (t.partitionsPending > 0 || t.sweepPending > 0)) {
    parts.push(`transfers: ${t.partitionsPending} to receive, ${t.sweepPending} to sweep${t.etaSeconds !== null ? `, ~${t.etaSeconds} s left` : ''} at ${t.limitMBps} MB/s`);
  }
  const f = s.faults;
  if (f) parts.push(`faults: blocked [${f.blocked.join(',')}], delay ${f.delayMs}+${f.jitterMs} ms, loss ${f.loss}`);
  return parts.join('  ');
}

async function cmdGet(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, requestOptions);
  const [key] = positionals;
  if (key === undefined || positionals.length !== 1) throw new UsageError('get needs exactly one KEY');
  const got = await withClient(values, (kv) => kv.get(key, {
    consistency: levelOption(values), r: intOption(values, 'r'), timeoutMs: intOption(values, 'timeout-ms'), host: str(values, 'host'),
  }));
  printGet(got, values.json === true);
}

async function cmdPut(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, requestOptions);
  if (positionals.length !== 2) throw new UsageError('put needs KEY and VALUE');
  const [key, value] = positionals as [string, string];
  const res = await withClient(values, (kv) => kv.put(key, value, {
    consistency: levelOption(values), w: intOption(values, 'w'), context: str(values, 'context'),
    lww: values.lww === true ? true : undefined, timeoutMs: intOption(values, 'timeout-ms'), host: str(values, 'host'),
  }));
  printPut(res, values.json === true);
}

async function cmdDel(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, requestOptions);
  const [key] = positionals;
  if (key === undefined || positionals.length !== 1) throw new UsageError('del needs exactly one KEY');
  const res = await withClient(values, (kv) => kv.delete(key, {
    consistency: levelOption(values), w: intOption(values, 'w'), context: str(values, 'context'), timeoutMs: intOption(values, 'timeout-ms'),
    host: str(values, 'host'),
  }));
  printPut(res, values.json === true);
}

/** The status of the first of `hosts` that answers: a node that is down
 * (or gone) is skipped, any other refusal is the answer. */
async function firstStatus(kv: TuneKvClient, hosts: readonly string[]): Promise<Record<string, unknown>> {
  let last: TuneKvError | undefined;
  for (const host of hosts) {
    try {
      return await kv.status(host);
    } catch (err) {
      if (!(err instanceof TuneKvError) || err.code !== 'UNAVAILABLE') throw err;
      last = err;
    }
  }
  throw new TuneKvError('UNAVAILABLE', `no node answered (tried ${hosts.join(', ')}): ${last?.message ?? ''}`, { tried: [...hosts] });
}

async function cmdStatus(args: string[]): Promise<void> {
  const { values } = parse(args, { host: { type: 'string' }, json: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, ...authOptions() });
  const st = await withClient(values, (kv) => firstStatus(kv, hostsOf(values)), true);
  if (values.json) { console.log(JSON.stringify(st)); return; }
  const ring = st.ring as {
    version: number; n: number; q: number;
    members: { id: string; addr: string; state?: string; claimed: number; share?: number; replicates: number }[];
    next: (string | null)[] | null; transition: { plan: number; phases: Record<string, number> } | null;
  } | null;
  console.log(`node ${String(st.nodeId)} at ${String(st.addr)}, up ${Math.round(Number(st.uptimeMs) / 1000)} s${st.ready === false ? ' (not ready: no ring yet, or on standby)' : ''}`);
  if (ring) {
    console.log(`ring v${ring.version}: n=${ring.n} q=${ring.q}, ${ring.members.length} members`);
    for (const m of ring.members) {
      const after = ring.next ? ring.next.filter((o) => o === m.id).length : null;
      console.log(`  ${m.id.padEnd(6)} ${(m.state ?? 'valid').padEnd(8)} ${m.addr}  owns ${m.claimed}${after !== null && after !== m.claimed ? `->${after}` : ''} partitions`
        + ` (${((m.share ?? m.claimed / ring.q) * 100).toFixed(1)}%), replicates ${m.replicates}`);
    }
    if (ring.transition) {
      console.log(`transition of plan ${ring.transition.plan}: ${Object.entries(ring.transition.phases).map(([k, v]) => `${v} ${k}`).join(', ')}`);
    }
  }
  const stored = st.storage as { keys?: number; dataBytes?: number } | undefined;
  if (stored && typeof stored.keys === 'number') console.log(`stores ${stored.keys} keys (tombstones included), ${((stored.dataBytes ?? 0) / 1e6).toFixed(1)} MB of values`);
  const tr = st.transfers as { partitionsPending?: number; keysReceived?: number; bytesReceived?: number; etaSeconds?: number | null; limitMBps?: number; sweepPending?: number } | undefined;
  if (tr) {
    console.log(`transfers: ${tr.partitionsPending ?? 0} partitions pending, ${tr.keysReceived ?? 0} keys / ${((tr.bytesReceived ?? 0) / 1e6).toFixed(1)} MB received, `
      + `${tr.sweepPending ?? 0} sweeps pending, limit ${tr.limitMBps ?? '-'} MB/s${typeof tr.etaSeconds === 'number' ? `, ETA ${tr.etaSeconds} s` : ''}`);
  }
  const peers = (st.peers ?? []) as { id: string; state: string; forMs: number; hintsPending: number }[];
  if (peers.length > 0) {
    console.log('peers (this node\'s view):');
    for (const p of peers) console.log(`  ${p.id}  ${p.state.padEnd(7)} for ${(p.forMs / 1000).toFixed(1)} s${p.hintsPending > 0 ? `, holds ${p.hintsPending} hints` : ''}`);
  }
  const h = st.hints as { pending: number; byOwner: Record<string, number>; delivered: number; refused: number; expired: number } | undefined;
  if (h) console.log(`hints: ${h.pending} pending ${JSON.stringify(h.byOwner)}, ${h.delivered} delivered, ${h.expired} expired, ${h.refused} refused`);
  const a = st.antiEntropy as { rounds: number; exchanges: number; keysRepaired: number } | undefined;
  if (a) console.log(`anti-entropy: ${a.rounds} rounds, ${a.exchanges} exchanges, ${a.keysRepaired} keys repaired`);
  const r = st.reaper as { waiting: number; reaped: number } | undefined;
  if (r) console.log(`tombstones: ${r.waiting} waiting to be reaped, ${r.reaped} reaped`);
  const f = st.faults as { blocked: string[]; delayMs: number; jitterMs: number; loss: number; dropped: number } | undefined;
  if (f && (f.blocked.length > 0 || f.delayMs > 0 || f.jitterMs > 0 || f.loss > 0)) {
    console.log(`faults: blocked [${f.blocked.join(', ')}], delay ${f.delayMs} ms + ${f.jitterMs} ms jitter, loss ${f.loss}, ${f.dropped} dropped`);
  }
  const m = st.metrics as { url: string | null; consistencyLagP95Ms: number | null; readsOneVersionRatio: number; conflicts: number; quorumFailures: number } | undefined;
  if (m) {
    console.log(`metrics: lag p95 ${m.consistencyLagP95Ms === null ? '-' : `${m.consistencyLagP95Ms.toFixed(2)} ms`}, `
      + `${(m.readsOneVersionRatio * 100).toFixed(2)}% of reads saw one version, ${m.conflicts} conflicts, ${m.quorumFailures} quorum failures`
      + `${m.url ? ` (${m.url})` : ''}`);
  }
  // Admins only: a reader's status has no stats (red team: it printed "stats: undefined").
  if (st.stats !== undefined) console.log(`stats: ${JSON.stringify(st.stats)}`);
}

/** Ring changes: stage, plan, commit (admin: the cluster secret or an admin user). */
async function cmdChange(cmd: string, args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { host: { type: 'string' }, json: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, ...authOptions() });
  const host = str(values, 'host');
  const need = (n: number, what: string): void => {
    if (positionals.length !== n) throw new UsageError(`${cmd} needs ${what}`);
  };
  const out = await withClient(values, async (kv) => {
    switch (cmd) {
      case 'join': need(1, 'the new node\'s HOST:PORT (started with --standby)'); return kv.stage({ op: 'join', addr: positionals[0]! }, host);
      case 'leave': need(1, 'a node id'); return kv.stage({ op: 'leave', id: positionals[0]! }, host);
      case 'remove': need(1, 'a node id'); return kv.stage({ op: 'remove', id: positionals[0]! }, host);
      case 'replace': need(2, 'the node id to replace and the new node\'s HOST:PORT'); return kv.stage({ op: 'replace', id: positionals[0]!, addr: positionals[1]! }, host);
      case 'plan': need(0, 'no arguments'); return kv.plan(host);
      case 'commit': need(0, 'no arguments'); return kv.commit(host);
      default: {
        need(1, 'a number of MB/s');
        const mbps = decimal(positionals[0]);
        if (!(mbps > 0)) throw new UsageError(`transfer-limit needs a positive number of MB/s; got ${positionals[0]}`);
        const targets = host !== undefined ? [host] : await ringAddrs(kv);
        const done: string[] = [];
        for (const h of targets) { await kv.setTransferLimit(mbps, h); done.push(h); }
        return { mbps, nodes: done };
      }
    }
  }, true);
  if (values.json) { console.log(JSON.stringify(out)); return; }
  if (cmd === 'plan') { printPlan(out); return; }
  if (cmd === 'commit') {
    console.log(out.queued ? `committed; queued behind the transition in progress` : `committed: plan ${String(out.plan)}, ring v${String(out.ringVersion)}; transfers run now (see tunekv status)`);
    return;
  }
  if (cmd === 'transfer-limit') { console.log(`transfer limit ${String(out.mbps)} MB/s on ${(out.nodes as string[]).join(', ')}`); return; }
  const staged = (out.staged ?? []) as Record<string, unknown>[];
  console.log(`staged (${staged.length}): ${staged.map(describeStaged).join('; ')}\nreview with: tunekv plan; apply with: tunekv commit`);
}

async function ringAddrs(kv: TuneKvClient): Promise<string[]> {
  const st = await kv.status();
  const ring = st.ring as { members: { addr: string }[] } | null;
  return ring ? ring.members.map((m) => m.addr) : [];
}

function describeStaged(c: Record<string, unknown>): string {
  if (c.op === 'join') return `join ${String(c.id)} at ${String(c.addr)}`;
  if (c.op === 'replace') return `replace ${String(c.id)} with ${String(c.newId)} at ${String(c.addr)}`;
  return `${String(c.op)} ${String(c.id)}`;
}

function printPlan(out: Record<string, unknown>): void {
  console.log(`claimant ${String(out.claimant)}, ring v${String(out.ringVersion)}`);
  const staged = (out.staged ?? []) as Record<string, unknown>[];
  console.log(staged.length === 0 ? 'nothing staged' : `staged: ${staged.map(describeStaged).join('; ')}`);
  const plan = out.plan as { members: { id: string; state: string; partitionsBefore: number; partitionsAfter: number }[]; moves: { partition: number; from: string[]; to: string[] }[] } | null;
  if (plan) {
    for (const m of plan.members) console.log(`  ${m.id.padEnd(8)} ${m.state.padEnd(8)} owns ${m.partitionsBefore} -> ${m.partitionsAfter} partitions`);
    console.log(`  ${plan.moves.length} partitions change replicas; e.g. ${plan.moves.slice(0, 4).map((x) => `p${x.partition}: +${x.to.join('+') || '-'} -${x.from.join('-') || '-'}`).join(', ')}`);
  }
  const tr = out.transition as { plan: number; phases: Record<string, number> } | null;
  if (tr) console.log(`transition of plan ${tr.plan} in progress: ${Object.entries(tr.phases).map(([k, v]) => `${v} ${k}`).join(', ')}`);
  const queued = (out.queued ?? []) as unknown[];
  if (queued.length > 0) console.log(`${queued.length} committed plan(s) queued`);
}

function listOption(values: Record<string, unknown>, name: string): string[] | undefined {
  const v = str(values, name);
  return v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

async function cmdBench(args: string[]): Promise<void> {
  const { values } = parse(args, {
    hosts: { type: 'string' }, nodes: { type: 'string' }, level: { type: 'string', multiple: true },
    workload: { type: 'string', multiple: true }, keys: { type: 'string' }, 'value-bytes': { type: 'string' },
    clients: { type: 'string' }, 'duration-ms': { type: 'string' }, 'warmup-ms': { type: 'string' }, rate: { type: 'string' },
    'delay-ms': { type: 'string' }, 'jitter-ms': { type: 'string' }, 'staleness-pairs': { type: 'string' },
    'staleness-t': { type: 'string' }, 'staleness-trials': { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' },
    json: { type: 'boolean' }, full: { type: 'boolean' }, repeats: { type: 'string' }, sweep: { type: 'boolean' },
    profile: { type: 'boolean' }, peers: { type: 'string' }, scale: { type: 'boolean' },
  });
  const pairs = listOption(values, 'staleness-pairs')?.map((p) => {
    const m = /^(\d+)\/(\d+)$/.exec(p);
    if (!m) throw new UsageError(`--staleness-pairs takes R/W pairs like 1/1,2/2; got ${p}`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  const opts: Partial<BenchOptions> = {
    hosts: listOption(values, 'hosts'),
    nodes: intOption(values, 'nodes'),
    levels: values.level as string[] | undefined,
    workloads: values.workload as string[] | undefined,
    keys: intOption(values, 'keys'),
    valueBytes: intOption(values, 'value-bytes'),
    clients: intOption(values, 'clients'),
    durationMs: intOption(values, 'duration-ms'),
    warmupMs: intOption(values, 'warmup-ms'),
    openRate: intOption(values, 'rate'),
    delayMs: intOption(values, 'delay-ms'),
    jitterMs: intOption(values, 'jitter-ms'),
    stalenessPairs: pairs,
    stalenessT: listOption(values, 'staleness-t')?.map(Number),
    stalenessTrials: intOption(values, 'staleness-trials'),
    out: str(values, 'out'),
    seed: intOption(values, 'seed'),
    repeats: intOption(values, 'repeats'),
    sweep: values.sweep as boolean | undefined,
    profile: values.profile as boolean | undefined,
    peers: listOption(values, 'peers') as BenchOptions['peers'] | undefined,
    scale: values.scale as boolean | undefined,
  };
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<BenchOptions>;
  let result;
  try {
    result = await runBench({ ...(values.full === true ? fullBenchOptions : {}), ...defined });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
  const { dir, report } = result;
  if (values.json) { console.log(JSON.stringify({ dir, echo: report.echo, targets: report.targets })); return; }
  console.log(`report: ${path.join(dir, 'report.md')} and report.html`);
  console.log(`echo floor p50 ${report.echo.p50.toFixed(3)} ms`);
  for (const t of report.targets) console.log(`${t.met === null ? 'n/a   ' : t.met ? 'met   ' : 'missed'} ${t.name}: ${t.measured} (goal ${t.goal})`);
}

async function cmdSim(args: string[]): Promise<void> {
  const { values } = parse(args, {
    seed: { type: 'string' }, seeds: { type: 'string' }, from: { type: 'string' }, knobs: { type: 'string' },
    trace: { type: 'string' }, json: { type: 'boolean' },
  });
  const ok = await runSimCommand({
    seed: intOption(values, 'seed'), seeds: intOption(values, 'seeds'), from: intOption(values, 'from'),
    knobs: str(values, 'knobs'), trace: str(values, 'trace'), json: values.json === true,
  });
  if (!ok) process.exitCode = 1;
}

/** `tunekv users add NAME --role R`: a users-file line with a fresh salt
 * and the password's scrypt-derived keys (never the password itself),
 * appended to --file (created mode 0600) or printed. */
async function cmdUsers(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'add') throw new UsageError('users takes: add NAME --role read|write|admin [--password-file F] [--file USERS_FILE]');
  const { values, positionals } = parse(rest, { role: { type: 'string' }, 'password-file': { type: 'string' }, file: { type: 'string' } });
  const [name] = positionals;
  if (name === undefined || positionals.length !== 1) throw new UsageError('users add needs exactly one NAME');
  const role = str(values, 'role');
  if (role !== 'read' && role !== 'write' && role !== 'admin') throw new UsageError('--role must be read, write or admin');
  const pwFile = str(values, 'password-file') ?? process.env.TUNEKV_PASSWORD_FILE;
  const password = pwFile !== undefined ? readTextFile(pwFile, 'password file') : fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (password.length === 0) throw new UsageError('the password is empty');
  const line = await userLine(name, password, role);
  const file = str(values, 'file');
  if (file === undefined) { console.log(line); return; }
  fs.appendFileSync(file, `${line}\n`, { mode: 0o600 });
  console.log(`${name} (${role}) added to ${file}`);
}

/** What typed-commands.ts borrows, so its flags parse as get/put's do. */
function typedCliDeps(): TypedCliDeps {
  return {
    requestOptions, parse, withClient: (values, fn) => withClient(values, fn), levelOption, intOption, str,
    usageError: (message) => new UsageError(message),
  };
}

/** `tunekv conflicts`: one node's conflict log (--host, or the first that
 * answers), or every member's (--all, learning the members through --host
 * or the usual hosts); see src/cli/conflicts.ts. */
async function cmdConflicts(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    key: { type: 'string' }, since: { type: 'string' }, all: { type: 'boolean' }, host: { type: 'string' },
    json: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, ...authOptions(),
  });
  if (positionals.length > 0) throw new UsageError('conflicts takes no positional arguments (use --key K)');
  const sinceText = str(values, 'since');
  let since: number | undefined;
  try {
    since = sinceText === undefined ? undefined : parseSince(sinceText, Date.now());
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const key = str(values, 'key');
  const query = { ...(key !== undefined ? { key } : {}), ...(since !== undefined ? { since } : {}), timeoutMs: intOption(values, 'timeout-ms') };
  const logs = await withClient(values, async (kv): Promise<NodeConflicts[]> => {
    if (values.all !== true) {
      const host = str(values, 'host');
      return [await readNodeLog(kv, { ...query, ...(host !== undefined ? { host } : {}) })];
    }
    return readAllLogs(kv, (kv.currentRing?.members ?? []).map((m) => m.addr), query);
  });
  const failed = logs.filter((l) => l.error !== undefined);
  if (values.json === true) console.log(JSON.stringify(conflictsJson(logs)));
  else for (const line of conflictsText(logs)) console.log(line);
  for (const l of failed) if (values.json !== true) console.error(`# ${l.node}: ${l.error!.code} ${l.error!.message}`);
  // Partial answers are answers (the errors are listed); none at all is a failure.
  if (failed.length > 0 && failed.length === logs.length) process.exitCode = 1;
}

function wantsJson(args: string[]): boolean {
  return args.includes('--json');
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(usage);
    return;
  }
  switch (cmd) {
    case 'node': return cmdNode(rest);
    case 'cluster': return cmdCluster(rest);
    case 'get': return cmdGet(rest);
    case 'put': return cmdPut(rest);
    case 'del': return cmdDel(rest);
    case 'status': return cmdStatus(rest);
    case 'counter': return cmdCounter(rest, typedCliDeps());
    case 'set': return cmdSet(rest, typedCliDeps());
    case 'join':
    case 'leave':
    case 'remove':
    case 'replace':
    case 'plan':
    case 'commit':
    case 'transfer-limit':
      return cmdChange(cmd, rest);
    case 'users': return cmdUsers(rest);
    case 'conflicts': return cmdConflicts(rest);
    case 'sim': return cmdSim(rest);
    case 'bench': return cmdBench(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return;
    default:
      throw new UsageError(`unknown command ${cmd}`);
  }
}

const argv = process.argv.slice(2);
main(argv).catch((err: unknown) => {
  const e = err instanceof TuneKvError ? err
    : err instanceof UsageError ? new TuneKvError('INVALID_ARGUMENT', err.message)
      : new TuneKvError('INTERNAL', (err as Error)?.message ?? String(err));
  if (wantsJson(argv)) console.log(JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } }));
  else console.error(`error ${e.code}: ${e.message}${err instanceof UsageError ? `\n${usage}` : ''}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
