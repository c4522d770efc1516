// TuneKvError and the table of stable error codes.
//
// A code never changes meaning once released; messages may be reworded. The
// table below is the single source: the README's error table is checked
// against it by test/errors.test.ts. API misuse inside the process (calling
// with the wrong types) is a TypeError, not a TuneKvError.

export const errorCodes = {
  INVALID_ARGUMENT: 'A request or option is malformed: bad key, value, level, r/w, context or timeout.',
  TOO_LARGE: 'A key, value, object or frame is over its limit (see Limits).',
  QUORUM_UNAVAILABLE: 'Fewer replicas than the request needs are reachable; carries required, received, failed.',
  TIMEOUT: 'The request did not gather its quorum before its deadline; carries required, received, failed.',
  SIBLINGS_LIMIT: 'The put would create more concurrent versions than siblingsMax; read, resolve, and put with the context.',
  OVERLOADED: 'A bounded queue is full: on the node (connections, requests in flight, write queue) or in the client (clientQueuedRequestsMax requests waiting for a connection); retry later. Nothing was sent when the client refused it.',
  UNAVAILABLE: 'The client could not reach any node, or the connection closed with the request in flight.',
  PROTOCOL_ERROR: 'A frame could not be decoded, arrived out of order, or spoke another protocol version.',
  UNAUTHORIZED: 'The caller has not proven who it is (no login, a wrong password or secret, or a peer message before the cluster-secret handshake). Nothing was changed.',
  FORBIDDEN: 'The caller is known but its role does not allow the request (read, write, admin). Nothing was changed.',
  STORAGE_FAILED: 'The node could not write to its disk and refuses writes until its storage works again (see the disk failure policy).',
  STALE_RING: 'A replica refused a request coordinated on an older ring than its own (the cluster changed shape); the coordinator refreshes its ring and retries until the request deadline, so a client sees this only when the ring kept changing that long.',
  CHANGE_REFUSED: 'A cluster change (join, leave, remove, replace, commit) cannot be made: it would leave fewer than N members, names an unknown or removed node, or another change is in progress. Nothing was changed.',
  NODE_REMOVED: 'The node was removed from the cluster: its peers refuse it until its data directory is wiped and it joins anew.',
  INTERNAL: 'A bug: an invariant broke on the node. The message says which.',
  COUNTER_OVERFLOW: 'A counter operation would take the value (or one node\'s running total) outside signed 64 bits; nothing was changed.',
  SET_MEMBERS_LIMIT: 'A set add would pass setMembersMax members; remove members first. Nothing was changed.',
  SESSION_UNAVAILABLE: 'A session read found no reachable replica as current as what the session already wrote or read for the key before its deadline; it fails rather than return older data. Carries required, received, behind, replicas.',
  PORT_IN_USE: 'A port a node (or `tunekv cluster`) must listen on is taken by another process; the message names the node, which port (node or metrics), the address and the number. Nothing was started on it.',
  ABORTED: 'The caller aborted the request (its AbortSignal fired). details.maybeApplied says whether a write had already been sent and may have been applied.',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCodes, code);
}

/** Facts an error carries, so callers need not parse messages. */
export interface ErrorDetails {
  /** Replies the request needed (R or W). */
  required?: number;
  /** Replies that succeeded before the request gave up. */
  received?: number;
  /** Replicas that answered with an error or were unreachable. */
  failed?: number;
  /** Nodes involved, for QUORUM_UNAVAILABLE / TIMEOUT. */
  replicas?: unknown;
  /** For UNAVAILABLE after a connection loss: a put may have been applied. */
  maybeApplied?: boolean;
  /** For TOO_LARGE: the limit and the size seen. */
  limit?: number;
  size?: number;
  [key: string]: unknown;
}

export class TuneKvError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'TuneKvError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function invalid(message: string, details?: ErrorDetails): TuneKvError {
  return new TuneKvError('INVALID_ARGUMENT', message, details);
}

export function tooLarge(what: string, size: number, limit: number): TuneKvError {
  return new TuneKvError('TOO_LARGE', `${what} is ${size} bytes; the limit is ${limit}`, { size, limit });
}

/** Rebuilds an error received over the wire; an unknown code becomes INTERNAL
 * so a newer server can never make an older client throw a non-TuneKvError. */
export function errorFromWire(body: unknown): TuneKvError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code = isErrorCode(b.code) ? b.code : 'INTERNAL';
  const message = typeof b.message === 'string' ? b.message : 'error without a message';
  const details = (typeof b.details === 'object' && b.details !== null ? b.details : {}) as ErrorDetails;
  return new TuneKvError(code, message, details);
}
