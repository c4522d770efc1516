// Test certificates made with the openssl command: a CA, a node certificate
// and a client certificate it signed, and an unrelated CA with a
// certificate of its own for "wrong CA" tests. EC P-256 keys (fast to make),
// valid for one day. Node certificates carry serverAuth and clientAuth,
// because a node is a TLS server to clients and a TLS client to its peers.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCerts {
  readonly ca: string;
  readonly nodeCert: string;
  readonly nodeKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly otherCa: string;
  readonly otherCert: string;
  readonly otherKey: string;
}

const openssl = '/usr/bin/openssl';
const defaultIps = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

export function makeCerts(dir: string, opts: { ips?: string[] } = {}): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  const p = (name: string): string => path.join(dir, name);
  const ips = [...new Set(['127.0.0.1', ...(opts.ips ?? defaultIps)])];
  const san = `subjectAltName=${[...ips.map((ip) => `IP:${ip}`), 'DNS:localhost'].join(',')}`;

  makeCa(p('ca.key'), p('ca.crt'), 'tunekv test CA');
  makeLeaf(dir, 'node', 'tunekv test node', p('ca.crt'), p('ca.key'), [san, 'extendedKeyUsage=serverAuth,clientAuth']);
  makeLeaf(dir, 'client', 'tunekv test client', p('ca.crt'), p('ca.key'), ['extendedKeyUsage=clientAuth']);
  makeCa(p('other-ca.key'), p('other-ca.crt'), 'tunekv other CA');
  makeLeaf(dir, 'other', 'tunekv other node', p('other-ca.crt'), p('other-ca.key'), [san, 'extendedKeyUsage=serverAuth,clientAuth']);

  return {
    ca: p('ca.crt'),
    nodeCert: p('node.crt'),
    nodeKey: p('node.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCa: p('other-ca.crt'),
    otherCert: p('other.crt'),
    otherKey: p('other.key'),
  };
}

function run(args: string[]): void {
  execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(keyFile: string, certFile: string, cn: string): void {
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function makeLeaf(dir: string, name: string, cn: string, caCert: string, caKey: string, extensions: string[]): void {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  fs.writeFileSync(ext, [...extensions, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'].join('\n') + '\n');
  run(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '1', '-sha256', '-extfile', ext, '-out', path.join(dir, `${name}.crt`)]);
  fs.rmSync(csr);
  fs.rmSync(ext);
}
