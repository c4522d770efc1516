// Where the CPU really goes, by kind of work: a `perf record` of the
// benchmark's processes over a measured phase, each sample's symbol sorted into GC, kernel, JS,
// V8 builtins, JIT compilation, LevelDB, malloc and other native code.
//
// The V8 sampling profiles of `bench --profile` sample wall time: a process
// descheduled inside a write system call (the reader it woke took its
// core) is charged to `writeBuffer` for as long as it waits. perf samples
// CPU time of every thread (V8's GC and compiler threads included), so
// the split below is what the CPU did.
// Node processes need `--perf-basic-prof` (set through NODE_OPTIONS before
// they start) for JIT frames to have names; without it they still count as
// JS, only unnamed.
//
// Used by `cpu-op --perf`; needs `perf` (Debian: linux-perf) and root or
// kernel.perf_event_paranoid <= 0.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type PerfKind = 'gc' | 'kernel' | 'js' | 'builtins' | 'compile' | 'leveldb' | 'malloc' | 'native';

export interface PerfSplit {
  /** Percent of all samples (every process on the machine) per kind. */
  readonly kinds: Record<PerfKind, number>;
  /** Percent of samples in processes named `node` (ours). */
  readonly nodeShare: number;
  /** The heaviest symbols, percent of all samples. */
  readonly top: { readonly pct: number; readonly kind: PerfKind; readonly symbol: string }[];
  readonly samples: number;
}

const gcPattern = /Scaveng|Marking|MarkCompact|Sweep|GCTracer|Heap::|FreeList|Evacuat|MemoryChunk|RecordWrite|Remembered|SlotSet|IteratePointers|OnMoveEvent|SizeFromMap|Compactor|WeakObjects|ArrayBufferSweeper|BackingStore::|GlobalHandles/;
const compilePattern = /compiler::|CompileLazy|Compiler::|maglev|Maglev|turboshaft|Turboshaft|interpreter::BytecodeGenerator|Parser::/;

export function perfKind(dso: string, symbol: string, kernel: boolean): PerfKind {
  if (kernel) return 'kernel';
  if (gcPattern.test(symbol)) return 'gc';
  if (dso.includes('classic-level') || symbol.includes('leveldb::') || symbol.includes('snappy')) return 'leveldb';
  if (compilePattern.test(symbol)) return 'compile';
  // JIT code without a perf map shows as [unknown] in a node process.
  if (dso.startsWith('[JIT]') || dso === '[unknown]' || dso.startsWith('perf-') || symbol.startsWith('JS:') || symbol.startsWith('LazyCompile:')) return 'js';
  if (symbol.startsWith('Builtins_') || symbol.startsWith('Builtin:')) return 'builtins';
  if (dso.startsWith('libc') && /malloc|free|_int_|unlink_chunk|consolidate/.test(symbol)) return 'malloc';
  return 'native';
}

/** Parses `perf report --no-children --sort comm,dso,sym -g none` output. */
export function parsePerfReport(text: string, top = 15): PerfSplit {
  const kinds: Record<PerfKind, number> = { gc: 0, kernel: 0, js: 0, builtins: 0, compile: 0, leveldb: 0, malloc: 0, native: 0 };
  const rows: { pct: number; kind: PerfKind; symbol: string }[] = [];
  let nodeShare = 0;
  let samples = 0;
  for (const line of text.split('\n')) {
    const s = /^# Samples: (\d+)([KM]?)/.exec(line);
    if (s) samples = Number(s[1]) * (s[2] === 'K' ? 1e3 : s[2] === 'M' ? 1e6 : 1);
    const m = /^\s*([\d.]+)%\s+(\S+)\s+(.+?)\s+\[([k.])\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const pct = Number(m[1]);
    const kind = perfKind(m[3]!, m[5]!, m[4] === 'k');
    kinds[kind] += pct;
    if (m[2] === 'node') nodeShare += pct;
    rows.push({ pct, kind, symbol: m[5]!.slice(0, 120) });
  }
  for (const k of Object.keys(kinds) as PerfKind[]) kinds[k] = Math.round(kinds[k] * 10) / 10;
  return { kinds, nodeShare: Math.round(nodeShare * 10) / 10, top: rows.slice(0, top), samples };
}

export function perfAvailable(): boolean {
  return spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Starts a perf record of the given processes (every thread of each), or
 * of the whole machine without pids; stop() ends it and returns the split.
 * Naming the processes keeps a neighbour's work out of the split. */
export function startPerf(pids: readonly number[] = [], frequencyHz = 999): { stop(): Promise<PerfSplit> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-perf-'));
  const data = path.join(dir, 'perf.data');
  const target = pids.length > 0 ? ['-p', pids.join(',')] : ['-a'];
  const rec = spawn('perf', ['record', '-F', String(frequencyHz), ...target, '-o', data], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => rec.once('exit', () => resolve()));
  return {
    async stop(): Promise<PerfSplit> {
      rec.kill('SIGINT');
      await exited;
      try {
        const rep = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', 'comm,dso,sym', '-g', 'none', '--stdio'],
          { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
        return parsePerfReport(rep.stdout ?? '');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export function formatPerfSplit(p: PerfSplit): string {
  const kinds = (Object.entries(p.kinds) as [PerfKind, number][]).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}%`).join(', ');
  const top = p.top.map((r) => `  ${r.pct.toFixed(2).padStart(6)}%  ${r.kind.padEnd(8)} ${r.symbol}`).join('\n');
  return `perf: ${p.samples} samples, ${p.nodeShare}% in node processes; ${kinds}\n${top}`;
}
