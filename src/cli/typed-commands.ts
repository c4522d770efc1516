// `tunekv counter KEY [get | incr N | decr N | reset]` and
// `tunekv set KEY [members | add MEMBER | rm MEMBER | del]`, with the
// request flags of get/put (--consistency, --r/--w, --host, --timeout-ms,
// --json, auth). main.ts hands over its parsing helpers so the flags mean
// exactly what they mean for get and put.
//
// N and MEMBER are always taken as given: `-` and `@FILE` are not read
// (a member is a short string, and `set cart add -` is the member "-").
// A counter never written reads 0 and an empty set has no members: both are
// answers, exit 0 (only `get` of a plain key has "not found", exit 1).
//
// N is a decimal integer of any sign within signed 64 bits: `incr -5`
// parses (a lone negative number is taken as N, not as a flag). Values
// print as exact decimals, in --json as strings (JSON numbers lose
// precision past 2^53 in most readers).

import type { ParseArgsConfig } from 'node:util';
import type { TuneKvClient } from '../client/client.js';
import type { CounterResult, SetMembersResult, SetUpdateResult } from '../client/types.js';
import type { Consistency } from '../core/quorum/levels.js';
import { emitJson, valueText } from './output.js';

type Values = Record<string, string | boolean | undefined>;

export interface TypedCliDeps {
  readonly requestOptions: NonNullable<ParseArgsConfig['options']>;
  parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Values; positionals: string[] };
  withClient<T>(values: Values, fn: (kv: TuneKvClient) => Promise<T>): Promise<T>;
  levelOption(values: Values): Consistency | undefined;
  intOption(values: Values, name: string): number | undefined;
  str(values: Values, name: string): string | undefined;
  usageError(message: string): Error;
}

/** Negative numbers are not flags: they are taken out before flag parsing. */
function splitNegatives(args: string[]): { args: string[]; negatives: string[] } {
  const negatives = args.filter((a) => /^-[0-9]+$/.test(a));
  return { args: args.filter((a) => !/^-[0-9]+$/.test(a)), negatives };
}

function bigIntArg(raw: string | undefined, d: TypedCliDeps): bigint {
  if (raw === undefined || !/^[+-]?[0-9]+$/.test(raw)) throw d.usageError(`N must be a decimal integer; got ${raw === undefined ? 'nothing' : `"${raw}"`}`);
  const n = BigInt(raw);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw d.usageError('N must fit in signed 64 bits');
  return n;
}

function report(r: { level: string; coordinator: string; replicas: { node: string; outcome: string }[] }): string {
  return `${r.level} via ${r.coordinator}: ${r.replicas.map((x) => `${x.node}(${x.outcome})`).join(' ')}`;
}

function printCounter(r: CounterResult, json: boolean): void {
  if (json) emitJson({ ...r, value: r.value.toString() });
  else console.log(`${r.value}`);
}

/** The read and write options every counter and set command takes. */
function requestOptionsOf(values: Parameters<TypedCliDeps['levelOption']>[0], d: TypedCliDeps) {
  const common = { consistency: d.levelOption(values), timeoutMs: d.intOption(values, 'timeout-ms'), host: d.str(values, 'host') };
  return { common, write: { ...common, w: d.intOption(values, 'w') } };
}

export async function cmdCounter(argv: string[], d: TypedCliDeps): Promise<void> {
  const { args, negatives } = splitNegatives(argv);
  const { values, positionals } = d.parse(args, d.requestOptions);
  const [key, op = 'get', ...more] = positionals;
  if (key === undefined) throw d.usageError('counter needs KEY');
  const json = values.json === true;
  const { common, write } = requestOptionsOf(values, d);
  const nArg = (): bigint => {
    const raw = [...more, ...negatives];
    if (raw.length !== 1) throw d.usageError(`counter ${op} needs exactly one N`);
    return bigIntArg(raw[0], d);
  };
  if (op !== 'incr' && op !== 'decr' && (more.length > 0 || negatives.length > 0)) throw d.usageError(`counter ${op} takes no N`);
  let r: CounterResult;
  switch (op) {
    case 'get': r = await d.withClient(values, (kv) => kv.counter(key).value({ ...common, r: d.intOption(values, 'r') })); break;
    case 'incr': { const n = nArg(); r = await d.withClient(values, (kv) => kv.counter(key).increment(n, write)); break; }
    case 'decr': { const n = nArg(); r = await d.withClient(values, (kv) => kv.counter(key).decrement(n, write)); break; }
    case 'reset': r = await d.withClient(values, (kv) => kv.counter(key).reset(write)); break;
    default: throw d.usageError(`counter takes get, incr N, decr N or reset; got ${op}`);
  }
  printCounter(r, json);
}

export async function cmdSet(argv: string[], d: TypedCliDeps): Promise<void> {
  const { values, positionals } = d.parse(argv, d.requestOptions);
  const [key, op = 'members', ...more] = positionals;
  if (key === undefined) throw d.usageError('set needs KEY');
  const json = values.json === true;
  const { common, write } = requestOptionsOf(values, d);
  const member = (): string => {
    if (more.length !== 1) throw d.usageError(`set ${op} needs exactly one MEMBER`);
    return more[0]!;
  };
  if ((op === 'members' || op === 'del') && more.length > 0) throw d.usageError(`set ${op} takes no MEMBER`);
  if (op === 'members') {
    const r: SetMembersResult = await d.withClient(values, (kv) => kv.set(key).members({ ...common, r: d.intOption(values, 'r') }));
    if (json) emitJson(r);
    else for (const m of r.members) console.log(valueText(m));
    return;
  }
  let r: SetUpdateResult;
  switch (op) {
    case 'add': { const m = member(); r = await d.withClient(values, (kv) => kv.set(key).add(m, write)); break; }
    case 'rm': { const m = member(); r = await d.withClient(values, (kv) => kv.set(key).remove(m, write)); break; }
    case 'del': r = await d.withClient(values, (kv) => kv.set(key).delete(write)); break;
    default: throw d.usageError(`set takes members, add MEMBER, rm MEMBER or del; got ${op}`);
  }
  if (json) emitJson(r);
  else {
    // The answer on stdout, what the request got on stderr, as get and put do.
    console.log(`ok: ${r.size} member${r.size === 1 ? '' : 's'}${op === 'rm' && r.held === false ? ' (the coordinator held no such member)' : ''}`);
    console.error(`# ${report(r)}`);
  }
}
