/**
 * Signing reference-set files: a detached signature (`refs sign`), the signer's key with an
 * optional certificate (its SKID becomes the key id; for DSSE, Keylime's x509 key id).
 */
import { ImakitError, withPath } from '../../errors.ts';
import { bytesEqual } from '../../core/bytes/bytes.ts';
import { keyIdOfCertificate, formatKeyId } from '../../core/keys/keyid.ts';
import { loadPublicKeys, type PrivateKey } from '../../core/keys/keys.ts';
import { refsSignatureAlgo, signRefsBytes } from '../../core/refs/refs-signature.ts';
import { loadSigningKeyFile } from '../label/label-file.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import { writeAtomic } from '../attest/attest-input.ts';
import { readReferenceSetBytes } from './refs-file.ts';

/**
 * Load a signing key; with `certPath`, the certificate must hold the same public key and its SKID
 * becomes the key id (as `evmctl --key KEY` with the certificate bundled).
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_MISMATCH (naming the file)
 */
export function loadRefsSigner(keyPath: string, certPath?: string, passphrase?: string): PrivateKey {
  const key = loadSigningKeyFile(keyPath, passphrase);
  if (certPath === undefined) return key;
  const data = readBoundedFile(certPath, 'key');
  const pubs = withPath(certPath, () => loadPublicKeys(data));
  const pub = pubs[0]!;
  if (!pub.cert) throw new ImakitError('E_KEY_PARSE', 'expected a certificate', { path: certPath });
  if (!bytesEqual(pub.subjectPublicKey, key.publicKey.subjectPublicKey))
    throw new ImakitError('E_KEY_MISMATCH', 'the certificate is for a different key', { path: certPath });
  const keyid = keyIdOfCertificate(pub.cert);
  return Object.freeze({
    ...key,
    keyid,
    publicKey: Object.freeze({ ...key.publicKey, keyid, cert: pub.cert }),
  });
}

/** What {@link signRefsFile} wrote. */
export interface RefsSignResult {
  readonly set: string;
  readonly out: string;
  readonly keyid: string;
  readonly algo: string;
  readonly bytes: number;
}

/**
 * Sign a set file's bytes; the signature is written atomically to `out`.
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE, E_IO_WRITE; key errors from signing
 */
export function signRefsFile(setPath: string, key: PrivateKey, out: string): RefsSignResult {
  const bytes = readReferenceSetBytes(setPath);
  const algo = refsSignatureAlgo(key);
  const sig = signRefsBytes(bytes, key, { algo });
  writeAtomic(out, sig);
  return Object.freeze({
    set: setPath,
    out,
    keyid: formatKeyId(key.keyid),
    algo: algo.name,
    bytes: sig.length,
  });
}
