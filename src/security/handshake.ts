// The handshake's cryptography: pure functions that build and check proofs.
// The router (src/server/router.ts) and the client run the messages; this
// file only says what the bytes are.
//
// A connection opens with HELLO {nonce: 32 random bytes} from the dialer and
// HELLO_OK {nonce: 32 random bytes, nodeId} from the node; AUTH then proves
// one of two things, and AUTH_OK proves the node knows it too (mutual):
//
// 1. The cluster secret (peers, the launcher, admin tools):
//      client proof = HMAC-SHA256(clusterKey, M("client"))
//      server proof = HMAC-SHA256(clusterKey, M("server"))
//      M(side) = fields("tunekv secret proof v1", side, clientNonce,
//                       serverNonce, claimed identity, server node id)
//    The side label stops a proof being reflected back as the other side's.
//
// 2. A user's password, SCRAM (RFC 5802) with scrypt in place of PBKDF2:
//      SaltedPassword = scrypt(NFKC(password), salt, N, r, p, 32)
//      ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = SHA256(ClientKey)
//      ServerKey = HMAC(SaltedPassword, "Server Key")
//      AuthMessage = fields("tunekv user auth v1", user, clientNonce,
//                           serverNonce, server node id)
//      ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
//      ServerSignature = HMAC(ServerKey, AuthMessage)
//    The node keeps only StoredKey and ServerKey: it never sees the
//    password, and a copy of the users file is not enough to log in (it
//    lacks ClientKey; it does allow guessing passwords offline at scrypt's
//    cost, and posing as a node to that user, so keep the file private).
//
// Invariants: every MACed message is `fields(...)`: each field is a 4-byte
// big-endian length then its bytes, and the first field is a label naming
// the purpose and version, so no two different tuples, and no two purposes,
// give the same bytes. Strings must be well-formed Unicode (a lone surrogate
// would encode as U+FFFD and collide with it). Proofs are compared with
// timingSafeEqual. Both nonces are exactly nonceBytes long, so each side's
// fresh nonce makes every proof single-use. The server id in a proof is the
// id of the node the dialer meant to reach (it must use the id it expects,
// not one the node told it, or a man in the middle can relay the proof to
// another node). Without TLS the handshake proves who is at each end but
// does not protect what follows; TLS is what protects the channel.

import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { invalid } from '../errors.js';

export const nonceBytes = 32;
/** HMAC-SHA256 output: every proof, signature and key here. */
const macBytes = 32;

export function newNonce(): Buffer {
  return randomBytes(nonceBytes);
}

/** A copy of `v` if it is a Uint8Array of exactly nonceBytes, else null. */
export function checkNonce(v: unknown): Buffer | null {
  if (!(v instanceof Uint8Array) || v.length !== nonceBytes) return null;
  return Buffer.from(v);
}

// ---------------------------------------------------------------------------
// Cluster secret

/** The dialer's (client) or the node's (server) proof of the cluster key. */
export function secretProof(key: Buffer, side: 'client' | 'server', clientNonce: Uint8Array, serverNonce: Uint8Array,
  claimed: string, serverId: string): Buffer {
  checkKey(key, 'key');
  if (side !== 'client' && side !== 'server') throw new TypeError(`side must be 'client' or 'server', not ${String(side)}`);
  checkNonceArg(clientNonce, 'clientNonce');
  checkNonceArg(serverNonce, 'serverNonce');
  checkString(claimed, 'claimed');
  checkString(serverId, 'serverId');
  return hmac(key, fields(['tunekv secret proof v1', side, clientNonce, serverNonce, claimed, serverId]));
}

/**
 * True if `proof` is `side`'s proof for these inputs. False, never a throw,
 * for anything that came off the wire and is malformed: a proof that is not
 * a Uint8Array of 32 bytes, a nonce of the wrong size, an ill-formed string.
 * A key that is not a 32-byte Buffer is a bug in the caller: TypeError.
 */
export function verifySecretProof(key: Buffer, side: 'client' | 'server', clientNonce: Uint8Array, serverNonce: Uint8Array,
  claimed: string, serverId: string, proof: unknown): boolean {
  checkKey(key, 'key');
  if (!isMac(proof)) return false;
  if (checkNonce(clientNonce) === null || checkNonce(serverNonce) === null) return false;
  if (!isWellFormed(claimed) || !isWellFormed(serverId)) return false;
  if (side !== 'client' && side !== 'server') return false;
  return timingSafeEqual(secretProof(key, side, clientNonce, serverNonce, claimed, serverId), proof);
}

