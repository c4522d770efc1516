// "Where the CPU goes": sampling CPU profiles of the load client (in this
// process, through node:inspector) and of every node (through
// profile-preload.cjs, toggled by SIGUSR2), summarised as the functions with
// the most self time and the most inclusive time, idle excluded.

import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The preload file the nodes get through NODE_OPTIONS (next to this file
 * in dist/bench; a .cts source compiles to it). */
export const profilePreloadPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'profile-preload.cjs');
export const profileDirEnv = 'TUNEKV_PROFILE_DIR';

/** The parts of a .cpuprofile (Chrome DevTools format) the summary reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface FunctionTime {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy (non-idle) time. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly process: string;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly self: FunctionTime[];
  readonly inclusive: FunctionTime[];
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  const dist = u.lastIndexOf('/dist/');
  if (dist >= 0) return u.slice(dist + '/dist/'.length);
  return u;
}

function functionKey(f: CpuProfile['nodes'][number]['callFrame']): string {
  const name = f.functionName || '(anonymous)';
  if (f.url === '') return name;
  return `${name} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
}

/** Top functions by self and inclusive time. Recursion is counted once per
 * stack for inclusive time; the tree is walked without recursion. */
export function summarizeProfile(processName: string, p: CpuProfile, top = 12): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const meanDelta = p.timeDeltas.length > 0 ? p.timeDeltas.reduce((a, b) => a + b, 0) / p.timeDeltas.length : 0;
  // timeDeltas[i] is the gap before sample i: the time until the next
  // sample is what sample i stands for.
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, p.timeDeltas[i + 1] ?? meanDelta)));
  let idleUs = 0;
  let busyUs = 0;
  const self = new Map<string, number>();
  for (const n of p.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    if (n.callFrame.functionName === '(idle)') { idleUs += us; continue; }
    busyUs += us;
    if (n.callFrame.functionName === '(root)') continue;
    const k = functionKey(n.callFrame);
    self.set(k, (self.get(k) ?? 0) + us);
  }
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id);
    if (leaf === undefined || leaf.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName === '(root)') break;
      const k = functionKey(n.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const rank = (m: Map<string, number>): FunctionTime[] => [...m]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { process: processName, busyMs: busyUs / 1000, idleMs: idleUs / 1000, self: rank(self), inclusive: rank(inclusive) };
}

/** Profiles this process (the load client) while `run` runs. */
export async function profileSelf<T>(run: () => Promise<T>, samplingIntervalUs = 200): Promise<{ result: T; profile: CpuProfile }> {
  const s = new Session();
  s.connect();
  try {
    await s.post('Profiler.enable');
    await s.post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await s.post('Profiler.start');
    const result = await run();
    const { profile } = await s.post('Profiler.stop');
    return { result, profile: profile as unknown as CpuProfile };
  } finally {
    s.disconnect();
  }
}

/** Waits for `count` .cpuprofile files in dir (the nodes write theirs after
 * the second SIGUSR2), and reads them. */
export async function collectProfiles(dir: string, count: number, timeoutMs: number): Promise<{ file: string; profile: CpuProfile }[]> {
  const deadline = Date.now() + timeoutMs;
  let files: string[] = [];
  while (Date.now() < deadline) {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length >= count) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return files.sort().map((f) => ({ file: f, profile: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile }));
}
