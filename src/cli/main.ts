#!/usr/bin/env node
// The `tunekv` command: run a node, drive a local cluster, and get / put /
// del / status from a shell.
//
// This file is loaded on every run, so it imports only what parsing, help
// and error reporting need; each command's code (the client, the launcher,
// the server, LevelDB, the simulator, the benchmark) is imported when that
// command runs. Exit statuses come from one place (exit-codes.ts); with
// --json, stdout carries exactly one JSON object (output.ts).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChangeResult, ClusterStatus, NodeStatus } from '../../cluster/launcher.js';
import type { BenchOptions } from '../../bench/bench.js';
import { limits } from '../limits.js';
import { benchOptions, clusterOptions, floatOption, intOption, listOption, numberOption, parse, simOptions, str } from './args.js';
import { UsageError, describeError, exitStatus } from './exit-codes.js';
import type { ExitStatus } from './exit-codes.js';
import { helpFor, synopsisFor } from './help.js';
import { emitJson, isJsonMode, jsonEmitted, jsonMode, replicasLine } from './output.js';

async function cmdNode(args: string[]): Promise<void> {
  const { startNode } = await import('../server/start-node.js');
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

async function cmdCluster(args: string[]): Promise<ExitStatus | void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, clusterOptions);
  const dir = str(values, 'dir') ?? './data/cluster';
  const json = isJsonMode();
  const done = (obj: Record<string, unknown>, prose: string): void => {
    if (json) emitJson(obj);
    else console.log(prose);
  };
  switch (sub) {
    case 'start': {
      if (positionals.length > 0) throw new UsageError('cluster start takes no arguments');
      await clusterStart(values, dir);
      if (json) {
        const { activeNodes, readCluster } = await import('../../cluster/launcher.js');
        const c = readCluster(dir);
        emitJson({ dir, detached: values.detach === true, n: c?.n, q: c?.q, nodes: c ? activeNodes(c).map((nd) => ({ id: nd.id, host: nd.host, port: nd.port, metricsPort: nd.metricsPort ?? null, pid: nd.pid })) : [] });
      }
      return;
    }
    case 'stop': {
      if (positionals.length > 0) throw new UsageError('cluster stop takes no arguments');
      const { stopCluster } = await import('../../cluster/launcher.js');
      await stopCluster(dir);
      if (json) emitJson({ dir, stopped: true });
      return;
    }
    case 'status': {
      if (positionals.length > 0) throw new UsageError('cluster status takes no arguments');
      const { clusterStatus } = await import('../../cluster/launcher.js');
      const st = await clusterStatus(dir);
      if (json) { emitJson({ dir, ...st }); return; }
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
      const L = await import('../../cluster/launcher.js');
      const actions = { kill: L.killNode, restart: L.restartNode, pause: L.pauseNode, resume: L.resumeNode };
      await actions[sub](dir, id);
      const said = { kill: 'killed (SIGKILL)', restart: 'restarted', pause: 'paused (SIGSTOP)', resume: 'resumed (SIGCONT)' };
      done({ node: id, action: sub }, `${id} ${said[sub]}`);
      return;
    }
    case 'partition': {
      if (positionals.length < 1) throw new UsageError('cluster partition needs groups, e.g. n1,n2 n3,n4,n5');
      const groups = positionals.map((g) => g.split(',').filter((x) => x.length > 0));
      const { partition } = await import('../../cluster/launcher.js');
      const missed = await partition(dir, groups);
      done({ groups, notApplied: missed },
        `partitioned: ${positionals.join(' | ')}${missed.length > 0 ? ` (not applied on ${missed.join(', ')}: not running; applied when it restarts)` : ''}`);
      return;
    }
    case 'heal': {
      if (positionals.length > 0) throw new UsageError('cluster heal takes no arguments');
      const { heal } = await import('../../cluster/launcher.js');
      const missed = await heal(dir);
      done({ healed: true, notApplied: missed }, `healed${missed.length > 0 ? ` (not applied on ${missed.join(', ')}: not running)` : ''}`);
      return;
    }
    case 'faults': {
      if (positionals.length > 0) throw new UsageError('cluster faults takes no arguments (--delay-ms, --jitter-ms, --loss)');
      // Checked whole before anything is applied. A delay longer than any
      // request's deadline only fails every request, and past 2^31 ms
      // setTimeout would fire at once: requestTimeoutMaxMs bounds both.
      const link = {
        delayMs: numberOption(values, 'delay-ms', 0, 0, limits.requestTimeoutMaxMs),
        jitterMs: numberOption(values, 'jitter-ms', 0, 0, limits.requestTimeoutMaxMs),
        loss: numberOption(values, 'loss', 0, 0, 1),
      };
      const { setLinkFaults } = await import('../../cluster/launcher.js');
      const missed = await setLinkFaults(dir, link);
      done({ ...link, notApplied: missed },
        `links: delay ${link.delayMs} ms + up to ${link.jitterMs} ms jitter, loss ${link.loss}${missed.length > 0 ? ` (not applied on ${missed.join(', ')})` : ''}`);
      return;
    }
    default:
      throw new UsageError(`unknown cluster command ${sub ?? '(none)'}; tunekv cluster --help lists them`);
  }
}

