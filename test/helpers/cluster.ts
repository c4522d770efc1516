// Real node processes for integration tests: a detached cluster in a temp
// directory on free ports, torn down when the test ends, even when it fails
// (t.teardown, and a last-resort SIGKILL of every recorded pid at exit).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import {
  activeNodes, adminCall, adminDial, addNodes, clusterStatus, isNodeProcess, heal, killNode, leaveNode, partition, pauseNode, readCluster, removeNode, restartNode, resumeNode,
  setLinkFaults, startCluster, stopCluster,
} from '../../cluster/launcher.js';
import type { ChangeOptions, ChangeResult, ClusterFile, ClusterStatus } from '../../cluster/launcher.js';
import { MsgType } from '../../src/protocol/messages.js';
import { connect } from '../../src/index.js';
import type { TuneKvClient } from '../../src/index.js';

const liveDirs = new Set<string>();

process.on('exit', () => {
  for (const dir of liveDirs) {
    const c = readCluster(dir);
    for (const nd of c?.nodes ?? []) {
      if (nd.pid !== null) try { process.kill(nd.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
});

export interface TestCluster {
  /** The launcher's directory (cluster.json, logs, data). */
  readonly dir: string;
  /** The temp directory the test owns; with `localLayout` the cluster is
   * in ROOT/data/cluster, where the CLI looks by default, so a CLI run
   * with this as its working directory finds it. */
  readonly root: string;
  /** The nodes it was started with; see activeHosts() after add or leave. */
  readonly hosts: string[];
  /** host:port of every node that has not left or been removed. */
  activeHosts(): string[];
  file(): ClusterFile;
  kill(id: string): Promise<void>;
  restart(id: string): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  partition(groups: string[][]): Promise<string[]>;
  heal(): Promise<string[]>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** `cluster add --nodes count` (quiet). */
  add(count: number, opts?: ChangeOptions): Promise<ChangeResult>;
  /** `cluster leave id` (quiet). */
  leave(id: string, opts?: ChangeOptions): Promise<ChangeResult>;
  /** `cluster remove id` (quiet). */
  remove(id: string, opts?: ChangeOptions): Promise<ChangeResult>;
  status(): Promise<ClusterStatus>;
  /** Sets the transfer limit (MB/s) of every running active node, as
   * `tunekv transfer-limit` does; returns the nodes that took it. */
  transferLimit(mbps: number): Promise<string[]>;
}

/** Fast failure detection and repair, so fault tests take seconds. */
export const fastNodeArgs = [
  '--gossip-ms', '100', '--suspect-ms', '700', '--down-ms', '1500', '--handoff-ms', '100',
  '--aae-interval-ms', '1000', '--timeout-ms', '3000', '--reap-delay-ms', '4000',
];

export interface TestClusterOptions {
  nodes?: number;
  n?: number;
  nodeArgs?: string[];
  /** Node i on 127.0.0.i, all on one free port (`--distinct-addresses`). */
  distinctAddresses?: boolean;
  /** Put the cluster in ROOT/data/cluster (see TestCluster.root). */
  localLayout?: boolean;
}

export async function testCluster(t: Test, opts: TestClusterOptions = {}): Promise<TestCluster> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-it-'));
  const dir = opts.localLayout === true ? path.join(root, 'data', 'cluster') : root;
  liveDirs.add(dir);
  let first = true;
  const start = async (): Promise<void> => {
    // A restart takes the nodes cluster.json lists (add and leave change them).
    const nodes = first ? opts.nodes ?? 3 : undefined;
    first = false;
    await startCluster({
      dir, nodes, basePort: 0, host: '127.0.0.1', distinctAddresses: opts.distinctAddresses === true, n: opts.n ?? 3, q: 64,
      fsync: false, detach: true, log: () => {}, nodeArgs: opts.nodeArgs ?? [],
    });
  };
  // Registered before the start, so a start that fails half-way still
  // stops whatever it left running.
  t.teardown(async () => {
    await stopCluster(dir, () => {});
    liveDirs.delete(dir);
    fs.rmSync(root, { recursive: true, force: true });
  });
  await start();
  const file = (): ClusterFile => readCluster(dir)!;
  return {
    dir,
    root,
    hosts: file().nodes.map((nd) => `${nd.host}:${nd.port}`),
    file,
    kill: (id) => killNode(dir, id),
    restart: (id) => restartNode(dir, id),
    pause: (id) => pauseNode(dir, id),
    resume: (id) => resumeNode(dir, id),
    partition: (groups) => partition(dir, groups),
    heal: () => heal(dir),
    stop: () => stopCluster(dir, () => {}),
    start,
    activeHosts: () => activeNodes(file()).map((nd) => `${nd.host}:${nd.port}`),
    add: (count, o) => addNodes(dir, count, { log: () => {}, ...o }),
    leave: (id, o) => leaveNode(dir, id, { log: () => {}, ...o }),
    remove: (id, o) => removeNode(dir, id, { log: () => {}, ...o }),
    status: () => clusterStatus(dir),
    transferLimit: async (mbps) => {
      const dial = adminDial(dir);
      const running = activeNodes(file()).filter((nd) => isNodeProcess(nd.pid, nd.id));
      const took = await Promise.all(running.map((nd) => adminCall(dial, nd, MsgType.TRANSFER_LIMIT, { mbps }).then(() => nd.id, () => null)));
      return took.filter((id): id is string => id !== null);
    },
  };
}

/** Three nodes with `delayMs` of injected one-way delay on every
 * node-to-node link (as `cluster faults --delay-ms` sets it), and a client
 * of n1 closed at teardown: the set-up of the session tests. */
export async function delayedCluster(t: Test, delayMs: number): Promise<{ cluster: TestCluster; hosts: [string, string, string]; kv: TuneKvClient }> {
  const cluster = await testCluster(t, { nodes: 3 });
  const hosts = cluster.hosts as [string, string, string];
  const kv = await connect({ hosts: [hosts[0]], timeoutMs: 3000 });
  t.teardown(() => kv.close());
  await setLinkFaults(cluster.dir, { delayMs, jitterMs: 0, loss: 0 });
  return { cluster, hosts, kv };
}
