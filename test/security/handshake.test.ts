// Table-driven tests of the handshake's proofs: each verifies with exactly
// the inputs it was made with and fails when any one of them changes.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import {
  checkNonce, defaultScryptParams, fakeSalt, fields, newNonce, nonceBytes, saltedPassword, scryptParamsProblem,
  secretProof, userAuthMessage, userClientProof, userKeys, userServerSignature, verifySecretProof, verifyServerSignature,
  verifyUserProof,
} from '../../src/security/handshake.js';
import type { ScryptParams } from '../../src/security/handshake.js';
import { TuneKvError } from '../../src/errors.js';

const cheap: ScryptParams = { N: 1024, r: 1, p: 1 };

t.test('nonces', async (t) => {
  const n = newNonce();
  t.equal(n.length, nonceBytes);
  t.not(n.toString('hex'), newNonce().toString('hex'), 'fresh each time');
  t.same(checkNonce(n), n);
  t.same(checkNonce(new Uint8Array(n)), n, 'a plain Uint8Array is accepted');
  const copy = checkNonce(n)!;
  copy[0] = copy[0]! ^ 1;
  t.not(copy[0], n[0], 'checkNonce returns a copy');
  for (const bad of [undefined, null, 'x'.repeat(32), Array(32).fill(0), Buffer.alloc(31), Buffer.alloc(33), Buffer.alloc(0), 42]) {
    t.equal(checkNonce(bad), null, `refuses ${String(bad).slice(0, 20)}`);
  }
});

