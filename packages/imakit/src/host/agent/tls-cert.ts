/**
 * The verifier's self-signed TLS certificate, made once in its data directory: `tls.key` (PKCS#8
 * PEM, 0600) and `tls.crt`. ECDSA P-256 (fast handshakes, small), signed by itself with the
 * project's own x509 builder; subjectAltName carries every name a client may use to reach it (TLS
 * clients match the host against the SAN only, RFC 6125 §6.4.4). Clients trust it with
 * `--ca DATA/tls.crt` (curl --cacert, imakit fleet --ca, the agent's `ca`).
 */
import { generateKeyPairSync, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { buildCertificate } from '../../core/keys/x509-build.ts';
import { fromSystemError } from '../../errors.ts';
import { readBoundedText } from '../fs/bounded-read.ts';
import { writeSecretFile } from './secret-files.ts';
import { writeAtomic } from '../attest/attest-input.ts';

export interface TlsFiles {
  readonly keyPath: string;
  readonly certPath: string;
  readonly key: string;
  readonly cert: string;
  /** true when made by this call */
  readonly created: boolean;
  /** SHA-256 fingerprint as openssl prints it (AA:BB:…) */
  readonly fingerprint: string;
}

/**
 * The certificate and key in `dir`, made first when absent, valid for `names` (host names and IP
 * addresses) plus localhost, 127.0.0.1, ::1 and this host's name.
 * @throws ImakitError E_IO_READ, E_IO_WRITE
 */
export function ensureSelfSignedCert(dir: string, names: readonly string[] = []): TlsFiles {
  const keyPath = join(dir, 'tls.key');
  const certPath = join(dir, 'tls.crt');
  let created = false;
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const all = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...names])].filter(
      (n) => n !== '' && n !== '0.0.0.0' && n !== '::',
    );
    const built = buildCertificate({
      publicKey: privateKey,
      issuerKey: privateKey,
      subject: `CN=imakit verifier ${hostname()}`,
      ca: false,
      days: 825,
      subjectAltName: { dns: all.filter((n) => isIP(n) === 0), ip: all.filter((n) => isIP(n) !== 0) },
    });
    writeSecretFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    writeAtomic(certPath, built.pem);
    created = true;
  }
  let key: string;
  let cert: string;
  try {
    key = readBoundedText(keyPath, 'key');
    cert = readBoundedText(certPath, 'certificate');
    createPrivateKey(key);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', keyPath);
  }
  const fingerprint = new X509Certificate(cert).fingerprint256;
  return Object.freeze({ keyPath, certPath, key, cert, created, fingerprint });
}
