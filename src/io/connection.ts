// A framed TCP connection: decoding, coalesced writes, and (for the side that
// asks) request/reply matching by request id.
//
// Writes are coalesced: frames produced while the event loop handles one
// round of I/O are joined and written once in the check phase (setImmediate).
// One socket.write per frame caps loopback near 150k messages/s; one write
// per round measured about ten times that.

import net from 'node:net';
import { TuneKvError, errorFromWire } from '../errors.js';
import { limits } from '../limits.js';
import { FrameDecoder, FrameError, encodeFrame } from '../protocol/frame.js';
import type { Frame } from '../protocol/frame.js';
import { MsgType, protocolVersion } from '../protocol/messages.js';
import type { HelloOkBody } from '../protocol/messages.js';

export interface FramedHandlers {
  onFrame(frame: Frame): void;
  /** A frame could not be decoded; the connection closes after this. */
  onFrameError(err: FrameError): void;
  onClose(err: Error | undefined): void;
}

export class FramedConnection {
  private readonly decoder = new FrameDecoder();
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private flushCount = 0;
  private closed = false;
  private partialTimer: NodeJS.Timeout | undefined;

  constructor(readonly socket: net.Socket, private readonly handlers: FramedHandlers) {
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

  /** Queues a frame; false when the connection is already closing (the
   * frame will never be sent). */
  send(type: number, id: number, body: unknown): boolean {
    if (this.closed) return false;
    const frame = encodeFrame(type, id, body);
    this.out.push(frame);
    this.outBytes += frame.length;
    if (this.outBytes + this.socket.writableLength > limits.connectionOutputBytesMax) {
      this.teardown(new TuneKvError('OVERLOADED', 'peer does not read its replies fast enough'));
      return false;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
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
    this.out = [];
    this.outBytes = 0;
    this.flushCount++;
    this.socket.write(data);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.failFrame(err as FrameError);
      return;
    }
    for (const f of frames) {
      if (this.closed) return;
      this.handlers.onFrame(f);
    }
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
    this.out = [];
    this.outBytes = 0;
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
  /** The connection's flush count when the request was queued. */
  readonly queuedAt: number;
}

export interface RpcOptions {
  readonly host: string;
  readonly port: number;
  /** Who we are, sent in HELLO ("tunekv-js/0.1.0", "node:n1"). */
  readonly agent: string;
  readonly connectTimeoutMs: number;
  /** Extra HELLO fields (a peer sends its ring version). */
  readonly hello?: Record<string, unknown>;
  onHelloOk?(body: HelloOkBody): void;
  onClose?(): void;
}

/**
 * The asking side of a connection: HELLO first, then any number of requests
 * pipelined without waiting, each matched to its reply by id. A request whose
 * deadline passes is answered TIMEOUT locally and its late reply ignored, so
 * the pending table stays bounded by the requests really in flight.
 */
export class RpcConnection {
  private readonly conn: FramedConnection;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private connected = false;
  private closedError: TuneKvError | undefined;
  readonly ready: Promise<HelloOkBody>;
  private resolveReady!: (b: HelloOkBody) => void;
  private rejectReady!: (e: TuneKvError) => void;

  constructor(private readonly opts: RpcOptions) {
    this.ready = new Promise((resolve, reject) => { this.resolveReady = resolve; this.rejectReady = reject; });
    this.ready.catch(() => {});
    const socket = net.connect({ host: opts.host, port: opts.port });
    socket.setTimeout(opts.connectTimeoutMs, () => {
      if (!this.connected) socket.destroy(new TuneKvError('UNAVAILABLE', `connect to ${opts.host}:${opts.port} timed out`));
    });
    socket.once('connect', () => { this.connected = true; socket.setTimeout(0); });
    this.conn = new FramedConnection(socket, {
      onFrame: (f) => this.onFrame(f),
      onFrameError: (e) => this.failAll(new TuneKvError('PROTOCOL_ERROR', `bad frame from ${this.addr}: ${e.message}`)),
      onClose: (err) => this.onClosed(err),
    });
    this.conn.send(MsgType.HELLO, 0, { protocol: protocolVersion, agent: opts.agent, ...opts.hello });
    this.sweepTimer = setInterval(() => this.sweep(), 100);
    this.sweepTimer.unref();
  }

  get addr(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined || this.conn.isClosed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  request(type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void {
    if (this.closedError) {
      const e = this.closedError;
      queueMicrotask(() => cb(e, MsgType.ERROR, null));
      return;
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    if (!this.conn.send(type, id, body)) {
      const e = new TuneKvError('UNAVAILABLE', `connection to ${this.addr} is closing`, { maybeApplied: false });
      queueMicrotask(() => cb(e, MsgType.ERROR, null));
      return;
    }
    this.pending.set(id, { cb, deadlineMs: Date.now() + timeoutMs, queuedAt: this.conn.flushes });
  }

  close(): void {
    this.failAll(new TuneKvError('UNAVAILABLE', `connection to ${this.addr} closed by the client`));
    this.conn.end();
  }

  private onFrame(f: Frame): void {
    if (f.id === 0) {
      if (f.type === MsgType.HELLO_OK) this.resolveReady(f.body as HelloOkBody);
      else if (f.type === MsgType.ERROR) this.failAll(errorFromWire(f.body));
      if (f.type === MsgType.HELLO_OK) this.opts.onHelloOk?.(f.body as HelloOkBody);
      return;
    }
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    if (f.type === MsgType.ERROR) p.cb(errorFromWire(f.body), f.type, f.body);
    else p.cb(null, f.type, f.body);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadlineMs > now) continue;
      this.pending.delete(id);
      p.cb(new TuneKvError('TIMEOUT', `no reply from ${this.addr} in time`), MsgType.ERROR, null);
    }
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

  /** Fails every pending request. One still in the write queue when the
   * connection broke was never sent, so it cannot have been applied: its
   * error says so, and callers may retry it anywhere. */
  private failAll(err: TuneKvError): void {
    if (!this.closedError) this.closedError = err;
    this.rejectReady(err);
    const all = [...this.pending.values()];
    this.pending.clear();
    const flushes = this.conn.flushes;
    for (const p of all) {
      const unsent = err.code === 'UNAVAILABLE' && err.details.maybeApplied === true && p.queuedAt === flushes;
      p.cb(unsent ? new TuneKvError('UNAVAILABLE', err.message, { ...err.details, maybeApplied: false }) : err, MsgType.ERROR, null);
    }
    if (!this.conn.isClosed) this.conn.destroy();
  }
}
