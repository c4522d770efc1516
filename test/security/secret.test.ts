// The cluster secret file: created private and atomically, refused when
// others may read it or when it is too short or too large.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import {
  clusterKey, ensureSecretFile, fakeSaltKey, generateSecret, readSecretFile, secretFileName,
} from '../../src/security/secret.js';

function tmpDir(t: { teardown(f: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-secret-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(file: string, text: string | Buffer, mode = 0o600): void {
  fs.writeFileSync(file, text);
  fs.chmodSync(file, mode);
}

t.test('generateSecret', async (t) => {
  const s = generateSecret();
  t.match(s, /^[A-Za-z0-9_-]{43}$/, '32 bytes of base64url, one line');
  t.equal(Buffer.from(s, 'base64url').length, 32);
  t.not(s, generateSecret());
  t.equal(secretFileName, 'cluster.secret');
});

t.test('ensureSecretFile creates a 0600 file once, in a new directory', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'a', 'b', secretFileName);
  const first = ensureSecretFile(file);
  t.equal(first.created, true);
  t.equal(first.secret.length, 32);
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'mode 0600');
  t.equal(fs.statSync(path.dirname(file)).mode & 0o077, 0, 'its new directory is private too');
  t.match(fs.readFileSync(file, 'utf8'), /^[A-Za-z0-9_-]{43}\n$/);
  t.same(fs.readdirSync(path.dirname(file)), [secretFileName], 'no temporary file left behind');
  const second = ensureSecretFile(file);
  t.equal(second.created, false);
  t.same(second.secret, first.secret, 'an existing secret is read, never replaced');
  t.same(readSecretFile(file), first.secret);
});

t.test('ensureSecretFile does not overwrite or accept a bad existing file', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, secretFileName);
  write(file, 'short', 0o600);
  t.throws(() => ensureSecretFile(file), { message: /holds 5 bytes of secret; at least 32/ });
  t.equal(fs.readFileSync(file, 'utf8'), 'short', 'left as it was');
});

t.test('readSecretFile: formats', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 's');
  const bytes = randomBytes(32);
  write(file, `  ${bytes.toString('base64url')}\n\n`);
  t.same(readSecretFile(file), bytes, 'base64url decoded, whitespace trimmed');
  const passphrase = 'a long passphrase with spaces, at least 32 bytes';
  write(file, `${passphrase}\n`);
  t.same(readSecretFile(file), Buffer.from(passphrase), 'other text is used as its bytes');
  // Non-canonical base64url (stray trailing bits) would decode to the same
  // bytes as its canonical twin; it is taken as text instead.
  const canonical = bytes.toString('base64url');
  const last = canonical.at(-1)!;
  const twin = canonical.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) ^ 1);
  if (Buffer.from(twin, 'base64url').equals(bytes)) {
    write(file, twin);
    t.same(readSecretFile(file), Buffer.from(twin), 'a non-canonical encoding is not decoded');
  }
  write(file, randomBytes(40).toString('base64url'));
  t.equal(readSecretFile(file).length, 40, 'longer secrets are fine');
});

t.test('readSecretFile: refusals name the file', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 's');
  write(file, generateSecret(), 0o644);
  t.throws(() => readSecretFile(file), { message: new RegExp(`secret file ${file} has mode 644, which lets other users read it; run \`chmod 600 ${file}\``) }, '0644');
  for (const mode of [0o640, 0o604, 0o620, 0o602, 0o610, 0o700 | 0o001]) {
    fs.chmodSync(file, mode);
    t.throws(() => readSecretFile(file), { message: /chmod 600/ }, `mode ${mode.toString(8)}`);
  }
  fs.chmodSync(file, 0o400);
  t.equal(readSecretFile(file).length, 32, '0400 is fine');
  fs.chmodSync(file, 0o600);

  write(file, randomBytes(31).toString('base64url'));
  t.throws(() => readSecretFile(file), { message: new RegExp(`secret file ${file} holds 31 bytes of secret; at least 32`) }, 'short base64url');
  write(file, '.'.repeat(31));
  t.throws(() => readSecretFile(file), { message: /holds 31 bytes/ }, 'short text');
  write(file, '   \n');
  t.throws(() => readSecretFile(file), { message: /holds 0 bytes/ }, 'empty');
  write(file, '.'.repeat(4097));
  t.throws(() => readSecretFile(file), { message: new RegExp(`secret file ${file} is 4097 bytes; the limit is 4096`) }, 'over 4 KiB');
  write(file, '.'.repeat(4096));
  t.equal(readSecretFile(file).length, 4096, 'exactly 4 KiB is fine');
  t.throws(() => readSecretFile(path.join(dir, 'missing')), { message: /cannot open secret file .*missing/ });
  t.throws(() => readSecretFile(dir), { message: /is not a regular file/ });
});

t.test('clusterKey', async (t) => {
  const secret = randomBytes(32);
  const key = clusterKey(secret);
  t.equal(key.length, 32);
  t.same(key, createHmac('sha256', secret).update('tunekv cluster key v1').digest());
  t.not(key.toString('hex'), secret.toString('hex'), 'the raw secret never keys anything directly');
  t.same(clusterKey(Buffer.from(secret)), key, 'deterministic');
  t.not(clusterKey(randomBytes(32)).toString('hex'), key.toString('hex'));
  t.throws(() => clusterKey(Buffer.alloc(16)), TypeError, 'a short secret is a bug');
  t.throws(() => clusterKey('secret' as unknown as Buffer), TypeError);
  const fk = fakeSaltKey(key);
  t.equal(fk.length, 32);
  t.same(fakeSaltKey(key), fk, 'the same on every node with the same secret');
  t.not(fk.toString('hex'), key.toString('hex'));
});
