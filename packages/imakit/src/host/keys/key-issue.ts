/**
 * Key material on disk for `imakit keys`: a self-signed CA, signing keys issued by it, PEM/DER and
 * evmctl v1 conversions, certificates loaded into kernel keyrings, and the EVM master and
 * encrypted keys. Private keys are written
 * 0600 and public files 0644, atomically, through host/key-files.ts.
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { RSAPublicKey } from '@peculiar/asn1-rsa';
import { ImakitError } from '../../errors.ts';
import {
  generateKeyPair,
  exportPrivateKeyPem,
  type KeyPairInfo,
  type KeySpec,
} from '../../core/keys/key-gen.ts';
import { buildCertificate, type BuiltCertificate } from '../../core/keys/x509-build.ts';
import { containsPrivateKey, loadPrivateKey, loadPublicKey } from '../../core/keys/keys.ts';
import { looksLikePem, parseCertificate, pemDecode, pemEncode } from '../../core/keys/x509.ts';
import { decryptEvmKeyBlob, newEvmKeyBlob } from '../../core/evm/evm-key-blob.ts';
import {
  formatKeyId,
  formatKeyIdV1,
  keyIdOfCertificate,
  keyIdV1,
  rsaKeyBlobV1,
} from '../../core/keys/keyid.ts';
import { readKeyFile, writePublicFile, writeSecretFile, type WriteKeyFileOptions } from './key-files.ts';
import { addCertificate, resolveKeyring } from './keyctl.ts';

/** A private KeyObject from a PEM/DER file (typed errors from keys.ts first: passphrase, type). */
function privateKeyObject(data: Uint8Array, passphrase: string | undefined, path: string): KeyObject {
  try {
    loadPrivateKey(data, passphrase === undefined ? {} : { passphrase });
  } catch (e) {
    if (e instanceof ImakitError) throw new ImakitError(e.code, e.detail, { path });
    throw e;
  }
  const key = Buffer.from(data);
  return looksLikePem(data)
    ? createPrivateKey(passphrase === undefined ? key : { key, passphrase })
    : createPrivateKey({
        key,
        format: 'der',
        type: 'pkcs8',
        ...(passphrase === undefined ? {} : { passphrase }),
      });
}

function certDer(data: Uint8Array, path: string): Uint8Array {
  if (!looksLikePem(data)) return data;
  const b = pemDecode(data).find((x) => x.label === 'CERTIFICATE');
  if (!b) throw new ImakitError('E_KEY_PARSE', 'no CERTIFICATE PEM block', { path });
  return b.der;
}

/** What {@link createCaFiles} and {@link createSigningKeyFiles} wrote and made. */
export interface IssuedKeyFiles {
  /** private key PEM (0600) */
  readonly key: string;
  /** certificate PEM */
  readonly cert: string;
  /** certificate DER */
  readonly der: string;
  readonly alg: KeyPairInfo['alg'];
  readonly bits: KeyPairInfo['bits'];
  readonly curve: KeyPairInfo['curve'];
  /** the kernel's key id of the certificate (SKID) */
  readonly keyid: string;
  readonly subject: string;
  readonly issuer: string;
}

/** Common options of the key-and-certificate writers. */
export interface IssueOptions {
  readonly spec: KeySpec;
  readonly subject: string;
  readonly days: number;
  /** encrypt the new private key with this passphrase */
  readonly pass?: string;
  /** output directory (must exist) */
  readonly outDir: string;
  readonly write?: WriteKeyFileOptions;
}

function writeIssued(
  k: KeyPairInfo,
  c: BuiltCertificate,
  files: { key: string; cert: string; der: string },
  o: IssueOptions,
): IssuedKeyFiles {
  const w = o.write ?? {};
  writeSecretFile(files.key, exportPrivateKeyPem(k.privateKey, o.pass), w);
  writePublicFile(files.cert, c.pem, w);
  writePublicFile(files.der, c.der, w);
  return {
    ...files,
    alg: k.alg,
    bits: k.bits,
    curve: k.curve,
    keyid: formatKeyId(keyIdOfCertificate(c.cert)),
    subject: c.cert.subject,
    issuer: c.cert.issuer,
  };
}

