// A whole cluster in one process: real TuneNode instances on the in-memory
// network, memory storage and one manual clock. Time moves only when the
// driver fires timers, so a run is a pure function of its inputs.
//
// Used by the coordinator tests and by the seeded simulator. Nodes can be
// crashed (detached from the network; their storage survives like a disk)
// and restarted on the same storage.

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

export interface MemoryClusterOptions {
  readonly nodes: number;
  readonly n?: number;
  readonly q?: number;
  readonly requestTimeoutMs?: number;
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
  readonly ids: string[];
  ring: Ring;
  private readonly configs = new Map<string, NodeConfig>();

  constructor(readonly opts: MemoryClusterOptions) {
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const members = this.ids.map((id, i) => ({ id, addr: `10.0.0.${i + 1}:7000` }));
    let ring = createRing(opts.q ?? 64, opts.n ?? 3, members[0]!);
    for (const m of members.slice(1)) ring = claim(ring, m);
    this.ring = ring;
    for (const m of members) {
      this.configs.set(m.id, makeConfig({
        id: m.id, listen: m.addr, dataDir: `/mem/${m.id}`, n: ring.n, q: ring.q,
        requestTimeoutMs: opts.requestTimeoutMs ?? 1000, ...opts.config,
      }));
      this.storages.set(m.id, new MemoryStorage());
    }
  }

  async start(): Promise<void> {
    for (const id of this.ids) await this.startNode(id);
  }

  async startNode(id: string): Promise<TuneNode> {
    const node = new TuneNode({
      config: this.configs.get(id)!,
      storage: this.storages.get(id)!,
      clock: this.clock,
      transport: () => this.network.transport(id),
    });
    await node.open();
    await node.adoptRing(this.ring);
    this.nodes.set(id, node);
    this.network.attach(id, node.config.listen, node);
    return node;
  }

  /** The process dies: unreachable at once; what it had made durable stays. */
  async crash(id: string): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.network.detach(id);
    this.nodes.delete(id);
    await node.close();
  }

  node(id: string): TuneNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`node ${id} is not running`);
    return n;
  }

  /** Sends a client request to `to` and runs the clock until it is answered. */
  async call(to: string, type: number, body: unknown, timeoutMs = 10_000): Promise<{ type: number; body: unknown }> {
    let result: { type: number; body: unknown } | TuneKvError | undefined;
    this.network.request(clientEndpoint, to, type, body, timeoutMs, (err, t, b) => { result = err ?? { type: t, body: b }; });
    while (result === undefined) {
      await settleMicrotasks();
      if (result !== undefined) break;
      if (!this.clock.fireNext()) await settleMicrotasks();
    }
    if (result instanceof TuneKvError) throw result;
    return result;
  }

  /** Runs every timer and message until nothing is left to happen. */
  async quiesce(maxSteps = 100_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      await settleMicrotasks();
      if (!this.clock.fireNext()) {
        await settleMicrotasks();
        if (this.clock.pending === 0) return;
      }
    }
    throw new Error(`cluster did not quiesce in ${maxSteps} steps`);
  }

  get(to: string, body: Record<string, unknown>): Promise<{ type: number; body: unknown }> {
    return this.call(to, MsgType.GET, body);
  }

  put(to: string, body: Record<string, unknown>): Promise<{ type: number; body: unknown }> {
    return this.call(to, MsgType.PUT, body);
  }
}
