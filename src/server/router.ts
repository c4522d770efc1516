// The router: the one door every request comes through. It knows who the
// caller is (a Session per connection runs the handshake and proves it),
// which messages that caller may send, and which room answers each message.
//
// Who may send what (messageNeeds below):
//   - `none`: HELLO and AUTH, the handshake itself;
//   - `read`, `write`, `admin`: a client role, from a users file login, or
//     `write` for a loopback client of a node in protected mode (no users
//     file), or every role for a caller that proved the cluster secret;
//   - `peer`: node-to-node messages, only after the cluster-secret proof.
// A request without the identity it needs gets UNAUTHORIZED, one with too
// low a role FORBIDDEN; both are answered before any room sees the body,
// so a refusal changes nothing.
//
// Invariants: every request is answered exactly once, with a coded error
// when anything throws (never an exception out of the router: a node never
// exits because of what someone sent it); a Session grants a role only
// after a proof verified with a timing-safe compare; one AUTH attempt per
// connection, and a failed one closes it after the login throttle's delay.

import { TuneKvError, invalid } from '../errors.js';
import type { Clock } from '../io/clock.js';
import { anonymous } from '../io/transport.js';
import type { Caller, Responder } from '../io/transport.js';
import { MsgType, msgTypeName, protocolVersion } from '../protocol/messages.js';
import {
  checkNonce, defaultScryptParams, fakeSalt, newNonce, secretProof, userAuthMessage, userServerSignature,
  verifySecretProof, verifyUserProof,
} from '../security/handshake.js';
import { roleAllows } from '../security/users.js';
import type { UserEntry } from '../security/users.js';
import { asRecord } from '../protocol/validate.js';
import { LoginThrottle } from './login-throttle.js';
import { asTuneKvError, errorBody } from './replies.js';

/** What a message needs of its caller. */
export type Need = 'none' | 'read' | 'write' | 'admin' | 'peer';

export const messageNeeds: ReadonlyMap<number, Need> = new Map<number, Need>([
  [MsgType.HELLO, 'none'],
  [MsgType.AUTH, 'none'],
  [MsgType.GET, 'read'],
  [MsgType.RING_GET, 'read'],
  [MsgType.STATUS, 'read'],
  [MsgType.PUT, 'write'],
  [MsgType.DELETE, 'write'],
  [MsgType.ADMIN_FAULTS, 'admin'],
  [MsgType.REPLICA_READ, 'peer'],
  [MsgType.REPLICA_WRITE, 'peer'],
  [MsgType.JOIN, 'peer'],
  [MsgType.RING_PUSH, 'peer'],
  [MsgType.PING, 'peer'],
  [MsgType.GOSSIP, 'peer'],
  [MsgType.REPLICA_REAP, 'peer'],
  [MsgType.AAE_SEGMENTS, 'peer'],
  [MsgType.AAE_KEYS, 'peer'],
  [MsgType.NODE_INFO, 'peer'],
  [MsgType.XFER_PAGE, 'peer'],
  [MsgType.XFER_REPORT, 'peer'],
  [MsgType.EXIT_DONE, 'peer'],
  [MsgType.CLUSTER_STAGE, 'admin'],
  [MsgType.CLUSTER_PLAN, 'admin'],
  [MsgType.CLUSTER_COMMIT, 'admin'],
  [MsgType.TRANSFER_LIMIT, 'admin'],
  [MsgType.TYPE_UPDATE, 'write'],
  [MsgType.TYPE_READ, 'read'],
  [MsgType.CONFLICTS, 'read'],
]);

/** Messages the cluster view and transfers answer (Rooms.onChange). */
const changeTypes: ReadonlySet<number> = new Set([
  MsgType.NODE_INFO, MsgType.XFER_PAGE, MsgType.XFER_REPORT, MsgType.EXIT_DONE, MsgType.CLUSTER_STAGE,
  MsgType.CLUSTER_PLAN, MsgType.CLUSTER_COMMIT, MsgType.TRANSFER_LIMIT,
]);

/** The rooms the router hands messages to. */
export interface Rooms {
  onGet(body: unknown, respond: Responder): void;
  /** `user`: who the client logged in as, when it did. */
  onPut(body: unknown, isDelete: boolean, fromPeer: boolean, trusted: boolean, respond: Responder, user?: string): void;
  /** Counters and sets (TYPE_UPDATE, TYPE_READ). */
  onTyped(type: number, body: unknown, fromPeer: boolean, respond: Responder): void;
  onStatus(detail: boolean, respond: Responder): void;
  onRingGet(respond: Responder): void;
  onFaults(body: unknown, respond: Responder): void;
  onReplicaRead(body: unknown, respond: Responder): void;
  onReplicaWrite(body: unknown, respond: Responder): void;
  onJoin(body: unknown, respond: Responder): void;
  onRingPush(body: unknown, respond: Responder): void;
  onGossip(body: unknown, respond: Responder, peer: string | undefined): void;
  onReap(body: unknown, respond: Responder): void;
  onAaeSegments(body: unknown, respond: Responder): void;
  onAaeKeys(body: unknown, respond: Responder): void;
  /** Ring changes and transfers (the types in changeTypes). */
  onChange(type: number, body: unknown, respond: Responder, peer: string | undefined): void;
  /** A page of the conflict log (conflict-log.ts). */
  onConflicts(body: unknown, respond: Responder): void;
  helloInfo(): { protocol: number; nodeId: string; ringVersion: number };
  /** A proven peer reached us: it is up; its ring may be newer. */
  peerHello(id: string, ringVersion: unknown): void;
}

