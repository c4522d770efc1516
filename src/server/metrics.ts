// A node's Prometheus metrics (prom-client), one registry per node so the
// simulator can run many nodes in one process. Counters the node already
// keeps (hints, anti-entropy, read repairs) are read at scrape time rather
// than counted twice. Served over HTTP by start-node.ts on a port of its own.
//
// Every metric is listed, with a suggested alert, in the README (Metrics).

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricSources {
  readRepairs(): number;
  aaeKeysRepaired(): number;
  hintsPending(): number;
  hintsDelivered(): number;
  hintsDropped(): number;
  peerStates(): Record<'up' | 'suspect' | 'down', number>;
  requestsInFlight(): number;
  /** 1 while storage accepts writes, 0 while the disk failure policy refuses them. */
  storageHealthy(): number;
  storageWriteFailures(): number;
  /** Open connections by kind: proven peers, clients, still in their handshake. */
  connections(): Record<'peer' | 'client' | 'handshaking', number>;
  /** Objects set aside at open or read because they could not be decoded. */
  quarantinedObjects(): number;
  /** Seconds since this node last saw every member up (0 while it does).
   * Optional: the metric reads 0 without it. */
  partitionSeconds?(): number;
}

/** What replication bandwidth is spent on (tunekv_replication_bytes_total). */
export type ReplicationKind = 'replica' | 'hint' | 'aae' | 'transfer';

