// Property-based fuzzing of the wire against one real node process, and a
// node that must start on a data directory holding undecodable objects.
//
// Fuzz property: every frame (arbitrary bytes; a valid header around
// arbitrary bytes; a valid header around any msgpack value; a request of
// every type in `requestTypes` with its own field names and near-valid or
// hostile values), sent before HELLO or after one (protected mode makes a
// loopback client `write`), is answered with a frame or its connection is
// closed within a few seconds; and after every batch the node process is
// alive and a new client can put and get. The seed is fixed and printed;
// replay with TUNEKV_FUZZ_SEED=<seed> (and TUNEKV_FUZZ_RUNS=<batches>).
// The longer run, with admin-authenticated peer messages and 3 nodes, is
// `node dist/bench/fuzz.js`.

import t from 'tap';
import fc from 'fast-check';
import { Level } from 'level';
import { adminAuth, isNodeProcess, probe } from '../../cluster/launcher.js';
import { connect } from '../../src/index.js';
import { keyHash } from '../../src/core/ring/hash.js';
import { pack } from '../../src/protocol/codec.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import { MsgType, msgTypeName, protocolVersion, requestTypes } from '../../src/protocol/messages.js';
import { TuneKvError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';
import { RawConn, batchArb, newStats, openIn, runBatch } from '../../bench/fuzz-wire.js';
import type { FuzzStats, Violation } from '../../bench/fuzz-wire.js';
import { testCluster } from '../helpers/cluster.js';

const seed = Number(process.env.TUNEKV_FUZZ_SEED ?? 20_250_607);
const runs = Number(process.env.TUNEKV_FUZZ_RUNS ?? 110);

function summary(s: FuzzStats): string {
  const sorted = (m: Record<string, number>) => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `frames tried: ${s.frames} on ${s.connections} connections (seed ${seed}, ${runs} batches)`,
    `by class: ${sorted(s.byClass)}`,
    `replies: ${sorted(s.replies)}`,
    `connections closed by the node: ${s.closedByNode}; frames answered by a close alone: ${sorted(s.closedWithoutReply) || 0}`,
  ].join('\n');
}