/**
 * A self-signed CA: DIR/ca.pem, DIR/ca.der and DIR/ca.key.pem.
 * @throws ImakitError E_KEY_TYPE, E_IO_WRITE (exists without overwrite)
 */
export function createCaFiles(o: IssueOptions): IssuedKeyFiles {
  const k = generateKeyPair(o.spec);
  const c = buildCertificate({
    publicKey: k.publicKey,
    issuerKey: k.privateKey,
    subject: o.subject,
    ca: true,
    days: o.days,
  });
  const files = {
    cert: join(o.outDir, 'ca.pem'),
    der: join(o.outDir, 'ca.der'),
    key: join(o.outDir, 'ca.key.pem'),
  };
  return writeIssued(k, c, files, o);
}

/**
 * A signing key and its certificate issued by the CA in `caDir` (ca.pem, ca.key.pem):
 * DIR/key.pem, DIR/cert.pem and DIR/cert.der.
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_PASSPHRASE, E_KEY_TYPE, E_IO_WRITE
 */
export function createSigningKeyFiles(
  o: IssueOptions & { readonly caDir: string; readonly caPass?: string; readonly codeSigning?: boolean },
): IssuedKeyFiles {
  const caPath = join(o.caDir, 'ca.pem');
  const caKeyPath = join(o.caDir, 'ca.key.pem');
  for (const p of [caPath, caKeyPath])
    if (!existsSync(p))
      throw new ImakitError(
        'E_IO_READ',
        `no CA in ${o.caDir}: ${basename(p)} is missing (create one with \`imakit keys ca --out ${o.caDir}\`)`,
        { path: p },
      );
  const caCert = parseCertificate(certDer(readKeyFile(caPath, 'certificate'), caPath));
  const caKey = privateKeyObject(readKeyFile(caKeyPath), o.caPass, caKeyPath);
  const k = generateKeyPair(o.spec);
  const c = buildCertificate({
    publicKey: k.publicKey,
    issuerKey: caKey,
    issuerCert: caCert,
    subject: o.subject,
    ca: false,
    codeSigning: o.codeSigning === true,
    days: o.days,
  });
  const files = {
    key: join(o.outDir, 'key.pem'),
    cert: join(o.outDir, 'cert.pem'),
    der: join(o.outDir, 'cert.der'),
  };
  return writeIssued(k, c, files, o);
}

/** evmctl `convert`: `IN.bin` (the v1 key blob) and `IN.keyid` (`%llX`, no newline). */
function evmctlConvert(data: Uint8Array): { bin: Uint8Array; keyid: string } {
  const pub = loadPublicKey(data);
  if (pub.alg !== 'rsa') throw new ImakitError('E_KEY_TYPE', 'evmctl convert (v1 keys) is RSA only');
  const k = AsnConvert.parse(pub.subjectPublicKey, RSAPublicKey);
  const n = new Uint8Array(k.modulus);
  const e = new Uint8Array(k.publicExponent);
  return { bin: rsaKeyBlobV1(n, e), keyid: formatKeyIdV1(keyIdV1(n, e)) };
}