/** tunekv_replication_lag_seconds buckets: 1 ms to 60 s. */
export const lagBucketsSeconds: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Sets a counter to a value kept elsewhere, at scrape time. */
function mirror(c: Counter, read: () => number): void {
  c.reset();
  c.inc(read());
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly requestSeconds: Histogram<'op' | 'level' | 'outcome'>;
  readonly quorumFailures: Counter<'op' | 'code'>;
  readonly siblingsPerRead: Histogram;
  readonly conflicts: Counter;
  /** Replication lag (a histogram, so it can be summed across nodes). */
  readonly lagSeconds: Histogram;
  readonly convergenceSeconds: Histogram;
  readonly oversizedObjects: Counter;
  readonly authFailures: Counter<'method'>;
  readonly refusedRequests: Counter<'code'>;
  // Issue 10 (conflicts, sessions, types): see the README's Metrics and
  // "Resolving conflicts". The types and sessions code count through
  // countTypeMerge() and countSessionLookFurther().
  readonly siblingsResolved: Counter<'by'>;
  readonly sessionLookFurther: Counter;
  readonly typeMerges: Counter<'type'>;
  readonly replicationBytes: Counter<'kind'>;
  readonly contextWrites: Counter<'outcome'>;
  readonly conflictRecords: Counter<'kind'>;
  private readsWithOneVersion = 0;
  private readsFound = 0;

  constructor(nodeId: string, sources: MetricSources) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    this.requestSeconds = new Histogram({
      name: 'tunekv_request_duration_seconds',
      help: 'Coordinated request latency, from arrival to reply, by operation, consistency level and outcome',
      labelNames: ['op', 'level', 'outcome'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.quorumFailures = new Counter({
      name: 'tunekv_quorum_failures_total',
      help: 'Requests that failed their quorum (QUORUM_UNAVAILABLE or TIMEOUT), by operation and code',
      labelNames: ['op', 'code'],
      registers,
    });
    this.siblingsPerRead = new Histogram({
      name: 'tunekv_siblings_per_read',
      help: 'Concurrent versions (values and tombstones) in the merged result of reads that found the key',
      buckets: [1, 2, 3, 5, 10, 25, 100],
      registers,
    });
    this.conflicts = new Counter({
      name: 'tunekv_conflicts_total',
      help: 'Writes that left the key with more than one version (a conflict a reader will have to resolve)',
      registers,
    });
    // A histogram, not a summary: quantiles of summaries cannot be
    // combined across nodes; bucket counts can (histogram_quantile over
    // sum by (le)). Buckets from 1 ms (a replica on the same host) to 60 s
    // (a hint delivered after a short partition); longer lands in +Inf.
    this.lagSeconds = new Histogram({
      name: 'tunekv_replication_lag_seconds',
      help: 'Replication lag: from a coordinator accepting a write to a replica applying it (hinted and repaired writes included)',
      buckets: [...lagBucketsSeconds],
      registers,
    });
    this.convergenceSeconds = new Histogram({
      name: 'tunekv_convergence_seconds',
      help: 'Time from a peer coming back (a partition healing, a node restarting) until no hint for it is left and an anti-entropy round finds nothing to repair',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    new Counter({
      name: 'tunekv_read_repairs_total', help: 'Replicas sent the merged object after a read', registers,
      collect() { mirror(this, sources.readRepairs); },
    });
    new Counter({
      name: 'tunekv_aae_keys_repaired_total', help: 'Keys anti-entropy repaired (per replica written)', registers,
      collect() { mirror(this, sources.aaeKeysRepaired); },
    });
    new Counter({
      name: 'tunekv_hints_delivered_total', help: 'Hints handed off to their owner', registers,
      collect() { mirror(this, sources.hintsDelivered); },
    });
    new Counter({
      name: 'tunekv_hints_dropped_total', help: 'Hints refused (queue full) or expired (handed to other primaries instead)', registers,
      collect() { mirror(this, sources.hintsDropped); },
    });
    new Gauge({
      name: 'tunekv_hints_pending', help: 'Hints this node holds for down owners', registers,
      collect() { this.set(sources.hintsPending()); },
    });
    new Gauge({
      name: 'tunekv_peers', help: 'Peers by state in this node\'s failure detector', labelNames: ['state'], registers,
      collect() { for (const [state, n] of Object.entries(sources.peerStates())) this.set({ state }, n); },
    });
    new Gauge({
      name: 'tunekv_requests_in_flight', help: 'Requests this node is coordinating', registers,
      collect() { this.set(sources.requestsInFlight()); },
    });
    this.oversizedObjects = new Counter({
      name: 'tunekv_oversized_objects_total',
      help: 'Replica merges that left a key with more than siblingsMax versions (the key refuses blind writes until resolved)',
      registers,
    });
    this.authFailures = new Counter({
      name: 'tunekv_auth_failures_total',
      help: 'Failed AUTH attempts (wrong password, unknown user, wrong cluster secret, peer without a certificate), by method',
      labelNames: ['method'],
      registers,
    });
    this.refusedRequests = new Counter({
      name: 'tunekv_refused_requests_total',
      help: 'Requests refused before they ran: UNAUTHORIZED (no identity) or FORBIDDEN (role too low)',
      labelNames: ['code'],
      registers,
    });
    new Gauge({
      name: 'tunekv_storage_healthy', help: '1 while the node\'s storage accepts writes; 0 while the disk failure policy refuses them', registers,
      collect() { this.set(sources.storageHealthy()); },
    });
    new Counter({
      name: 'tunekv_storage_write_failures_total', help: 'Storage batches that failed to write (each fails every write in it)', registers,
      collect() { mirror(this, sources.storageWriteFailures); },
    });
    new Gauge({
      name: 'tunekv_connections', help: 'Open connections by kind (peer, client, handshaking)', labelNames: ['kind'], registers,
      collect() { for (const [kind, n] of Object.entries(sources.connections())) this.set({ kind }, n); },
    });
    new Counter({
      name: 'tunekv_quarantined_objects_total', help: 'Stored objects that could not be decoded and were set aside (never a reason not to start)', registers,
      collect() { mirror(this, sources.quarantinedObjects); },
    });
    this.siblingsResolved = new Counter({
      name: 'tunekv_siblings_resolved_total',
      help: 'Versions superseded by puts that resolved a conflict (a context covering two or more versions), by who resolved them: resolver (the put said so: kv.update() or a default resolver writing back), context (any other put with a context), lww',
      labelNames: ['by'],
      registers,
    });
    this.sessionLookFurther = new Counter({
      name: 'tunekv_session_reads_looked_further_total',
      help: 'Session reads that found an older version than the session had seen and had to ask more replicas',
      registers,
    });
    this.typeMerges = new Counter({
      name: 'tunekv_type_merges_total',
      help: 'Concurrent versions of a counter or set merged into one, by type',
      labelNames: ['type'],
      registers,
    });
    this.replicationBytes = new Counter({
      name: 'tunekv_replication_bytes_total',
      help: 'Object bytes (values and clocks) this node sent to other nodes, by purpose: replica (writes and read repair it coordinated), hint (hand-off), aae (anti-entropy repair), transfer (cluster changes)',
      labelNames: ['kind'],
      registers,
    });
    this.contextWrites = new Counter({
      name: 'tunekv_context_writes_total',
      help: 'Puts and deletes this node coordinated that carried a non-empty context, by outcome: clean (the key was left with one version), sibling (a concurrent writer left a sibling)',
      labelNames: ['outcome'],
      registers,
    });
    this.conflictRecords = new Counter({
      name: 'tunekv_conflict_records_total',
      help: 'Records appended to this node\'s conflict log, by kind (siblings kept, lww, resolver, type merge)',
      labelNames: ['kind'],
      registers,
    });
    const partition = sources.partitionSeconds;
    new Gauge({
      name: 'tunekv_partition_seconds',
      help: 'How long this node has been unable to reach every member (seconds since it last saw them all up; 0 while it does)',
      registers,
      collect() { this.set(partition ? partition() : 0); },
    });
    const ratio = (): number => this.oneVersionRatio;
    new Gauge({
      name: 'tunekv_reads_one_version_ratio',
      help: 'Share of reads (that found the key) seeing exactly one version; the Dynamo paper reports 0.9994',
      registers,
      collect() { this.set(ratio()); },
    });
  }

  private readonly requestChildren = new Map<string, { observe(v: number): void }>();

  /** Records a request's latency; labelled children are cached, as
   * resolving labels costs more than the observation itself. */
  observeRequest(op: string, level: string, outcome: string, seconds: number): void {
    const k = `${op}|${level}|${outcome}`;
    let child = this.requestChildren.get(k);
    if (!child) { child = this.requestSeconds.labels(op, level, outcome); this.requestChildren.set(k, child); }
    child.observe(seconds);
  }

  observeRead(versions: number): void {
    this.siblingsPerRead.observe(versions);
    this.readsFound++;
    if (versions === 1) this.readsWithOneVersion++;
  }

  /** Hook for sessions: a session read had to look further. */
  countSessionLookFurther(): void {
    this.sessionLookFurther.inc();
  }

  /** Hook for the counter and set types: a merge folded concurrent versions. */
  countTypeMerge(type: string): void {
    this.typeMerges.inc({ type });
  }

  /** Labelled children cached: these are counted on the put path, where
   * resolving labels costs more than the increment. */
  private readonly replicationChildren = new Map<ReplicationKind, { inc(v: number): void }>();
  private contextWriteChildren: { clean: { inc(): void }; sibling: { inc(): void } } | undefined;

  /** Object bytes sent for replication (see ReplicationKind). */
  countReplicationBytes(kind: ReplicationKind, bytes: number): void {
    if (bytes <= 0) return;
    let child = this.replicationChildren.get(kind);
    if (!child) { child = this.replicationBytes.labels(kind); this.replicationChildren.set(kind, child); }
    child.inc(bytes);
  }

  /** A put or delete that carried a context: did it leave a sibling? */
  countContextWrite(leftSibling: boolean): void {
    this.contextWriteChildren ??= { clean: this.contextWrites.labels('clean'), sibling: this.contextWrites.labels('sibling') };
    (leftSibling ? this.contextWriteChildren.sibling : this.contextWriteChildren.clean).inc();
  }

  /** Reads that found the key and saw exactly one version, 0..1. */
  get oneVersionRatio(): number {
    return this.readsFound === 0 ? 1 : this.readsWithOneVersion / this.readsFound;
  }

  private processMetricsOn = false;

  /**
   * Adds prom-client's default process metrics to this node's registry,
   * under their standard names (process_cpu_seconds_total,
   * nodejs_eventloop_lag_seconds, nodejs_heap_size_used_bytes,
   * nodejs_gc_duration_seconds, ...) so stock Node.js dashboards work; the
   * node label tells nodes apart. Real nodes only (start-node.ts): the
   * simulator runs many nodes in one process, whose figures would be the
   * same process counted once per node. Cost: read at scrape time (about
   * 1 ms of CPU per scrape), plus an event-loop delay sampler and a GC
   * observer, neither of which runs per request.
   */
  collectProcessMetrics(): void {
    if (this.processMetricsOn) return;
    this.processMetricsOn = true;
    collectDefaultMetrics({ register: this.registry });
  }

  /** The 95th percentile of replication lag, ms, or null before any:
   * estimated from the histogram's buckets (linear within the bucket, the
   * way histogram_quantile does; past the last bucket, its upper bound). */
  async lagP95Ms(): Promise<number | null> {
    const m = await this.lagSeconds.get();
    const buckets = m.values
      .filter((v) => v.metricName === 'tunekv_replication_lag_seconds_bucket')
      .map((v) => ({ le: v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le), count: v.value }))
      .sort((a, b) => a.le - b.le);
    const total = buckets[buckets.length - 1]?.count ?? 0;
    if (total === 0) return null;
    const rank = 0.95 * total;
    let prevLe = 0;
    let prevCount = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (!Number.isFinite(b.le)) return prevLe * 1000;
        const inBucket = b.count - prevCount;
        const frac = inBucket === 0 ? 1 : (rank - prevCount) / inBucket;
        return (prevLe + (b.le - prevLe) * frac) * 1000;
      }
      prevLe = b.le;
      prevCount = b.count;
    }
    return prevLe * 1000;
  }
}
