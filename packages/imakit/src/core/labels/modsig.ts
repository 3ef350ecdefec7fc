/**
 * Appended module signatures ("modsig", formats.md §1.6 `d-modsig`/`modsig`, §3.6 point 5):
 * split a signed file the way the kernel does, and verify its PKCS#7 signature against a keyring
 * the way IMA does (security/integrity/ima/ima_modsig.c → verify_pkcs7_message_sig →
 * crypto/asymmetric_keys/pkcs7_verify.c, pkcs7_trust.c).
 *
 * File layout (scripts/sign-file.c, include/linux/module_signature.h):
 *   content ‖ PKCS#7 DER ‖ struct module_signature (12 bytes) ‖ "~Module signature appended~\n"
 * where module_signature = {u8 algo=0, u8 hash=0, u8 id_type=2 (PKEY_ID_PKCS7), u8 signer_len=0,
 * u8 key_id_len=0, u8 pad[3]=0, __be32 sig_len}.
 */
import { CodecError } from '../../errors.ts';
import { ImakitError } from '../../errors.ts';
import { assertBytes, bytesEqual, concatBytes, toHex } from '../bytes/bytes.ts';
import { hash, type HashAlgo } from '../hash/hash-algo.ts';
import type { Keyring, SigVerdict } from './ima-signature.ts';
import type { PublicKey } from '../keys/keys.ts';
import { isDataContent, parsePkcs7, type Pkcs7, type Pkcs7Signer } from '../keys/pkcs7.ts';
import { verifyDigest } from '../keys/sign-digest.ts';

/** MODULE_SIG_STRING, the marker at the very end of a signed file. */
export const MODULE_SIG_STRING = '~Module signature appended~\n';
const MARKER = new TextEncoder().encode(MODULE_SIG_STRING);
/** sizeof(struct module_signature) */
export const MODULE_SIGNATURE_SIZE = 12;
/** PKEY_ID_PKCS7: the only id_type the kernel accepts (mod_check_sig) */
export const PKEY_ID_PKCS7 = 2;

/** The decoded `struct module_signature` trailer. */
export interface ModuleSignatureInfo {
  readonly algo: number;
  readonly hash: number;
  readonly idType: number;
  readonly signerLen: number;
  readonly keyIdLen: number;
  readonly pad: readonly [number, number, number];
  /** length of the PKCS#7 message before the trailer */
  readonly sigLen: number;
}

/** A signed file split into its parts (views into the input, no copies). */
export interface SplitModsig {
  /** the file without the appended signature: what d-modsig hashes */
  readonly content: Uint8Array;
  /** the raw PKCS#7 DER: what the `modsig` field records */
  readonly pkcs7: Uint8Array;
  readonly sigInfo: ModuleSignatureInfo;
}

/**
 * Split an appended-signature file like ima_read_modsig() + mod_check_sig().
 * @returns null when the file does not end with the marker or is too short to hold it and the
 *   trailer (the kernel: -ENOENT, "no modsig")
 * @throws CodecError E_CODEC_BAD_LENGTH (sig_len leaves no content: -EBADMSG),
 *   E_CODEC_UNKNOWN_TYPE (id_type is not PKCS#7: -ENOPKG), E_CODEC_BAD_VALUE (non-zero algo, hash,
 *   signer_len, key_id_len or padding: -EBADMSG). The kernel treats all of these as "no usable
 *   modsig" for appraisal.
 */
