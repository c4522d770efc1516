// Peer transport over TCP: one pipelined connection per peer address, opened
// on first use and reopened after a loss. A peer that refused a connection
// is not dialled again for retryDelayMs; requests to it fail at once with
// UNAVAILABLE, so a dead replica costs a quorum nothing but a count.

import { TuneKvError } from '../errors.js';
import type { HelloOkBody } from '../protocol/messages.js';
import type { ConnectionOptions } from 'node:tls';
import { RpcConnection } from './connection.js';
import type { DialAuth } from './connection.js';
import { parseHostPort } from './transport.js';
import type { PeerTransport, ReplyCallback } from './transport.js';

export interface TcpTransportOptions {
  readonly selfId: string;
  /** Current address of a node id (from the ring). */
  addrOf(id: string): string | undefined;
  readonly connectTimeoutMs: number;
  readonly retryDelayMs: number;
  /** How we prove the cluster secret to every peer. */
  readonly auth: DialAuth;
  /** TLS options for dialling peers, when TLS is on. */
  readonly tls?: ConnectionOptions | undefined;
  /** Extra HELLO (and AUTH) fields, read at each connect. */
  hello?(): Record<string, unknown>;
  onHelloOk?(addr: string, body: HelloOkBody): void;
}

export class TcpPeerTransport implements PeerTransport {
  private readonly conns = new Map<string, RpcConnection>();
  private readonly downUntil = new Map<string, number>();
  private closed = false;

  constructor(private readonly opts: TcpTransportOptions) {}

  request(to: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void {
    const addr = this.opts.addrOf(to);
    if (addr === undefined) {
      queueMicrotask(() => cb(new TuneKvError('UNAVAILABLE', `no address known for node ${to}`), 0, null));
      return;
    }
    this.send(this.connection(addr, to), type, body, timeoutMs, cb);
  }

  requestAddr(addr: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void {
    this.send(this.connection(addr, undefined), type, body, timeoutMs, cb);
  }

  private send(conn: RpcConnection | TuneKvError, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void {
    if (conn instanceof TuneKvError) {
      queueMicrotask(() => cb(conn, 0, null));
      return;
    }
    conn.request(type, body, timeoutMs, cb);
  }

  /** The connection to `addr`; dialled by node id, it must answer as that
   * node (see RpcOptions.expectNodeId). */
  private connection(addr: string, expectNodeId: string | undefined): RpcConnection | TuneKvError {
    if (this.closed) return new TuneKvError('UNAVAILABLE', 'transport is closed');
    const existing = this.conns.get(addr);
    if (existing && !existing.isClosed) return existing;
    const until = this.downUntil.get(addr) ?? 0;
    if (until > Date.now()) return new TuneKvError('UNAVAILABLE', `${addr} refused a connection recently`);
    const hp = parseHostPort(addr);
    if (!hp) return new TuneKvError('UNAVAILABLE', `bad peer address ${addr}`);
    let reached = false;
    const conn = new RpcConnection({
      host: hp.host, port: hp.port, agent: `node:${this.opts.selfId}`,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      auth: this.opts.auth,
      ...(expectNodeId !== undefined ? { expectNodeId } : {}),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      hello: this.opts.hello?.() ?? {},
      onHelloOk: (b) => { reached = true; this.downUntil.delete(addr); this.opts.onHelloOk?.(addr, b); },
      onClose: () => {
        if (this.conns.get(addr) === conn) this.conns.delete(addr);
        if (!reached) this.downUntil.set(addr, Date.now() + this.opts.retryDelayMs);
      },
    });
    this.conns.set(addr, conn);
    return conn;
  }

  peerIsUp(id: string): void {
    const addr = this.opts.addrOf(id);
    if (addr !== undefined) this.downUntil.delete(addr);
  }

  close(): void {
    this.closed = true;
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}
