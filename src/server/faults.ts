// The fault layer: partitions, delay and loss on a node's peer links, set
// at run time by an ADMIN_FAULTS message (`tunekv cluster partition`,
// `heal`, and the benchmark's injected delay). No root, no netem: it lives
// in the node's own transport.
//
// A blocked peer is unreachable both ways: our requests to it are dropped
// (the caller times out, as across a real partition) and its requests to us
// are left unanswered. Delay and loss apply to our requests and to our
// replies to that peer, so a link's round trip pays the delay twice, as a
// real one-way delay would.

import { invalid } from '../errors.js';
import { TuneKvError } from '../errors.js';
import type { Clock } from '../io/clock.js';
import type { PeerTransport, ReplyCallback, Responder } from '../io/transport.js';
import { MsgType } from '../protocol/messages.js';

export interface LinkFault {
  /** Fixed one-way delay, ms. */
  readonly delayMs: number;
  /** Extra uniform random delay in [0, jitterMs), ms. */
  readonly jitterMs: number;
  /** Probability a message is dropped, 0..1. */
  readonly loss: number;
}

export interface FaultSpec extends LinkFault {
  /** Peers on the other side of a partition. */
  readonly blocked: readonly string[];
  /** Per-peer overrides of delay, jitter and loss. */
  readonly links?: Readonly<Record<string, LinkFault>>;
}

export const noFaults: FaultSpec = { blocked: [], delayMs: 0, jitterMs: 0, loss: 0 };

const faultDelayMaxMs = 60_000;

function linkProblem(name: string, l: Record<string, unknown>): string | null {
  for (const f of ['delayMs', 'jitterMs'] as const) {
    const v = l[f] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > faultDelayMaxMs) return `${name}.${f} must be 0..${faultDelayMaxMs}`;
  }
  const loss = l.loss ?? 0;
  if (typeof loss !== 'number' || !(loss >= 0 && loss <= 1)) return `${name}.loss must be between 0 and 1`;
  return null;
}

/** Validates an ADMIN_FAULTS body into a FaultSpec. */
export function parseFaultSpec(body: unknown): FaultSpec {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const blocked = b.blocked ?? [];
  if (!Array.isArray(blocked) || !blocked.every((x) => typeof x === 'string')) throw invalid('blocked must be a list of node ids');
  const problem = linkProblem('faults', b);
  if (problem) throw invalid(problem);
  const links: Record<string, LinkFault> = {};
  const rawLinks = (b.links ?? {}) as Record<string, unknown>;
  if (typeof rawLinks !== 'object' || rawLinks === null) throw invalid('links must be a map of node id to {delayMs, jitterMs, loss}');
  for (const [id, l] of Object.entries(rawLinks)) {
    const ll = (typeof l === 'object' && l !== null ? l : {}) as Record<string, unknown>;
    const p = linkProblem(`links.${id}`, ll);
    if (p) throw invalid(p);
    links[id] = { delayMs: Number(ll.delayMs ?? 0), jitterMs: Number(ll.jitterMs ?? 0), loss: Number(ll.loss ?? 0) };
  }
  return {
    blocked: blocked as string[], delayMs: Number(b.delayMs ?? 0), jitterMs: Number(b.jitterMs ?? 0), loss: Number(b.loss ?? 0), links,
  };
}

export class Faults {
  private spec: FaultSpec = noFaults;
  /** Messages dropped by the fault layer, for status. */
  dropped = 0;

  constructor(private readonly clock: Clock, private readonly random: () => number) {}

  /** No fault is set: every message goes through at once (the common
   * case, checked once per message instead of a lookup and a closure). */
  private clear = true;

  set(spec: FaultSpec): void {
    this.spec = spec;
    const quiet = (l: LinkFault): boolean => l.delayMs === 0 && l.jitterMs === 0 && l.loss === 0;
    this.clear = spec.blocked.length === 0 && quiet(spec) && Object.values(spec.links ?? {}).every(quiet);
  }

  get current(): FaultSpec {
    return this.spec;
  }

  /** Some fault is set (a partition, delay or loss on any link). */
  get active(): boolean {
    return !this.clear;
  }

  isBlocked(peer: string): boolean {
    return this.spec.blocked.includes(peer);
  }

  private link(peer: string): LinkFault {
    return this.spec.links?.[peer] ?? this.spec;
  }

  /** What happens to one message to or from `peer`: dropped, or delayed by ms. */
  fate(peer: string): 'drop' | number {
    if (this.isBlocked(peer)) return 'drop';
    const l = this.link(peer);
    if (l.loss > 0 && this.random() < l.loss) return 'drop';
    return l.jitterMs > 0 ? l.delayMs + this.random() * l.jitterMs : l.delayMs;
  }

  /** Runs `send` after the link's delay, or drops it. */
  apply(peer: string, send: () => void): boolean {
    if (this.clear) { send(); return true; }
    const f = this.fate(peer);
    if (f === 'drop') { this.dropped++; return false; }
    if (f <= 0) send(); else this.clock.setTimer(f, send);
    return true;
  }

  /** Wraps a responder to a peer's request with our side of the link. */
  reply(peer: string | undefined, respond: Responder): Responder {
    if (peer === undefined || this.clear) return respond;
    return (type, body) => { this.apply(peer, () => respond(type, body)); };
  }

  /** The peer transport seen through the fault layer. */
  wrap(inner: PeerTransport): PeerTransport {
    return {
      request: (to, type, body, timeoutMs, cb: ReplyCallback) => {
        if (this.clear) return inner.request(to, type, body, timeoutMs, cb);
        if (this.apply(to, () => inner.request(to, type, body, timeoutMs, cb))) return;
        // Dropped: the caller hears nothing until its deadline, as across a
        // real partition.
        this.clock.setTimer(timeoutMs, () => cb(new TuneKvError('TIMEOUT', `no reply from ${to} in time`), MsgType.ERROR, null));
      },
      requestAddr: (addr, type, body, timeoutMs, cb) => inner.requestAddr(addr, type, body, timeoutMs, cb),
      peerIsUp: (id) => inner.peerIsUp(id),
      close: () => inner.close(),
    };
  }
}