export function splitModsig(bytes: Uint8Array): SplitModsig | null {
  assertBytes(bytes, undefined, 'file');
  if (bytes.length <= MARKER.length + MODULE_SIGNATURE_SIZE) return null;
  if (!bytesEqual(bytes.subarray(bytes.length - MARKER.length), MARKER)) return null;
  const fileLen = bytes.length - MARKER.length;
  const at = fileLen - MODULE_SIGNATURE_SIZE;
  const t = bytes.subarray(at, fileLen);
  const sigLen = ((t[8]! << 24) | (t[9]! << 16) | (t[10]! << 8) | t[11]!) >>> 0;
  // mod_check_sig: sig_len >= file_len - sizeof(*ms) is -EBADMSG, so at least one content byte
  if (sigLen >= fileLen - MODULE_SIGNATURE_SIZE)
    throw new CodecError(
      'E_CODEC_BAD_LENGTH',
      `module_signature sig_len ${sigLen} leaves no content before it (${at} bytes available)`,
      { offset: at + 8, field: 'sig_len' },
    );
  if (t[2] !== PKEY_ID_PKCS7)
    throw new CodecError('E_CODEC_UNKNOWN_TYPE', `module_signature id_type ${t[2]} is not PKCS#7 (2)`, {
      offset: at + 2,
      field: 'id_type',
    });
  const names = ['algo', 'hash', 'id_type', 'signer_len', 'key_id_len', 'pad[0]', 'pad[1]', 'pad[2]'];
  for (const i of [0, 1, 3, 4, 5, 6, 7])
    if (t[i] !== 0)
      throw new CodecError(
        'E_CODEC_BAD_VALUE',
        `module_signature ${names[i]} is ${t[i]}, must be 0 for PKCS#7`,
        {
          offset: at + i,
          field: names[i]!,
        },
      );
  const contentEnd = at - sigLen;
  return Object.freeze({
    content: bytes.subarray(0, contentEnd),
    pkcs7: bytes.subarray(contentEnd, at),
    sigInfo: Object.freeze({
      algo: t[0]!,
      hash: t[1]!,
      idType: t[2]!,
      signerLen: t[3]!,
      keyIdLen: t[4]!,
      pad: Object.freeze([t[5]!, t[6]!, t[7]!] as const),
      sigLen,
    }),
  });
}

/** The 12-byte `struct module_signature` sign-file writes for a PKCS#7 message of `sigLen` bytes. */
export function encodeModuleSignature(sigLen: number): Uint8Array {
  if (!Number.isInteger(sigLen) || sigLen < 0 || sigLen > 0xffffffff)
    throw new RangeError('sigLen must be a u32');
  const out = new Uint8Array(MODULE_SIGNATURE_SIZE);
  out[2] = PKEY_ID_PKCS7;
  new DataView(out.buffer).setUint32(8, sigLen, false);
  return out;
}

/** content ‖ pkcs7 ‖ module_signature ‖ marker, as sign-file writes it (inverse of splitModsig). */
export function appendModsig(content: Uint8Array, pkcs7: Uint8Array): Uint8Array {
  assertBytes(content, undefined, 'content');
  assertBytes(pkcs7, undefined, 'PKCS#7');
  return concatBytes(content, pkcs7, encodeModuleSignature(pkcs7.length), MARKER);
}

/** What {@link verifyModsig} checks. */
export interface ModsigInput {
  /** the raw PKCS#7 DER (the `modsig` field) or an already parsed message */
  readonly pkcs7: Uint8Array | Pkcs7;
  /** the digest IMA computed (d-modsig), with `algo` */
  readonly digest: Uint8Array;
  readonly algo: HashAlgo;
  /**
   * What `digest` is:
   *  - `content` (default): a digest of the file content without the signature (a file on disk);
   *  - `recorded`: the value a kernel wrote into `d-modsig`. pkcs7_get_digest() returns the
   *    signer's digest, which for a message WITH signed attributes is the digest of those
   *    attributes, not of the content; both readings are accepted and the verdict says which.
   */
  readonly digestKind?: 'content' | 'recorded';
}

/** Options of {@link verifyModsig}. */
export interface ModsigOptions {
  /**
   * Signed attributes: `reject` (default) like pkcs7_verify(VERIFYING_MODULE_SIGNATURE) in the
   * kernels we model ("Invalid module sig (has authattrs)", -EKEYREJECTED: status `fail` even if
   * the signature is valid, see `signatureValid`); `accept` like the 2026 ML-DSA series which
   * dropped that check.
   */
  readonly authattrs?: 'reject' | 'accept';
}