export interface RouterDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly rooms: Rooms;
  /** The fault layer's view of a peer's request: dropped (partitioned), or
   * answered through the link's delay and loss. */
  peerFilter(peer: string, respond: Responder): Responder | null;
  isStopped(): boolean;
  refused(code: 'UNAUTHORIZED' | 'FORBIDDEN'): void;
  authFailed(method: string): void;
  log(line: string): void;
}

export interface RouterStats {
  unauthorized: number;
  forbidden: number;
  authOk: number;
  authFailed: number;
  internalErrors: number;
}

function refusal(caller: Caller, type: number, need: Need): TuneKvError | null {
  const name = msgTypeName(type) ?? String(type);
  switch (need) {
    case 'none': return null;
    case 'peer':
      return caller.proven ? null
        : new TuneKvError('UNAUTHORIZED', `${name} is a node-to-node message; this connection has not proven the cluster secret`);
    case 'read':
    case 'write':
    case 'admin':
      if (caller.role === null) return new TuneKvError('UNAUTHORIZED', `${name} needs a login (role ${need}); this connection has none`);
      return roleAllows(caller.role, need) ? null
        : new TuneKvError('FORBIDDEN', `${name} needs the ${need} role; this connection has ${caller.role}`, { role: caller.role, need });
    default: {
      const never: never = need;
      throw new Error(`unknown need ${String(never)}`);
    }
  }
}

export class Router {
  readonly stats: RouterStats = { unauthorized: 0, forbidden: 0, authOk: 0, authFailed: 0, internalErrors: 0 };
  readonly throttle = new LoginThrottle();

  constructor(private readonly d: RouterDeps) {}

  /** Answers one request from `caller`. Never throws. */
  handle(type: number, body: unknown, respond: Responder, caller: Caller): void {
    try {
      const need = messageNeeds.get(type);
      if (need === undefined) throw new TuneKvError('PROTOCOL_ERROR', `message type ${type} is not a request`);
      const refused = refusal(caller, type, need);
      if (refused) {
        if (refused.code === 'UNAUTHORIZED') this.stats.unauthorized++; else this.stats.forbidden++;
        this.d.refused(refused.code as 'UNAUTHORIZED' | 'FORBIDDEN');
        respond(MsgType.ERROR, errorBody(refused));
        return;
      }
      if (caller.peer !== undefined) {
        const filtered = this.d.peerFilter(caller.peer, respond);
        // Across a partition the request never arrives: drop it unanswered.
        if (filtered === null) return;
        respond = filtered;
      }
      if (this.d.isStopped()) throw new TuneKvError('UNAVAILABLE', `node ${this.d.id} is shutting down`);
      this.dispatch(type, body, respond, caller);
    } catch (err) {
      const e = asTuneKvError(err);
      if (e.code === 'INTERNAL') {
        this.stats.internalErrors++;
        this.d.log(`${this.d.id} internal error on ${msgTypeName(type) ?? type}: ${e.message}`);
      }
      respond(MsgType.ERROR, errorBody(e));
    }
  }

