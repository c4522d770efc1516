// Every size, count and queue limit of tunekv, in one place.
//
// Invariants: each limit has a unit or `Max` last in its name; relations
// between limits are asserted at load (bottom of this file), so a change that
// makes one limit unreachable or unsafe crashes at start instead of in
// production. Overflowing a limit is a coded error (`TOO_LARGE`,
// `OVERLOADED`, `SIBLINGS_LIMIT`, ...) or a counted drop, never growth.

import assert from 'node:assert/strict';

export const limits = {
  /** Key length in UTF-8 bytes. Riak and Cassandra allow more; 1 KiB keeps
   * keys cheap to hash, index and put in every message. */
  keyBytesMax: 1024,
  /** One value in bytes. Larger blobs belong in a blob store; Riak warns at
   * 5 MB for whole objects. */
  valueBytesMax: 1024 * 1024,
  /** A stored object (all siblings and the clock) in bytes, checked by the
   * coordinator of a put. A replica merge can grow an object past it by the
   * siblings written concurrently elsewhere; frameBytesMax leaves room. */
  objectBytesMax: 16 * 1024 * 1024,
  /** Concurrent versions before a put logs a warning (Riak: 25). */
  siblingsWarn: 25,
  /** Concurrent versions a put may create (Riak: 100). Past it the put fails
   * with SIBLINGS_LIMIT: the caller must read and resolve first. Replica
   * merges never refuse: refusing would lose acknowledged data. */
  siblingsMax: 100,
  /** Entries in a vector clock before pruning is considered. Actors are node
   * ids, so a clock has at most one entry per node that ever coordinated a
   * write of the key; pruning only starts in clusters larger than this. */
  vclockEntriesMax: 64,
  /** An entry younger than this is never pruned (Riak's young_vclock is 20 s;
   * we keep a day so an actor's own recent counter can never be forgotten). */
  vclockPruneAgeMinMs: 24 * 60 * 60 * 1000,
  /** A whole frame (header + body) in bytes, checked before allocating. */
  frameBytesMax: 64 * 1024 * 1024,
  /** A frame before the connection has finished its handshake (HELLO and
   * AUTH are small): a stranger cannot make a node buffer more than this. */
  handshakeFrameBytesMax: 64 * 1024,
  /** A frame from an authenticated client: the largest request a client
   * may send (one value, its key, a context of contextEntriesMax entries
   * and the request's fields) with room to spare. The client checks it
   * before sending. Peers get frameBytesMax. */
  clientFrameBytesMax: 2 * 1024 * 1024,
  /** msgpack nesting a decoded frame may have. Our deepest message (a
   * stored object inside a reply) is 5 deep; the decoder refuses deeper
   * input before it recurses, so no body can exhaust the stack. */
  wireDepthMax: 32,
  /** msgpack elements (array items, map entries, scalars) one client
   * request may hold; checked before decoding so a small frame of empty
   * arrays cannot expand into gigabytes of objects. */
  clientWireElementsMax: 65_536,
  /** The same for frames from peers and replies to clients: an anti-entropy
   * key listing is 4 elements a key. */
  peerWireElementsMax: 4_000_000,
  /** Entries in a causal context or clock from outside. Actors are node ids,
   * so a real clock never has more entries than nodes ever existed. */
  contextEntriesMax: 256,
  /** Highest dot counter a context may carry. Fresh histories start at the
   * wall clock in microseconds (about 1.8e15 in 2026); 2^52 is 4.5e15 (the
   * year 2112) and leaves 2^52 increments before a counter could stop
   * being an exact double, so no context can make a node mint an unsafe
   * counter. */
  clockCounterMax: 2 ** 52,
  /** A connection must finish HELLO (and AUTH, if it authenticates) within
   * this, or it is closed: silent sockets cannot hold slots. */
  handshakeTimeoutMs: 5_000,
  /** A client connection with nothing in flight and no frame for this long
   * is closed (Redis's `timeout`, off there by default; we bound it). */
  clientIdleTimeoutMs: 300_000,
  /** Requests one peer connection may have in flight; more get OVERLOADED. */
  inFlightPerConnectionMax: 4096,
  /** Requests one client connection may have in flight. At the limit the
   * node stops reading that connection until half have been answered
   * (back-pressure through TCP), and frames already read past it get
   * OVERLOADED: a client that pipelines without reading its replies holds
   * at most this much of the node's work. The client library pipelines far
   * fewer per connection in practice. */
  clientInFlightPerConnectionMax: 128,
  /** Requests the client library keeps waiting for a free slot on one
   * connection (past clientInFlightPerConnectionMax in flight) before it
   * refuses more with OVERLOADED, without sending them. A burst is queued
   * rather than refused by the node; the bound stops a caller that never
   * waits for its promises from queueing without end. */
  clientQueuedRequestsMax: 4096,
  /** Requests one getMany/putMany call keeps in flight at once (each key
   * is its own pipelined request, routed to its own replica). Well under
   * clientInFlightPerConnectionMax, so a batch alone never trips a node's
   * back-pressure and other calls on the same connections keep moving. */
  manyInFlightMax: 32,
  /** Keys (or entries) one getMany/putMany call may name: the results are
   * held in memory until the last key answers, so a call is bounded; split
   * larger jobs. More is TOO_LARGE before anything is sent. */
  manyKeysMax: 10_000,
  /** Bytes queued for one connection's socket before it is dropped as a
   * reader that does not keep up (its requests fail; memory stays bounded). */
  connectionOutputBytesMax: 64 * 1024 * 1024,
  /** Past this many unsent reply bytes on a connection the node stops
   * reading that connection's requests until the peer drains its replies
   * (back-pressure: a client that does not read cannot make the node work). */
  connectionReadPauseBytes: 1024 * 1024,
  /** Unsent reply bytes across every connection of a node. A send that
   * would pass it drops the connection with the most bytes queued. */
  outputBytesTotalMax: 256 * 1024 * 1024,
  /** Authenticated client connections a node accepts at once; more are
   * closed with OVERLOADED. */
  connectionsMax: 1024,
  /** Connections the metrics listener (/metrics, /health, /ready) holds at
   * once. It answers scrapers and probes, a handful of connections; an
   * outsider opening thousands of idle ones took every file descriptor of
   * the node (red team, issue 11). Past it new connections are dropped. */
  metricsConnectionsMax: 64,
  /** A metrics connection silent this long is closed, and its request
   * headers must arrive within it: a probe that sends nothing or dribbles
   * its headers cannot hold a slot. */
  metricsIdleTimeoutMs: 10_000,
  /** Client connections from one remote address, so one host cannot take
   * every slot. */
  connectionsPerSourceMax: 512,
  /** Connections proven to be peers, in a pool of their own: clients can
   * never take a peer's slot. */
  peerConnectionsMax: 512,
  /** Connections still in their handshake. When full, the oldest is closed
   * to make room (a real handshake takes a round trip, a silent socket
   * waits forever), so silent sockets cannot lock anyone out. */
  handshakingConnectionsMax: 256,
  /** A failed login is answered after this delay, doubled for each further
   * failure from the same address within loginFailureWindowMs. */
  loginFailureDelayMs: 250,
  loginFailureDelayMaxMs: 4_000,
  loginFailureWindowMs: 60_000,
  /** Addresses whose failed logins are remembered; the oldest is forgotten. */
  loginSourcesTrackedMax: 10_000,
  /** Users a users file may define, and the file's size. */
  usersMax: 10_000,
  usersFileBytesMax: 4 * 1024 * 1024,
  /** A file the CLI reads for a connection (its connection file, a
   * password file, a TLS certificate, key or CA): far above any real one,
   * so a wrong path (a log, a device) fails at once instead of filling
   * memory. */
  cliConfigBytesMax: 64 * 1024,
  /** How far in the future (by our clock) a gossiped generation may be:
   * generations are start times, so more means a forged or badly skewed
   * clock, and it is ignored. */
  gossipClockSkewMaxMs: 60_000,
  /** How far ahead of this node's clock a context's dot counters may be
   * (counters are the minting node's wall clock in µs): the clock skew
   * tolerated between nodes. More is a forged context and is refused. */
  contextFutureMaxMs: 60_000,
  /** The fastest a node may gossip (config gossipIntervalMs): a heartbeat
   * counter grows at most once per this, so a counter beyond what its
   * generation's age allows is from the future. */
  gossipIntervalMinMs: 10,
  /** Keys whose siblings passed siblingsMax through replica merges, listed
   * in status and refusing blind writes until resolved. */
  oversizedKeysTrackedMax: 1000,
  /** Coordinated requests a node runs at once; more get OVERLOADED. Each
   * holds up to R replica copies of its object, so this bounds a node's
   * working memory (about requestsInFlightMax × object size × N). 4096 is
   * far above what keeps two cores busy (Little's law: 50,000 ops/s × 1 ms
   * is 50 in flight). */
  requestsInFlightMax: 4096,
  /** Writes waiting for the next storage batch; more get OVERLOADED. */
  writeQueueMax: 100_000,
  /** Writes in one LevelDB batch. Large batches raise tail latency. */
  writeBatchMax: 1000,
  /** Replication factor N. */
  replicasMax: 7,
  /** Ring partitions Q (power of two). */
  partitionsMax: 4096,
  partitionsMin: 8,
  /** Nodes in a ring. */
  nodesMax: 256,
  /** Removed nodes a ring remembers (and refuses until wiped); the oldest
   * is forgotten first. */
  removedNodesKept: 64,
  /** Changes staged at once before a commit. */
  stagedChangesMax: 64,
  /** One transfer page: at most this many keys and about this many bytes. */
  transferPageKeysMax: 1000,
  transferPageBytesMax: 1024 * 1024,
  /** A node's transfer limit (`--transfer-mbps`, `tunekv transfer-limit`),
   * in MB/s: below the minimum a transition of a few thousand keys would
   * take hours, above the maximum the figure means nothing. */
  transferMBpsMin: 0.01,
  transferMBpsMax: 100_000,
  /** Transfer pages a receiving node streams at once (all partitions). */
  transfersInFlightMax: 4,
  /** Per-request timeout a caller may ask for. */
  requestTimeoutMaxMs: 60_000,
  requestTimeoutMinMs: 1,
  /** A half-received frame older than this closes the connection. */
  frameReadTimeoutMs: 30_000,
  /** Hints one node keeps for one down owner; a write that would need more
   * is refused by the fallback (it then does not count toward W). */
  hintsPerTargetMax: 1_000_000,
  /** Hints read from storage per handoff batch. */
  handoffBatchMax: 256,
  /** Hand-offs in flight at once from one node. */
  handoffInFlightMax: 64,
  /** Anti-entropy segments repaired per partition exchange; the rest wait
   * for the next round. */
  aaeSegmentsPerExchangeMax: 4096,
  /** Tombstones waiting to be reaped; past it new ones are left in place
   * (harmless, counted) until anti-entropy offers them again. */
  reapQueueMax: 100_000,
  /** Keys scanned per storage page (anti-entropy builds, hint loads). */
  scanPageMax: 10_000,
  /** Bytes of decoded objects a node keeps cached by default (least
   * recently used out first; config objectCacheBytes), charged at their
   * real heap cost (object-store.ts): about 32k keys of 100-byte values.
   * 32 MiB keeps a node with 1M keys within its memory budget (README):
   * V8 lets its heap grow to a few times the live bytes between
   * collections, and this cache is most of what is live. Hot reads and the read half of every read-modify-write then
   * skip LevelDB, whose single gets top out near 70k/s here. */
  objectCacheBytesMax: 32 * 1024 * 1024,
  /** The most a node may be told to cache (config objectCacheBytes): far
   * past any heap Node gives by default, so a typo in megabytes cannot
   * promise more memory than a process can have. */
  objectCacheBytesSettingMax: 16 * 1024 * 1024 * 1024,
  /** LevelDB's block cache (classic-level cacheSize), bytes: uncompressed
   * data blocks of recent reads. LevelDB's own default; the object cache
   * above serves hot keys, so this mostly holds index and filter reads'
   * neighbours. Counted in a node's memory budget (README). */
  levelBlockCacheBytes: 8 * 1024 * 1024,
  /** LevelDB's memtable (classic-level writeBufferSize), bytes. Two may be
   * alive at once (one being flushed), so up to twice this is resident.
   * LevelDB's default, 4 MiB. */
  levelWriteBufferBytes: 4 * 1024 * 1024,
  /** How far V8 lets the old generation grow past what the last full
   * collection found alive before collecting again, in percent (V8's
   * --heap-growing-percent, set when a node opens). Left to itself, V8
   * grows it up to 4x under a steady write load: measured, a node with
   * ~70 MB alive held a 180-220 MB heap and 300-390 MB RSS. At 50% the heap
   * stays near 1.5x what is alive, for a full collection more often
   * (concurrent marking; the README's budget has the figures). The
   * default of the node setting heapGrowthPercent (--heap-growth-percent). */
  heapGrowthPercent: 50,
  /** Members a set may hold: a coordinator refuses an add past it with
   * SET_MEMBERS_LIMIT (replica merges never refuse, so concurrent adds on
   * several coordinators can pass it by what one round adds). A set is one
   * object read and rewritten whole on every operation, so 10,000 members
   * of up to setMemberBytesMax stay within objectBytesMax and one frame. */
  setMembersMax: 10_000,
  /** One set member in UTF-8 bytes. */
  setMemberBytesMax: 1024,
  /** A counter or set key in UTF-8 bytes: keyBytesMax less the 3-byte
   * prefix that gives typed keys their own key space. */
  typedKeyBytesMax: 1024 - 3,
  /** Recent write ids a counter or set remembers, so a retried operation is
   * applied once; a retry older than this many later operations of the same
   * key is applied again. 64 ids cost about 1.6 KB per object (24 bytes
   * each, measured): the bulk of a busy counter, so no more. */
  typedWriteIdsMax: 64,
  /** The highest heapGrowthPercent a node accepts (--heap-growth-percent):
   * V8 itself grows a heap at most 4x between full collections. */
  heapGrowthPercentMax: 300,
  /** Keys a client session remembers (src/client/session-state.ts), most
   * recently used kept: older keys fall out of the session and of its
   * token, and reads of them lose the session's guarantees. 32 keeps a
   * typical token (3-entry clocks, 20-byte keys) near 5 KB, about what a
   * cookie or a header carries; a web request rarely touches more. */
  sessionKeysMax: 32,
  /** Concurrent contexts a session keeps for one key, and so the most a
   * session read's `atLeast` may carry. Only a put given an explicit
   * context can leave two (its reply need not cover the session's); a
   * covering read folds them back to one. Past it the oldest is dropped. */
  sessionContextsPerKeyMax: 4,
  /** Characters of a session token a caller may hand to
   * kv.session(token), checked before decoding: sessionKeysMax keys of
   * keyBytesMax with sessionContextsPerKeyMax small contexts each. */
  sessionTokenCharsMax: 256 * 1024,
  /** Entries (actors) in the version a session keeps of a counter or set
   * (core/crdt/typed-version.ts), and so in a typed read's `atLeast`. An
   * actor is a coordinator of the key (its primaries over time, and the
   * stand-ins of fallbacks): 16 holds several generations of N=3 owners.
   * A state with more gives a subset (a weaker guarantee, never a false
   * "behind"), the update's own actor kept. 16 entries of long actors at
   * sessionKeysMax keys stay well inside sessionTokenCharsMax. */
  sessionTypedEntriesMax: 16,
  /** Read-resolve-write rounds one kv.update() may run (client-side): a
   * round is needed again only when a concurrent writer left a sibling
   * beside ours, so more than a few means a hot key is written blind from
   * many places, and looping on it would only add load. */
  updateRoundsMax: 10,
  /** Records one node's conflict log keeps (conflict-log.ts); the oldest
   * are dropped first. A record is one conflict a node saw: 10,000 covers
   * days at the alert threshold of 100 conflicts an hour. */
  conflictLogRecordsMax: 10_000,
  /** Bytes of records (as stored) one node's conflict log keeps, in memory
   * and on disk; the oldest are dropped first. */
  conflictLogBytesMax: 8 * 1024 * 1024,
  /** A version's value is kept whole in a conflict record up to this many
   * bytes; a larger one is kept as its SHA-256 digest and size. */
  conflictValueBytesMax: 1024,
  /** Versions kept in one conflict record; the rest are counted. */
  conflictVersionsMax: 16,
  /** Records in one CONFLICTS reply page (the CLI asks for the next). */
  conflictsPageMax: 500,
  /** Bytes of records in one CONFLICTS reply page. */
  conflictsPageBytesMax: 1024 * 1024,
  /** A counter or set merge that folds concurrent states is logged as a
   * `type merge` conflict at most once per key in this many ms (every one
   * is counted in tunekv_type_merges_total): concurrent increments are a
   * counter's normal case, and a record per merge would push the log's
   * real conflicts out within minutes. */
  typeMergeLogIntervalMs: 60_000,
  /** Keys whose last `type merge` record time a node remembers for
   * typeMergeLogIntervalMs (the oldest forgotten first: a forgotten key
   * may be logged again sooner). */
  typeMergeLogKeysMax: 10_000,
  /** Log lines of one event name per logWindowMs (server/log.ts): a peer
   * flapping every gossip round or a disk failing every batch would
   * otherwise write lines as fast as it fails. 20 keeps a burst (a ring
   * transition steps many partitions at once) readable in full; the rest
   * of the window is counted and reported in one `log_suppressed` line. */
  logEventsPerWindowMax: 20,
  /** The window logEventsPerWindowMax counts in. */
  logWindowMs: 10_000,
} as const;

