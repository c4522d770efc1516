// A framed TCP (or TLS) connection: decoding, coalesced writes, bounded
// output, and (for the side that asks) the handshake and request/reply
// matching by request id.
//
// Writes are coalesced: frames produced while the event loop handles one
// round of I/O are joined and written once in the check phase (setImmediate).
// One socket.write per frame caps loopback near 150k messages/s; one write
// per round measured about ten times that.
//
// Output is bounded: a connection whose unsent bytes pass
// connectionReadPauseBytes stops being read until they drain (a peer that
// does not read its replies cannot make us do more work for it); past
// connectionOutputBytesMax it is dropped; and an OutputBudget shared by a
// node's connections drops the one with the most bytes queued when their
// total passes outputBytesTotalMax.

import net from 'node:net';
import tls from 'node:tls';
import { TuneKvError, errorFromWire } from '../errors.js';
import { limits } from '../limits.js';
import type { DecodeBounds } from '../protocol/codec.js';
import { FrameDecoder, FrameError, encodeFrame } from '../protocol/frame.js';
import type { Frame } from '../protocol/frame.js';
import { MsgType, protocolVersion } from '../protocol/messages.js';
import type { HelloOkBody } from '../protocol/messages.js';
import {
  checkNonce, newNonce, saltBytesMax, saltBytesMin, saltedPassword, scryptParamsProblem, secretProof, userAuthMessage, userClientProof, userKeys,
  verifySecretProof, verifyServerSignature,
} from '../security/handshake.js';
import type { ScryptParams } from '../security/handshake.js';

export interface FramedHandlers {
  onFrame(frame: Frame): void;
  /** A frame could not be decoded; the connection closes after this. */
  onFrameError(err: FrameError): void;
  onClose(err: Error | undefined): void;
}

export interface FramedOptions {
  /** Shared by every connection of a node (server side). */
  readonly budget?: OutputBudget;
  /** Largest frame accepted; default frameBytesMax. */
  readonly frameBytesMax?: number;
  /** Decode bounds for bodies; default the peer bounds. */
  readonly bounds?: DecodeBounds;
  /** Largest frame this side may send (a client: clientFrameBytesMax). */
  readonly sendFrameBytesMax?: number;
  /** Looks at the first bytes received before they are decoded as frames
   * (the dialling side): a FrameError it returns closes the connection with
   * that error instead of whatever the decoder would make of them. */
  readonly firstBytes?: (head: Buffer) => FrameError | null;
}

/** Unsent bytes across many connections, with the largest dropped first
 * when the total passes its limit. */
export class OutputBudget {
  private total = 0;
  private readonly conns = new Set<FramedConnection>();

  constructor(private readonly bytesMax: number) {}

  get bytes(): number {
    return this.total;
  }

  track(c: FramedConnection): void {
    this.conns.add(c);
  }

  untrack(c: FramedConnection): void {
    this.conns.delete(c);
  }

  add(n: number): void {
    this.total += n;
    if (this.total <= this.bytesMax) return;
    let largest: FramedConnection | undefined;
    for (const c of this.conns) {
      if (c.evictionExempt) continue;
      if (!largest || c.unsentBytes > largest.unsentBytes) largest = c;
    }
    largest?.overflow('the node\'s output budget is spent and this connection holds the most unread replies');
  }

  release(n: number): void {
    this.total -= n;
  }
}

export class FramedConnection {
  private readonly decoder: FrameDecoder;
  private out: Buffer[] = [];
  private outBytes = 0;
  /** Bytes handed to the socket whose write has not completed. */
  private writing = 0;
  private paused = false;
  /** Reading held back for too many requests in flight (server side). */
  private held = false;
  private flushScheduled = false;
  private flushCount = 0;
  private closed = false;
  private partialTimer: NodeJS.Timeout | undefined;
  private idle: { ms: number; ok: () => boolean } | undefined;
  private readonly budget: OutputBudget | undefined;
  private readonly sendFrameBytesMax: number;
  private firstBytes: ((head: Buffer) => FrameError | null) | undefined;