async function clusterStart(values: Record<string, unknown>, dir: string): Promise<void> {
  const { activeNodes, startCluster, stopCluster } = await import('../../cluster/launcher.js');
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
    console.log(`stop it with: npx tunekv cluster stop --dir ${dir}`);
    return;
  }
  const first = nodes[0]!;
  console.log(`connect: npx tunekv put hello world --host ${first.host}:${first.port}; npx tunekv get hello`);
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
      if (!stopping) console.log(`[${id}] exited (${signal ?? `code ${code}`}); restart it with: npx tunekv cluster restart ${id} --dir ${dir}`);
    });
  }
}

/** `cluster add|leave|remove`: the launcher stages and commits the change
 * through a running node (the cluster secret is admin). */
async function clusterChange(sub: 'add' | 'leave' | 'remove', values: Record<string, unknown>, positionals: string[], dir: string): Promise<void> {
  const { addNodes, leaveNode, removeNode } = await import('../../cluster/launcher.js');
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
    emitJson({ ...rest, ring: { version: ring.version, members: ring.members.map((m) => ({ id: m.id, addr: m.addr, state: m.state ?? 'valid' })), inTransition: ring.next !== null && ring.next !== undefined } });
    return;
  }
  console.log(result.complete
    ? `done: ring v${ring.version} with ${ring.members.length} members`
    : `ring v${ring.version}: the transition runs in the background; follow it with: npx tunekv cluster status --dir ${dir}`);
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