export type Limits = typeof limits;

// Relations between limits, asserted at load.
assert.ok(limits.valueBytesMax + limits.keyBytesMax < limits.objectBytesMax,
  'one value must fit in an object');
assert.ok(limits.objectBytesMax * 2 < limits.frameBytesMax,
  'a replica reply carrying an object grown by merges must fit in a frame');
assert.ok(limits.siblingsWarn < limits.siblingsMax, 'warn before failing');
assert.ok(limits.replicasMax <= limits.nodesMax);
assert.ok(limits.objectBytesMax * 2 <= limits.connectionOutputBytesMax, 'a slow reader may have a reply carrying a grown object queued');
assert.ok(limits.connectionOutputBytesMax <= limits.outputBytesTotalMax);
assert.ok(limits.connectionReadPauseBytes < limits.connectionOutputBytesMax);
assert.ok(limits.handshakeFrameBytesMax < limits.clientFrameBytesMax && limits.clientFrameBytesMax < limits.frameBytesMax);
assert.ok(limits.valueBytesMax + limits.keyBytesMax + limits.contextEntriesMax * 128 + 4096 <= limits.clientFrameBytesMax,
  'the largest put a client may send fits in a client frame');
assert.ok(limits.contextEntriesMax >= limits.nodesMax, 'a context may name every node of a ring');
assert.ok(limits.clientWireElementsMax <= limits.peerWireElementsMax);
assert.ok(limits.clockCounterMax * 2 <= Number.MAX_SAFE_INTEGER + 1, 'counters above clockCounterMax stay exact');
assert.ok(Date.now() * 1000 < limits.clockCounterMax, 'fresh histories (wall clock in µs) start below clockCounterMax');
assert.ok(limits.loginFailureDelayMs <= limits.loginFailureDelayMaxMs);
assert.ok(limits.loginFailureDelayMaxMs < limits.handshakeTimeoutMs, 'a failed login is answered before the handshake times out');
assert.ok(limits.vclockEntriesMax >= limits.replicasMax,
  'a clock must hold every replica of a key without pruning');
