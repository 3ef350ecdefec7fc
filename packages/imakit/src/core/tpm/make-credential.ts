/**
 * TPM2_MakeCredential done outside the TPM (TPM 2.0 Part 1 §24 "Credential Protection", Part 3
 * §12.6): wrap a short secret so that only the TPM holding `ek` releases it, and only to an object
 * whose Name is `name` (an AK loaded beside the EK). The verifier runs this; the TPM answers with
 * TPM2_ActivateCredential.
 *
 * Everything uses the EK's nameAlg (not the AK's): for the P-384 high-range EK that is sha384 with
 * AES-256 even though the AK's Name is sha256 (tpm.md "Credential activation").
 *
 *   seed       RSA EK: nameAlg-size random bytes, encrypted RSA-OAEP(nameAlg, label "IDENTITY\0")
 *              ECC EK: Z = x(d_eph · Q_EK), seed = KDFe(nameAlg, Z, "IDENTITY", x_eph, x_EK, digestBits),
 *              the encrypted secret is the ephemeral public point (TPMS_ECC_POINT)    (Part 1 §C.6.4)
 *   symKey     KDFa(nameAlg, seed, "STORAGE", name, "", EK symmetric keyBits)      (Part 1 §24.4)
 *   encIdentity AES-CFB(symKey, IV = 0, TPM2B_DIGEST(credential))
 *   hmacKey    KDFa(nameAlg, seed, "INTEGRITY", "", "", digestBits)                (Part 1 §24.5)
 *   outerHMAC  HMAC_nameAlg(hmacKey, encIdentity ‖ name)
 *   TPM2B_ID_OBJECT = TPM2B_DIGEST(outerHMAC) ‖ encIdentity
 *
 * The symmetric key's label is "STORAGE", not "IDENTITY": "IDENTITY" labels only the seed (OAEP
 * label, KDFe use). The outer HMAC does not cover the AES key, so a wrong label would show only as
 * a garbled secret, not as TPM_RC_INTEGRITY.
 *
 * The randomness (RSA seed, ECC ephemeral key) comes from node:crypto unless the caller passes its
 * own, which is what makes known-answer tests possible.
 */
