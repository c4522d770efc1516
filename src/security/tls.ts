// TLS files (`--tls-cert`, `--tls-key`, `--tls-ca`): checked and loaded once,
// at start, so a wrong path, a key that belongs to another certificate or
// an expired certificate stops the node with a message naming the file,
// instead of failing every handshake later with an OpenSSL error.
//
// Invariants: a TlsMaterial always has a certificate, its matching private
// key and, if given, a CA bundle of at least one parseable certificate.
// Only the first certificate of the cert file (the leaf; intermediates may
// follow it) is checked against the key.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import { readFileBounded } from './secret.js';

export interface TlsFiles { readonly cert?: string; readonly key?: string; readonly ca?: string }
export interface TlsMaterial { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer | undefined }

/** A PEM file's size. A certificate chain or CA bundle is a few KiB; the
 * system bundle is about 200 KiB. Anything larger is the wrong file. */
export const tlsFileBytesMax = 1024 * 1024;

/** Why these files cannot be used, in plain words, or null. A CA alone is
 * refused: a node serves TLS with its own certificate, and silently
 * ignoring the CA would leave the operator believing peers are checked. */
export function tlsFilesProblem(f: TlsFiles): string | null {
  const given = (v: string | undefined): v is string => v !== undefined;
  for (const [name, file] of [['cert', f.cert], ['key', f.key], ['ca', f.ca]] as const) {
    if (given(file) && (typeof file !== 'string' || file === '')) return `tls ${name} must be a file path`;
  }
  if (given(f.cert) && !given(f.key)) return `tls cert ${f.cert} needs a tls key (the certificate's private key)`;
  if (given(f.key) && !given(f.cert)) return `tls key ${f.key} needs a tls cert (the certificate for that key)`;
  if (given(f.ca) && !given(f.cert)) return `tls ca ${f.ca} needs a tls cert and key: a node serves TLS with its own certificate`;
  for (const [name, file] of [['cert', f.cert], ['key', f.key], ['ca', f.ca]] as const) {
    if (!given(file)) continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return `tls ${name} ${file} does not exist or cannot be read`;
    }
    if (!st.isFile()) return `tls ${name} ${file} is not a regular file`;
  }
  return null;
}

/**
 * The certificate, key and CA bundle, or undefined when no cert and key are
 * given (TLS off). Throws a plain Error naming the file when a file is
 * missing, too large, not PEM, the key does not belong to the certificate,
 * or the certificate has expired (expiry never fixes itself; a certificate
 * not yet valid is allowed, since that may be a clock catching up).
 */
export function loadTls(f: TlsFiles): TlsMaterial | undefined {
  const problem = tlsFilesProblem(f);
  if (problem !== null) throw new Error(problem);
  if (f.cert === undefined || f.key === undefined) return undefined;
  const cert = readPem(f.cert, 'tls cert');
  const key = readPem(f.key, 'tls key');
  const ca = f.ca === undefined ? undefined : readPem(f.ca, 'tls ca');

  const leaf = firstCertificate(cert, f.cert, 'tls cert');
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`tls key ${f.key} is not a usable unencrypted PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.type !== 'private') throw new Error(`tls key ${f.key} is not a private key`);
  if (!leaf.checkPrivateKey(privateKey)) throw new Error(`tls key ${f.key} does not belong to the certificate in ${f.cert}`);
  const validToMs = Date.parse(leaf.validTo);
  if (Number.isFinite(validToMs) && validToMs < Date.now()) {
    throw new Error(`tls cert ${f.cert} expired on ${leaf.validTo}`);
  }
  if (ca !== undefined && f.ca !== undefined) {
    const blocks = pemCertificates(ca);
    if (blocks.length === 0) throw new Error(`tls ca ${f.ca} holds no PEM certificate`);
    for (const [i, block] of blocks.entries()) {
      try {
        new X509Certificate(block);
      } catch (err) {
        throw new Error(`tls ca ${f.ca}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
      }
    }
  }
  return { cert, key, ca };
}

function readPem(file: string, what: string): Buffer {
  // Mode bits are not checked: TLS keys are commonly group-readable
  // (0640, group ssl-cert), and a stolen key alone does not pass the
  // cluster-secret or user proof.
  return readFileBounded(file, tlsFileBytesMax, what, 0);
}

function firstCertificate(pem: Buffer, file: string, what: string): X509Certificate {
  const first = pemCertificates(pem)[0];
  if (first === undefined) throw new Error(`${what} ${file} holds no PEM certificate`);
  try {
    return new X509Certificate(first);
  } catch (err) {
    throw new Error(`${what} ${file} cannot be parsed: ${(err as Error).message}`);
  }
}

function pemCertificates(pem: Buffer): string[] {
  return pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}