assert.ok(limits.writeBatchMax <= limits.writeQueueMax);
assert.ok(limits.clientInFlightPerConnectionMax <= limits.inFlightPerConnectionMax);
assert.ok(limits.clientInFlightPerConnectionMax <= limits.requestsInFlightMax);
assert.ok(limits.manyInFlightMax * 2 <= limits.clientInFlightPerConnectionMax, 'one batch leaves room on a connection for other calls');
assert.ok(limits.manyInFlightMax <= limits.manyKeysMax);
assert.ok(limits.objectCacheBytesMax >= 2 * limits.objectBytesMax, 'two of the largest objects fit in the default cache');
assert.ok(limits.objectCacheBytesMax <= limits.objectCacheBytesSettingMax, 'the default cache is a valid setting');
assert.ok(Number.isInteger(Math.log2(limits.partitionsMax)));
assert.ok(Number.isInteger(Math.log2(limits.partitionsMin)));
assert.ok(limits.typedKeyBytesMax + 3 <= limits.keyBytesMax, 'a typed key with its prefix is a valid key');
assert.ok(limits.setMembersMax * (limits.setMemberBytesMax + 64) + limits.typedWriteIdsMax * 64 < limits.objectBytesMax, 'a full set fits in an object');
assert.ok(limits.sessionContextsPerKeyMax * limits.contextEntriesMax * 4 + 64 <= limits.clientWireElementsMax,
  'a session read carrying its most contexts decodes within a client frame\'s elements');
assert.ok(limits.sessionKeysMax * limits.keyBytesMax * 4 / 3 < limits.sessionTokenCharsMax, 'a token of sessionKeysMax long keys fits');
// A typed entry: an actor of at most 64 characters, two int64 totals (9 bytes each), msgpack framing; plus the 16-byte MAC.
assert.ok(limits.sessionKeysMax * (limits.keyBytesMax + limits.sessionTypedEntriesMax * 96 + 32) * 4 / 3 < limits.sessionTokenCharsMax,
  'a token of sessionKeysMax long typed keys with full versions fits');
assert.ok(limits.sessionTypedEntriesMax <= limits.vclockEntriesMax);
assert.ok(limits.conflictVersionsMax * (limits.conflictValueBytesMax + 256) + limits.keyBytesMax + 1024 <= limits.conflictsPageBytesMax,
  'one conflict record (its capped versions, its key) fits in a reply page');
assert.ok(limits.conflictsPageBytesMax * 2 <= limits.conflictLogBytesMax, 'a log holds more than one page');
assert.ok(limits.conflictsPageBytesMax * 4 < limits.frameBytesMax, 'a conflicts page fits in a frame');
