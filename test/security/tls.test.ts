// TLS files: checked and loaded; and the certificates makeCerts writes make a
// real mutual-TLS handshake on 127.0.0.1, which a certificate from another
// CA cannot.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { loadTls, tlsFilesProblem } from '../../src/security/tls.js';
import type { TlsMaterial } from '../../src/security/tls.js';
import { makeCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-tls-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const certs: TestCerts = makeCerts(dir);

t.test('makeCerts', async (t) => {
  const node = new X509Certificate(fs.readFileSync(certs.nodeCert));
  const ca = new X509Certificate(fs.readFileSync(certs.ca));
  const otherCa = new X509Certificate(fs.readFileSync(certs.otherCa));
  t.match(node.subjectAltName, /IP Address:127\.0\.0\.1/);
  t.match(node.subjectAltName, /IP Address:127\.0\.0\.5/);
  t.match(node.subjectAltName, /DNS:localhost/);
  t.ok(node.checkIssued(ca) && node.verify(ca.publicKey), 'the node certificate is signed by the CA');
  t.ok(new X509Certificate(fs.readFileSync(certs.clientCert)).verify(ca.publicKey), 'so is the client certificate');
  t.notOk(node.verify(otherCa.publicKey), 'not by the other CA');
  t.ok(new X509Certificate(fs.readFileSync(certs.otherCert)).verify(otherCa.publicKey), 'the other certificate is signed by the other CA');
  t.equal(ca.ca, true);
  t.equal(node.ca, false);
  t.ok(Date.parse(node.validTo) - Date.now() <= 24 * 3600 * 1000 + 60_000, 'valid for a day');
  t.equal(fs.statSync(certs.nodeKey).mode & 0o077, 0, 'keys are private to their owner');

  const extra = makeCerts(path.join(dir, 'extra'), { ips: ['10.1.2.3'] });
  const alt = new X509Certificate(fs.readFileSync(extra.nodeCert)).subjectAltName ?? '';
  t.match(alt, /IP Address:10\.1\.2\.3/, 'the given addresses');
  t.match(alt, /IP Address:127\.0\.0\.1/, 'and always 127.0.0.1');
  t.notMatch(alt, /127\.0\.0\.2/);
});

t.test('tlsFilesProblem', async (t) => {
  t.equal(tlsFilesProblem({}), null, 'no TLS');
  t.equal(tlsFilesProblem({ cert: certs.nodeCert, key: certs.nodeKey }), null);
  t.equal(tlsFilesProblem({ cert: certs.nodeCert, key: certs.nodeKey, ca: certs.ca }), null);
  const missing = path.join(dir, 'missing.pem');
  const cases: [string, Parameters<typeof tlsFilesProblem>[0], RegExp][] = [
    ['cert alone', { cert: certs.nodeCert }, /tls cert .* needs a tls key/],
    ['key alone', { key: certs.nodeKey }, /tls key .* needs a tls cert/],
    ['ca alone', { ca: certs.ca }, /tls ca .* needs a tls cert and key/],
    ['missing cert', { cert: missing, key: certs.nodeKey }, /tls cert .*missing\.pem does not exist/],
    ['missing key', { cert: certs.nodeCert, key: missing }, /tls key .*missing\.pem does not exist/],
    ['missing ca', { cert: certs.nodeCert, key: certs.nodeKey, ca: missing }, /tls ca .*missing\.pem does not exist/],
    ['a directory', { cert: dir, key: certs.nodeKey }, /is not a regular file/],
    ['empty path', { cert: '', key: certs.nodeKey }, /tls cert must be a file path/],
  ];
  for (const [what, f, re] of cases) t.match(tlsFilesProblem(f), re, what);
});

t.test('loadTls', async (t) => {
  t.equal(loadTls({}), undefined, 'TLS off');
  const m = loadTls({ cert: certs.nodeCert, key: certs.nodeKey, ca: certs.ca })!;
  t.same(m.cert, fs.readFileSync(certs.nodeCert));
  t.same(m.key, fs.readFileSync(certs.nodeKey));
  t.same(m.ca, fs.readFileSync(certs.ca));
  t.equal(loadTls({ cert: certs.nodeCert, key: certs.nodeKey })!.ca, undefined);

  t.throws(() => loadTls({ cert: certs.nodeCert, key: certs.otherKey }),
    { message: `tls key ${certs.otherKey} does not belong to the certificate in ${certs.nodeCert}` }, 'a key from another certificate');
  t.throws(() => loadTls({ cert: certs.nodeCert }), { message: /needs a tls key/ });
  const junk = path.join(dir, 'junk.pem');
  fs.writeFileSync(junk, 'not a pem\n');
  t.throws(() => loadTls({ cert: junk, key: certs.nodeKey }), { message: `tls cert ${junk} holds no PEM certificate` });
  t.throws(() => loadTls({ cert: certs.nodeCert, key: junk }), { message: new RegExp(`tls key ${junk} is not a usable`) });
  t.throws(() => loadTls({ cert: certs.nodeCert, key: certs.nodeKey, ca: junk }), { message: `tls ca ${junk} holds no PEM certificate` });
  t.throws(() => loadTls({ cert: certs.nodeCert, key: certs.nodeCert }), { message: /tls key .* is not a usable/ }, 'a certificate given as the key');
  const chain = path.join(dir, 'chain.pem');
  fs.writeFileSync(chain, Buffer.concat([fs.readFileSync(certs.nodeCert), fs.readFileSync(certs.ca)]));
  t.ok(loadTls({ cert: chain, key: certs.nodeKey }), 'a chain: the leaf first, checked against the key');
  const big = path.join(dir, 'big.pem');
  fs.writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, 0x41));
  t.throws(() => loadTls({ cert: big, key: certs.nodeKey }), { message: /tls cert .*big\.pem is \d+ bytes; the limit is/ });
});