/** A modsig verdict: a {@link SigVerdict} (keyid = the signer identifier) plus PKCS#7 facts. */
export interface ModsigVerdict extends SigVerdict {
  /** how the PKCS#7 names its signer, e.g. `skid 1a2b...` or `issuer+serial 106f...` */
  readonly signer: string;
  /** the signer carries signed attributes */
  readonly authattrs: boolean;
  /** whether the signature value itself verified, when a key was found and it could be checked */
  readonly signatureValid?: boolean;
}

function signerText(s: Pkcs7Signer): string {
  return s.sid.kind === 'skid' ? `skid ${toHex(s.sid.skid)}` : `issuer+serial ${toHex(s.sid.serial)}`;
}

function findSigner(keyring: Keyring, s: Pkcs7Signer): PublicKey | undefined {
  return s.sid.kind === 'skid'
    ? keyring.findBySkid(s.sid.skid)
    : keyring.findByIssuerSerial(s.sid.issuerDer, s.sid.serial);
}

const SCHEME_KEY: Readonly<Record<string, PublicKey['alg']>> = Object.freeze({
  rsa: 'rsa',
  ecdsa: 'ec',
  sm2: 'sm2',
});

/**
 * Verify an appended PKCS#7 signature against a keyring, over a digest IMA computed.
 *
 * A `pass` proves that the holder of the key in `keyring` matching the PKCS#7 signer identifier
 * signed `digest` (or, with signed attributes accepted, attributes whose messageDigest is
 * `digest`). It does NOT establish: that the key is trusted (in the kernel's .ima keyring, a valid
 * chain, not blacklisted), chains through certificates carried in the message, the certificate's
 * validity dates or usage, or that a file has that digest unless the caller computed it.
 * Never throws for malformed signature bytes (→ `fail`).
 */