  constructor(readonly socket: net.Socket, private readonly handlers: FramedHandlers, opts: FramedOptions = {}) {
    this.decoder = new FrameDecoder(opts.frameBytesMax ?? limits.frameBytesMax);
    if (opts.bounds) this.decoder.setBounds(opts.bounds);
    this.budget = opts.budget;
    this.budget?.track(this);
    this.sendFrameBytesMax = opts.sendFrameBytesMax ?? limits.frameBytesMax;
    this.firstBytes = opts.firstBytes;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.teardown(err));
    socket.on('close', () => this.teardown(undefined));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Flushes so far: a frame queued at flush count k has reached the
   * socket once the count passes k. */
  get flushes(): number {
    return this.flushCount;
  }

  /** A proven peer's connection: a flood of client replies must never
   * cost the cluster its replica traffic, so the node-wide budget drops
   * client connections only (a peer connection is still bounded by
   * connectionOutputBytesMax). */
  evictionExempt = false;

  /** Bytes queued or being written. */
  get unsentBytes(): number {
    return this.outBytes + this.writing;
  }

  /** New limits for what this connection may send us (after a handshake). */
  setLimits(frameBytesMax: number, bounds: DecodeBounds): void {
    this.decoder.setFrameBytesMax(frameBytesMax);
    this.decoder.setBounds(bounds);
  }

  /** Stops (or resumes) reading this connection's requests: back-pressure
   * for a caller with too many requests in flight. */
  holdReading(on: boolean): void {
    if (this.held === on || this.closed) return;
    this.held = on;
    if (on) this.socket.pause();
    else if (!this.paused) this.socket.resume();
  }

  /** Closes the connection after `ms` without a frame, when `ok()` says
   * nothing is in flight. */
  setIdleTimeout(ms: number, ok: () => boolean): void {
    this.idle = { ms, ok };
    this.socket.setTimeout(ms, () => {
      if (this.idle?.ok() ?? true) this.teardown(undefined);
    });
  }

