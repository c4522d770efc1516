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
/** Who sent a request: a peer node (by id, from its HELLO) or a client. */
export interface Origin { readonly peer?: string | undefined }

/** What a node exposes to whatever carries requests to it. */
export interface RequestHandler {
  handleRequest(type: number, body: unknown, respond: Responder, origin: Origin): void;
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