export function verifyModsig(input: ModsigInput, keyring: Keyring, opts: ModsigOptions = {}): ModsigVerdict {
  const kind = input.digestKind ?? 'content';
  let p: Pkcs7;
  try {
    p = input.pkcs7 instanceof Uint8Array ? parsePkcs7(input.pkcs7) : input.pkcs7;
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    return Object.freeze({
      status: 'fail',
      keyid: '',
      algo: input.algo.name,
      signer: '',
      authattrs: false,
      code: 'E_SIG_INVALID',
      detail: `malformed PKCS#7: ${e.message}`,
    });
  }
  const s = p.signers[0];
  const base = {
    keyid: s ? (s.sid.kind === 'skid' ? toHex(s.sid.skid) : toHex(s.sid.serial)) : '',
    algo: s?.digestAlgo?.name ?? s?.digestAlgoOid ?? input.algo.name,
    signer: s ? signerText(s) : '',
    authattrs: s?.signedAttrs !== undefined,
  };
  const verdict = (v: Omit<ModsigVerdict, keyof typeof base>): ModsigVerdict =>
    Object.freeze({ ...base, ...v });
  const fail = (detail: string): ModsigVerdict => verdict({ status: 'fail', code: 'E_SIG_INVALID', detail });
  // pkcs7_get_digest(): "doesn't support messages with more than one signer" (-EBADMSG)
  if (!s || p.signers.length !== 1)
    return fail(`${p.signers.length} signers: the kernel accepts exactly one`);
  if (!isDataContent(p))
    return fail(`content type ${p.contentType} is not pkcs7-data (pkcs7_verify: invalid module sig)`);
  const algo = s.digestAlgo;
  if (!algo || algo.node === null)
    return verdict({
      status: 'unsupported',
      code: 'E_HASH_UNSUPPORTED',
      detail: `digest algorithm ${algo?.name ?? s.digestAlgoOid} cannot be computed by this runtime`,
    });
  if (algo.id !== input.algo.id)
    return kind === 'recorded'
      ? fail(`d-modsig is ${input.algo.name} but the PKCS#7 digest algorithm is ${algo.name}`)
      : verdict({
          status: 'unsupported',
          code: 'E_HASH_UNSUPPORTED',
          detail: `the PKCS#7 signs a ${algo.name} digest, a ${input.algo.name} digest was given`,
        });
  if (input.digest.length !== algo.size)
    return fail(`${algo.name} digest of ${input.digest.length} bytes, expected ${algo.size}`);

  let signed: Uint8Array = input.digest;
  let how = `the ${kind === 'recorded' ? 'recorded' : 'content'} ${algo.name} digest`;
  const attrs = s.signedAttrs;
  if (attrs) {
    const attrsDigest = hash(algo, attrs.der);
    const md = attrs.messageDigest;
    if (kind === 'recorded' && bytesEqual(input.digest, attrsDigest)) {
      how = `the signed-attributes digest the kernel records (content digest ${md ? toHex(md) : 'absent'} not tied to the file)`;
    } else if (!md) return fail('signed attributes without a messageDigest');
    else if (!bytesEqual(md, input.digest))
      return fail(`messageDigest ${toHex(md)} does not match the ${algo.name} digest ${toHex(input.digest)}`);
    else {
      signed = attrsDigest;
      how = `the signed attributes (messageDigest = the ${algo.name} digest)`;
    }
  }

  const pub = findSigner(keyring, s);
  const rejectAttrs = attrs !== undefined && (opts.authattrs ?? 'reject') === 'reject';
  const attrsNote =
    'the kernel refuses module signatures with signed attributes (pkcs7_verify: "Invalid module sig (has authattrs)")';
  if (!pub) {
    if (rejectAttrs) return fail(`${attrsNote}; signer ${base.signer} not in the keyring either`);
    return verdict({
      status: 'unknown-key',
      code: 'E_KEY_NOT_FOUND',
      detail: `no key for signer ${base.signer}`,
    });
  }
  const keyAlg = pub.alg === 'rsa' ? `rsa-${pub.bits}` : pub.alg === 'ec' ? `ec-${pub.curve ?? '?'}` : 'sm2';
  const matchedBy = s.sid.kind === 'skid' ? ('skid' as const) : ('issuer-serial' as const);
  const keyed = { keyAlg, matchedBy };
  if (s.scheme === 'unknown')
    return verdict({
      ...keyed,
      status: 'unsupported',
      code: 'E_SIG_UNSUPPORTED',
      detail: `signature algorithm ${s.signatureAlgoOid} is not one the kernel's PKCS#7 parser knows`,
    });
  if (SCHEME_KEY[s.scheme] !== pub.alg)
    return verdict({
      ...keyed,
      status: 'fail',
      code: 'E_SIG_INVALID',
      detail: `${s.scheme} signature but the signer's key is ${keyAlg}`,
    });
  if (pub.alg === 'sm2' && algo.name !== 'sm3')
    return verdict({
      ...keyed,
      status: 'fail',
      code: 'E_SIG_INVALID',
      detail: `SM2 key with ${algo.name}: the kernel only verifies SM2 over SM3`,
    });
  let ok: boolean;
  try {
    ok = verifyDigest(pub, algo, signed, s.signature);
  } catch (e) {
    if (e instanceof ImakitError && (e.code === 'E_SIG_UNSUPPORTED' || e.code === 'E_KEY_TYPE'))
      return verdict({ ...keyed, status: 'unsupported', code: e.code, detail: e.message });
    throw e;
  }
  if (rejectAttrs)
    return verdict({
      ...keyed,
      status: 'fail',
      code: 'E_SIG_INVALID',
      signatureValid: ok,
      detail: `${attrsNote}; the signature itself ${ok ? 'is valid' : 'does not verify'}`,
    });
  return ok
    ? verdict({
        ...keyed,
        status: 'pass',
        signatureValid: true,
        detail: `valid ${keyAlg} PKCS#7 signature over ${how} by ${base.signer} (key trust not established)`,
      })
    : verdict({
        ...keyed,
        status: 'fail',
        code: 'E_SIG_INVALID',
        signatureValid: false,
        detail: `${keyAlg} PKCS#7 signature by ${base.signer} does not verify over ${how}`,
      });
}
