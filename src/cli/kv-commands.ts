// The client commands: get, put, del, status, the ring changes (join,
// leave, remove, replace, plan, commit, transfer-limit), conflicts, counter,
// set and users. main.ts imports this file only for them, so `--version`
// and the cluster commands never load the client.
//
// Each command returns its exit status; errors are thrown and mapped once,
// in main.ts (exit-codes.ts).

import fs from 'node:fs';
import { connect } from '../client/client.js';
import type { TuneKvClient } from '../client/client.js';
import { TuneKvError } from '../errors.js';
import { parseSince } from '../client/conflicts.js';
import {
  changeOptions, conflictsOptions, decimal, delOptions, getOptions, intOption, levelOption, parse, putOptions, statusOptions, str,
  typedOptions, usersOptions,
} from './args.js';
import type { Values } from './args.js';
import { connectionFileOf, credentialsOf, hostsOf, pinnedHost } from './connection.js';
import { UsageError, exitStatus } from './exit-codes.js';
import type { ExitStatus } from './exit-codes.js';
import { emitJson, isJsonMode, jsonEmitted, printGet, printPut } from './output.js';
import { conflictsJson, conflictsText, readAllLogs, readNodeLog } from './conflicts.js';
import type { NodeConflicts } from './conflicts.js';
import { cmdCounter, cmdSet } from './typed-commands.js';
import type { TypedCliDeps } from './typed-commands.js';
import { readValueArg } from './value-input.js';

/** Connects with the flags, environment and connection file, runs `fn`,
 * closes. `useLocalSecret`: status and admin commands use the local
 * cluster's secret when no user is given. */
export async function withClient<T>(values: Values, fn: (kv: TuneKvClient) => Promise<T>, useLocalSecret = false,
  readerFallback = false): Promise<T> {
  if (readerFallback && useLocalSecret) {
    // status: the local cluster's secret is offered by default, but a node
    // of another cluster (its own secret) refuses it. Nobody asked for
    // admin details there, so ask again as a reader instead of failing.
    const conn = connectionFileOf(values);
    const [offered, plain] = await Promise.all([credentialsOf(values, conn, true), credentialsOf(values, conn, false)]);
    if (offered.secret !== undefined && plain.secret === undefined) {
      try {
        return await withClient(values, fn, true);
      } catch (err) {
        if (!(err instanceof TuneKvError) || err.code !== 'UNAUTHORIZED') throw err;
        return withClient(values, fn, false);
      }
    }
  }
  const conn = connectionFileOf(values);
  const hosts = hostsOf(values, conn);
  const creds = await credentialsOf(values, conn, useLocalSecret);
  // Ctrl-C (or SIGTERM) while a request is out: the answer never comes,
  // and a write may have been applied. Say so the one way the command
  // speaks (with --json, the one JSON object), with ABORTED's status.
  const interrupted = (signal: NodeJS.Signals): void => {
    const message = `interrupted by ${signal} before the answer came: a write may have been applied`;
    if (isJsonMode()) {
      if (!jsonEmitted()) emitJson({ error: { code: 'ABORTED', message, details: { signal, maybeApplied: true } }, exitCode: exitStatus.unavailable });
    } else {
      process.stderr.write(`error ABORTED: ${message}\n`);
    }
    process.exit(exitStatus.unavailable);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    let kv: TuneKvClient;
    try {
      kv = await connect({ hosts, timeoutMs: intOption(values, 'timeout-ms'), ...creds });
    } catch (err) {
      // connect() throws TypeError for options it cannot take: from a
      // command line, that is a usage error.
      if (err instanceof TypeError) throw new UsageError(err.message);
      throw err;
    }
    try {
      return await fn(kv);
    } finally {
      await kv.close();
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}

function one(positionals: string[], cmd: string): string {
  const [key] = positionals;
  if (key === undefined || positionals.length !== 1) throw new UsageError(`${cmd} needs exactly one KEY`);
  return key;
}

export async function cmdGet(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, getOptions);
  const key = one(positionals, 'get');
  if (values.raw === true && values.json === true) throw new UsageError('--raw and --json do not go together');
  const host = pinnedHost(values);
  const got = await withClient(values, (kv) => kv.get(key, {
    consistency: levelOption(values), r: intOption(values, 'r'), timeoutMs: intOption(values, 'timeout-ms'), host,
  }));
  return printGet(got, { json: values.json === true, raw: values.raw === true });
}

export async function cmdPut(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, putOptions);
  if (positionals.length !== 2) throw new UsageError(`put needs KEY and one VALUE (VALUE may be - for stdin or @FILE); got ${positionals.length} argument${positionals.length === 1 ? '' : 's'} (quote a value with spaces)`);
  const [key, arg] = positionals as [string, string];
  const opts = {
    consistency: levelOption(values), w: intOption(values, 'w'), context: str(values, 'context'),
    lww: values.lww === true ? true : undefined, timeoutMs: intOption(values, 'timeout-ms'), host: pinnedHost(values),
  };
  // Read (and bound) the value before connecting: a value too large fails
  // without touching the cluster.
  const value = await readValueArg(arg, values.literal === true);
  printPut(await withClient(values, (kv) => kv.put(key, value, opts)));
  return exitStatus.ok;
}