  private dispatch(type: number, body: unknown, respond: Responder, caller: Caller): void {
    const r = this.d.rooms;
    switch (type) {
      case MsgType.HELLO: return respond(MsgType.HELLO_OK, r.helloInfo());
      case MsgType.GET: return r.onGet(body, respond);
      case MsgType.PUT: return r.onPut(body, false, caller.proven, caller.proven || caller.role === 'admin', respond, caller.user);
      case MsgType.DELETE: return r.onPut(body, true, caller.proven, caller.proven || caller.role === 'admin', respond, caller.user);
      case MsgType.TYPE_UPDATE: case MsgType.TYPE_READ: return r.onTyped(type, body, caller.proven, respond);
      case MsgType.STATUS: return r.onStatus(caller.role === 'admin', respond);
      case MsgType.RING_GET: return r.onRingGet(respond);
      case MsgType.ADMIN_FAULTS: return r.onFaults(body, respond);
      case MsgType.REPLICA_READ: return r.onReplicaRead(body, respond);
      case MsgType.REPLICA_WRITE: return r.onReplicaWrite(body, respond);
      case MsgType.JOIN: return r.onJoin(body, respond);
      case MsgType.RING_PUSH: return r.onRingPush(body, respond);
      case MsgType.PING: return respond(MsgType.OK, null);
      case MsgType.GOSSIP: return r.onGossip(body, respond, caller.peer);
      case MsgType.REPLICA_REAP: return r.onReap(body, respond);
      case MsgType.AAE_SEGMENTS: return r.onAaeSegments(body, respond);
      case MsgType.AAE_KEYS: return r.onAaeKeys(body, respond);
      case MsgType.CONFLICTS: return r.onConflicts(body, respond);
      case MsgType.AUTH: throw new TuneKvError('PROTOCOL_ERROR', 'AUTH belongs to a connection handshake');
      default:
        if (changeTypes.has(type)) return r.onChange(type, body, respond, caller.peer);
        throw new TuneKvError('PROTOCOL_ERROR', `message type ${type} is not a request`);
    }
  }

  get rooms(): Rooms {
    return this.d.rooms;
  }

  get deps(): RouterDeps {
    return this.d;
  }
}

/** How this node checks who its callers are. */
export interface Security {
  /** Keys every cluster-secret proof (derived from the secret). */
  readonly clusterKey: Buffer;
  /** Users and their roles; null puts the node in protected mode. */
  readonly users: ReadonlyMap<string, UserEntry> | null;
  /** Keys the fake salts answered for unknown users. */
  readonly fakeSaltKey: Buffer;
  /** TLS with a CA is on: a secret proof counts only on a connection whose
   * certificate that CA signed (mutual TLS for peers). */
  readonly peerCertRequired: boolean;
}

/** Facts about one connection, from the listener. */
export interface ConnectionInfo {
  /** Remote address, as the socket reports it. */
  readonly source: string;
  readonly loopback: boolean;
  /** The peer presented a certificate our CA signed. */
  readonly certAuthorized: boolean;
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Where a connection's handshake stands; it sets the frame limit. */
export type FrameStage = 'handshake' | 'client' | 'peer';

const agentBytesMax = 200;
const claimBytesMax = 80;
const userPattern = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * One connection's handshake and identity. HELLO must come first; it is
 * answered with this node's nonce (and, when the caller names a user, the
 * salt and scrypt parameters to derive its proof with). In protected mode a
 * loopback caller gets `write` at once. AUTH then proves the cluster secret
 * or a user's password (see src/security/handshake.ts) and is answered with
 * the node's own proof, so the caller knows it reached a real member.
 */
export class Session {
  private callerValue: Caller = anonymous;
  private helloDone = false;
  private authTried = false;
  private clientNonce: Buffer | null = null;
  private readonly serverNonce = newNonce();
  private user: string | undefined;
  private closing = false;

  constructor(private readonly router: Router, private readonly security: Security, private readonly info: ConnectionInfo,
    private readonly close: () => void) {}

  get caller(): Caller {
    return this.callerValue;
  }

  get frameStage(): FrameStage {
    if (this.callerValue.proven) return 'peer';
    return this.callerValue.role === null ? 'handshake' : 'client';
  }

  /** True once the caller may do something beyond the handshake. */
  get established(): boolean {
    return this.callerValue.role !== null;
  }

  /** One frame from the connection. Never throws. */
  onFrame(type: number, body: unknown, respond: Responder): void {
    if (this.closing) return;
    try {
      if (!this.helloDone) {
        if (type !== MsgType.HELLO) throw new TuneKvError('PROTOCOL_ERROR', 'the first message must be HELLO');
        return this.onHello(body, respond);
      }
      if (type === MsgType.HELLO) throw new TuneKvError('PROTOCOL_ERROR', 'HELLO was already received on this connection');
      if (type === MsgType.AUTH) return this.onAuth(body, respond);
      this.router.handle(type, body, respond, this.callerValue);
    } catch (err) {
      const e = asTuneKvError(err);
      respond(MsgType.ERROR, errorBody(e));
      if (e.code === 'PROTOCOL_ERROR') this.shut();
    }
  }

  private shut(): void {
    this.closing = true;
    this.close();
  }

