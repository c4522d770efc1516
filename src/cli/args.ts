// Flag parsing shared by every command: node:util parseArgs in strict mode
// (an unknown flag is a usage error), numbers in plain decimal only, and the
// option tables the help text is checked against (test/cli/help.test.ts).

import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { isConsistency } from '../core/quorum/levels.js';
import type { Consistency } from '../core/quorum/levels.js';
import { UsageError } from './exit-codes.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** Flags every client command takes to find and prove itself to a node. */
export function connectionOptions(): Options {
  return {
    host: { type: 'string' }, config: { type: 'string' }, 'timeout-ms': { type: 'string' }, json: { type: 'boolean' },
    user: { type: 'string' }, 'password-file': { type: 'string' }, 'secret-file': { type: 'string' },
    'tls-ca': { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
  };
}

export const getOptions: Options = { consistency: { type: 'string' }, r: { type: 'string' }, raw: { type: 'boolean' }, ...connectionOptions() };
export const putOptions: Options = {
  consistency: { type: 'string' }, w: { type: 'string' }, context: { type: 'string' }, lww: { type: 'boolean' }, literal: { type: 'boolean' },
  ...connectionOptions(),
};
export const delOptions: Options = { consistency: { type: 'string' }, w: { type: 'string' }, context: { type: 'string' }, ...connectionOptions() };
/** counter and set: reads take --r, updates --w. */
export const typedOptions: Options = { consistency: { type: 'string' }, r: { type: 'string' }, w: { type: 'string' }, ...connectionOptions() };
export const statusOptions: Options = connectionOptions();
/** join, leave, remove, replace, plan, commit, transfer-limit. */
export const changeOptions: Options = connectionOptions();
export const conflictsOptions: Options = { key: { type: 'string' }, since: { type: 'string' }, all: { type: 'boolean' }, ...connectionOptions() };
export const usersOptions: Options = { role: { type: 'string' }, 'password-file': { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean' } };
export const simOptions: Options = {
  seed: { type: 'string' }, seeds: { type: 'string' }, from: { type: 'string' }, knobs: { type: 'string' },
  trace: { type: 'string' }, json: { type: 'boolean' },
};
export const benchOptions: Options = {
  hosts: { type: 'string' }, nodes: { type: 'string' }, level: { type: 'string', multiple: true },
  workload: { type: 'string', multiple: true }, keys: { type: 'string' }, 'value-bytes': { type: 'string' },
  clients: { type: 'string' }, 'duration-ms': { type: 'string' }, 'warmup-ms': { type: 'string' }, rate: { type: 'string' },
  'delay-ms': { type: 'string' }, 'jitter-ms': { type: 'string' }, 'staleness-pairs': { type: 'string' },
  'staleness-t': { type: 'string' }, 'staleness-trials': { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' },
  json: { type: 'boolean' }, full: { type: 'boolean' }, repeats: { type: 'string' }, sweep: { type: 'boolean' },
  profile: { type: 'boolean' }, peers: { type: 'string' }, scale: { type: 'boolean' },
};

export const clusterOptions: Options = {
  nodes: { type: 'string' }, 'base-port': { type: 'string' }, dir: { type: 'string' }, n: { type: 'string' },
  q: { type: 'string' }, fsync: { type: 'boolean' }, detach: { type: 'boolean' }, host: { type: 'string' }, json: { type: 'boolean' },
  'distinct-addresses': { type: 'boolean' }, 'delay-ms': { type: 'string' }, 'jitter-ms': { type: 'string' }, loss: { type: 'string' },
  wait: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, 'metrics-base-port': { type: 'string' },
};

export function parse(args: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function intOption(values: Record<string, unknown>, name: string, fallback?: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  // Decimal digits only: Number() would take '' as 0, '0x10' as 16 and
  // ' 7' as 7, none of which anyone typing a count means.
  const v = typeof raw === 'string' && /^[+-]?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(v)) throw new UsageError(`--${name} must be a decimal integer; got "${String(raw)}"`);
  return v;
}

/** A plain decimal number (1, 0.5, 2e3), or NaN: Number() would also take
 * hex, binary and blank strings. */
export function decimal(raw: unknown): number {
  return typeof raw === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
}

/** A finite number in [min, max]; absent gives `fallback`. */
export function numberOption(values: Record<string, unknown>, name: string, fallback: number, min = 0, max = Number.MAX_VALUE): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const v = decimal(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${name} must be a number ${max === Number.MAX_VALUE ? `>= ${min}` : `from ${min} to ${max}`}; got "${String(raw)}"`);
  }
  return v;
}

/** A non-negative number; absent is 0. */
export function floatOption(values: Record<string, unknown>, name: string): number {
  return numberOption(values, name, 0);
}

export function levelOption(values: Record<string, unknown>): Consistency | undefined {
  const c = str(values, 'consistency');
  if (c !== undefined && !isConsistency(c)) throw new UsageError(`--consistency must be eventual, quorum or strong; got ${c}`);
  return c;
}

export function listOption(values: Record<string, unknown>, name: string): string[] | undefined {
  const v = str(values, name);
  return v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}
