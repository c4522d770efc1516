// Users file parsing, roles, and a full SCRAM login from a line userLine wrote.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  newNonce, saltedPassword, userAuthMessage, userClientProof, userKeys, userServerSignature, verifyServerSignature,
  verifyUserProof,
} from '../../src/security/handshake.js';
import type { ScryptParams } from '../../src/security/handshake.js';
import { parseUsers, readUsersFile, roleAllows, userLine, userNameProblem } from '../../src/security/users.js';
import type { Role } from '../../src/security/users.js';
import { limits } from '../../src/limits.js';

const cheap: ScryptParams = { N: 1024, r: 1, p: 1 };

function tmpDir(t: { teardown(f: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-users-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('roles are hierarchical', async (t) => {
  const table: [Role, Role, boolean][] = [
    ['read', 'read', true], ['read', 'write', false], ['read', 'admin', false],
    ['write', 'read', true], ['write', 'write', true], ['write', 'admin', false],
    ['admin', 'read', true], ['admin', 'write', true], ['admin', 'admin', true],
  ];
  for (const [have, need, ok] of table) t.equal(roleAllows(have, need), ok, `${have} ${ok ? 'may' : 'may not'} do ${need}`);
  t.equal(roleAllows('root' as Role, 'read'), false, 'an unknown role allows nothing');
  t.equal(roleAllows('admin', 'toString' as Role), false, 'nor does an unknown need');
  t.equal(roleAllows('__proto__' as Role, 'read'), false);
});

t.test('SCRAM round trip through a users file line', async (t) => {
  const line = await userLine('alice', 'correct horse', 'write', cheap);
  t.match(line, /^alice:write:scrypt\$1024\$1\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}\$[A-Za-z0-9+/=]{44}$/);
  t.notMatch(line, /correct horse/);
  const users = parseUsers(`# users\n\n${line}\n`);
  const alice = users.get('alice')!;
  t.equal(alice.role, 'write');
  t.same(alice.params, cheap);

  // The client side, from what HELLO_OK carries (salt and params).
  const cn = newNonce(), sn = newNonce();
  const msg = userAuthMessage('alice', cn, sn, 'n1');
  const login = async (password: string) => {
    const keys = userKeys(await saltedPassword(password, alice.salt, alice.params));
    return { keys, proof: userClientProof(keys.clientKey, keys.storedKey, msg) };
  };
  const good = await login('correct horse');
  t.ok(verifyUserProof(alice.storedKey, msg, good.proof), 'the right password logs in');
  t.ok(verifyServerSignature(good.keys.serverKey, msg, userServerSignature(alice.serverKey, msg)), 'and the node proves itself');
  t.notOk(verifyUserProof(alice.storedKey, msg, (await login('correct horsE')).proof), 'a wrong password does not');

  // Someone with a copy of the file has StoredKey and ServerKey but not ClientKey.
  t.notOk(verifyUserProof(alice.storedKey, msg, userClientProof(alice.storedKey, alice.storedKey, msg)), 'StoredKey as ClientKey');
  t.notOk(verifyUserProof(alice.storedKey, msg, userClientProof(alice.serverKey, alice.storedKey, msg)), 'ServerKey as ClientKey');
  t.notOk(verifyUserProof(alice.storedKey, msg, alice.storedKey), 'StoredKey as the proof');
});

t.test('userLine: salts differ, a given salt is used, arguments checked', async (t) => {
  const a = await userLine('bob', 'pw', 'read', cheap);
  const b = await userLine('bob', 'pw', 'read', cheap);
  t.not(a, b, 'a fresh salt each time');
  const salt = randomBytes(32);
  const c = await userLine('bob', 'pw', 'admin', cheap, salt);
  t.same(parseUsers(c).get('bob')!.salt, salt);
  t.equal(await userLine('bob', 'pw', 'admin', cheap, salt), c, 'deterministic given the salt');
  const bad: [string, () => Promise<string>][] = [
    ['user with a colon', () => userLine('a:b', 'pw', 'read', cheap)],
    ['empty user', () => userLine('', 'pw', 'read', cheap)],
    ['long user', () => userLine('u'.repeat(65), 'pw', 'read', cheap)],
    ['role', () => userLine('bob', 'pw', 'root' as Role, cheap)],
    ['empty password', () => userLine('bob', '', 'read', cheap)],
    ['params', () => userLine('bob', 'pw', 'read', { N: 1000, r: 1, p: 1 })],
    ['short salt', () => userLine('bob', 'pw', 'read', cheap, Buffer.alloc(8))],
  ];
  for (const [what, f] of bad) await t.rejects(f(), { code: 'INVALID_ARGUMENT' }, what);
});

t.test('user names', async (t) => {
  for (const ok of ['a', 'alice', 'a.b-c_d@example.com', 'X'.repeat(64)]) t.equal(userNameProblem(ok), null, ok);
  for (const bad of ['', 'a b', 'a:b', 'ä', 'x'.repeat(65), 'a$b', 'a#', 7, null]) t.type(userNameProblem(bad), 'string', String(bad));
});

t.test('parseUsers: errors name the file and line', async (t) => {
  const good = await userLine('alice', 'pw', 'admin', cheap);
  const [user, role, cred] = good.split(':') as [string, string, string];
  const c = cred.split('$');
  const withCred = (i: number, v: string): string => `${user}:${role}:${c.map((x, j) => (j === i ? v : x)).join('$')}`;
  const b64 = (n: number): string => randomBytes(n).toString('base64');
  const cases: [string, string, RegExp][] = [
    ['two fields', 'alice:admin', /found 2 fields/],
    ['four fields', `${good}:x`, /found 4 fields/],
    ['bad user', good.replace(/^alice/, 'al ice'), /user name "al ice"/],
    ['bad role', good.replace(':admin:', ':root:'), /role "root" of user alice/],
    ['not scrypt', withCred(0, 'pbkdf2'), /must be scrypt\$N\$r\$p/],
    ['too few credential parts', `${user}:${role}:scrypt$1024$1$1$${b64(16)}$${b64(32)}`, /must be scrypt\$/],
    ['N not a power of two', withCred(1, '1000'), /N \(1000\) must be a power of two/],
    ['N not a number', withCred(1, '0x400'), /N \(NaN\)/],
    ['N signed', withCred(1, '+1024'), /N \(NaN\)/],
    ['r too large', withCred(2, '33'), /r \(33\)/],
    ['p zero', withCred(3, '0'), /p \(0\)/],
    ['too much memory', withCred(1, '1048576').replace('$1$1$', '$8$1$'), /MiB/],
    ['short salt', withCred(4, b64(8)), /salt of user alice must be 16 to 64 bytes/],
    ['long salt', withCred(4, b64(65)), /salt of user alice/],
    ['salt not base64', withCred(4, '!!!!'), /salt of user alice/],
    ['salt base64url', withCred(4, Buffer.from([0xfb, 0xff, ...randomBytes(14)]).toString('base64url')), /salt of user alice/],
    ['storedKey short', withCred(5, b64(31)), /storedKey of user alice must be 32 bytes/],
    ['storedKey without padding', withCred(5, b64(32).replace(/=+$/, '')), /storedKey of user alice/],
    ['serverKey long', withCred(6, b64(33)), /serverKey of user alice must be 32 bytes/],
  ];
  for (const [what, line, re] of cases) {
    const text = `# header\n\n${good.replace('alice', 'zed')}\n${line}\n`;
    t.throws(() => parseUsers(text, '/etc/tunekv/users'), { message: /^\/etc\/tunekv\/users:4: / }, `${what}: names the line`);
    t.throws(() => parseUsers(text, '/etc/tunekv/users'), { message: re }, `${what}: says what is wrong`);
  }
  t.throws(() => parseUsers(`${good}\n#\n${good}\n`, 'u'), { message: 'u:3: user alice is already defined on line 1' });
  t.throws(() => parseUsers('x'), { message: /^users file:1: / }, 'a default name when none is given');
});

t.test('parseUsers: comments, blank lines, CRLF, BOM, spaces', async (t) => {
  const a = await userLine('a', 'pw', 'read', cheap);
  const b = await userLine('b', 'pw', 'write', cheap);
  const users = parseUsers(`\uFEFF# comment\r\n   \r\n  ${a}  \r\n\t# indented comment\r\n${b}`);
  t.same([...users.keys()], ['a', 'b']);
  t.equal(parseUsers('').size, 0);
  t.equal(parseUsers('# nobody\n').size, 0);
});

t.test('parseUsers: usersMax', async (t) => {
  const line = await userLine('u', 'pw', 'read', cheap);
  const rest = line.slice(1);
  const lines = Array.from({ length: limits.usersMax + 1 }, (_, i) => `u${i}${rest}`);
  t.equal(parseUsers(lines.slice(0, limits.usersMax).join('\n')).size, limits.usersMax, 'exactly usersMax is fine');
  t.throws(() => parseUsers(lines.join('\n'), 'big'), { message: `big:${limits.usersMax + 1}: more than ${limits.usersMax} users (usersMax)` });
});

t.test('readUsersFile', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'users');
  fs.writeFileSync(file, `${await userLine('alice', 'pw', 'read', cheap)}\n`, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  t.equal(readUsersFile(file).get('alice')!.role, 'read', 'readable by others is allowed: the file holds no password equivalent');
  fs.chmodSync(file, 0o664);
  t.throws(() => readUsersFile(file), { message: new RegExp(`users file ${file} has mode 664, which lets other users change it; run \`chmod 644 ${file}\``) }, 'writable by group: anyone could add an admin');
  fs.chmodSync(file, 0o646);
  t.throws(() => readUsersFile(file), { message: /which lets other users change it/ }, 'writable by others');
  fs.chmodSync(file, 0o600);
  t.equal(readUsersFile(file).size, 1);

  fs.writeFileSync(file, 'alice:read:nonsense\n');
  t.throws(() => readUsersFile(file), { message: new RegExp(`^${file}:1: `) }, 'parse errors name the file');
  fs.writeFileSync(file, Buffer.from([0x61, 0xff, 0x0a]));
  t.throws(() => readUsersFile(file), { message: /not UTF-8/ });
  fs.writeFileSync(file, Buffer.alloc(limits.usersFileBytesMax + 1, 0x23));
  t.throws(() => readUsersFile(file), { message: /is \d+ bytes; the limit is/ });
  t.throws(() => readUsersFile(path.join(dir, 'missing')), { message: /cannot open users file .*missing/ });
  t.throws(() => readUsersFile(dir), { message: /is not a regular file/ });
});
