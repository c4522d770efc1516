// The exit status of the tunekv command, and the one function that maps a
// caught error to it. Every place the CLI catches an error (flag parsing,
// option validation, a node's reply, the launcher) ends in exitCodeOf(), so
// the same failure exits with the same status wherever it was caught.
//
// The statuses are a contract for scripts (README, CLI, Exit codes): a status
// never changes meaning once released. Every code in src/errors.ts has an
// explicit row below; the compile-time check under the table fails the build
// when a code is added there without a row here.

import { TuneKvError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

export const exitStatus = {
  /** The command did what was asked. */
  ok: 0,
  /** A negative answer, not a failure: the key is not found (get), or `sim`
   * found a broken invariant. Like grep's 1: the question was fine. */
  notFound: 1,
  /** The command line (or config file) is wrong, or a node said the request
   * is malformed or too large: retrying the same command cannot work. */
  usage: 2,
  /** Not enough of the cluster answered in time: retrying later may work. */
  unavailable: 3,
  /** Who the caller is, or may do, was refused. */
  auth: 4,
  /** The cluster refused by one of its rules (limits, changes, storage);
   * also `get --raw` of a key with siblings (the CLI will not pick one). */
  refused: 5,
  /** Protocol or internal error: a bug, or not a tunekv node. */
  internal: 6,
} as const;

export type ExitStatus = (typeof exitStatus)[keyof typeof exitStatus];

/** A row for every error code. Rows for codes another branch adds
 * (ABORTED, PORT_IN_USE) are kept here ahead of time: extra rows are
 * harmless, a missing row fails the build. */
const statusByCode = {
  INVALID_ARGUMENT: exitStatus.usage,
  TOO_LARGE: exitStatus.usage,
  QUORUM_UNAVAILABLE: exitStatus.unavailable,
  TIMEOUT: exitStatus.unavailable,
  OVERLOADED: exitStatus.unavailable,
  UNAVAILABLE: exitStatus.unavailable,
  STALE_RING: exitStatus.unavailable,
  SESSION_UNAVAILABLE: exitStatus.unavailable,
  // The caller gave up on a request whose outcome is unknown, as with a
  // TIMEOUT: the same advice (retry) and so the same status.
  ABORTED: exitStatus.unavailable,
  // A port the launcher or a node was asked to use is held by another
  // process: an environment condition that clears when it exits (or with
  // another port), not a malformed command line.
  PORT_IN_USE: exitStatus.unavailable,
  UNAUTHORIZED: exitStatus.auth,
  FORBIDDEN: exitStatus.auth,
  SIBLINGS_LIMIT: exitStatus.refused,
  COUNTER_OVERFLOW: exitStatus.refused,
  SET_MEMBERS_LIMIT: exitStatus.refused,
  CHANGE_REFUSED: exitStatus.refused,
  NODE_REMOVED: exitStatus.refused,
  STORAGE_FAILED: exitStatus.refused,
  PROTOCOL_ERROR: exitStatus.internal,
  INTERNAL: exitStatus.internal,
} as const;

// Compile-time: every ErrorCode has a row (assigning a variable, not a
// literal, allows the extra rows above).
const everyCodeHasARow: Readonly<Record<ErrorCode, ExitStatus>> = statusByCode;
void everyCodeHasARow;

/** A mistake on the command line, found before anything was sent. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The CLI refuses to go on although the request itself worked (`get --raw`
 * of a key with siblings); carries its own exit status. */
export class RefusedError extends Error {
  override name = 'RefusedError';
}

/** The exit status for an error code; a code this CLI does not know (a
 * newer node's) is a protocol matter. */
export function exitStatusOfCode(code: string): ExitStatus {
  return Object.hasOwn(statusByCode, code) ? statusByCode[code as keyof typeof statusByCode] : exitStatus.internal;
}

/** Codes with a row, for the test that checks the table is complete. */
export function mappedCodes(): string[] {
  return Object.keys(statusByCode);
}

/** Any caught error as a TuneKvError (for printing) and its exit status. A
 * UsageError is INVALID_ARGUMENT; anything else unknown is INTERNAL. */
export function describeError(err: unknown): { error: TuneKvError | RefusedError; status: ExitStatus; usage: boolean } {
  if (err instanceof UsageError) return { error: new TuneKvError('INVALID_ARGUMENT', err.message), status: exitStatus.usage, usage: true };
  if (err instanceof RefusedError) return { error: err, status: exitStatus.refused, usage: false };
  if (err instanceof TuneKvError) return { error: err, status: exitStatusOfCode(err.code), usage: false };
  const message = err instanceof Error ? err.message : String(err);
  return { error: new TuneKvError('INTERNAL', message), status: exitStatus.internal, usage: false };
}