  private onHello(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'HELLO');
    if (b.protocol !== protocolVersion) {
      throw new TuneKvError('PROTOCOL_ERROR', `protocol ${typeof b.protocol === 'number' ? b.protocol : typeof b.protocol} is not spoken here; this node speaks ${protocolVersion}`);
    }
    if (b.agent !== undefined && (typeof b.agent !== 'string' || b.agent.length > agentBytesMax)) throw invalid(`agent must be a string of at most ${agentBytesMax} characters`);
    if (b.nonce !== undefined) {
      this.clientNonce = checkNonce(b.nonce);
      if (this.clientNonce === null) throw invalid('nonce must be 32 bytes');
    }
    if (b.user !== undefined) {
      if (typeof b.user !== 'string' || !userPattern.test(b.user)) throw invalid('user must be 1-64 characters of A-Z a-z 0-9 _ . @ -');
      this.user = b.user;
    }
    this.helloDone = true;
    const users = this.security.users;
    if (users === null && this.info.loopback) this.callerValue = { role: 'write', proven: false, peer: undefined };
    const out: Record<string, unknown> = {
      ...this.router.rooms.helloInfo(),
      nonce: this.serverNonce,
      authRequired: this.callerValue.role === null,
    };
    if (this.user !== undefined) {
      const entry = users?.get(this.user);
      out.salt = entry?.salt ?? fakeSalt(this.security.fakeSaltKey, this.user);
      out.scrypt = entry?.params ?? defaultScryptParams;
    }
    respond(MsgType.HELLO_OK, out);
  }

  private onAuth(body: unknown, respond: Responder): void {
    if (this.authTried) throw new TuneKvError('PROTOCOL_ERROR', 'one AUTH per connection');
    this.authTried = true;
    // A malformed AUTH is a failed one: counted, slowed and closed like a
    // wrong proof, so its shape cannot be used to guess faster.
    const isMap = typeof body === 'object' && body !== null && !Array.isArray(body);
    const b = (isMap ? body : {}) as Record<string, unknown>;
    const method = b.method === 'secret' || b.method === 'user' ? b.method : 'unknown';
    const verdict = !isMap ? { ok: false as const, why: 'AUTH body must be a map' }
      : this.clientNonce === null ? { ok: false as const, why: 'HELLO carried no nonce' }
      : method === 'secret' ? this.checkSecret(b, this.clientNonce)
        : method === 'user' ? this.checkUser(b, this.clientNonce)
          : { ok: false as const, why: 'method must be secret or user' };
    const d = this.router.deps;
    if (!verdict.ok) {
      this.router.stats.authFailed++;
      d.authFailed(method);
      const delayMs = this.router.throttle.fail(this.info.source, d.clock.nowMs());
      d.log(`${d.id} AUTH failed from ${this.info.source} (${method}${this.user ? ` user ${this.user}` : ''}): ${verdict.why}; answered after ${delayMs} ms`);
      this.closing = true;
      d.clock.setTimer(delayMs, () => {
        respond(MsgType.ERROR, errorBody(new TuneKvError('UNAUTHORIZED', `authentication failed: ${verdict.why}`)));
        this.close();
      });
      return;
    }
    this.router.stats.authOk++;
    this.callerValue = verdict.caller;
    respond(MsgType.AUTH_OK, verdict.reply);
    if (verdict.caller.peer !== undefined) this.router.rooms.peerHello(verdict.caller.peer, b.ringVersion);
  }

  private checkSecret(b: Record<string, unknown>, clientNonce: Buffer): Verdict {
    const claimed = b.as;
    if (typeof claimed !== 'string' || claimed.length === 0 || claimed.length > claimBytesMax) return { ok: false, why: 'as must name who proves the secret' };
    const key = this.security.clusterKey;
    const nodeId = this.router.deps.id;
    if (!verifySecretProof(key, 'client', clientNonce, this.serverNonce, claimed, nodeId, b.proof)) {
      return { ok: false, why: 'the cluster secret proof does not verify' };
    }
    if (this.security.peerCertRequired && !this.info.certAuthorized) {
      return { ok: false, why: 'a secret proof needs a client certificate signed by the cluster CA' };
    }
    const peer = claimed.startsWith('node:') ? claimed.slice(5) : undefined;
    if (peer !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(peer)) return { ok: false, why: 'node id in as is malformed' };
    return {
      ok: true,
      caller: { role: 'admin', proven: true, peer },
      reply: { proof: secretProof(key, 'server', clientNonce, this.serverNonce, claimed, nodeId) },
    };
  }

  private checkUser(b: Record<string, unknown>, clientNonce: Buffer): Verdict {
    if (this.user === undefined) return { ok: false, why: 'HELLO named no user' };
    const entry = this.security.users?.get(this.user);
    const msg = userAuthMessage(this.user, clientNonce, this.serverNonce, this.router.deps.id);
    // Verify even for unknown users, so the answer takes the same time.
    const ok = verifyUserProof(entry?.storedKey ?? this.security.fakeSaltKey, msg, b.proof);
    if (!entry || !ok) return { ok: false, why: 'unknown user or wrong password' };
    return {
      ok: true,
      caller: { role: entry.role, proven: false, peer: undefined, user: this.user },
      reply: { signature: userServerSignature(entry.serverKey, msg) },
    };
  }
}

type Verdict = { ok: true; caller: Caller; reply: Record<string, unknown> } | { ok: false; why: string };