import { constants, createCipheriv, createECDH, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { concatBytes, utf8 } from '../bytes/bytes.ts';
import { hash, hashAlgoByTpmAlg, type HashAlgo } from '../hash/hash-algo.ts';
import { TPM_ALG, TPM_ECC_CURVE, tpmAlgName } from './constants.ts';
import { TpmWriter } from './marshal.ts';
import { tpmPublicToKeyObject, type TpmtPublic } from './public.ts';
import type { Credential } from './commands/credential.ts';

/** Largest credential: a TPM2B_DIGEST holds at most sizeof(TPMU_HA) (sha512) bytes. */
export const MAX_CREDENTIAL_BYTES = 64;

/** Caller-supplied randomness (tests; a verifier with its own DRBG). */
export interface MakeCredentialOptions {
  /** random bytes source (default node:crypto randomBytes) */
  readonly random?: (n: number) => Uint8Array;
  /** ECC EKs: the ephemeral private scalar (big-endian, curve size) instead of a fresh one */
  readonly ephemeralPrivateKey?: Uint8Array;
}

const NODE_CURVES: Readonly<Record<number, { name: string; size: number }>> = Object.freeze({
  [TPM_ECC_CURVE.NIST_P256]: { name: 'prime256v1', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { name: 'secp384r1', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { name: 'secp521r1', size: 66 },
});

const u32 = (v: number): Uint8Array =>
  new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

/** Label bytes with the terminating NUL (Part 1 §11.4.10.2: a label string includes its 0x00). */
const label = (s: string): Uint8Array => concatBytes(utf8(s), new Uint8Array([0]));

/**
 * KDFa (SP800-108 counter mode, HMAC; TPM 2.0 Part 1 §11.4.10.2):
 * K(i) = HMAC(key, u32 i ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ u32 bits), concatenated and cut to bits.
 * @throws RangeError when bits is not a positive multiple of 8
 */
export function kdfa(
  alg: HashAlgo,
  key: Uint8Array,
  use: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0)
    throw new RangeError(`kdfa: bits ${bits} is not a positive multiple of 8`);
  if (alg.node === null) throw new RangeError(`kdfa: ${alg.name} has no HMAC`);
  const want = bits / 8;
  const out = new Uint8Array(Math.ceil(want / alg.size) * alg.size);
  const fixed = concatBytes(label(use), contextU, contextV, u32(bits));
  for (let i = 1, off = 0; off < want; i++, off += alg.size)
    out.set(createHmac(alg.node, key).update(u32(i)).update(fixed).digest(), off);
  return out.slice(0, want);
}

/**
 * KDFe (SP800-56A concatenation KDF; TPM 2.0 Part 1 §11.4.10.3):
 * K(i) = H(u32 i ‖ Z ‖ label ‖ 0x00 ‖ partyU ‖ partyV), concatenated and cut to bits.
 * @throws RangeError when bits is not a positive multiple of 8
 */
export function kdfe(
  alg: HashAlgo,
  z: Uint8Array,
  use: string,
  partyU: Uint8Array,
  partyV: Uint8Array,
  bits: number,
): Uint8Array {
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0)
    throw new RangeError(`kdfe: bits ${bits} is not a positive multiple of 8`);
  const want = bits / 8;
  const out = new Uint8Array(Math.ceil(want / alg.size) * alg.size);
  const tail = concatBytes(label(use), partyU, partyV);
  for (let i = 1, off = 0; off < want; i++, off += alg.size) out.set(hash(alg, u32(i), z, tail), off);
  return out.slice(0, want);
}

/** The EK's nameAlg as a HashAlgo. @throws ImakitError E_CODEC_UNKNOWN_ALGO */
function nameAlgOf(ek: TpmtPublic): HashAlgo {
  const a = hashAlgoByTpmAlg(ek.nameAlg);
  if (!a || a.node === null)
    throw new ImakitError('E_CODEC_UNKNOWN_ALGO', `EK nameAlg ${tpmAlgName(ek.nameAlg)} is not usable`, {
      field: 'nameAlg',
    });
  return a;
}

/** The seed and its encryption to the EK (Part 1 §24.2 "Secret Sharing", Annex B.10.3 / C.6.4). */
function seedFor(
  ek: TpmtPublic,
  alg: HashAlgo,
  o: MakeCredentialOptions,
): { seed: Uint8Array; encSecret: Uint8Array } {
  const random = o.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  if (ek.type === 'rsa') {
    const seed = random(alg.size);
    const encSecret = publicEncrypt(
      {
        key: tpmPublicToKeyObject(ek),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: alg.node!,
        oaepLabel: label('IDENTITY'),
      },
      seed,
    );
    return { seed, encSecret: new Uint8Array(encSecret) };
  }
  const curve = NODE_CURVES[ek.curveId];
  if (!curve)
    throw new ImakitError('E_KEY_TYPE', `EK curve 0x${ek.curveId.toString(16)} is not supported`, {
      field: 'curveID',
    });
  const ecdh = createECDH(curve.name);
  if (o.ephemeralPrivateKey !== undefined) ecdh.setPrivateKey(o.ephemeralPrivateKey);
  else ecdh.generateKeys();
  const ekPoint = concatBytes(new Uint8Array([4]), ek.x, ek.y);
  let z: Uint8Array;
  try {
    z = new Uint8Array(ecdh.computeSecret(ekPoint));
  } catch (e) {
    throw new ImakitError(
      'E_KEY_PARSE',
      `EK public point is not on ${curve.name}`,
      { field: 'unique' },
      { cause: e },
    );
  }
  const pub = new Uint8Array(ecdh.getPublicKey()); // 04 ‖ x ‖ y, each curve size
  const ex = pub.subarray(1, 1 + curve.size);
  const ey = pub.subarray(1 + curve.size);
  const seed = kdfe(alg, z, 'IDENTITY', ex, ek.x, alg.size * 8);
  return { seed, encSecret: new TpmWriter().tpm2b(ex).tpm2b(ey).finish() };
}

/**
 * MakeCredential for `ek` and the object named `name`.
 * @param ek the EK's public area (TPMT_PUBLIC); its nameAlg and symmetric definition are used
 * @param name the AK's Name (nameAlg ‖ digest), as `tpm2_readpublic` prints it
 * @param credential the secret to wrap, 1..64 bytes
 * @returns the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents (tpm2-tools' file: encodeToolsCredential)
 * @throws TypeError / RangeError for misuse (empty or oversized credential); ImakitError E_CODEC_UNKNOWN_ALGO
 *   (EK nameAlg), E_KEY_TYPE (EK symmetric algorithm not AES-CFB, unsupported curve), E_KEY_PARSE
 * @example
 * const cred = makeCredential(decodeTpm2bPublic(ekPub), akName, secret);
 * writeFileSync('cred.out', encodeToolsCredential(cred)); // tpm2_activatecredential -i cred.out
 */
export function makeCredential(
  ek: TpmtPublic,
  name: Uint8Array,
  credential: Uint8Array,
  o: MakeCredentialOptions = {},
): Credential {
  if (!(name instanceof Uint8Array) || name.length < 2)
    throw new TypeError('makeCredential: name is not a TPM Name');
  if (!(credential instanceof Uint8Array)) throw new TypeError('makeCredential: credential is not bytes');
  if (credential.length === 0 || credential.length > MAX_CREDENTIAL_BYTES)
    throw new RangeError(
      `makeCredential: credential is ${credential.length} bytes (1..${MAX_CREDENTIAL_BYTES})`,
    );
  const alg = nameAlgOf(ek);
  const sym = ek.symmetric;
  if (sym.algorithm !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB)
    throw new ImakitError(
      'E_KEY_TYPE',
      `EK symmetric ${tpmAlgName(sym.algorithm)}-${tpmAlgName(sym.mode)}: only AES-CFB protects credentials here`,
      { field: 'symmetric' },
    );
  const { seed, encSecret } = seedFor(ek, alg, o);
  const symKey = kdfa(alg, seed, 'STORAGE', name, new Uint8Array(0), sym.keyBits);
  const cipher = createCipheriv(`aes-${sym.keyBits}-cfb`, symKey, new Uint8Array(16));
  const plain = new TpmWriter().tpm2b(credential).finish();
  const encIdentity = new Uint8Array(Buffer.concat([cipher.update(plain), cipher.final()]));
  const hmacKey = kdfa(alg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), alg.size * 8);
  const outerHmac = new Uint8Array(createHmac(alg.node!, hmacKey).update(encIdentity).update(name).digest());
  const credentialBlob = new TpmWriter().tpm2b(outerHmac).bytes(encIdentity).finish();
  return Object.freeze({ credentialBlob, secret: encSecret });
}
