// CPU accounting for the benchmarks: CPU seconds (user + system) of every
// process that serves or drives the load, read before and after a phase.
// Node processes are read from /proc/PID/stat (Linux); the load client is
// this process (process.cpuUsage). CPU per operation is the figure that
// matters on a shared machine: ops/s moves with the neighbours, CPU per
// operation much less.

import fs from 'node:fs';

/** CPU seconds (user + system) a process has used, or 0 once it is gone. */
export function processCpuSeconds(pid: number | null | undefined): number {
  if (!pid) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** Read and write system calls a process has made so far (syscr, syscw
 * of /proc/PID/io), or zeros once it is gone. Each socket write on
 * loopback runs the whole TCP path and wakes the reader, so writes per
 * operation explain much of the CPU per operation. */
export function processSyscalls(pid: number | null | undefined): { reads: number; writes: number } {
  try {
    const io = fs.readFileSync(`/proc/${pid ?? 'self'}/io`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? 0);
    return { reads: field('syscr'), writes: field('syscw') };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

export interface CpuSample {
  readonly nodes: number[];
  readonly client: number;
  readonly at: number;
}

export function sampleCpu(pids: readonly (number | null)[]): CpuSample {
  const u = process.cpuUsage();
  return { nodes: pids.map(processCpuSeconds), client: (u.user + u.system) / 1e6, at: performance.now() };
}

export interface CpuUse {
  /** CPU seconds of all node processes together. */
  readonly nodesS: number;
  readonly clientS: number;
  readonly wallS: number;
  /** Cores busy on average: (nodes + client) / wall. */
  readonly cores: number;
}

export function cpuBetween(a: CpuSample, b: CpuSample): CpuUse {
  const nodesS = b.nodes.reduce((s, x, i) => s + Math.max(0, x - (a.nodes[i] ?? 0)), 0);
  const clientS = b.client - a.client;
  const wallS = (b.at - a.at) / 1000;
  return { nodesS, clientS, wallS, cores: wallS > 0 ? (nodesS + clientS) / wallS : 0 };
}

/** Microseconds of CPU per operation: nodes, client and both together. */
export function cpuPerOp(use: CpuUse, ops: number): { nodes: number; client: number; total: number } {
  const per = (s: number): number => (ops > 0 ? Math.round((s * 1e6) / ops) : 0);
  return { nodes: per(use.nodesS), client: per(use.clientS), total: per(use.nodesS + use.clientS) };
}
