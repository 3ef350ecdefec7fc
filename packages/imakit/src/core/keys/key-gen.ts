/**
 * Key pair generation for IMA/EVM signing keys and CAs: RSA 2048-4096, EC P-256/P-384, SM2.
 *
 * RSA and EC come straight from node:crypto. SM2 needs one extra step (dependencies.md §2b):
 * `generateKeyPairSync('ec', {namedCurve: 'SM2'})` yields an OpenSSL *EC* key on the SM2 curve;
 * re-importing its PKCS#8 (id-ecPublicKey + curve 1.2.156.10197.1.301, exactly what
 * `openssl ecparam -genkey -name SM2` / `genpkey -algorithm SM2` write) gives OpenSSL's SM2 key
 * type, which `openssl pkey`, evmctl and keys.ts `loadPrivateKey` all read. Node's own SM2
 * signing is never used (it hashes Z over the empty ID; we sign with src/core/sm2.ts).
 *
 * Encrypted private keys are PKCS#8 `ENCRYPTED PRIVATE KEY` with AES-256-CBC (PBES2), which
 * openssl and evmctl (`--pass`) read.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { parseSpki, type CurveName } from './x509.ts';

/** Key algorithms imakit generates. */
export type GenKeyAlg = 'rsa' | 'ec' | 'sm2';
/** EC curves imakit generates keys on (the kernel's ecdsa-nist-p256/p384, formats.md §3.2). */
export type GenCurve = 'P-256' | 'P-384';

/** What to generate. */
export interface KeySpec {
  readonly alg: GenKeyAlg;
  /** RSA modulus size, 2048..4096 in steps of 1024 (default 2048) */
  readonly bits?: number;
  /** EC curve (default P-256); ignored for RSA and SM2 */
  readonly curve?: GenCurve;
}

/** A generated (or loaded) key pair with its standard encodings. */
export interface KeyPairInfo {
  readonly alg: GenKeyAlg;
  readonly bits?: number;
  readonly curve?: CurveName;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** DER PKCS#8 PrivateKeyInfo (unencrypted: a secret) */
  readonly pkcs8Der: Uint8Array;
  /** DER SubjectPublicKeyInfo */
  readonly spkiDer: Uint8Array;
}

const RSA_BITS: ReadonlySet<number> = new Set([2048, 3072, 4096]);
const NODE_CURVE: Readonly<Record<GenCurve, string>> = Object.freeze({
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
});

/**
 * Normalize a curve name as users type it (`P-256`, `p256`, `prime256v1`, `secp256r1`, `P-384`,
 * `secp384r1`).
 * @throws ImakitError E_KEY_TYPE for other curves
 */
export function normalizeCurve(name: string): GenCurve {
  const n = name.toLowerCase().replace(/[-_]/g, '');
  if (n === 'p256' || n === 'prime256v1' || n === 'secp256r1') return 'P-256';
  if (n === 'p384' || n === 'secp384r1') return 'P-384';
  throw new ImakitError('E_KEY_TYPE', `unsupported curve '${name}' (use P-256 or P-384, or --alg sm2)`, {
    token: name,
  });
}

/**
 * Generate a key pair.
 * @throws ImakitError E_KEY_TYPE for an unsupported size or curve
 * @example generateKeyPair({ alg: 'ec', curve: 'P-384' }).spkiDer
 */
export function generateKeyPair(spec: KeySpec): KeyPairInfo {
  switch (spec.alg) {
    case 'rsa': {
      const bits = spec.bits ?? 2048;
      if (!RSA_BITS.has(bits))
        throw new ImakitError('E_KEY_TYPE', `RSA key size ${bits} not supported (2048, 3072 or 4096)`, {
          field: 'bits',
        });
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 });
      return keyPairFromPrivate(privateKey);
    }
    case 'ec': {
      const curve = normalizeCurve(spec.curve ?? 'P-256');
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] });
      return keyPairFromPrivate(privateKey);
    }
    case 'sm2': {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'SM2' });
      // Re-import: OpenSSL then types the key as SM2 (what evmctl/openssl expect), not EC.
      const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
      return keyPairFromPrivate(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    }
    default:
      throw new ImakitError('E_KEY_TYPE', `unknown key algorithm '${String((spec as KeySpec).alg)}'`);
  }
}

/**
 * Describe a private KeyObject (RSA, EC P-256/P-384, SM2) with its encodings.
 * @throws ImakitError E_KEY_TYPE for other key types (Ed25519, DSA, P-192, ...)
 */
export function keyPairFromPrivate(privateKey: KeyObject): KeyPairInfo {
  if (privateKey.type !== 'private') throw new TypeError('keyPairFromPrivate needs a private key');
  const publicKey = createPublicKey(privateKey);
  const spkiDer = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const pkcs8Der = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  const info = parseSpki(spkiDer);
  const base = { privateKey, publicKey, pkcs8Der, spkiDer };
  if (info.keyAlg === 'rsa') return Object.freeze({ alg: 'rsa', bits: info.rsaBits ?? 0, ...base });
  if (info.keyAlg === 'sm2') return Object.freeze({ alg: 'sm2', curve: 'SM2', ...base });
  if (info.keyAlg === 'ec' && (info.curve === 'P-256' || info.curve === 'P-384'))
    return Object.freeze({ alg: 'ec', curve: info.curve, ...base });
  throw new ImakitError(
    'E_KEY_TYPE',
    `key type ${info.keyAlg}${info.curve ? ' ' + info.curve : ''} is not supported for IMA/EVM signing keys`,
  );
}

/**
 * PEM of the private key: `PRIVATE KEY` (PKCS#8), or `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2
 * AES-256-CBC) when a passphrase is given.
 */
export function exportPrivateKeyPem(key: KeyObject, passphrase?: string): string {
  if (passphrase === undefined) return String(key.export({ type: 'pkcs8', format: 'pem' }));
  if (passphrase.length === 0) throw new RangeError('empty passphrase');
  return String(key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }));
}

/** DER PKCS#8 of the private key (encrypted with AES-256-CBC when a passphrase is given). */
export function exportPrivateKeyDer(key: KeyObject, passphrase?: string): Uint8Array {
  if (passphrase === undefined) return new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
  return new Uint8Array(key.export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase }));
}

/** PEM `PUBLIC KEY` (SubjectPublicKeyInfo) of a key (private or public). */
export function exportPublicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return String(pub.export({ type: 'spki', format: 'pem' }));
}
