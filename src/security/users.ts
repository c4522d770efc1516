// Users, their roles, and the users file (`tunekv node --users-file FILE`).
//
// The users file holds one user per line; blank lines and lines starting
// with `#` are ignored:
//
//     # user:role:scrypt$N$r$p$salt$StoredKey$ServerKey
//     alice:write:scrypt$16384$8$1$<salt>$<StoredKey>$<ServerKey>
//
//   - user: 1 to 64 characters of A-Z a-z 0-9 _ . @ -
//   - role: read (get, status), write (read, plus put and delete) or admin
//     (write, plus faults and cluster changes)
//   - N, r, p: scrypt's cost; N a power of two from 1024 to 1048576, r 1-32,
//     p 1-16, and 128 * N * r at most 256 MiB
//   - salt: 16 to 64 bytes; StoredKey and ServerKey: 32 bytes; all three in
//     standard base64 with padding
// StoredKey and ServerKey are SCRAM's (see src/security/handshake.ts): the
// node never learns a password, and a copy of the file does not let anyone
// log in. Make lines with userLine() (`tunekv users add NAME --role R`). The
// file is read once, at start; at most usersMax users and usersFileBytesMax
// bytes.
//
// Permissions: the file may be readable by others, because it holds no
// password equivalent, but 0600 (or 0640) is still better: a reader can
// guess passwords offline at scrypt's cost per guess, and pose as a node to
// these users (ServerKey). A file others may *change* is refused: whoever
// can add a line can make themselves admin.
//
// Invariants: every entry has passed every check below (a name that
// matches the pattern, a known role, bounded scrypt parameters, salt and
// key sizes); a user name appears once.

import { randomBytes } from 'node:crypto';
import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import {
  defaultScryptParams, saltBytesDefault, saltBytesMax, saltBytesMin, saltedPassword, scryptParamsProblem, userKeys,
} from './handshake.js';
import type { ScryptParams } from './handshake.js';
import { readFileBounded } from './secret.js';

/** Hierarchical: write includes read; admin includes write and read. */
export type Role = 'read' | 'write' | 'admin';

const roleRank: Readonly<Record<Role, number>> = { read: 1, write: 2, admin: 3 };

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && Object.hasOwn(roleRank, v);
}

/** True if a caller with role `have` may do what needs `need`. Anything
 * that is not a role allows nothing (fails closed). */
export function roleAllows(have: Role, need: Role): boolean {
  if (!isRole(have) || !isRole(need)) return false;
  return roleRank[have] >= roleRank[need];
}

export const userNamePattern = /^[A-Za-z0-9_.@-]{1,64}$/;

/** Why `v` is not a user name, or null. */
export function userNameProblem(v: unknown): string | null {
  if (typeof v !== 'string' || !userNamePattern.test(v)) return 'a user name is 1 to 64 characters of A-Z a-z 0-9 _ . @ -';
  return null;
}

export interface UserEntry {
  readonly user: string;
  readonly role: Role;
  readonly salt: Buffer;
  readonly params: ScryptParams;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const keyBytes = 32;

/**
 * The users in `text`, the contents of a users file. Throws a plain Error
 * whose message starts `FILE:LINE:` and says what is wrong, for the first
 * bad line.
 */
export function parseUsers(text: string, fileName = 'users file'): Map<string, UserEntry> {
  if (typeof text !== 'string') throw new TypeError('users file text must be a string');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.usersFileBytesMax) throw new Error(`${fileName} is ${bytes} bytes; the limit is ${limits.usersFileBytesMax}`);
  const users = new Map<string, UserEntry>();
  const lineOf = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = `${fileName}:${i + 1}`;
    const parsed = parseUserLine(line);
    if (typeof parsed === 'string') throw new Error(`${at}: ${parsed}`);
    const first = lineOf.get(parsed.user);
    if (first !== undefined) throw new Error(`${at}: user ${parsed.user} is already defined on line ${first}`);
    if (users.size >= limits.usersMax) throw new Error(`${at}: more than ${limits.usersMax} users (usersMax)`);
    users.set(parsed.user, parsed);
    lineOf.set(parsed.user, i + 1);
  }
  return users;
}

