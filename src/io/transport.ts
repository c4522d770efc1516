// The peer transport: how a node asks another node something. Two
// implementations: TcpPeerTransport (real sockets) and the MemoryNetwork's
// transport (tests and the simulator). The node never knows which.
//
// Contract: request() calls back exactly once, asynchronously: with the
// reply, with an error (UNAVAILABLE when the peer is unreachable,
// PROTOCOL_ERROR, or the peer's own error), or with TIMEOUT after timeoutMs.

import type { TuneKvError } from '../errors.js';

export type ReplyCallback = (err: TuneKvError | null, type: number, body: unknown) => void;
export type Responder = (type: number, body: unknown) => void;
/** Who sent a request, as proven on its connection (server/router.ts runs
 * the proofs). */
export interface Caller {
  /** The client role granted ('write' includes 'read', 'admin' both); null
   * until the caller proves something. */
  readonly role: 'read' | 'write' | 'admin' | null;
  /** Proved the cluster secret: may send peer messages. */
  readonly proven: boolean;
  /** A proven peer's node id (it claimed `node:<id>` in its proof). */
  readonly peer: string | undefined;
  /** The user a client logged in as (conflict records name it). */
  readonly user?: string;
}

export const anonymous: Caller = { role: null, proven: false, peer: undefined };
/** In-process callers (the simulator's network, tests) need no proof. */
export const inProcessClient: Caller = { role: 'admin', proven: false, peer: undefined };
export function inProcessPeer(id: string): Caller {
  return { role: 'admin', proven: true, peer: id };
}

/** What a node exposes to whatever carries requests to it. `caller` says
 * who sent the request, as proven on its connection (see server/router.ts). */
export interface RequestHandler {
  handleRequest(type: number, body: unknown, respond: Responder, caller: Caller): void;
}

export interface PeerTransport {
  request(to: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void;
  /** The same to an address, for seeds whose id is not known yet. */
  requestAddr(addr: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void;
  /** The peer just spoke to us: forget any recent connection failure. */
  peerIsUp(id: string): void;
  close(): void;
}

export function parseHostPort(addr: string): { host: string; port: number } | null {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return null;
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535 || host.length === 0) return null;
  return { host, port };
}