async function cmdBench(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, benchOptions);
  if (positionals.length > 0) throw new UsageError('bench takes no positional arguments');
  const pairs = listOption(values, 'staleness-pairs')?.map((p) => {
    const m = /^(\d+)\/(\d+)$/.exec(p);
    if (!m) throw new UsageError(`--staleness-pairs takes R/W pairs like 1/1,2/2; got ${p}`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  const stalenessT = listOption(values, 'staleness-t')?.map((x) => {
    const v = Number(x);
    if (!/^\d+$/.test(x) || !Number.isSafeInteger(v)) throw new UsageError(`--staleness-t takes whole milliseconds like 0,1,5; got ${x}`);
    return v;
  });
  const { fullBenchOptions, runBench } = await import('../../bench/bench.js');
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
    stalenessT,
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
  if (isJsonMode()) { emitJson({ dir, echo: report.echo, targets: report.targets }); return; }
  console.log(`report: ${path.join(dir, 'report.md')} and report.html`);
  console.log(`echo floor p50 ${report.echo.p50.toFixed(3)} ms`);
  for (const t of report.targets) console.log(`${t.met === null ? 'n/a   ' : t.met ? 'met   ' : 'missed'} ${t.name}: ${t.measured} (goal ${t.goal})`);
}

/** `tunekv sim`: exit 1 when a seed broke an invariant (a negative answer,
 * like grep's). With --json the per-seed reports are gathered into one
 * object, {ok, reports}. */
async function cmdSim(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, simOptions);
  if (positionals.length > 0) throw new UsageError('sim takes no positional arguments');
  const knobs = str(values, 'knobs');
  if (knobs !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(knobs);
    } catch (err) {
      throw new UsageError(`--knobs must be a JSON object: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--knobs must be a JSON object');
  }
  const json = isJsonMode();
  const opts = {
    seed: intOption(values, 'seed'), seeds: intOption(values, 'seeds'), from: intOption(values, 'from'), knobs, trace: str(values, 'trace'), json,
  };
  const { runSimCommand } = await import('../sim/run.js');
  const reports: unknown[] = [];
  const log = console.log;
  // The simulator prints one JSON line per seed; --json promises one object.
  if (json) {
    console.log = (line: unknown, ...more: unknown[]): void => {
      try {
        reports.push(JSON.parse(String(line)));
      } catch {
        console.error(line, ...more);
      }
    };
  }
  let ok: boolean;
  try {
    ok = await runSimCommand(opts);
  } finally {
    console.log = log;
  }
  if (json) emitJson({ ok, reports });
  return ok ? exitStatus.ok : exitStatus.notFound;
}

/** The version in package.json, read at run time (dist/src/cli/main.js or
 * src/cli/main.ts: the first package.json named tunekv above this file). */
function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'tunekv' && typeof pkg.version === 'string') return pkg.version;
    }
    dir = path.dirname(dir);
  }
  throw new Error('package.json of tunekv not found above the CLI');
}

/** The command's words (`get`, `cluster start`) for help and usage lines. */
function commandWords(argv: readonly string[]): string[] {
  const words = argv.filter((a) => !a.startsWith('-'));
  // `tunekv help --help` is help's own help.
  if (words[0] === 'help') return words.length === 1 && argv.length > 1 ? ['help'] : words.slice(1, 3);
  return words[0] === 'cluster' ? words.slice(0, 2) : words.slice(0, 1);
}

/** Flags before `--` (after it everything is an argument: put k -- --json). */
function flagsBeforeEnd(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return end < 0 ? [...argv] : argv.slice(0, end);
}

function printHelp(text: string): void {
  if (isJsonMode()) emitJson({ help: text });
  else console.log(text);
}

async function main(argv: string[]): Promise<ExitStatus | void> {
  const flags = flagsBeforeEnd(argv);
  if (flags.includes('--json')) jsonMode();
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-V') {
    if (isJsonMode()) emitJson({ version: version() });
    else console.log(version());
    return exitStatus.ok;
  }
  if (cmd === undefined || cmd === 'help' || flags.includes('--help') || flags.includes('-h')) {
    const words = commandWords(argv);
    const text = helpFor(words);
    if (text === undefined) throw new UsageError(`unknown command ${words[0]}; tunekv --help lists the commands`);
    printHelp(text);
    return exitStatus.ok;
  }
  switch (cmd) {
    case 'node': return cmdNode(rest);
    case 'cluster': return cmdCluster(rest);
    case 'get': return (await import('./kv-commands.js')).cmdGet(rest);
    case 'put': return (await import('./kv-commands.js')).cmdPut(rest);
    case 'del': return (await import('./kv-commands.js')).cmdDel(rest);
    case 'status': return (await import('./kv-commands.js')).cmdStatus(rest);
    case 'counter':
    case 'set':
      return (await import('./kv-commands.js')).cmdTyped(cmd, rest);
    case 'join':
    case 'leave':
    case 'remove':
    case 'replace':
    case 'plan':
    case 'commit':
    case 'transfer-limit':
      return (await import('./kv-commands.js')).cmdChange(cmd, rest);
    case 'users': return (await import('./kv-commands.js')).cmdUsers(rest);
    case 'conflicts': return (await import('./kv-commands.js')).cmdConflicts(rest);
    case 'sim': return cmdSim(rest);
    case 'bench': return cmdBench(rest);
    default:
      throw new UsageError(`unknown command ${cmd}; tunekv --help lists the commands`);
  }
}

function isReplicaReport(x: unknown): x is { node: string; role: string; outcome: string } {
  const r = x as Record<string, unknown> | null;
  return typeof r === 'object' && r !== null && typeof r.node === 'string' && typeof r.role === 'string' && typeof r.outcome === 'string';
}

/** Every caught error ends here: one message, one exit status. */
function fail(err: unknown, argv: readonly string[]): void {
  const { error, status, usage } = describeError(err);
  const code = 'code' in error ? error.code : null;
  const details = 'details' in error ? error.details : {};
  if (isJsonMode() && !jsonEmitted()) {
    emitJson({ error: { code, message: error.message, details }, exitCode: status });
  } else {
    process.stderr.write(`error${code !== null ? ` ${code}` : ''}: ${error.message}${usage ? `\n${synopsisFor(commandWords(argv))}` : ''}\n`);
    // A failed quorum says which replicas took the write (a failed write is
    // not rolled back) and which were never sent it (notsent).
    const replicas = (details as { replicas?: unknown }).replicas;
    if (Array.isArray(replicas) && replicas.every(isReplicaReport)) process.stderr.write(`# replicas: ${replicasLine(replicas)}\n`);
  }
  process.exitCode = status;
}

// A reader that stops early (`| head`) closes the pipe: that ends the
// command quietly, as it ends grep or cat, not with a stack trace. Any
// other failure to write the answer (a full disk: `> /dev/full`) is not
// success and not "not found": exit 6, said on stderr when it can be.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    if (stream === process.stdout) {
      try { process.stderr.write(`error: cannot write the output: ${err.code ?? err.message}\n`); } catch { /* stderr is gone too */ }
    }
    process.exit(exitStatus.internal);
  });
}

const argv = process.argv.slice(2);
main(argv).then((status) => {
  if (status !== undefined) process.exitCode = status;
}, (err: unknown) => fail(err, argv));
