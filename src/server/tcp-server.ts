// The node's TCP (or TLS) listener: one port for clients and peers.
//
// Each connection gets a Session (router.ts) that runs the handshake and
// holds the caller's proven identity; this file owns the connection's
// resources and moves it between three pools as the handshake proceeds:
//
//   handshaking  until HELLO (and AUTH, where needed) succeeds; at most
//                handshakingConnectionsMax, and when full the *oldest* is
//                closed to make room, so silent sockets cannot lock anyone
//                out; each must finish within handshakeTimeoutMs; frames
//                are limited to handshakeFrameBytesMax.
//   client       at most connectionsMax, connectionsPerSourceMax from one
//                address; frames up to clientFrameBytesMax decoded with the
//                client element bounds; closed after clientIdleTimeoutMs
//                with nothing in flight.
//   peer         proven by the cluster secret; a pool of its own
//                (peerConnectionsMax) that clients can never fill; frames up
//                to frameBytesMax.
//
// Output is bounded per connection (connectionOutputBytesMax, and reading
// pauses past connectionReadPauseBytes) and across the node
// (outputBytesTotalMax), so clients that never read cannot grow a node.
// A frame that cannot be decoded, or an unknown message type, gets an ERROR
// with a code and the connection is closed (its byte stream can no longer
// be trusted); everyone else is served as before.

import net from 'node:net';
import tls from 'node:tls';
import { limits } from '../limits.js';
import { FramedConnection, OutputBudget } from '../io/connection.js';
import type { Frame, FrameError } from '../protocol/frame.js';
import { clientBounds, peerBounds } from '../protocol/codec.js';
import { MsgType, msgTypeName } from '../protocol/messages.js';
import type { TlsMaterial } from '../security/tls.js';
import type { ConnectionCounts, TuneNode } from './node.js';
import { isLoopback, messageNeeds } from './router.js';
import type { FrameStage, Session } from './router.js';

type Pool = 'handshaking' | 'client' | 'peer';

interface Conn {
  readonly framed: FramedConnection;
  readonly source: string;
  pool: Pool | null;
  session: Session | undefined;
  inFlight: number;
  stage: FrameStage;
  handshakeTimer: NodeJS.Timeout | undefined;
}

export class TcpServer {
  private readonly server: net.Server;
  /** Insertion-ordered: the first is the oldest (evicted first). */
  private readonly handshaking = new Set<Conn>();
  private readonly clients = new Set<Conn>();
  private readonly peers = new Set<Conn>();
  private readonly perSource = new Map<string, number>();
  /** Handshaking connections per address, oldest first. */
  private readonly handshakingBySource = new Map<string, Set<Conn>>();
  private readonly budget = new OutputBudget(limits.outputBytesTotalMax);
  /** Connections closed for malformed input, for status and tests. */
  protocolErrors = 0;
  /** Connections refused or evicted because a pool was full. */
  refusedConnections = 0;
  private node: TuneNode | undefined;