/**
 * The users in `file`. Refuses (a plain Error naming the file) a file over
 * usersFileBytesMax, one others may change (see the header), one that is
 * not UTF-8, and any bad line (parseUsers).
 */
export function readUsersFile(file: string): Map<string, UserEntry> {
  const bytes = readFileBounded(file, limits.usersFileBytesMax, 'users file', 0o022);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`users file ${file} is not UTF-8 text`);
  }
  return parseUsers(text, file);
}

/**
 * One line of a users file for `user` with `password`: a fresh 16-byte
 * salt and the default scrypt cost unless given (tests pass cheap ones).
 * Rejects bad arguments with INVALID_ARGUMENT.
 */
export async function userLine(user: string, password: string, role: Role, params: ScryptParams = defaultScryptParams,
  salt: Buffer = randomBytes(saltBytesDefault)): Promise<string> {
  const nameProblem = userNameProblem(user);
  if (nameProblem !== null) throw invalid(`${nameProblem}, not ${JSON.stringify(user)}`);
  if (!isRole(role)) throw invalid(`role must be read, write or admin, not ${JSON.stringify(role)}`);
  if (typeof password !== 'string' || password.length === 0) throw invalid('password must be a non-empty string');
  const problem = scryptParamsProblem(params);
  if (problem !== null) throw invalid(problem);
  if (!Buffer.isBuffer(salt) || salt.length < saltBytesMin || salt.length > saltBytesMax) {
    throw invalid(`salt must be ${saltBytesMin} to ${saltBytesMax} bytes`);
  }
  const { storedKey, serverKey } = userKeys(await saltedPassword(password, salt, params));
  const b64 = (b: Buffer): string => b.toString('base64');
  return `${user}:${role}:scrypt$${params.N}$${params.r}$${params.p}$${b64(salt)}$${b64(storedKey)}$${b64(serverKey)}`;
}

/** One non-comment line, or why it is not a user. */
function parseUserLine(line: string): UserEntry | string {
  const parts = line.split(':');
  if (parts.length !== 3) return `expected user:role:scrypt$N$r$p$salt$storedKey$serverKey, found ${parts.length} field${parts.length === 1 ? '' : 's'} separated by ':'`;
  const [user, role, cred] = parts as [string, string, string];
  if (userNameProblem(user) !== null) return `user name ${JSON.stringify(user.slice(0, 80))} is not 1 to 64 characters of A-Z a-z 0-9 _ . @ -`;
  if (!isRole(role)) return `role ${JSON.stringify(role.slice(0, 80))} of user ${user} must be read, write or admin`;
  const c = cred.split('$');
  if (c.length !== 7 || c[0] !== 'scrypt') return `credentials of user ${user} must be scrypt$N$r$p$salt$storedKey$serverKey`;
  const [, nText, rText, pText, saltText, storedText, serverText] = c as [string, string, string, string, string, string, string];
  const params = { N: decimal(nText), r: decimal(rText), p: decimal(pText) };
  const problem = scryptParamsProblem(params);
  if (problem !== null) return `user ${user}: ${problem}`;
  const salt = base64(saltText);
  if (salt === null || salt.length < saltBytesMin || salt.length > saltBytesMax) {
    return `salt of user ${user} must be ${saltBytesMin} to ${saltBytesMax} bytes in base64`;
  }
  const storedKey = base64(storedText);
  if (storedKey === null || storedKey.length !== keyBytes) return `storedKey of user ${user} must be ${keyBytes} bytes in base64`;
  const serverKey = base64(serverText);
  if (serverKey === null || serverKey.length !== keyBytes) return `serverKey of user ${user} must be ${keyBytes} bytes in base64`;
  return { user, role, salt, params: Object.freeze(params), storedKey, serverKey };
}

/** A plain decimal integer, or NaN (which scryptParamsProblem refuses). */
function decimal(s: string): number {
  return /^[0-9]{1,8}$/.test(s) ? Number(s) : Number.NaN;
}

/** Canonical standard base64 only: Node's decoder skips junk, and a typo
 * must not silently become a different key. */
function base64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}
