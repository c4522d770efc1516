// Reply helpers every room of a node shares: error bodies, replica reports
// in wire form, stored objects encoded once however many replicas get them,
// and answering with a promise. No room answers a request any other way, so
// an error always leaves with a stable code.

import type { VersionedObject } from '../core/clock/object.js';
import type { ReplicaReport } from '../core/coordinator/types.js';
import { TuneKvError } from '../errors.js';
import type { Responder } from '../io/transport.js';
import { MsgType } from '../protocol/messages.js';
import type { ReplicaReportWire, WireObject } from '../protocol/messages.js';
import { objectToWire } from '../protocol/object-codec.js';

export interface ErrorWire { code: string; message: string; details: Record<string, unknown> }

export function errorBody(err: TuneKvError): ErrorWire {
  return { code: err.code, message: err.message, details: err.details };
}

/** Any thrown value as a coded error. Anything that is not a TuneKvError is
 * a bug on this node: INTERNAL, with a message that can never recurse into
 * the value (String() of a hostile nested array once crashed a node). */
export function asTuneKvError(err: unknown): TuneKvError {
  if (err instanceof TuneKvError) return err;
  const message = err instanceof Error ? err.message : typeof err;
  return new TuneKvError('INTERNAL', `unexpected error: ${message.slice(0, 500)}`);
}

export function reportsToWire(reports: readonly ReplicaReport[]): ReplicaReportWire[] {
  return reports.map((r) => ({
    node: r.node, role: r.role, outcome: r.outcome,
    ...(r.stale === undefined ? {} : { stale: r.stale }),
    ...(r.hintFor === undefined ? {} : { hintFor: r.hintFor }),
    ...(r.behind === true ? { behind: true } : {}),
  }));
}

/** Objects are sent to several replicas: encode each once. */
const wireCache = new WeakMap<VersionedObject, WireObject>();
export function wireOf(obj: VersionedObject): WireObject {
  let w = wireCache.get(obj);
  if (!w) { w = objectToWire(obj); wireCache.set(obj, w); }
  return w;
}

/** Responds with a promise's value, or its error as an ERROR frame. */
export function answer(respond: Responder, type: number, result: Promise<unknown>): void {
  result.then((b) => respond(type, b), (err: unknown) => respond(MsgType.ERROR, errorBody(asTuneKvError(err))));
}
