// The node's TCP listener: one protocol for clients and peers.
//
// Per connection: HELLO must come first; each request frame is handed to the
// node with a responder that answers exactly once under the frame's id.
// A frame that cannot be decoded, or an unknown message type, gets an ERROR
// with a code and the connection is closed (its byte stream can no longer be
// trusted); everyone else is served as before. Bounded: connectionsMax
// connections, inFlightPerConnectionMax requests each.

import net from 'node:net';
import { limits } from '../limits.js';
import { FramedConnection } from '../io/connection.js';
import type { Frame, FrameError } from '../protocol/frame.js';
import { MsgType, msgTypeName, requestTypes } from '../protocol/messages.js';
import type { TuneNode } from './node.js';

export class TcpServer {
  private readonly server: net.Server;
  private readonly conns = new Set<FramedConnection>();
  /** Connections closed for malformed input, for status and tests. */
  protocolErrors = 0;

  private node: TuneNode | undefined;

  constructor() {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  /** Hands requests to `node` from now on; before, they get UNAVAILABLE. */
  attach(node: TuneNode): void {
    this.node = node;
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', reject);
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const c of this.conns) c.destroy();
      this.conns.clear();
      this.server.close(() => resolve());
    });
  }

  get connections(): number {
    return this.conns.size;
  }

  private accept(socket: net.Socket): void {
    let helloDone = false;
    let inFlight = 0;
    let peer: string | undefined;
    const conn: FramedConnection = new FramedConnection(socket, {
      onFrame: (f: Frame) => {
        if (!requestTypes.has(f.type)) return this.refuse(conn, f.id, 'PROTOCOL_ERROR', `message type ${f.type} (${msgTypeName(f.type) ?? 'unknown'}) is not a request`);
        if (!helloDone && f.type !== MsgType.HELLO) return this.refuse(conn, f.id, 'PROTOCOL_ERROR', 'the first message must be HELLO');
        if (inFlight >= limits.inFlightPerConnectionMax) {
          conn.send(MsgType.ERROR, f.id, { code: 'OVERLOADED', message: `more than ${limits.inFlightPerConnectionMax} requests in flight on one connection` });
          return;
        }
        inFlight++;
        let answered = false;
        const respond = (type: number, body: unknown): void => {
          if (answered) return;
          answered = true;
          inFlight--;
          if (f.type === MsgType.HELLO) {
            if (type === MsgType.HELLO_OK) helloDone = true;
            else { conn.send(type, f.id, body); conn.end(); this.protocolErrors++; return; }
          }
          conn.send(type, f.id, body);
        };
        if (f.type === MsgType.HELLO) {
          const agent = (f.body as { agent?: unknown } | null)?.agent;
          peer = typeof agent === 'string' && agent.startsWith('node:') ? agent.slice(5) : undefined;
        }
        if (!this.node) respond(MsgType.ERROR, { code: 'UNAVAILABLE', message: 'node is starting' });
        else this.node.handleRequest(f.type, f.body, respond, { peer });
      },
      onFrameError: (err: FrameError) => {
        this.protocolErrors++;
        conn.send(MsgType.ERROR, err.id, { code: err.code, message: err.message });
      },
      onClose: () => { this.conns.delete(conn); },
    });
    if (this.conns.size >= limits.connectionsMax) {
      conn.send(MsgType.ERROR, 0, { code: 'OVERLOADED', message: `node accepts at most ${limits.connectionsMax} connections` });
      conn.end();
      return;
    }
    this.conns.add(conn);
  }

  private refuse(conn: FramedConnection, id: number, code: string, message: string): void {
    this.protocolErrors++;
    conn.send(MsgType.ERROR, id, { code, message });
    conn.end();
  }
}
