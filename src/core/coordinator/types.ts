// Shapes shared by the get and put state machines.
//
// An FSM never touches the network, disk or clock: the shell feeds it events
// (replies, the local write's result, the deadline) and carries out the
// effects it returns, in order. The same FSM runs in a node over TCP and in
// the seeded simulator.

import type { ErrorCode, ErrorDetails } from '../../errors.js';
import type { VersionedObject } from '../clock/object.js';
import type { ReplicaRole } from '../ring/ring.js';

export interface ReplicaTarget {
  readonly node: string;
  readonly role: ReplicaRole;
  /** For a fallback: the primary it stands in for (hinted handoff). */
  readonly hintFor?: string | undefined;
}

/** What one replica did for a request, reported back to the caller:
 * `pending` was asked and had not answered at the reply; `notasked` was
 * never asked because it was not needed (a read goes to R replicas, more
 * only on a failure or a slow one); `notsent` was never sent the request
 * because it failed first (a quorum known to be out of reach fails before
 * sending anything, so nothing was stored anywhere). */
export type ReplicaOutcome = 'ok' | 'notfound' | 'failed' | 'pending' | 'notasked' | 'notsent';

export interface ReplicaReport {
  readonly node: string;
  readonly role: ReplicaRole;
  readonly outcome: ReplicaOutcome;
  /** Its object differed from the merged result (reads only). */
  readonly stale?: boolean;
  readonly hintFor?: string | undefined;
  /** Session reads: its copy alone was older than what the session had
   * seen (core/clock/session-cover.ts). */
  readonly behind?: boolean;
}

export interface FsmError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: ErrorDetails;
}

export type Effect =
  /** Ask a replica for its object of the key. */
  | { readonly kind: 'read'; readonly to: string }
  /** Ask a replica to merge this object into its own (replication, write-back, repair). */
  | { readonly kind: 'write'; readonly to: string; readonly object: VersionedObject; readonly hintFor?: string | undefined }
  /** Put only: build the new version on this node and store it. The shell
   * answers with onCoordinated(object) as soon as it is built, then
   * onWrite(self, ok) when it is durable. */
  | { readonly kind: 'coordinate' }
  /** Get only: arm the speculative-retry timer; when it fires before the
   * quorum is met, the shell calls onSpeculate(). */
  | { readonly kind: 'speculate' }
  | { readonly kind: 'reply'; readonly reply: FsmReply }
  /** Nothing more will happen: the shell may forget the FSM. */
  | { readonly kind: 'done'; readonly stats: FsmStats };

export type FsmReply =
  | { readonly ok: true; readonly object: VersionedObject | undefined; readonly replicas: readonly ReplicaReport[];
    /** Session reads: replicas asked because the first answers were older
     * than the session's state. */
    readonly lookedFurther?: number }
  | { readonly ok: false; readonly error: FsmError };

export interface FsmStats {
  /** Replicas sent a repair after the reply (reads). */
  readonly readRepairs: number;
  /** Replicas that never answered before the deadline. */
  readonly timedOut: number;
}