// ---------------------------------------------------------------------------
// User passwords (SCRAM with scrypt)

export interface ScryptParams { readonly N: number; readonly r: number; readonly p: number }

/**
 * scrypt's cost for new users and for the fake answer to unknown users.
 * N=16384, r=8, p=1 is what Percival's scrypt paper recommends for
 * interactive logins (under 100 ms): 16 MiB of memory and, measured on this
 * project's development machine (2 vCPU, Node 20.20, OpenSSL 3.0), 34-56 ms
 * per derivation when idle, 58-72 ms with other tests running (N=32768 took
 * 85 ms, N=65536 175 ms; test/security/handshake.test.ts prints it). SCRAM
 * puts that cost on the client, once per login (the client caches the
 * derived key per salt and parameters, see src/io/connection.ts); the node
 * only hashes, so logins cannot make a node slow. Every offline guess
 * against a stolen users file costs the same 16 MiB and tens of ms.
 */
export const defaultScryptParams: ScryptParams = Object.freeze({ N: 16384, r: 8, p: 1 });

export const scryptNMin = 1024;
export const scryptNMax = 1_048_576;
export const scryptRMax = 32;
export const scryptPMax = 16;
/** scrypt's memory is 128 * N * r bytes. The parameters come from the node
 * in HELLO_OK, so a client must check them before it spends memory on them;
 * 256 MiB is more than any login needs and less than any machine has. */
export const scryptMemoryBytesMax = 256 * 1024 * 1024;

/** Salt sizes a users file may hold. 16 bytes (128 bits) is what userLine
 * writes and what fakeSalt answers, so real and fake salts look alike. */
export const saltBytesMin = 16;
export const saltBytesMax = 64;
export const saltBytesDefault = 16;

/** Why `p` is not acceptable scrypt parameters, in plain words, or null. */
export function scryptParamsProblem(p: unknown): string | null {
  if (typeof p !== 'object' || p === null) return 'scrypt parameters must be an object with N, r and p';
  const { N, r, p: par } = p as Record<string, unknown>;
  if (typeof N !== 'number' || !Number.isInteger(N) || N < scryptNMin || N > scryptNMax || (N & (N - 1)) !== 0) {
    return `scrypt N (${String(N)}) must be a power of two from ${scryptNMin} to ${scryptNMax}`;
  }
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > scryptRMax) return `scrypt r (${String(r)}) must be an integer from 1 to ${scryptRMax}`;
  if (typeof par !== 'number' || !Number.isInteger(par) || par < 1 || par > scryptPMax) return `scrypt p (${String(par)}) must be an integer from 1 to ${scryptPMax}`;
  const memoryBytes = 128 * N * r;
  if (memoryBytes > scryptMemoryBytesMax) {
    return `scrypt N (${N}) and r (${r}) need ${memoryBytes / 1024 / 1024} MiB (128 * N * r); the limit is ${scryptMemoryBytesMax / 1024 / 1024} MiB`;
  }
  return null;
}

/**
 * SaltedPassword = scrypt(NFKC(password), salt, N, r, p, 32), off the main
 * thread. The password is NFKC-normalised (as SASLprep does) so the same
 * password typed on different systems gives the same key. Parameters and
 * salt may come from a node, so they are checked first: INVALID_ARGUMENT
 * for out-of-bounds ones, rather than letting a node make us allocate
 * gigabytes.
 */
