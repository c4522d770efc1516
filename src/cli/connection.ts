// Where the CLI connects and how it proves who it is: hosts, user and
// password, cluster secret, TLS. Each setting is taken from, first to last:
// a flag, the environment, the connection file (`--config FILE` or
// TUNEKV_CONFIG, like cqlsh's cqlshrc), the local cluster (./data/cluster).
//
// Everything read here is the user's input: files are read with a size
// bound, the connection file's unknown fields are refused by name, and
// every failure is a UsageError (exit 2) before anything is sent.

import fs from 'node:fs';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { limits } from '../limits.js';
import { str } from './args.js';
import { UsageError } from './exit-codes.js';

/** The port a host without one means: the first node of `cluster start`. */
export const defaultPort = 7001;

/** Where `make cluster` (and `cluster start` without --dir) keeps its
 * cluster, relative to the working directory. */
export const localClusterDir = path.join('data', 'cluster');
const localSecret = path.join(localClusterDir, 'cluster.secret');

/** The connection file, after validation; paths are absolute. */
export interface ConnectionFile {
  readonly file: string;
  readonly hosts?: string[];
  readonly user?: string;
  readonly passwordFile?: string;
  readonly secretFile?: string;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

const fileFields = ['hosts', 'user', 'passwordFile', 'secretFile', 'tls'];
const tlsFields = ['ca', 'cert', 'key'];

/** Up to `bytesMax` bytes of a file (any kind: a FIFO or /dev/stdin too),
 * reading no further than one byte past the bound; `over` says the file
 * holds more. */
export function readFileUpTo(file: string, bytesMax: number, what: string): { bytes: Buffer; over: boolean; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new UsageError(`cannot open ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new UsageError(`${what} ${file} is a directory`);
    // A regular file says its size up front: refuse before reading a byte.
    if (st.isFile() && st.size > bytesMax) return { bytes: Buffer.alloc(0), over: true, size: st.size };
    const buf = Buffer.alloc(bytesMax + 1);
    let len = 0;
    while (len < buf.length) {
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return { bytes: buf.subarray(0, Math.min(len, bytesMax)), over: len > bytesMax, size: len };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A short text file (a password) without its trailing newline. */
function readTextFile(file: string, what: string): string {
  const { bytes, over } = readFileUpTo(file, limits.cliConfigBytesMax, what);
  if (over) throw new UsageError(`${what} ${file} is larger than ${limits.cliConfigBytesMax} bytes`);
  return bytes.toString('utf8').replace(/\r?\n$/, '');
}

function readBinaryFile(file: string, what: string): Buffer {
  const { bytes, over } = readFileUpTo(file, limits.cliConfigBytesMax, what);
  if (over) throw new UsageError(`${what} ${file} is larger than ${limits.cliConfigBytesMax} bytes`);
  return bytes;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function pathField(obj: Record<string, unknown>, name: string, where: string, dir: string): string | undefined {
  const v = obj[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`${where}: "${name}" must be a non-empty string (a path)`);
  return path.resolve(dir, v);
}

/** Reads and validates a connection file. Relative paths in it are
 * relative to the file, so one file works from any directory. */
export function readConnectionFile(file: string): ConnectionFile {
  const { bytes, over } = readFileUpTo(file, limits.cliConfigBytesMax, 'connection file');
  if (over) throw new UsageError(`connection file ${file} is larger than ${limits.cliConfigBytesMax} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new UsageError(`connection file ${file} is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw)) throw new UsageError(`connection file ${file} must hold one JSON object`);
  const unknown = Object.keys(raw).filter((k) => !fileFields.includes(k));
  if (unknown.length > 0) throw new UsageError(`connection file ${file}: unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; it takes ${fileFields.join(', ')}`);
  const dir = path.dirname(path.resolve(file));
  const where = `connection file ${file}`;
  const out: { file: string; hosts?: string[]; user?: string; passwordFile?: string; secretFile?: string; tls?: ConnectionFile['tls'] } = { file };
  if (raw.hosts !== undefined) {
    const h = raw.hosts;
    if (!Array.isArray(h) || h.length === 0 || h.length > limits.nodesMax || !h.every((x) => typeof x === 'string')) {
      throw new UsageError(`${where}: "hosts" must be a list of 1 to ${limits.nodesMax} "host:port" strings`);
    }
    out.hosts = (h as string[]).map((x) => normalizeHost(x, `${where}: hosts`));
  }
  if (raw.user !== undefined) {
    if (typeof raw.user !== 'string' || raw.user.length === 0) throw new UsageError(`${where}: "user" must be a non-empty string`);
    out.user = raw.user;
  }
  const passwordFile = pathField(raw, 'passwordFile', where, dir);
  if (passwordFile !== undefined) out.passwordFile = passwordFile;
  const secretFile = pathField(raw, 'secretFile', where, dir);
  if (secretFile !== undefined) out.secretFile = secretFile;
  if (raw.tls !== undefined) {
    const t = raw.tls;
    if (!isRecord(t)) throw new UsageError(`${where}: "tls" must be an object with ca, cert, key`);
    const unknownTls = Object.keys(t).filter((k) => !tlsFields.includes(k));
    if (unknownTls.length > 0) throw new UsageError(`${where}: unknown field(s) in "tls": ${unknownTls.map((k) => JSON.stringify(k)).join(', ')}; it takes ${tlsFields.join(', ')}`);
    const ca = pathField(t, 'ca', `${where} tls`, dir);
    const cert = pathField(t, 'cert', `${where} tls`, dir);
    const key = pathField(t, 'key', `${where} tls`, dir);
    out.tls = { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
  }
  return out;
}

/** `host:port`, `host` (port 7001), `[v6]:port`, `[v6]`; anything else is
 * a usage error naming where it came from. */
export function normalizeHost(raw: string, where: string): string {
  const h = raw.trim();
  let out: string;
  if (/^\[[^\]]+\]$/.test(h)) out = `${h}:${defaultPort}`;
  else if (/^\[[^\]]+\]:\d+$/.test(h)) out = h;
  else if (/^[^:\s]+$/.test(h)) out = `${h}:${defaultPort}`;
  else if (/^[^:\s]+:\d+$/.test(h)) out = h;
  else throw new UsageError(`${where}: "${raw}" is not host, host:port or [ipv6]:port`);
  const port = Number(out.slice(out.lastIndexOf(':') + 1));
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`${where}: "${raw}" has no usable port (1-65535)`);
  return out;
}

/** The connection file named by --config or TUNEKV_CONFIG, if any. */
export function connectionFileOf(values: Record<string, unknown>): ConnectionFile | undefined {
  const file = str(values, 'config') ?? nonEmpty(process.env.TUNEKV_CONFIG);
  return file === undefined ? undefined : readConnectionFile(file);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.length > 0 ? v : undefined;
}

/** The nodes of the local cluster's cluster.json that may still answer,
 * read without loading the launcher (a bounded read; a torn or hand-edited
 * file counts as none). */
function localClusterHosts(): string[] {
  const file = path.join(localClusterDir, 'cluster.json');
  if (!fs.existsSync(file)) return [];
  try {
    const { bytes, over } = readFileUpTo(file, 4 * 1024 * 1024, 'cluster file');
    if (over) return [];
    const c = JSON.parse(bytes.toString('utf8')) as { nodes?: unknown };
    if (!Array.isArray(c.nodes)) return [];
    return c.nodes.filter((nd): nd is { host: string; port: number } => isRecord(nd) && typeof nd.host === 'string'
      && typeof nd.port === 'number' && nd.left !== true && nd.removed !== true)
      .map((nd) => `${nd.host}:${nd.port}`);
  } catch {
    return [];
  }
}

/** The one node --host names (requests go to it only: it coordinates), or
 * undefined. A list is refused: a list of hosts is TUNEKV_HOST's or the
 * connection file's, and they fail over; --host pins one node. */
export function pinnedHost(values: Record<string, unknown>): string | undefined {
  const h = str(values, 'host');
  if (h === undefined) return undefined;
  if (h.includes(',')) throw new UsageError('--host names one node (it coordinates); for a list use TUNEKV_HOST=h1:p1,h2:p2 or "hosts" in a connection file');
  return normalizeHost(h, '--host');
}

/** Hosts to connect through: --host, else TUNEKV_HOST (a comma-separated
 * list), else the connection file's hosts, else every node of the local
 * cluster, else 127.0.0.1:7001. */
export function hostsOf(values: Record<string, unknown>, conn: ConnectionFile | undefined): string[] {
  const pinned = pinnedHost(values);
  if (pinned !== undefined) return [pinned];
  const env = nonEmpty(process.env.TUNEKV_HOST);
  if (env !== undefined) {
    const list = env.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
    if (list.length === 0 || list.length > limits.nodesMax) throw new UsageError(`TUNEKV_HOST must list 1 to ${limits.nodesMax} hosts`);
    return list.map((x) => normalizeHost(x, 'TUNEKV_HOST'));
  }
  if (conn?.hosts !== undefined) return conn.hosts;
  const local = localClusterHosts();
  return local.length > 0 ? local : [`127.0.0.1:${defaultPort}`];
}

export interface Credentials {
  user?: string;
  password?: string;
  secret?: Uint8Array;
  tls?: ConnectionOptions;
}

/** Credentials from flags, the environment and the connection file, each
 * setting on its own. `useLocalSecret` (status, admin commands) falls back
 * to the local cluster's secret when no user is given (a node of another
 * cluster refuses it; `status` then asks again as a reader, see
 * kv-commands.ts). */
export async function credentialsOf(values: Record<string, unknown>, conn: ConnectionFile | undefined, useLocalSecret: boolean): Promise<Credentials> {
  const out: Credentials = {};
  const user = str(values, 'user') ?? nonEmpty(process.env.TUNEKV_USER) ?? conn?.user;
  const secretFile = str(values, 'secret-file') ?? nonEmpty(process.env.TUNEKV_SECRET_FILE) ?? conn?.secretFile
    ?? (useLocalSecret && user === undefined && fs.existsSync(localSecret) ? localSecret : undefined);
  if (user !== undefined) {
    const pwFile = str(values, 'password-file') ?? nonEmpty(process.env.TUNEKV_PASSWORD_FILE) ?? conn?.passwordFile;
    if (pwFile === undefined) throw new UsageError('a user needs a password file (--password-file, TUNEKV_PASSWORD_FILE or "passwordFile")');
    out.user = user;
    out.password = readTextFile(pwFile, 'password file');
  } else if (secretFile !== undefined) {
    const { readSecretFile } = await import('../security/secret.js');
    try {
      out.secret = readSecretFile(secretFile);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const ca = str(values, 'tls-ca') ?? conn?.tls?.ca;
  const certFromFlags = str(values, 'tls-cert') !== undefined || str(values, 'tls-key') !== undefined;
  const cert = certFromFlags ? str(values, 'tls-cert') : conn?.tls?.cert;
  const key = certFromFlags ? str(values, 'tls-key') : conn?.tls?.key;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('a TLS cert and key go together (--tls-cert and --tls-key, or tls.cert and tls.key)');
  if (ca !== undefined || cert !== undefined) {
    out.tls = {
      ...(ca !== undefined ? { ca: readBinaryFile(ca, 'TLS CA file') } : {}),
      ...(cert !== undefined && key !== undefined ? { cert: readBinaryFile(cert, 'TLS cert file'), key: readBinaryFile(key, 'TLS key file') } : {}),
    };
  }
  return out;
}