t.test('fuzzed frames and bodies against one node over real TCP', async (t) => {
  const cluster = await testCluster(t, { nodes: 1, n: 1 });
  const nd = cluster.file().nodes[0]!;
  const stats = newStats();
  t.comment(`fuzz seed ${seed}, ${runs} batches of 1-6 frames (replay: TUNEKV_FUZZ_SEED=${seed})`);
  const started = Date.now();
  let batchNo = 0;
  let liveness = 0;

  await fc.assert(fc.asyncProperty(batchArb(['prehello', 'client'], 6), async (batch) => {
    batchNo++;
    const violations: Violation[] = await runBatch(batch, {
      host: nd.host, port: nd.port, replyWaitMs: 3000, authWaitMs: 9000, connectWaitMs: 3000, spreadSources: true,
    }, stats);
    if (violations.length > 0) {
      throw new Error(`batch ${batchNo} (${batch.mode}): ${violations.map((v) => `frame ${v.frameIndex}: ${v.kind}: ${v.detail}; bytes ${v.hex}`).join(' | ')}`);
    }
    if (!isNodeProcess(nd.pid, nd.id)) throw new Error(`node ${nd.id} (pid ${nd.pid}) is gone after batch ${batchNo}; see ${nd.logFile}`);
    const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
    try {
      const key = `live:${batchNo}`;
      await kv.put(key, `v${batchNo}`);
      const got = await kv.get(key);
      if (got.values[0] !== `v${batchNo}`) throw new Error(`after batch ${batchNo} a normal get returned ${JSON.stringify(got.values)}`);
      liveness++;
    } finally {
      await kv.close();
    }
  }), { seed, numRuns: runs, endOnFailure: true });

  t.comment(summary(stats));
  t.comment(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.equal(liveness, runs, `the node was alive and served a new client's put and get after each of ${runs} batches`);
  t.ok(stats.frames >= 300, `at least 300 frames tried (${stats.frames})`);
  t.ok((stats.byClass['prehello/shaped'] ?? 0) > 0 && (stats.byClass['client/shaped'] ?? 0) > 0, 'request bodies were tried before and after HELLO');
  const untried = [...requestTypes].map((n) => msgTypeName(n)!).filter((name) => !(stats.shapedByType[name]! > 0));
  t.same(untried, [], `a body shaped for every request type was tried (${Object.entries(stats.shapedByType).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  t.equal(stats.undecodableReplies, 0, 'every reply the node sent could be decoded');
  t.same(stats.internal, [], 'no request made the node report an INTERNAL error (a broken invariant)');
});

// A data key as keyspace.ts lays it out: d, 8 hex digits of the key's hash, the key.
const dataKeyOf = (key: string): string => `d${keyHash(key).toString(16).padStart(8, '0')}${key}`;

t.test('a node starts on a data directory holding stored objects that cannot be decoded', async (t) => {
  const cluster = await testCluster(t, { nodes: 1, n: 1 });
  const nd = cluster.file().nodes[0]!;
  const kv1 = await connect({ hosts: cluster.hosts });
  await kv1.put('good', 'ok');
  await kv1.close();
  await cluster.stop();

  const garbage: [string, Buffer][] = [
    ['bad:not-msgpack', Buffer.from([0xc1, 0xff, 0x00, 0x41, 0x42])],
    ['bad:wrong-shape', pack({ hello: 'world' })],
    ['bad:truncated', pack([[['n1', 1, 1]], [['n1', 1, 1, 0, 0, Buffer.from('value'), null]]]).subarray(0, 12)],
    ['bad:negative-counter', pack([[['n1', 1, 1]], [['n1', -1, 1, 0, 0, Buffer.from('v'), null]]])],
    ['bad:too-deep', Buffer.concat([Buffer.alloc(100, 0x91), Buffer.from([0xc0])])],
    ['bad:empty', Buffer.alloc(0)],
  ];
  const db = new Level<string, Uint8Array>(nd.dataDir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  for (const [key, bytes] of garbage) await db.put(dataKeyOf(key), bytes);
  await db.close();

  // startCluster throws if the node exits or is not ready within 30 s.
  await t.resolves(cluster.start(), 'the node starts');
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  t.same((await kv.get('good')).values, ['ok'], 'the decodable key still reads');
  for (const [key] of garbage) {
    const got = await kv.get(key).catch((err: Error) => err);
    t.notOk(got instanceof Error, `${key} reads without an error (${got instanceof Error ? got.message : 'ok'})`);
    if (!(got instanceof Error)) t.equal(got.found, false, `${key} reads as absent`);
  }
  await kv.put('bad:not-msgpack', 'fresh');
  t.same((await kv.get('bad:not-msgpack')).values, ['fresh'], 'a key whose object was set aside takes a new put');

  let quarantined: unknown;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const st = await probe(nd.host, nd.port, 2000, adminAuth(cluster.dir));
    quarantined = (st?.storage as { quarantined?: unknown } | undefined)?.quarantined;
    if (quarantined === garbage.length) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(quarantined, garbage.length, 'status counts every undecodable object (storage.quarantined)');
  await kv.close();
  await cluster.stop();

  const after = new Level<string, Uint8Array>(nd.dataDir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await after.open();
  try {
    for (const [key, bytes] of garbage.slice(1)) {
      const kept = await after.get(`q${dataKeyOf(key)}`);
      t.ok(kept !== undefined && Buffer.from(kept).equals(bytes), `${key}: set aside byte for byte under q<data key>`);
      t.equal(await after.get(dataKeyOf(key)), undefined, `${key}: no longer in the data range`);
    }
  } finally {
    await after.close();
  }
});

// Found while building the fuzzer and its benchmarks (bench/fuzz.ts,
// bench/idle-clients.ts); each is a contract the README states.
t.test('contracts found by fuzzing and its benchmarks', async (t) => {
  const cluster = await testCluster(t, { nodes: 1, n: 1 });
  const nd = cluster.file().nodes[0]!;

  await t.test('a request pipelined right behind HELLO may be as large as a client frame', async (t) => {
    // The client library sends its first request in the same write as HELLO.
    // Limits: handshakeFrameBytesMax applies *before* the handshake, and
    // clientFrameBytesMax to an established client; a 100 KiB put behind a
    // HELLO that establishes the connection is a client's frame.
    const value = Buffer.alloc(100 * 1024, 0x61);
    t.ok(value.length > limits.handshakeFrameBytesMax && value.length < limits.clientFrameBytesMax, 'the put is between the two limits');
    const conn = await RawConn.open(nd.host, nd.port, 3000);
    t.teardown(() => conn.destroy());
    conn.send(Buffer.concat([
      encodeFrame(MsgType.HELLO, 0, { protocol: protocolVersion, agent: 'fuzz-test' }),
      encodeFrame(MsgType.PUT, 1, { key: 'pipelined-big', value, vtype: 0 }),
    ]));
    const hello = await conn.waitReply(0, 3000);
    t.equal(hello.reply?.type, MsgType.HELLO_OK, `HELLO answered HELLO_OK (got ${JSON.stringify(hello.reply?.body ?? hello.outcome)})`);
    const put = await conn.waitReply(1, 3000);
    t.equal(put.reply?.type, MsgType.PUT_REPLY, `the pipelined 100 KiB put is applied (got ${JSON.stringify(put.reply?.body ?? put.outcome)})`);
  });

  await t.test('a value stored as msgpack that is not msgpack does not break readers', async (t) => {
    // Any writer can send vtype 2 (msgpack) with arbitrary bytes. Either the
    // node refuses it, or a reader gets a TuneKvError with a code (README:
    // every error is a TuneKvError) rather than a decoder exception.
    const conn = await openIn('client', nd.host, nd.port, undefined, 3000);
    t.teardown(() => conn.destroy());
    conn.send(encodeFrame(MsgType.PUT, 7, { key: 'poisoned', value: Buffer.from([0x01, 0x02]), vtype: 2 }));
    const put = await conn.waitReply(7, 3000);
    const refused = put.reply?.type === MsgType.ERROR && (put.reply.body as { code?: string }).code === 'INVALID_ARGUMENT';
    if (refused) {
      t.pass('the node refuses a msgpack value that does not decode');
      return;
    }
    t.equal(put.reply?.type, MsgType.PUT_REPLY, 'otherwise the put was stored');
    const kv = await connect({ hosts: cluster.hosts });
    t.teardown(() => kv.close());
    const got = await kv.get('poisoned').then((g) => g, (err: unknown) => err);
    if (got instanceof Error) {
      t.ok(got instanceof TuneKvError, `kv.get fails with a TuneKvError, not ${got.constructor.name}: ${got.message}`);
    } else {
      t.pass('kv.get answers');
    }
  });
  await t.test('a connect() that fails leaves no connection open', async (t) => {
    // Seen under load: every connect() whose ring fetch timed out left its
    // connection open, so the node kept them as clients (until its 5-minute
    // idle timeout) and the caller's process held the sockets.
    await cluster.pause(nd.id);
    let resumed = false;
    t.teardown(async () => { if (!resumed) await cluster.resume(nd.id); });
    for (let i = 0; i < 3; i++) {
      const err = await connect({ hosts: cluster.hosts, timeoutMs: 300, connectTimeoutMs: 300 }).then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof TuneKvError, `connect() to a stopped node fails (${(err as Error | undefined)?.message})`);
    }
    await cluster.resume(nd.id);
    resumed = true;
    let clients: unknown;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const st = await probe(nd.host, nd.port, 2000, adminAuth(cluster.dir));
      clients = (st?.connections as { client?: unknown } | undefined)?.client;
      if (clients === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    t.equal(clients, 0, 'the node holds no client connection from the failed connect() calls');
  });
});