  /** Queues a frame; false when the connection is already closing (the
   * frame will never be sent). Throws TOO_LARGE for a frame over this
   * side's send limit, before anything is queued. */
  send(type: number, id: number, body: unknown): boolean {
    if (this.closed) return false;
    const frame = encodeFrame(type, id, body);
    if (frame.length > this.sendFrameBytesMax) {
      throw new TuneKvError('TOO_LARGE', `a frame of ${frame.length} bytes is over the limit of ${this.sendFrameBytesMax}`,
        { size: frame.length, limit: this.sendFrameBytesMax });
    }
    this.out.push(frame);
    this.outBytes += frame.length;
    this.budget?.add(frame.length);
    if (this.closed) return false;
    if (this.unsentBytes > limits.connectionOutputBytesMax) {
      this.overflow('peer does not read its replies fast enough');
      return false;
    }
    if (!this.paused && this.unsentBytes > limits.connectionReadPauseBytes) {
      this.paused = true;
      this.socket.pause();
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** Dropped for holding too many unsent bytes. */
  overflow(why: string): void {
    this.teardown(new TuneKvError('OVERLOADED', why));
  }

  /** Sends what is queued now and closes after it. */
  end(): void {
    this.flush();
    this.closed = true;
    this.clearPartialTimer();
    this.socket.end();
  }

  destroy(): void {
    this.teardown(undefined);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    const n = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    this.writing += n;
    this.flushCount++;
    this.socket.write(data, () => this.written(n));
  }

  private written(n: number): void {
    if (this.closed && this.writing === 0) return;
    this.writing -= n;
    this.budget?.release(n);
    if (this.paused && this.unsentBytes <= limits.connectionReadPauseBytes / 2 && !this.closed) {
      this.paused = false;
      if (!this.held) this.socket.resume();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.firstBytes) {
      const problem = this.firstBytes(chunk);
      this.firstBytes = undefined;
      if (problem) return this.failFrame(problem);
    }
    try {
      this.decoder.feed(chunk, (f) => {
        this.handlers.onFrame(f);
        return !this.closed;
      });
    } catch (err) {
      if (!this.closed) this.failFrame(err instanceof FrameError ? err : new FrameError('PROTOCOL_ERROR', (err as Error).message));
      return;
    }
    if (this.closed) return;
    this.watchPartialFrame();
  }

  /** A half-received frame must complete within frameReadTimeoutMs, so a
   * stalled or hostile sender cannot pin a buffer forever. */
  private watchPartialFrame(): void {
    if (this.decoder.pendingBytes === 0) { this.clearPartialTimer(); return; }
    if (this.partialTimer) return;
    this.partialTimer = setTimeout(() => {
      this.partialTimer = undefined;
      if (this.decoder.pendingBytes > 0) this.failFrame(new FrameError('PROTOCOL_ERROR', 'frame not completed in time'));
    }, limits.frameReadTimeoutMs);
    this.partialTimer.unref();
  }

  private clearPartialTimer(): void {
    if (this.partialTimer) clearTimeout(this.partialTimer);
    this.partialTimer = undefined;
  }

  private onEnd(): void {
    if (this.closed) return;
    if (this.decoder.pendingBytes > 0) {
      this.failFrame(new FrameError('PROTOCOL_ERROR', `connection ended inside a frame (${this.decoder.pendingBytes} bytes pending)`));
      return;
    }
    this.end();
  }

  private failFrame(err: FrameError): void {
    this.handlers.onFrameError(err);
    this.end();
  }

  private teardown(err: Error | undefined): void {
    this.closed = true;
    this.clearPartialTimer();
    if (this.budget) {
      this.budget.release(this.outBytes + this.writing);
      this.budget.untrack(this);
    }
    this.out = [];
    this.outBytes = 0;
    this.writing = 0;
    if (!this.socket.destroyed) this.socket.destroy();
    this.notifyClose(err);
  }

  private closeNotified = false;

  private notifyClose(err: Error | undefined): void {
    if (this.closeNotified) return;
    this.closeNotified = true;
    this.handlers.onClose(err);
  }
}

export type ReplyCallback = (err: TuneKvError | null, type: number, body: unknown) => void;

interface Pending {
  readonly cb: ReplyCallback;
  readonly deadlineMs: number;
  /** The connection's flush count when the request was queued, or -1
   * while it waits for the handshake or a free slot (never sent). */
  queuedAt: number;
}

interface Held { readonly type: number; readonly body: unknown }

/** How a dialer proves who it is after HELLO. */
export type DialAuth =
  /** The cluster secret (peers as `node:<id>`, the launcher and admin
   * tools as `admin`); `key` is clusterKey(secret). */
  | { readonly kind: 'secret'; readonly key: Buffer; readonly as: string }
  /** A user's password; the derived key is cached per salt so a client
   * pays scrypt once, not once per connection. */
  | { readonly kind: 'user'; readonly user: string; readonly password: string; readonly cache?: Map<string, Promise<Buffer>> };

export interface RpcOptions {
  readonly host: string;
  readonly port: number;
  /** Who we are, sent in HELLO ("tunekv-js/0.1.0", "node:n1"). */
  readonly agent: string;
  readonly connectTimeoutMs: number;
  /** Extra HELLO fields (a peer sends its ring version). */
  readonly hello?: Record<string, unknown>;
  readonly auth?: DialAuth;
  /** The node id we mean to reach (a peer dialled by id): a node that
   * answers with another id is refused, so a proof made for one node can
   * never be relayed to another. */
  readonly expectNodeId?: string;
  /** Dial with TLS (node:tls options: ca, cert, key, servername...). */
  readonly tls?: tls.ConnectionOptions;
  /** Largest frame we may send; a client's is clientFrameBytesMax. */
  readonly sendFrameBytesMax?: number;
  /** Requests sent and not yet answered at most (a client's is the node's
   * clientInFlightPerConnectionMax): more wait in a queue here instead of
   * being sent to be refused OVERLOADED. Default: no limit (peers). */
  readonly inFlightMax?: number;
  /** Requests waiting for a slot (or for the handshake) at most; one more
   * fails OVERLOADED before it is sent. Default: no limit. */
  readonly queuedMax?: number;
  /** Called once the node is known: after HELLO_OK, or after AUTH_OK was
   * verified when the connection authenticates. */
  onHelloOk?(body: HelloOkBody): void;
  onClose?(): void;
}

/**
 * The asking side of a connection: HELLO first, then any number of requests
 * pipelined without waiting, each matched to its reply by id. A request whose
 * deadline passes is answered TIMEOUT locally and its late reply ignored, so
 * the pending table stays bounded by the requests really in flight.
 *
 * With `auth`, requests are held until the node has answered HELLO_OK, we
 * have sent our proof, and the node's AUTH_OK proof has verified: nothing is
 * sent to, or believed from, a node that has not proven the same secret (or
 * the user's server key).
 *
 * With `inFlightMax`, at most that many requests are on the wire at once;
 * the rest wait in a bounded queue (queuedMax), in order, and are sent as
 * replies free slots. A node refuses what passes its per-connection limit,
 * so sending it would only turn a burst into OVERLOADED errors. A slot is
 * freed by the reply, or at the request's deadline: a request the caller
 * forgot (an abort) still holds its slot until then, because the node is
 * still working on it and counts it. A queued request keeps its deadline
 * and can be forgotten like any other; it was never sent, so failing it
 * says maybeApplied false.
 */
export class RpcConnection {
  private readonly conn: FramedConnection;
  private readonly pending = new Map<number, Pending>();
  /** Requests not sent yet, in order (a Map: an abort removes one in O(1)). */
  private readonly queue = new Map<number, Held>();
  /** Until the handshake completes nothing leaves the queue. */
  private holding: boolean;
  /** Requests sent and not answered, by id, with their deadline. */
  private readonly slots = new Map<number, number>();
  private nextId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private connected = false;
  private closedError: TuneKvError | undefined;
  private readonly clientNonce = newNonce();
  private helloOk: HelloOkBody | undefined;
  private verify: ((body: Record<string, unknown>) => boolean) | undefined;
  readonly ready: Promise<HelloOkBody>;
  private resolveReady!: (b: HelloOkBody) => void;
  private rejectReady!: (e: TuneKvError) => void;

  constructor(private readonly opts: RpcOptions) {
    this.ready = new Promise((resolve, reject) => { this.resolveReady = resolve; this.rejectReady = reject; });
    this.ready.catch(() => {});
    this.holding = opts.auth !== undefined;
    const socket = opts.tls
      ? tls.connect({ host: opts.host, port: opts.port, ...opts.tls })
      : net.connect({ host: opts.host, port: opts.port });
    socket.setTimeout(opts.connectTimeoutMs, () => {
      if (!this.connected) socket.destroy(new TuneKvError('UNAVAILABLE', `connect to ${opts.host}:${opts.port} timed out`));
    });
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => { this.connected = true; socket.setTimeout(0); });
    this.conn = new FramedConnection(socket, {
      onFrame: (f) => this.onFrame(f),
      onFrameError: (e) => this.failAll(new TuneKvError('PROTOCOL_ERROR', e.message.startsWith(this.addr) ? e.message : `bad frame from ${this.addr}: ${e.message}`)),
      onClose: (err) => this.onClosed(err),
    }, {
      frameBytesMax: limits.frameBytesMax, firstBytes: (head) => notOurProtocol(head, this.addr),
      ...(opts.sendFrameBytesMax ? { sendFrameBytesMax: opts.sendFrameBytesMax } : {}),
    });
    const hello: Record<string, unknown> = { protocol: protocolVersion, agent: opts.agent, nonce: this.clientNonce, ...opts.hello };
    if (opts.auth?.kind === 'user') hello.user = opts.auth.user;
    this.conn.send(MsgType.HELLO, 0, hello);
    this.sweepTimer = setInterval(() => this.sweep(), 100);
    this.sweepTimer.unref();
  }

  get addr(): string {
    // An IPv6 literal in brackets, as a user would write it back.
    return this.opts.host.includes(':') ? `[${this.opts.host}]:${this.opts.port}` : `${this.opts.host}:${this.opts.port}`;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined || this.conn.isClosed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request (or holds it for the handshake); returns its id, for
   * forget(). */
  request(type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): number {
    if (this.closedError) {
      const e = this.closedError;
      queueMicrotask(() => cb(e, MsgType.ERROR, null));
      return 0;
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    const p: Pending = { cb, deadlineMs: Date.now() + timeoutMs, queuedAt: -1 };
    if (this.holding || this.queue.size > 0 || this.slots.size >= (this.opts.inFlightMax ?? Infinity)) {
      const queuedMax = this.opts.queuedMax ?? Infinity;
      if (this.queue.size >= queuedMax) {
        const e = new TuneKvError('OVERLOADED', `more than ${queuedMax} requests are waiting to be sent to ${this.addr} `
          + `(${this.slots.size} in flight): not sent`, { limit: queuedMax, maybeApplied: false });
        queueMicrotask(() => cb(e, MsgType.ERROR, null));
        return 0;
      }
      this.queue.set(id, { type, body });
      this.pending.set(id, p);
      return id;
    }
    this.pending.set(id, p);
    this.transmit(id, type, body, p);
    return id;
  }

  /** Stops waiting for a request's reply (its caller gave up: an aborted
   * call): the callback is never called, a late reply is ignored, and a
   * request still queued is never sent. */
  forget(id: number): void {
    this.pending.delete(id);
    this.queue.delete(id);
  }

  /** The request is still queued (for the handshake or a free slot):
   * never handed to the socket. */
  isHeld(id: number): boolean {
    return this.queue.has(id);
  }

  /** Sends queued requests while slots are free. */
  private drain(): void {
    if (this.holding || this.closedError) return;
    const max = this.opts.inFlightMax ?? Infinity;
    for (const [id, h] of this.queue) {
      if (this.slots.size >= max) return;
      this.queue.delete(id);
      const p = this.pending.get(id);
      if (p) this.transmit(id, h.type, h.body, p);
    }
  }

  /** Sends one request; on failure answers it and returns false. */
  private transmit(id: number, type: number, body: unknown, p: Pending): boolean {
    let sent: boolean;
    try {
      sent = this.conn.send(type, id, body);
    } catch (err) {
      const e = err instanceof TuneKvError ? err : new TuneKvError('INVALID_ARGUMENT', (err as Error).message);
      this.pending.delete(id);
      queueMicrotask(() => p.cb(e, MsgType.ERROR, null));
      return false;
    }
    if (!sent) {
      const e = new TuneKvError('UNAVAILABLE', `connection to ${this.addr} is closing`, { maybeApplied: false });
      this.pending.delete(id);
      queueMicrotask(() => p.cb(e, MsgType.ERROR, null));
      return false;
    }
    p.queuedAt = this.conn.flushes;
    // Slots are counted only under a limit (clients): a peer connection has
    // none, and this is on every replica request's path.
    if (this.opts.inFlightMax !== undefined) this.slots.set(id, p.deadlineMs);
    return true;
  }

  close(): void {
    this.failAll(new TuneKvError('UNAVAILABLE', `connection to ${this.addr} closed by the client`));
    this.conn.end();
  }

  private onFrame(f: Frame): void {
    if (f.id === 0) return this.onHandshake(f);
    // The node answered: its slot is free, answered in time or late.
    if (this.slots.delete(f.id)) this.drain();
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    if (f.type === MsgType.ERROR) p.cb(this.errorOf(f.body), f.type, f.body);
    else p.cb(null, f.type, f.body);
  }

  /** An ERROR frame's error. A node always sends a known code and a
   * message; anything else is not a node speaking our protocol. */
  private errorOf(body: unknown): TuneKvError {
    const b = body as { code?: unknown; message?: unknown } | null;
    // An unknown code string is kept (errorFromWire makes it INTERNAL with
    // the node's message): a newer node may know codes we do not.
    if (typeof b !== 'object' || b === null || typeof b.code !== 'string' || typeof b.message !== 'string') {
      return new TuneKvError('PROTOCOL_ERROR', `${this.addr} sent an ERROR frame without a code and a message (${describeBody(body)})`);
    }
    return errorFromWire(body);
  }

  private onHandshake(f: Frame): void {
    if (f.type === MsgType.ERROR) return this.failAll(this.errorOf(f.body));
    const body = (typeof f.body === 'object' && f.body !== null ? f.body : {}) as Record<string, unknown>;
    if (f.type === MsgType.HELLO_OK && this.helloOk === undefined) {
      const problem = helloOkProblem(f.body);
      if (problem !== null) return this.failAll(new TuneKvError('PROTOCOL_ERROR', `${this.addr} answered HELLO with ${problem}`));
      this.helloOk = f.body as HelloOkBody;
      if (!this.opts.auth) return this.established();
      this.authenticate(body).catch((err: unknown) => {
        this.failAll(err instanceof TuneKvError ? err : new TuneKvError('UNAUTHORIZED', (err as Error).message));
      });
      return;
    }
    if (f.type === MsgType.AUTH_OK && this.verify) {
      if (!this.verify(body)) {
        return this.failAll(new TuneKvError('UNAUTHORIZED', `${this.addr} did not prove that it knows the ${this.opts.auth?.kind === 'user' ? "user's server key" : 'cluster secret'}`));
      }
      this.verify = undefined;
      this.holding = false;
      this.drain();
      return this.established();
    }
    this.failAll(new TuneKvError('PROTOCOL_ERROR', `unexpected handshake message ${f.type} from ${this.addr}`));
  }

  /** The handshake completed at some point (the node was reached). */
  get wasEstablished(): boolean {
    return this.establishedOnce;
  }

  private establishedOnce = false;

  private established(): void {
    this.establishedOnce = true;
    const hello = this.helloOk!;
    this.resolveReady(hello);
    this.opts.onHelloOk?.(hello);
  }

  /** Sends AUTH with our proof, and arms the check of the node's. */
  private async authenticate(hello: Record<string, unknown>): Promise<void> {
    const auth = this.opts.auth!;
    const serverNonce = checkNonce(hello.nonce);
    const nodeId = hello.nodeId;
    if (serverNonce === null || typeof nodeId !== 'string') throw new TuneKvError('PROTOCOL_ERROR', `${this.addr} sent no nonce or node id`);
    if (this.opts.expectNodeId !== undefined && nodeId !== this.opts.expectNodeId) {
      throw new TuneKvError('UNAVAILABLE', `${this.addr} answers as node ${nodeId.slice(0, 64)}, not ${this.opts.expectNodeId}`, { maybeApplied: false });
    }
    if (auth.kind === 'secret') {
      const proof = secretProof(auth.key, 'client', this.clientNonce, serverNonce, auth.as, nodeId);
      this.verify = (b) => verifySecretProof(auth.key, 'server', this.clientNonce, serverNonce, auth.as, nodeId, b.proof);
      this.conn.send(MsgType.AUTH, 0, { method: 'secret', as: auth.as, proof, ...this.opts.hello });
      return;
    }
    const salt = hello.salt;
    const problem = scryptParamsProblem(hello.scrypt);
    if (!(salt instanceof Uint8Array) || salt.length < saltBytesMin || salt.length > saltBytesMax || problem !== null) {
      throw new TuneKvError('PROTOCOL_ERROR', `${this.addr} sent no usable salt or scrypt parameters${problem ? `: ${problem}` : ''}`);
    }
    const params = hello.scrypt as ScryptParams;
    const cacheKey = `${Buffer.from(salt).toString('base64')}:${params.N}:${params.r}:${params.p}`;
    const cached = auth.cache?.get(cacheKey);
    const derived = cached ?? saltedPassword(auth.password, salt, params);
    if (!cached) auth.cache?.set(cacheKey, derived);
    const keys = userKeys(await derived);
    const msg = userAuthMessage(auth.user, this.clientNonce, serverNonce, nodeId);
    this.verify = (b) => verifyServerSignature(keys.serverKey, msg, b.signature);
    this.conn.send(MsgType.AUTH, 0, { method: 'user', proof: userClientProof(keys.clientKey, keys.storedKey, msg) });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, deadlineMs] of this.slots) if (deadlineMs <= now) this.slots.delete(id);
    for (const [id, p] of this.pending) {
      if (p.deadlineMs > now) continue;
      this.pending.delete(id);
      const queued = this.queue.delete(id);
      p.cb(new TuneKvError('TIMEOUT', queued ? `no free slot on the connection to ${this.addr} in time: not sent` : `no reply from ${this.addr} in time`,
        queued ? { maybeApplied: false } : {}), MsgType.ERROR, null);
    }
    this.drain();
  }

  private onClosed(err: Error | undefined): void {
    const reason = err instanceof TuneKvError ? err
      : new TuneKvError('UNAVAILABLE', `connection to ${this.addr} ${this.connected ? 'lost' : 'failed'}${err ? `: ${err.message}` : ''}`,
        { maybeApplied: this.connected });
    this.failAll(reason);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.opts.onClose?.();
  }

  /** Fails every pending request. One still in the write queue (or held
   * for the handshake) when the connection broke was never sent, so it
   * cannot have been applied: its error says so, and callers may retry it
   * anywhere. */
  private failAll(err: TuneKvError): void {
    if (!this.closedError) this.closedError = err;
    this.rejectReady(err);
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue.clear();
    this.slots.clear();
    const flushes = this.conn.flushes;
    for (const p of all) {
      const unsent = err.code === 'UNAVAILABLE' && err.details.maybeApplied === true && (p.queuedAt === -1 || p.queuedAt === flushes);
      p.cb(unsent ? new TuneKvError('UNAVAILABLE', err.message, { ...err.details, maybeApplied: false }) : err, MsgType.ERROR, null);
    }
    if (!this.conn.isClosed) this.conn.destroy();
  }
}

/** Why a HELLO_OK body is not one a node sends, or null. */
function helloOkProblem(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) return `HELLO_OK without a body (${describeBody(body)})`;
  const b = body as Record<string, unknown>;
  if (typeof b.nodeId !== 'string') return 'HELLO_OK without a node id';
  if (!Number.isSafeInteger(b.ringVersion) || (b.ringVersion as number) < 0) return 'HELLO_OK without a ring version';
  return null;
}

/** A short, printable account of a body a peer should not have sent. */
function describeBody(body: unknown): string {
  if (body === null || body === undefined) return 'nil';
  if (body instanceof Uint8Array) return `${body.length} bytes`;
  if (Array.isArray(body)) return `an array of ${body.length}`;
  return typeof body;
}

/** A node answers with frames; something that answers with text is another
 * service on that port. HTTP is the likely one (a node's metrics port is its
 * client port + 2000 by default): without this check its "HTTP/1.1 400"
 * reads as the length prefix of a 1.2 GB frame. */
function notOurProtocol(head: Buffer, addr: string): FrameError | null {
  const text = head.subarray(0, 5).toString('latin1');
  if (text === 'HTTP/') {
    return new FrameError('PROTOCOL_ERROR', `${addr} answered in HTTP, not the tunekv protocol: is that the metrics port? `
      + 'Clients connect to the node\'s client port (--listen, 7001 by default).');
  }
  return null;
}
