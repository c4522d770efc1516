// The cluster secret: the file that holds it and the keys derived from it.
//
// Every peer, the launcher and admin tools prove they know this secret
// (src/security/handshake.ts); whoever does is fully trusted. So the file is
// treated like an SSH private key: it must be a regular file no one but its
// owner can read (mode & 0o077 == 0), it is small, and it is created
// atomically with mode 0600 so there is no moment at which it exists with
// other permissions or half written.
//
// Invariants: the raw secret never keys anything directly, only through
// clusterKey() (domain-separated), so a future second use of the secret
// cannot collide with the handshake; a secret has at least secretBytesMin
// bytes of material; an existing secret file is never overwritten.

import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const secretFileName = 'cluster.secret';

/** Bytes of secret material a secret must have: 256 bits, the size of the
 * HMAC-SHA256 key it becomes, so guessing it is never the easy way in. */
export const secretBytesMin = 32;
/** The secret file's size: a secret is one line; anything larger is not a
 * secret file (a wrong path), and we refuse it before reading it. */
export const secretFileBytesMax = 4 * 1024;

/** A new secret: 32 random bytes as one line of base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(secretBytesMin).toString('base64url');
}

/**
 * The secret bytes in `file`. Surrounding whitespace is ignored. Text that is
 * canonical base64url (what generateSecret writes) is decoded; any other
 * text is used as its UTF-8 bytes, so an operator may also paste a long
 * passphrase. Only canonical base64url is decoded because Node's decoder
 * ignores stray trailing bits: two different files must never give the same
 * secret. Throws a plain Error naming the file when it is missing, not a
 * regular file, larger than 4 KiB, open to group or others in any way
 * (the message says to `chmod 600` it), or holds fewer than 32 bytes of
 * secret.
 */
export function readSecretFile(file: string): Buffer {
  const text = readFileBounded(file, secretFileBytesMax, 'secret file', 0o077, 0o600).toString('utf8');
  const trimmed = text.trim();
  const secret = decodeSecretText(trimmed);
  if (secret.length < secretBytesMin) {
    throw new Error(`secret file ${file} holds ${secret.length} bytes of secret; at least ${secretBytesMin} are needed (make one with 32 random bytes, e.g. \`openssl rand -base64 32 | tr '+/' '-_' | tr -d '='\`)`);
  }
  return secret;
}

/**
 * The secret in `file`, creating the file (and its directory, mode 0700)
 * with a new secret if it does not exist. Creation writes a temporary file
 * opened with O_EXCL and mode 0600, syncs it and hard-links it into place:
 * the link fails if the file appeared meanwhile, so two processes starting
 * at once agree on one secret, and no reader can ever see an empty or
 * partial secret file. Where hard links are not supported the file is
 * written in place with O_EXCL instead.
 */
export function ensureSecretFile(file: string): { secret: Buffer; created: boolean } {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (fs.existsSync(file)) return { secret: readSecretFile(file), created: false };
  const line = `${generateSecret()}\n`;
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  writeExclusive(tmp, line);
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return { secret: readSecretFile(file), created: false };
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw err;
    try {
      writeExclusive(file, line);
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code === 'EEXIST') return { secret: readSecretFile(file), created: false };
      throw err2;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  syncDir(dir);
  return { secret: readSecretFile(file), created: true };
}

/** The key every cluster-secret proof uses: HMAC-SHA256(secret, label). */
export function clusterKey(secret: Buffer): Buffer {
  checkSecret(secret);
  return createHmac('sha256', secret).update('tunekv cluster key v1').digest();
}

/**
 * The key a node derives fake salts from (handshake.ts fakeSalt) for users
 * it does not know. It must be the same on every node and across restarts:
 * a real user's salt is the same everywhere, so a fake one that differed
 * between nodes or restarts would tell a prober which names are real. The
 * cluster key is the one thing all nodes share, so derive it from that.
 */
export function fakeSaltKey(clusterKeyBytes: Buffer): Buffer {
  if (!Buffer.isBuffer(clusterKeyBytes) || clusterKeyBytes.length !== 32) throw new TypeError('fakeSaltKey needs the 32-byte cluster key');
  return createHmac('sha256', clusterKeyBytes).update('tunekv fake salt key v1').digest();
}

function checkSecret(secret: unknown): asserts secret is Buffer {
  if (!Buffer.isBuffer(secret)) throw new TypeError('secret must be a Buffer');
  if (secret.length < secretBytesMin) throw new TypeError(`secret has ${secret.length} bytes; at least ${secretBytesMin} are needed`);
}

export function decodeSecretText(text: string): Buffer {
  if (/^[A-Za-z0-9_-]+$/.test(text)) {
    const bytes = Buffer.from(text, 'base64url');
    if (bytes.toString('base64url') === text) return bytes;
  }
  return Buffer.from(text, 'utf8');
}

/**
 * Reads a regular file of at most `bytesMax` bytes, refusing it (a plain
 * Error naming the file) if any of `refusedModeBits` is set, with the chmod
 * that fixes it. Checked on the open descriptor (fstat), so the file checked
 * is the file read, and read with a bound, so a file that grows meanwhile
 * cannot make us read more. Windows has no such mode bits; there the mode
 * check is skipped. Shared by the secret, users and TLS files.
 */
export function readFileBounded(file: string, bytesMax: number, what: string, refusedModeBits: number, fixMode?: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new Error(`cannot open ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${what} ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & refusedModeBits) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
      const fixed = (fixMode ?? (st.mode & 0o777 & ~refusedModeBits)).toString(8).padStart(3, '0');
      const set = st.mode & refusedModeBits;
      const lets = (set & 0o044) !== 0 ? ((set & 0o022) !== 0 ? 'read and change' : 'read') : (set & 0o022) !== 0 ? 'change' : 'run';
      throw new Error(`${what} ${file} has mode ${mode}, which lets other users ${lets} it; run \`chmod ${fixed} ${file}\``);
    }
    if (st.size > bytesMax) throw new Error(`${what} ${file} is ${st.size} bytes; the limit is ${bytesMax}`);
    const buf = Buffer.alloc(bytesMax + 1);
    let len = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len > bytesMax) throw new Error(`${what} ${file} is larger than ${bytesMax} bytes`);
    }
    return buf.subarray(0, len);
  } finally {
    fs.closeSync(fd);
  }
}

function writeExclusive(file: string, text: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    // The umask can only remove bits from 0600; set it anyway in case the
    // file system ignored the mode we asked for.
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A secret lost in a crash would be regenerated and differ from the
 * peers', so make the new directory entry durable too. */
function syncDir(dir: string): void {
  if (process.platform === 'win32') return;
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems cannot sync a directory; the file itself is synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
