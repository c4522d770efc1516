import t from 'tap';
import { parsePerfReport, perfKind } from '../../bench/perf-split.js';

t.test('perf symbols sort into kinds of work', async (t) => {
  t.equal(perfKind('node', 'v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>', false), 'gc');
  t.equal(perfKind('node', 'v8::internal::ConcurrentMarking::RunMajor', false), 'gc');
  t.equal(perfKind('[kernel.kallsyms]', '_raw_spin_unlock_irqrestore', true), 'kernel');
  t.equal(perfKind('[JIT] tid 6302', 'JS:*merge file:///x/vclock.js:27:22', false), 'js');
  t.equal(perfKind('[unknown]', '0x00007f3a2c1d2e40', false), 'js');
  t.equal(perfKind('node', 'Builtins_FindOrderedHashMapEntry', false), 'builtins');
  t.equal(perfKind('node', 'v8::internal::compiler::GraphReducer::ReduceTop', false), 'compile');
  t.equal(perfKind('classic-level.node', 'leveldb::SkipList<char const*, leveldb::MemTable::KeyComparator>::Insert', false), 'leveldb');
  t.equal(perfKind('libc.so.6', '_int_malloc', false), 'malloc');
  t.equal(perfKind('libc.so.6', '__memmove_avx512_unaligned_erms', false), 'native');
});

t.test('a perf report becomes shares per kind', async (t) => {
  const report = [
    '# Samples: 11K of event \'cpu-clock:ppp\'',
    '# Overhead  Command  Shared Object  Symbol',
    '    20.50%  node             node                  [.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>',
    '    10.00%  node             [kernel.kallsyms]     [k] finish_task_switch.isra.0',
    '     5.25%  node             [JIT] tid 6280        [.] JS:*pack file:///m/msgpackr/pack.js:258:16',
    '     2.00%  swapper          [kernel.kallsyms]     [k] pv_native_safe_halt',
    '     1.00%  node             libc.so.6             [.] malloc',
    '',
  ].join('\n');
  const p = parsePerfReport(report, 2);
  t.equal(p.samples, 11000);
  t.equal(p.kinds.gc, 20.5);
  t.equal(p.kinds.kernel, 12);
  t.equal(p.kinds.js, 5.3);
  t.equal(p.kinds.malloc, 1);
  t.equal(p.nodeShare, 36.8);
  t.same(p.top.map((r) => r.kind), ['gc', 'kernel']);
});
