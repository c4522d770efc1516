// An in-memory network for tests and the simulator: the deterministic twin
// of TCP. Every message is copied through the msgpack codec (so nodes never
// share objects and anything unencodable fails here as it would on a wire)
// and delivered by a ManualClock timer after a delay the caller chooses.
//
// A link policy decides each message's fate: delivered after some delay,
// dropped (the sender times out), or refused (the sender hears UNAVAILABLE,
// as from a closed port). Detached nodes refuse everything.

import { TuneKvError, errorFromWire } from '../errors.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType } from '../protocol/messages.js';
import type { ManualClock } from './clock.js';
import { inProcessClient, inProcessPeer } from './transport.js';
import type { PeerTransport, ReplyCallback, RequestHandler } from './transport.js';

export type LinkFate =
  | { readonly fate: 'deliver'; readonly delayMs: number }
  /** Delivered twice (a retransmission): the handler runs twice, the sender
   * takes the first answer. */
  | { readonly fate: 'duplicate'; readonly delayMs: number; readonly againMs: number }
  | { readonly fate: 'drop' }
  | { readonly fate: 'refuse' };

/** Decides a message's fate from `from` to `to`. Default: delivered after 1 ms. */
export type LinkPolicy = (from: string, to: string) => LinkFate;

export const clientEndpoint = 'client';

export class MemoryNetwork {
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly addrToId = new Map<string, string>();
  policy: LinkPolicy = () => ({ fate: 'deliver', delayMs: 1 });
  /** Messages sent, for tests and the simulator's report. */
  sent = 0;

  constructor(private readonly clock: ManualClock) {}

  attach(id: string, addr: string, handler: RequestHandler): void {
    this.handlers.set(id, handler);
    this.addrToId.set(addr, id);
  }

  detach(id: string): void {
    this.handlers.delete(id);
  }

  isAttached(id: string): boolean {
    return this.handlers.has(id);
  }

  transport(selfId: string): PeerTransport {
    return {
      request: (to, type, body, timeoutMs, cb) => this.request(selfId, to, type, body, timeoutMs, cb),
      requestAddr: (addr, type, body, timeoutMs, cb) => {
        const to = this.addrToId.get(addr);
        if (to === undefined) {
          this.clock.setTimer(0, () => cb(new TuneKvError('UNAVAILABLE', `nothing listens on ${addr}`), MsgType.ERROR, null));
          return;
        }
        this.request(selfId, to, type, body, timeoutMs, cb);
      },
      peerIsUp: () => {},
      close: () => {},
    };
  }

  /** Sends one request; the callback runs exactly once. */
  request(from: string, to: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void {
    this.sent++;
    let answered = false;
    const answer: ReplyCallback = (err, t, b) => {
      if (answered) return;
      answered = true;
      this.clock.clearTimer(timer);
      cb(err, t, b);
    };
    const timer = this.clock.setTimer(timeoutMs, () => answer(new TuneKvError('TIMEOUT', `no reply from ${to} in time`), MsgType.ERROR, null));
    const copy = unpack(pack(body));
    const go = this.fateOf(from, to);
    if (go.fate === 'drop') return;
    if (go.fate === 'refuse') {
      this.clock.setTimer(0, () => answer(new TuneKvError('UNAVAILABLE', `${to} is unreachable`), MsgType.ERROR, null));
      return;
    }
    const deliver = (): void => {
      const handler = this.handlers.get(to);
      if (!handler) {
        answer(new TuneKvError('UNAVAILABLE', `${to} is down`), MsgType.ERROR, null);
        return;
      }
      // In-process callers are already known: the simulator's clients may
      // do anything a client may, its nodes anything a peer may.
      handler.handleRequest(type, unpack(pack(copy)), (replyType, replyBody) => this.reply(to, from, replyType, replyBody, answer),
        from === clientEndpoint ? inProcessClient : inProcessPeer(from));
    };
    this.clock.setTimer(go.delayMs, deliver);
    if (go.fate === 'duplicate') this.clock.setTimer(go.againMs, deliver);
  }

  private reply(from: string, to: string, type: number, body: unknown, answer: ReplyCallback): void {
    const copy = unpack(pack(body));
    const go = this.fateOf(from, to);
    if (go.fate !== 'deliver' && go.fate !== 'duplicate') return;
    this.clock.setTimer(go.delayMs, () => {
      if (to !== clientEndpoint && !this.handlers.has(to)) return;
      answer(type === MsgType.ERROR ? errorFromWire(copy) : null, type, copy);
    });
  }

  private fateOf(from: string, to: string): LinkFate {
    if (from !== clientEndpoint && !this.handlers.has(from)) return { fate: 'drop' };
    return this.policy(from, to);
  }
}