interface Outcome { ok: boolean; error?: string; serverSawAuthorized?: boolean }

/** One TLS connection: a node server (requiring client certificates its CA
 * signed) and a client, on 127.0.0.1. */
async function handshake(t: { teardown(f: () => void): void }, server: TlsMaterial,
  client: { ca: string; cert?: string; key?: string }): Promise<Outcome> {
  let serverSawAuthorized: boolean | undefined;
  const srv = tls.createServer({
    cert: server.cert, key: server.key, ...(server.ca ? { ca: server.ca } : {}),
    requestCert: true, rejectUnauthorized: true,
  }, (sock) => {
    serverSawAuthorized = sock.authorized;
    sock.end('hello');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  return new Promise<Outcome>((resolve) => {
    const sock = tls.connect({
      host: '127.0.0.1', port, ca: fs.readFileSync(client.ca),
      ...(client.cert ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key!) } : {}),
    });
    let data = '';
    sock.on('data', (d: Buffer) => { data += d.toString(); });
    sock.on('end', () => resolve({ ok: data === 'hello', ...(serverSawAuthorized !== undefined ? { serverSawAuthorized } : {}) }));
    sock.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message }));
  });
}

t.test('mutual TLS with makeCerts output', async (t) => {
  const node = loadTls({ cert: certs.nodeCert, key: certs.nodeKey, ca: certs.ca })!;
  const other = loadTls({ cert: certs.otherCert, key: certs.otherKey, ca: certs.otherCa })!;

  const good = await handshake(t, node, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
  t.same(good, { ok: true, serverSawAuthorized: true }, 'a client certificate from the CA, verifying the node against the CA');
  const peer = await handshake(t, node, { ca: certs.ca, cert: certs.nodeCert, key: certs.nodeKey });
  t.equal(peer.ok, true, 'a node certificate works as a client certificate (peers dialling peers)');

  const wrongTrust = await handshake(t, node, { ca: certs.otherCa, cert: certs.clientCert, key: certs.clientKey });
  t.equal(wrongTrust.ok, false, 'a client trusting another CA refuses the node');
  // The node sends its CA along with its certificate, so the client sees an untrusted root.
  t.match(wrongTrust.error, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);

  const wrongServer = await handshake(t, other, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
  t.equal(wrongServer.ok, false, 'a node with a certificate from another CA is refused');
  t.match(wrongServer.error, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);

  const wrongClient = await handshake(t, node, { ca: certs.ca, cert: certs.otherCert, key: certs.otherKey });
  t.equal(wrongClient.ok, false, 'a client certificate from another CA is refused by the node');
  t.notOk(wrongClient.serverSawAuthorized, 'the node never served it');

  const noClientCert = await handshake(t, node, { ca: certs.ca });
  t.equal(noClientCert.ok, false, 'no client certificate is refused when the node requires one');
  t.match(noClientCert.error, /CERTIFICATE_REQUIRED|ECONNRESET/);
});