export function saltedPassword(password: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  if (typeof password !== 'string') return Promise.reject(new TypeError('password must be a string'));
  const problem = scryptParamsProblem(params);
  if (problem !== null) return Promise.reject(invalid(problem));
  if (!(salt instanceof Uint8Array) || salt.length < saltBytesMin || salt.length > saltBytesMax) {
    return Promise.reject(invalid(`salt must be ${saltBytesMin} to ${saltBytesMax} bytes`));
  }
  const { N, r, p } = params;
  // OpenSSL needs 128*r*(N+p+2) bytes (V plus B plus XY); give it that and
  // a little, never the 32 MiB default that N=16384 r=8 would just exceed.
  const maxmem = 128 * r * (N + p + 2) + 64 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, macBytes, { N, r, p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

export function userKeys(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  checkKey(salted, 'salted password');
  const clientKey = hmac(salted, Buffer.from('Client Key'));
  return {
    clientKey,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(salted, Buffer.from('Server Key')),
  };
}

/** What both sides MAC for a user login. The user name is part of it, so a
 * proof for one user is not one for another; the server id, so a proof for
 * one node cannot be replayed at another. */
export function userAuthMessage(user: string, clientNonce: Uint8Array, serverNonce: Uint8Array, serverId: string): Buffer {
  checkString(user, 'user');
  checkNonceArg(clientNonce, 'clientNonce');
  checkNonceArg(serverNonce, 'serverNonce');
  checkString(serverId, 'serverId');
  return fields(['tunekv user auth v1', user, clientNonce, serverNonce, serverId]);
}

/** ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage). */
export function userClientProof(clientKey: Buffer, storedKey: Buffer, authMessage: Buffer): Buffer {
  checkKey(clientKey, 'clientKey');
  checkKey(storedKey, 'storedKey');
  return xor(clientKey, hmac(storedKey, authMessage));
}

/** The node's check: SHA256(ClientProof XOR HMAC(StoredKey, AuthMessage))
 * must be StoredKey. False for a proof that is not 32 bytes. */
export function verifyUserProof(storedKey: Buffer, authMessage: Buffer, proof: unknown): boolean {
  checkKey(storedKey, 'storedKey');
  if (!isMac(proof)) return false;
  const clientKey = xor(proof, hmac(storedKey, authMessage));
  return timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey);
}

/** ServerSignature = HMAC(ServerKey, AuthMessage): the node's proof that it
 * holds this user's entry, checked by the client. */
export function userServerSignature(serverKey: Buffer, authMessage: Buffer): Buffer {
  checkKey(serverKey, 'serverKey');
  return hmac(serverKey, authMessage);
}

export function verifyServerSignature(serverKey: Buffer, authMessage: Buffer, sig: unknown): boolean {
  checkKey(serverKey, 'serverKey');
  if (!isMac(sig)) return false;
  return timingSafeEqual(userServerSignature(serverKey, authMessage), sig);
}

/**
 * The salt a node answers for a user it does not know: the first 16 bytes
 * of HMAC(nodeKey, fields(label, user)), the same size as userLine's salts
 * and the same every time, so asking twice tells nothing. `nodeKey` must be
 * the same on every node and across restarts (secret.ts fakeSaltKey derives
 * it from the cluster key); otherwise comparing answers reveals which names
 * are real. A user whose entry has non-default parameters or salt size is
 * still told apart from a fake one; userLine writes the defaults.
 */
export function fakeSalt(nodeKey: Buffer, user: string): Buffer {
  if (!Buffer.isBuffer(nodeKey) || nodeKey.length < 16) throw new TypeError('nodeKey must be a Buffer of at least 16 bytes');
  checkString(user, 'user');
  return hmac(nodeKey, fields(['tunekv fake salt v1', user])).subarray(0, saltBytesDefault);
}

// ---------------------------------------------------------------------------

/** The canonical encoding of a tuple: each field as a 4-byte big-endian
 * length and its bytes (strings as UTF-8). Exported for tests. */
export function fields(parts: readonly (string | Uint8Array)[]): Buffer {
  const bufs: Buffer[] = [];
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    bufs.push(len, bytes);
  }
  return Buffer.concat(bufs);
}

function hmac(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function isMac(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === macBytes;
}

/** Lone surrogates would be encoded as U+FFFD and collide with it. */
function isWellFormed(s: unknown): s is string {
  return typeof s === 'string' && !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

function checkString(s: unknown, name: string): asserts s is string {
  if (!isWellFormed(s)) throw new TypeError(`${name} must be a well-formed string`);
}

function checkNonceArg(v: unknown, name: string): void {
  if (!(v instanceof Uint8Array) || v.length !== nonceBytes) throw new TypeError(`${name} must be ${nonceBytes} bytes (check it with checkNonce first)`);
}

/** Keys are ours, never off the wire: a wrong one is a bug. */
function checkKey(k: unknown, name: string): void {
  if (!Buffer.isBuffer(k) || k.length !== macBytes) throw new TypeError(`${name} must be a Buffer of ${macBytes} bytes`);
}