  constructor(tlsMaterial?: TlsMaterial) {
    this.server = tlsMaterial
      ? tls.createServer({
        cert: tlsMaterial.cert, key: tlsMaterial.key, ...(tlsMaterial.ca ? { ca: tlsMaterial.ca } : {}),
        // Peers must show a certificate our CA signed (checked when they
        // prove the secret); clients may come without one.
        requestCert: tlsMaterial.ca !== undefined, rejectUnauthorized: false,
        allowHalfOpen: true, noDelay: true, handshakeTimeout: limits.handshakeTimeoutMs,
      }, (socket) => this.accept(socket, socket.authorized))
      : net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket, false));
    // A TLS handshake that fails (wrong CA, garbage) is the stranger's
    // problem: count it and carry on.
    this.server.on('tlsClientError', () => { this.protocolErrors++; });
  }

  /** Hands requests to `node` from now on; before, they get UNAVAILABLE. */
  attach(node: TuneNode): void {
    this.node = node;
    node.connections = () => this.counts();
  }

  counts(): ConnectionCounts {
    return { peer: this.peers.size, client: this.clients.size, handshaking: this.handshaking.size };
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
      for (const pool of [this.handshaking, this.clients, this.peers]) for (const c of pool) c.framed.destroy();
      this.server.close(() => resolve());
    });
  }

  get connections(): number {
    return this.handshaking.size + this.clients.size + this.peers.size;
  }

  private accept(socket: net.Socket, certAuthorized: boolean): void {
    const source = socket.remoteAddress ?? 'unknown';
    const c: Conn = {
      framed: undefined as unknown as FramedConnection, source, pool: null, session: undefined, inFlight: 0,
      stage: 'handshake', handshakeTimer: undefined,
    };
    const framed = new FramedConnection(socket, {
      onFrame: (f: Frame) => this.onFrame(c, f),
      onFrameError: (err: FrameError) => {
        this.protocolErrors++;
        c.framed.send(MsgType.ERROR, err.id, { code: err.code, message: err.message });
      },
      onClose: () => this.release(c),
    }, { budget: this.budget, frameBytesMax: limits.handshakeFrameBytesMax, bounds: clientBounds });
    (c as { framed: FramedConnection }).framed = framed;
    this.enter(c, 'handshaking');
    c.handshakeTimer = setTimeout(() => {
      if (c.pool === 'handshaking') framed.destroy();
    }, limits.handshakeTimeoutMs);
    c.handshakeTimer.unref();
    if (!this.node) {
      framed.send(MsgType.ERROR, 0, { code: 'UNAVAILABLE', message: 'node is starting' });
      framed.end();
      return;
    }
    c.session = this.node.newSession({ source, loopback: isLoopback(source), certAuthorized }, () => framed.end());
  }

  private onFrame(c: Conn, f: Frame): void {
    if (!messageNeeds.has(f.type)) {
      return this.refuse(c, f.id, 'PROTOCOL_ERROR', `message type ${f.type} (${msgTypeName(f.type) ?? 'unknown'}) is not a request`);
    }
    const session = c.session;
    if (!session) return;
    const inFlightMax = c.pool === 'peer' ? limits.inFlightPerConnectionMax : limits.clientInFlightPerConnectionMax;
    if (c.inFlight >= inFlightMax) {
      c.framed.send(MsgType.ERROR, f.id, { code: 'OVERLOADED', message: `more than ${inFlightMax} requests in flight on one connection` });
      return;
    }
    c.inFlight++;
    if (c.inFlight >= inFlightMax) c.framed.holdReading(true);
    let answered = false;
    session.onFrame(f.type, f.body, (type, body) => {
      if (answered) return;
      answered = true;
      c.inFlight--;
      if (c.inFlight <= inFlightMax / 2) c.framed.holdReading(false);
      c.framed.send(type, f.id, body);
    });
    if (session.frameStage !== c.stage) this.promote(c, session.frameStage);
  }

  /** The handshake moved on: new frame limits, and a new pool. */
  private promote(c: Conn, stage: FrameStage): void {
    c.stage = stage;
    if (c.handshakeTimer) { clearTimeout(c.handshakeTimer); c.handshakeTimer = undefined; }
    const pool: Pool = stage === 'peer' ? 'peer' : 'client';
    if (!this.hasRoom(c, pool)) {
      this.refusedConnections++;
      c.framed.send(MsgType.ERROR, 0, {
        code: 'OVERLOADED',
        message: pool === 'peer' ? `node accepts at most ${limits.peerConnectionsMax} peer connections`
          : `node accepts at most ${limits.connectionsMax} client connections, ${limits.connectionsPerSourceMax} from one address`,
      });
      c.framed.end();
      return;
    }
    this.leave(c);
    this.enter(c, pool);
    if (pool === 'peer') {
      c.framed.setLimits(limits.frameBytesMax, peerBounds);
      c.framed.evictionExempt = true;
    }
    else {
      c.framed.setLimits(limits.clientFrameBytesMax, clientBounds);
      c.framed.setIdleTimeout(limits.clientIdleTimeoutMs, () => c.inFlight === 0);
    }
  }

  /** The handshaking connection to close for a newcomer: the oldest of the
   * address holding the most, so a flood from one address evicts itself
   * before it evicts anyone else's login (a SCRAM client holds its
   * connection for a scrypt, ~40 ms). An attacker with many addresses (all
   * of 127/8 on one host) can still make logins retry. */
  private evictionVictim(): Conn | undefined {
    let most: Set<Conn> | undefined;
    for (const set of this.handshakingBySource.values()) if (!most || set.size > most.size) most = set;
    return most?.values().next().value;
  }

  private hasRoom(c: Conn, pool: Pool): boolean {
    if (pool === 'peer') return this.peers.size < limits.peerConnectionsMax;
    if (pool === 'client') {
      return this.clients.size < limits.connectionsMax && (this.perSource.get(c.source) ?? 0) < limits.connectionsPerSourceMax;
    }
    return true;
  }

  private enter(c: Conn, pool: Pool): void {
    c.pool = pool;
    if (pool === 'handshaking') {
      if (this.handshaking.size >= limits.handshakingConnectionsMax) {
        const victim = this.evictionVictim();
        if (victim) {
          this.refusedConnections++;
          this.leave(victim);
          victim.framed.destroy();
        }
      }
      this.handshaking.add(c);
      let mine = this.handshakingBySource.get(c.source);
      if (!mine) { mine = new Set(); this.handshakingBySource.set(c.source, mine); }
      mine.add(c);
    } else if (pool === 'client') {
      this.clients.add(c);
      this.perSource.set(c.source, (this.perSource.get(c.source) ?? 0) + 1);
    } else {
      this.peers.add(c);
    }
  }

  private leave(c: Conn): void {
    switch (c.pool) {
      case 'handshaking': {
        this.handshaking.delete(c);
        const mine = this.handshakingBySource.get(c.source);
        mine?.delete(c);
        if (mine?.size === 0) this.handshakingBySource.delete(c.source);
        break;
      }
      case 'client': {
        this.clients.delete(c);
        const n = (this.perSource.get(c.source) ?? 1) - 1;
        if (n <= 0) this.perSource.delete(c.source); else this.perSource.set(c.source, n);
        break;
      }
      case 'peer': this.peers.delete(c); break;
      case null: break;
      default: {
        const never: never = c.pool;
        throw new Error(`unknown pool ${String(never)}`);
      }
    }
    c.pool = null;
  }

  private release(c: Conn): void {
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = undefined;
    this.leave(c);
  }

  private refuse(c: Conn, id: number, code: string, message: string): void {
    this.protocolErrors++;
    c.framed.send(MsgType.ERROR, id, { code, message });
    c.framed.end();
  }
}