export async function cmdDel(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, delOptions);
  const key = one(positionals, 'del');
  const res = await withClient(values, (kv) => kv.delete(key, {
    consistency: levelOption(values), w: intOption(values, 'w'), context: str(values, 'context'), timeoutMs: intOption(values, 'timeout-ms'),
    host: pinnedHost(values),
  }));
  printPut(res);
  return exitStatus.ok;
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

export async function cmdStatus(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, statusOptions);
  if (positionals.length > 0) throw new UsageError('status takes no arguments (use --host HOST:PORT for one node)');
  const st = await withClient(values, (kv) => firstStatus(kv, hostsOf(values, connectionFileOf(values))), true, true);
  if (isJsonMode()) { emitJson(st); return exitStatus.ok; }
  printStatus(st);
  return exitStatus.ok;
}

function printStatus(st: Record<string, unknown>): void {
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
export async function cmdChange(cmd: string, args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, changeOptions);
  const host = pinnedHost(values);
  const need = (n: number, what: string): void => {
    if (positionals.length !== n) throw new UsageError(`${cmd} needs ${what}`);
  };
  // Arguments are checked before connecting: a usage error sends nothing.
  switch (cmd) {
    case 'join': need(1, 'the new node\'s HOST:PORT (started with --standby)'); break;
    case 'leave': case 'remove': need(1, 'a node id'); break;
    case 'replace': need(2, 'the node id to replace and the new node\'s HOST:PORT'); break;
    case 'plan': case 'commit': need(0, 'no arguments'); break;
    default: need(1, 'a number of MB/s');
  }
  const mbps = cmd === 'transfer-limit' ? decimal(positionals[0]) : 0;
  if (cmd === 'transfer-limit' && !(mbps > 0)) throw new UsageError(`transfer-limit needs a positive number of MB/s; got ${positionals[0]}`);
  const out = await withClient(values, async (kv) => {
    switch (cmd) {
      case 'join': return kv.stage({ op: 'join', addr: positionals[0]! }, host);
      case 'leave': return kv.stage({ op: 'leave', id: positionals[0]! }, host);
      case 'remove': return kv.stage({ op: 'remove', id: positionals[0]! }, host);
      case 'replace': return kv.stage({ op: 'replace', id: positionals[0]!, addr: positionals[1]! }, host);
      case 'plan': return kv.plan(host);
      case 'commit': return kv.commit(host);
      default: {
        const targets = host !== undefined ? [host] : await ringAddrs(kv);
        const done: string[] = [];
        for (const h of targets) { await kv.setTransferLimit(mbps, h); done.push(h); }
        return { mbps, nodes: done };
      }
    }
  }, true);
  if (isJsonMode()) { emitJson(out); return exitStatus.ok; }
  if (cmd === 'plan') { printPlan(out); return exitStatus.ok; }
  if (cmd === 'commit') {
    console.log(out.queued ? `committed; queued behind the transition in progress` : `committed: plan ${String(out.plan)}, ring v${String(out.ringVersion)}; transfers run now (see tunekv status)`);
    return exitStatus.ok;
  }
  if (cmd === 'transfer-limit') { console.log(`transfer limit ${String(out.mbps)} MB/s on ${(out.nodes as string[]).join(', ')}`); return exitStatus.ok; }
  const staged = (out.staged ?? []) as Record<string, unknown>[];
  console.log(`staged (${staged.length}): ${staged.map(describeStaged).join('; ')}\nreview with: npx tunekv plan; apply with: npx tunekv commit`);
  return exitStatus.ok;
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

/** `tunekv conflicts`: one node's conflict log (--host, or the first that
 * answers), or every member's (--all); see src/cli/conflicts.ts. */
export async function cmdConflicts(args: string[]): Promise<ExitStatus> {
  const { values, positionals } = parse(args, conflictsOptions);
  if (positionals.length > 0) throw new UsageError('conflicts takes no positional arguments (use --key K)');
  const sinceText = str(values, 'since');
  let since: number | undefined;
  try {
    since = sinceText === undefined ? undefined : parseSince(sinceText, Date.now());
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const key = str(values, 'key');
  const host = pinnedHost(values);
  const query = { ...(key !== undefined ? { key } : {}), ...(since !== undefined ? { since } : {}), timeoutMs: intOption(values, 'timeout-ms') };
  const logs = await withClient(values, async (kv): Promise<NodeConflicts[]> => {
    if (values.all !== true) return [await readNodeLog(kv, { ...query, ...(host !== undefined ? { host } : {}) })];
    return readAllLogs(kv, (kv.currentRing?.members ?? []).map((m) => m.addr), query);
  });
  const failed = logs.filter((l) => l.error !== undefined);
  // Partial answers are answers (the errors are listed); none at all is a
  // failure, with the first node's error code.
  if (failed.length > 0 && failed.length === logs.length) {
    const e = failed[0]!.error!;
    throw new TuneKvError(e.code as TuneKvError['code'], `no node answered: ${failed.map((l) => `${l.node}: ${l.error!.code} ${l.error!.message}`).join('; ')}`);
  }
  if (isJsonMode()) emitJson(conflictsJson(logs));
  else for (const line of conflictsText(logs)) console.log(line);
  for (const l of failed) if (!isJsonMode()) console.error(`# ${l.node}: ${l.error!.code} ${l.error!.message}`);
  return exitStatus.ok;
}

/** `tunekv users add NAME --role R`: a users-file line with a fresh salt
 * and the password's scrypt-derived keys (never the password itself),
 * appended to --file (created mode 0600) or printed. */
export async function cmdUsers(args: string[]): Promise<ExitStatus> {
  const [sub, ...rest] = args;
  if (sub !== 'add') throw new UsageError('users takes: add NAME --role read|write|admin [--password-file F] [--file USERS_FILE]');
  const { values, positionals } = parse(rest, usersOptions);
  const [name] = positionals;
  if (name === undefined || positionals.length !== 1) throw new UsageError('users add needs exactly one NAME');
  const role = str(values, 'role');
  if (role !== 'read' && role !== 'write' && role !== 'admin') throw new UsageError('--role must be read, write or admin');
  const pwFile = str(values, 'password-file') ?? process.env.TUNEKV_PASSWORD_FILE;
  const { readFileUpTo } = await import('./connection.js');
  const { limits } = await import('../limits.js');
  const { bytes, over } = readFileUpTo(pwFile ?? '/dev/stdin', limits.cliConfigBytesMax, 'password file');
  if (over) throw new UsageError(`the password is longer than ${limits.cliConfigBytesMax} bytes`);
  const password = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (password.length === 0) throw new UsageError('the password is empty');
  const { userLine } = await import('../security/users.js');
  const line = await userLine(name, password, role);
  const file = str(values, 'file');
  if (file === undefined) {
    if (isJsonMode()) emitJson({ name, role, line });
    else console.log(line);
    return exitStatus.ok;
  }
  fs.appendFileSync(file, `${line}\n`, { mode: 0o600 });
  if (isJsonMode()) emitJson({ name, role, file });
  else console.log(`${name} (${role}) added to ${file}`);
  return exitStatus.ok;
}

/** What typed-commands.ts borrows, so its flags parse as get/put's do. */
function typedCliDeps(): TypedCliDeps {
  return {
    requestOptions: typedOptions, parse, withClient: (values, fn) => withClient(values, fn), levelOption, intOption,
    str: (values, name) => (name === 'host' ? pinnedHost(values) : str(values, name)),
    usageError: (message) => new UsageError(message),
  };
}

export async function cmdTyped(cmd: 'counter' | 'set', args: string[]): Promise<ExitStatus> {
  if (cmd === 'counter') await cmdCounter(args, typedCliDeps());
  else await cmdSet(args, typedCliDeps());
  return exitStatus.ok;
}