function isDerPrivate(data: Uint8Array): boolean {
  try {
    createPrivateKey({ key: Buffer.from(data), format: 'der', type: 'pkcs8' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Convert a key or certificate file: `evmctl` writes `<out ?? file>.bin` and `.keyid` (RSA v1
 * blob, like evmctl convert); `pem`/`der` re-encode a certificate, public key or unencrypted
 * private key (as PKCS#8, 0600) to `out`. Returns the files written.
 * @throws ImakitError E_USAGE (no `out` for pem/der, an encrypted private key), E_IO_*, E_KEY_*
 */
export function convertKeyFile(
  file: string,
  to: 'pem' | 'der' | 'evmctl',
  out: string | undefined,
  w: WriteKeyFileOptions = {},
): string[] {
  const data = readKeyFile(file);
  if (to === 'evmctl') {
    const r = evmctlConvert(data);
    const prefix = out ?? file;
    writePublicFile(`${prefix}.bin`, r.bin, w);
    writePublicFile(`${prefix}.keyid`, r.keyid, w);
    return [`${prefix}.bin`, `${prefix}.keyid`];
  }
  if (out === undefined) throw new ImakitError('E_USAGE', '--out is required for --to pem|der');
  const isPrivate = containsPrivateKey(data) || (!looksLikePem(data) && isDerPrivate(data));
  let der: Uint8Array;
  let label: string;
  if (isPrivate) {
    // re-encode as unencrypted PKCS#8 (convert is not a way to strip or add passphrases)
    if (looksLikePem(data) && /ENCRYPTED/.test(Buffer.from(data).toString('latin1')))
      throw new ImakitError('E_USAGE', 'encrypted private keys are not converted; use openssl pkcs8');
    der = new Uint8Array(privateKeyObject(data, undefined, file).export({ type: 'pkcs8', format: 'der' }));
    label = 'PRIVATE KEY';
  } else {
    const pub = loadPublicKey(data);
    der = pub.cert ? pub.cert.der : pub.spkiDer;
    label = pub.cert ? 'CERTIFICATE' : 'PUBLIC KEY';
  }
  const bytes = to === 'pem' ? pemEncode(label, der) : der;
  if (isPrivate) writeSecretFile(out, bytes, w);
  else writePublicFile(out, bytes, w);
  return [out];
}

/** What {@link importCertificateFile} loaded. */
export interface ImportedCertificate {
  /** the new key's serial */
  readonly serial: number;
  /** the keyring's id */
  readonly keyringId: string;
  readonly keyid: string;
  readonly subject: string;
}

/**
 * Load a certificate file (PEM or DER) into a kernel keyring (keyctl padd asymmetric).
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, keyctl/keyring errors (E_TOOL_MISSING, E_KEYRING...)
 */
export function importCertificateFile(file: string, keyring: string, create: boolean): ImportedCertificate {
  const der = certDer(readKeyFile(file), file);
  const cert = parseCertificate(der);
  const ring = resolveKeyring(keyring, { create });
  const serial = addCertificate(der, ring);
  return { serial, keyringId: ring, keyid: formatKeyId(keyIdOfCertificate(cert)), subject: cert.subject };
}

/**
 * Write a random kernel master key (`user:kmk`) of `len` bytes, 0600.
 * @throws ImakitError E_IO_WRITE
 */
export function writeMasterKeyFile(out: string, len: number, w: WriteKeyFileOptions = {}): void {
  writeSecretFile(out, new Uint8Array(randomBytes(len)), w);
}

/**
 * A random EVM key wrapped under the master key in `kmk` (kernel encrypted-key "default" format):
 * the blob's hex goes to `out`, the plain key (when asked) to `plainOut`, both 0600; the plain key
 * is zeroed in memory afterwards. Returns the keyctl command that loads the blob.
 * @throws ImakitError E_IO_READ, E_IO_WRITE, blob errors
 */
export function createEvmKeyFiles(o: {
  readonly kmk: string;
  readonly out: string;
  readonly len: number;
  readonly masterDesc: string;
  readonly plainOut?: string;
  readonly write?: WriteKeyFileOptions;
}): string {
  const r = newEvmKeyBlob({ masterKey: readKeyFile(o.kmk, 'evm-key'), len: o.len, masterDesc: o.masterDesc });
  const w = o.write ?? {};
  writeSecretFile(o.out, r.payloadHex, w);
  if (o.plainOut !== undefined) writeSecretFile(o.plainOut, r.plain, w);
  r.plain.fill(0);
  return r.loadCommand;
}

/**
 * Verify the HMAC of an exported encrypted key (`blob`), decrypt it with the master key in `kmk`
 * and write the plain key to `out` (0600); blob errors name the blob file. Returns the key length.
 * @throws ImakitError E_IO_READ, E_IO_WRITE, blob errors (HMAC mismatch...)
 */
export function decryptEvmKeyFile(
  blob: string,
  kmk: string,
  out: string,
  w: WriteKeyFileOptions = {},
): number {
  const data = readKeyFile(blob, 'evm-key');
  let plain: Uint8Array;
  try {
    plain = decryptEvmKeyBlob(data, readKeyFile(kmk, 'evm-key'));
  } catch (e) {
    if (e instanceof ImakitError) throw new ImakitError(e.code, e.detail, { ...e.context, path: blob });
    throw e;
  }
  try {
    writeSecretFile(out, plain, w);
    return plain.length;
  } finally {
    plain.fill(0);
  }
}
