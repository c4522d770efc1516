// The object cache's byte accounting: what it charges covers what it holds.
// A value decoded from a peer's frame is a view into the socket chunk it
// came in; cached as is, it kept the chunk alive while being charged as a
// hundred bytes (issue 9: nodes at 0.86-1.25 GB with a "64 MiB" cache).
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { MemoryStorage } from '../../src/io/storage.js';
import { decodeObject, encodeObject } from '../../src/protocol/object-codec.js';
import { dataKey } from '../../src/server/keyspace.js';
import { ObjectStore, cacheCharge, compactObject, retainedBytes, unknown } from '../../src/server/object-store.js';

/** A 100-byte value and a 16-byte write id that are views into one 64 KiB
 * chunk, as msgpackr hands out a frame's bins. */
function fromFrame(i: number): { value: Uint8Array; wid: Uint8Array } {
  const chunk = Buffer.alloc(64 * 1024, i & 0xff);
  return { value: chunk.subarray(1000, 1100), wid: chunk.subarray(2000, 2016) };
}

const put = (cur: VersionedObject | undefined, i: number): VersionedObject => {
  const { value, wid } = fromFrame(i);
  return update(cur, { actor: 'n1', value, vtype: 1, context: cur?.clock ?? emptyClock, nowMs: 1_700_000_000_000 + i, lww: false, wid });
};

async function openStore(cacheBytesMax: number): Promise<ObjectStore> {
  const storage = new MemoryStorage();
  await storage.open();
  return new ObjectStore(storage, false, { cacheBytesMax });
}

t.test('a cached object never keeps the frame it was decoded from alive', async (t) => {
  const store = await openStore(256 * 1024);
  const keys = 1000;
  for (let i = 0; i < keys; i++) await (await store.mutate(`k${i}`, (cur) => put(cur, i))).durable;
  const use = store.cacheUse;
  t.ok(use.keys > 0 && use.keys < keys, `the cache holds some keys and evicted the rest (${use.keys})`);
  t.ok(use.bytes <= use.bytesMax, `charge ${use.bytes} within ${use.bytesMax}`);
  let charged = 0;
  let retained = 0;
  for (let i = 0; i < keys; i++) {
    const o = store.peek(`k${i}`);
    if (o === unknown || o === undefined) continue;
    charged += cacheCharge(dataKey(`k${i}`), o);
    retained += retainedBytes(o);
    t.equal(valueOf(o), String.fromCharCode(i & 0xff).repeat(100), 'the copy holds the value');
  }
  t.equal(charged, use.bytes, 'the running charge is the sum of the entries');
  t.ok(retained <= use.keys * 116, `ArrayBuffers held: ${retained} bytes for ${use.keys} keys of 116 value bytes (not 64 KiB chunks)`);
});

t.test('charges follow the measured heap cost of an entry', async (t) => {
  // Copied, as storage hands out an object's bytes (encodeObject's are a
  // view into msgpackr's shared output buffer).
  const o = decodeObject(new Uint8Array(encodeObject(put(undefined, 1))));
  // 1025 bytes measured for this shape (object-store.ts, cacheEntryBytes).
  t.ok(cacheCharge(dataKey('bench:123456'), o) >= 1025, `charge ${cacheCharge(dataKey('bench:123456'), o)}`);
  t.ok(cacheCharge('d0000000bench:1', null) >= 128, 'a known absence costs its entry');
  const loose = put(undefined, 2);
  t.ok(retainedBytes(loose) >= 64 * 1024, 'a view into a frame retains the frame');
  const tight = compactObject(loose);
  t.equal(retainedBytes(tight), 116, 'compacted: one ArrayBuffer of the value and write id');
  t.same(tight, loose, 'same contents');
  t.equal(compactObject(o), o, 'an object that owns its memory is cached as it is');
});

t.test('a cache of 0 bytes caches nothing and reads stay right', async (t) => {
  const store = await openStore(0);
  await (await store.mutate('a', (cur) => put(cur, 7))).durable;
  t.equal(store.peek('a'), unknown, 'nothing cached');
  t.equal(store.cacheUse.bytes, 0);
  t.equal(valueOf(await store.read('a')), '\u0007'.repeat(100), 'read from storage');
  t.equal(valueOf(await store.read('missing')), '', 'absent');
});

function valueOf(o: VersionedObject | undefined): string {
  return o ? Buffer.from(o.siblings[0]?.value ?? []).toString('latin1') : '';
}