t.test('fields() is unambiguous', async (t) => {
  t.not(fields(['ab', 'c']).toString('hex'), fields(['a', 'bc']).toString('hex'));
  t.not(fields(['a', '']).toString('hex'), fields(['a']).toString('hex'));
  t.not(fields(['', 'a']).toString('hex'), fields(['a', '']).toString('hex'));
  t.same(fields(['ab']), Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
  t.same(fields([Buffer.from('ab')]), fields(['ab']), 'a string and its UTF-8 bytes are the same field');
});

t.test('secret proofs: verify with the same inputs, fail with any one changed', async (t) => {
  const key = randomBytes(32);
  const base = { key, side: 'client' as 'client' | 'server', cn: newNonce(), sn: newNonce(), claimed: 'node:n2', server: 'n1' };
  const proof = secretProof(base.key, base.side, base.cn, base.sn, base.claimed, base.server);
  t.equal(proof.length, 32);
  t.ok(verifySecretProof(base.key, base.side, base.cn, base.sn, base.claimed, base.server, proof), 'right inputs');
  t.ok(verifySecretProof(base.key, base.side, new Uint8Array(base.cn), base.sn, base.claimed, base.server, new Uint8Array(proof)), 'Uint8Array as well as Buffer');
  const flip = (b: Buffer): Buffer => { const c = Buffer.from(b); c[31] = c[31]! ^ 0x80; return c; };
  const changed: [string, Partial<typeof base>][] = [
    ['key', { key: randomBytes(32) }],
    ['side', { side: 'server' }],
    ['client nonce', { cn: flip(base.cn) }],
    ['server nonce', { sn: flip(base.sn) }],
    ['nonces swapped', { cn: base.sn, sn: base.cn }],
    ['claimed identity', { claimed: 'node:n3' }],
    ['claimed admin instead of node', { claimed: 'admin' }],
    ['server id', { server: 'n2' }],
    ['claimed and server id shifting one character', { claimed: 'node:n21', server: '' }],
  ];
  for (const [what, change] of changed) {
    const v = { ...base, ...change };
    t.notOk(verifySecretProof(v.key, v.side, v.cn, v.sn, v.claimed, v.server, proof), `${what} changed`);
  }
  t.notOk(verifySecretProof(key, 'client', base.cn, base.sn, base.claimed, base.server, flip(proof)), 'proof changed');
});

t.test("one side's secret proof is not the other's", async (t) => {
  const key = randomBytes(32);
  const cn = newNonce(), sn = newNonce();
  const client = secretProof(key, 'client', cn, sn, 'admin', 'n1');
  const server = secretProof(key, 'server', cn, sn, 'admin', 'n1');
  t.not(client.toString('hex'), server.toString('hex'));
  t.notOk(verifySecretProof(key, 'server', cn, sn, 'admin', 'n1', client), 'a client proof reflected back as the server');
  t.notOk(verifySecretProof(key, 'client', cn, sn, 'admin', 'n1', server), 'a server proof replayed as a client');
  t.ok(verifySecretProof(key, 'server', cn, sn, 'admin', 'n1', server));
});

t.test('malformed wire input is false, not a throw', async (t) => {
  const key = randomBytes(32);
  const cn = newNonce(), sn = newNonce();
  const proof = secretProof(key, 'client', cn, sn, 'admin', 'n1');
  const badProofs: [string, unknown][] = [
    ['undefined', undefined], ['null', null], ['string', proof.toString('hex')], ['array', [...proof]],
    ['short', proof.subarray(0, 31)], ['long', Buffer.concat([proof, Buffer.alloc(1)])], ['empty', Buffer.alloc(0)],
    ['object', { 0: 1 }], ['number', 7],
  ];
  for (const [what, bad] of badProofs) {
    t.equal(verifySecretProof(key, 'client', cn, sn, 'admin', 'n1', bad), false, `secret proof: ${what}`);
    t.equal(verifyUserProof(key, Buffer.from('m'), bad), false, `user proof: ${what}`);
    t.equal(verifyServerSignature(key, Buffer.from('m'), bad), false, `server signature: ${what}`);
  }
  t.equal(verifySecretProof(key, 'client', Buffer.alloc(31), sn, 'admin', 'n1', proof), false, 'short client nonce');
  t.equal(verifySecretProof(key, 'client', cn, 'x' as unknown as Buffer, 'admin', 'n1', proof), false, 'server nonce not bytes');
  t.equal(verifySecretProof(key, 'client', cn, sn, 'admin\uD800', 'n1', proof), false, 'lone surrogate in claimed');
  t.equal(verifySecretProof(key, 'client', cn, sn, 42 as unknown as string, 'n1', proof), false, 'claimed not a string');
  t.equal(verifySecretProof(key, 'both' as 'client', cn, sn, 'admin', 'n1', proof), false, 'unknown side');
});

t.test('API misuse is a TypeError', async (t) => {
  const cn = newNonce(), sn = newNonce();
  t.throws(() => secretProof(Buffer.alloc(16), 'client', cn, sn, 'a', 'n1'), TypeError, 'short key');
  t.throws(() => secretProof('k' as unknown as Buffer, 'client', cn, sn, 'a', 'n1'), TypeError, 'key not a buffer');
  t.throws(() => verifySecretProof(Buffer.alloc(16), 'client', cn, sn, 'a', 'n1', Buffer.alloc(32)), TypeError, 'short key when verifying');
  t.throws(() => secretProof(randomBytes(32), 'client', Buffer.alloc(8), sn, 'a', 'n1'), TypeError, 'short nonce');
  t.throws(() => secretProof(randomBytes(32), 'client', cn, sn, '\uDC00', 'n1'), TypeError, 'lone surrogate');
  t.throws(() => userAuthMessage('u', cn, Buffer.alloc(0), 'n1'), TypeError);
  t.throws(() => fakeSalt(Buffer.alloc(8), 'u'), TypeError);
});

t.test('scrypt parameter bounds', async (t) => {
  const ok: ScryptParams[] = [defaultScryptParams, cheap, { N: 1_048_576, r: 2, p: 16 }, { N: 262_144, r: 8, p: 1 }, { N: 8192, r: 32, p: 16 }];
  for (const p of ok) t.equal(scryptParamsProblem(p), null, JSON.stringify(p));
  const bad: [unknown, RegExp][] = [
    [null, /object/], ['x', /object/], [{ r: 8, p: 1 }, /N/], [{ N: 16383, r: 8, p: 1 }, /power of two/],
    [{ N: 512, r: 8, p: 1 }, /1024/], [{ N: 2_097_152, r: 1, p: 1 }, /1048576/], [{ N: 16384, r: 0, p: 1 }, /r \(0\)/],
    [{ N: 16384, r: 33, p: 1 }, /r \(33\)/], [{ N: 16384, r: 8, p: 0 }, /p \(0\)/], [{ N: 16384, r: 8, p: 17 }, /p \(17\)/],
    [{ N: 16384, r: 1.5, p: 1 }, /r/], [{ N: '16384', r: 8, p: 1 }, /N/], [{ N: 16384, r: 8, p: Number.NaN }, /p/],
    [{ N: 524_288, r: 8, p: 1 }, /512 MiB.*256 MiB/], [{ N: 1_048_576, r: 32, p: 1 }, /MiB/],
  ];
  for (const [p, re] of bad) t.match(scryptParamsProblem(p), re, JSON.stringify(p));
});

t.test('saltedPassword checks what a node sent before spending memory', async (t) => {
  const salt = randomBytes(16);
  await t.rejects(saltedPassword('pw', salt, { N: 1_048_576, r: 32, p: 1 }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(saltedPassword('pw', Buffer.alloc(8), cheap), { code: 'INVALID_ARGUMENT' });
  await t.rejects(saltedPassword('pw', Buffer.alloc(65), cheap), TuneKvError);
  await t.rejects(saltedPassword(1 as unknown as string, salt, cheap), TypeError);
  const a = await saltedPassword('pw', salt, cheap);
  t.equal(a.length, 32);
  t.same(await saltedPassword('pw', salt, cheap), a, 'deterministic');
  t.not((await saltedPassword('pw', randomBytes(16), cheap)).toString('hex'), a.toString('hex'), 'salt matters');
  t.not((await saltedPassword('pw', salt, { N: 2048, r: 1, p: 1 })).toString('hex'), a.toString('hex'), 'params matter');
  t.same(await saltedPassword('caf\u00e9', salt, cheap), await saltedPassword('cafe\u0301', salt, cheap), 'NFKC: composed and decomposed are one password');
  // The largest memory the bounds allow, and p at its maximum: maxmem must be enough.
  t.equal((await saltedPassword('pw', salt, { N: 1024, r: 32, p: 16 })).length, 32, 'r and p at their maxima');
});

t.test('default scrypt cost, measured', async (t) => {
  const salt = randomBytes(16);
  await saltedPassword('warm up', salt, defaultScryptParams);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    await saltedPassword('correct horse battery staple', salt, defaultScryptParams);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.comment(`scrypt N=${defaultScryptParams.N} r=${defaultScryptParams.r} p=${defaultScryptParams.p}: ${times.map((x) => x.toFixed(1)).join(', ')} ms`);
  t.ok(Math.min(...times) < 2000, 'a login costs well under a second or two');
});

async function scram(password: string, salt = randomBytes(16)) {
  const { clientKey, storedKey, serverKey } = userKeys(await saltedPassword(password, salt, cheap));
  return { salt, clientKey, storedKey, serverKey };
}

t.test('SCRAM: keys, proof and server signature', async (t) => {
  const u = await scram('hunter2');
  t.same(u.storedKey, createHash('sha256').update(u.clientKey).digest(), 'StoredKey = SHA256(ClientKey)');
  const cn = newNonce(), sn = newNonce();
  const msg = userAuthMessage('alice', cn, sn, 'n1');
  const proof = userClientProof(u.clientKey, u.storedKey, msg);
  t.ok(verifyUserProof(u.storedKey, msg, proof), 'right password');
  const sig = userServerSignature(u.serverKey, msg);
  t.ok(verifyServerSignature(u.serverKey, msg, sig), 'the node proves it holds the entry');
  t.notOk(verifyServerSignature(u.storedKey, msg, sig), 'a signature under another key does not verify');
  t.notOk(verifyServerSignature(u.serverKey, userAuthMessage('alice', cn, sn, 'n2'), sig), 'a signature for another node does not verify');

  const wrong = await scram('hunter3', u.salt);
  t.notOk(verifyUserProof(u.storedKey, msg, userClientProof(wrong.clientKey, wrong.storedKey, msg)), 'wrong password');
  t.notOk(verifyUserProof(u.storedKey, msg, userClientProof(u.storedKey, u.storedKey, msg)), 'StoredKey used as if it were ClientKey');
  t.notOk(verifyUserProof(u.storedKey, msg, userClientProof(u.serverKey, u.storedKey, msg)), 'ServerKey used as if it were ClientKey');
  t.notOk(verifyUserProof(u.storedKey, msg, u.storedKey), 'StoredKey sent as the proof');

  const flip = (b: Buffer): Buffer => { const c = Buffer.from(b); c[0] = c[0]! ^ 1; return c; };
  const others: [string, Buffer][] = [
    ['user', userAuthMessage('alicf', cn, sn, 'n1')],
    ['client nonce', userAuthMessage('alice', flip(cn), sn, 'n1')],
    ['server nonce', userAuthMessage('alice', cn, flip(sn), 'n1')],
    ['server id', userAuthMessage('alice', cn, sn, 'n2')],
    ['nonces swapped', userAuthMessage('alice', sn, cn, 'n1')],
  ];
  for (const [what, other] of others) {
    t.notOk(verifyUserProof(u.storedKey, other, proof), `a proof does not verify with another ${what}`);
  }
  t.notOk(verifyUserProof(u.storedKey, msg, flip(proof)), 'proof changed');
});

t.test('fake salts', async (t) => {
  const nodeKey = randomBytes(32);
  const a = fakeSalt(nodeKey, 'mallory');
  t.equal(a.length, 16, 'the size userLine writes');
  t.same(fakeSalt(nodeKey, 'mallory'), a, 'stable: asking twice tells nothing');
  t.same(fakeSalt(Buffer.from(nodeKey), 'mallory'), a, 'depends on the key bytes only');
  t.not(fakeSalt(nodeKey, 'mallorz').toString('hex'), a.toString('hex'), 'differs per user');
  t.not(fakeSalt(randomBytes(32), 'mallory').toString('hex'), a.toString('hex'), 'differs per key');
});
