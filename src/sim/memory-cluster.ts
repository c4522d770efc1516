// A whole cluster in one process: real TuneNode instances on the in-memory
// network, memory storage, one manual clock and seeded randomness. Time
// moves only when the driver fires timers, so a run is a pure function of
// its inputs and seed.
//
// Used by the coordinator tests and by the seeded simulator. Nodes can be
// crashed (cut off at once; what they had made durable survives, like a
// disk) and restarted on the same storage; new nodes can be started on
// standby and joined with the admin messages a real operator sends (stage,
// commit), and a node that leaves takes itself out when it is done.

import { claim, createRing } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import { makeConfig } from '../config.js';
import type { NodeConfig } from '../config.js';
import { TuneKvError } from '../errors.js';
import { ManualClock } from '../io/clock.js';
import { MemoryNetwork, clientEndpoint } from '../io/memory-network.js';
import { MemoryStorage } from '../io/storage.js';
import { MsgType } from '../protocol/messages.js';
import { TuneNode } from '../server/node.js';
import type { Security } from '../server/router.js';
import { fakeSaltKey } from '../security/secret.js';
import { createHash } from 'node:crypto';
import { derive } from './random.js';

export interface MemoryClusterOptions {
  readonly nodes: number;
  readonly n?: number;
  readonly q?: number;
  readonly seed?: number;
  readonly requestTimeoutMs?: number;
  /** Gossip, handoff, anti-entropy and reaping (default true). */
  readonly background?: boolean;
  readonly config?: Partial<NodeConfig>;
}

/** Lets every pending promise chain run (memory storage answers in
 * microtasks); deterministic because nothing else is scheduled. */
export function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class MemoryCluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork(this.clock);
  readonly nodes = new Map<string, TuneNode>();
  readonly storages = new Map<string, MemoryStorage>();
  /** Every node ever started, in order (n1, n2, ...). */
  readonly ids: string[];
  /** The ring the cluster was created with; ringNow() is the newest. */
  readonly ring: Ring;
  /** Nodes that left (handed off and stopped) or were removed: never restarted. */
  readonly gone = new Set<string>();
  readonly seed: number;
  private readonly configs = new Map<string, NodeConfig>();
  private readonly generations = new Map<string, number>();
  /** One cluster secret for every node, as a real cluster has (derived
   * from the seed, so runs replay). */
  readonly security: Security;

  constructor(readonly opts: MemoryClusterOptions) {
    this.seed = opts.seed ?? 1;
    const key = createHash('sha256').update(`tunekv sim cluster ${this.seed}`).digest();
    this.security = { clusterKey: key, users: null, fakeSaltKey: fakeSaltKey(key), peerCertRequired: false };
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const members = this.ids.map((id, i) => ({ id, addr: `10.0.0.${i + 1}:7000` }));
    let ring = createRing(opts.q ?? 64, opts.n ?? 3, members[0]!);
    for (const m of members.slice(1)) ring = claim(ring, m);
    this.ring = ring;
    for (const m of members) this.configure(m.id, m.addr, false);
  }

  private configure(id: string, addr: string, standby: boolean): void {
    const timeout = this.opts.requestTimeoutMs ?? 1000;
    this.configs.set(id, makeConfig({
      id, listen: addr, dataDir: `/mem/${id}`, n: this.ring.n, q: this.ring.q, standby,
      requestTimeoutMs: timeout, tombstoneReapDelayMs: Math.max(3000, timeout * 3), ...this.opts.config,
    }));
    this.storages.set(id, new MemoryStorage());
  }

  /** Starts a new node on standby (no ring yet); join it with stage + commit. */
  async addNode(): Promise<string> {
    const id = `n${this.ids.length + 1}`;
    this.ids.push(id);
    this.configure(id, `10.0.0.${this.ids.length}:7000`, true);
    await this.startNode(id);
    return id;
  }

  addrOf(id: string): string {
    return this.configs.get(id)!.listen;
  }

  /** The newest ring any running node holds. */
  ringNow(): Ring {
    let best = this.ring;
    for (const n of this.nodes.values()) if (n.ring && n.ring.version > best.version) best = n.ring;
    return best;
  }

  async start(): Promise<void> {
    for (const id of this.ids) await this.startNode(id);
  }

  async startNode(id: string): Promise<TuneNode> {
    const generation = (this.generations.get(id) ?? 0) + 1;
    this.generations.set(id, generation);
    const node = new TuneNode({
      config: this.configs.get(id)!,
      storage: this.storages.get(id)!,
      clock: this.clock,
      random: derive(this.seed, `${id}#${generation}`),
      transport: () => this.network.transport(id),
      security: this.security,
      batchWindow: 'microtask',
      ...(process.env.TUNEKV_SIM_LOG ? { log: (l: string) => console.log(`${this.clock.nowMs() - 1_700_000_000_000} ${l}`) } : {}),
    });
    await node.open();
    if (!this.configs.get(id)!.standby) await node.adoptRing(this.ring);
    node.onExited = () => {
      this.gone.add(id);
      void this.crash(id);
    };
    this.nodes.set(id, node);
    this.network.attach(id, node.config.listen, node);
    if (this.opts.background ?? true) node.startBackground();
    return node;
  }

  /** The process dies: unreachable at once, its timers stop; what it had
   * made durable stays in its storage. */
  async crash(id: string): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.network.detach(id);
    this.nodes.delete(id);
    await node.close(false);
  }

  isRunning(id: string): boolean {
    return this.nodes.has(id);
  }

  node(id: string): TuneNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`node ${id} is not running`);
    return n;
  }

  /** Fires timers (moving time) until `done()` or `untilMs` is reached. */
  async runUntil(untilMs: number, done: () => boolean = () => false): Promise<void> {
    for (;;) {
      await settleMicrotasks();
      if (done()) return;
      const next = this.clock.nextDueMs();
      if (next === undefined || next > untilMs) return;
      this.clock.fireNext();
    }
  }

  /** Runs the clock until `work` settles, and returns its result. */
  async drive<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(() => { settled = true; }, () => { settled = true; });
    await this.runUntil(Number.POSITIVE_INFINITY, () => settled);
    return work;
  }

  /** Runs the cluster for `ms` of simulated time. */
  async runFor(ms: number): Promise<void> {
    await this.runUntil(this.clock.nowMs() + ms);
  }

  /** Sends a client request to `to` and runs the clock until it is answered. */
  async call(to: string, type: number, body: unknown, timeoutMs = 10_000): Promise<{ type: number; body: unknown }> {
    let result: { type: number; body: unknown } | TuneKvError | undefined;
    this.network.request(clientEndpoint, to, type, body, timeoutMs, (err, t, b) => { result = err ?? { type: t, body: b }; });
    await this.runUntil(Number.POSITIVE_INFINITY, () => result !== undefined);
    if (result === undefined) throw new Error('the cluster stopped with a request unanswered');
    if (result instanceof TuneKvError) throw result;
    return result;
  }

  get(to: string, body: Record<string, unknown>): Promise<{ type: number; body: unknown }> {
    return this.call(to, MsgType.GET, body);
  }

  put(to: string, body: Record<string, unknown>): Promise<{ type: number; body: unknown }> {
    return this.call(to, MsgType.PUT, body);
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.crash(id);
  }
}
