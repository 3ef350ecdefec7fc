/**
 * Key identifiers as the kernel and evmctl compute and match them (formats.md §3.4, §3.5;
 * pitfall 13).
 *
 * v2/v3: a 32-bit id. The kernel looks up `id:%08x` with a PARTIAL match against the tail of the
 * certificate's identifiers, which in practice means the last 4 bytes of the Subject Key
 * Identifier. evmctl's fallback (no SKID available) is the last 4 bytes of SHA-1 over the
 * subjectPublicKey BIT STRING contents, which coincides with the SKID only for RFC 5280
 * method-1 ("hash") SKIDs.
 *
 * v1: 8 bytes from SHA-1 over the key2bin blob of an RSA key.
 */
import { createHash } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { assertBytes, concatBytes, u16Bytes } from '../bytes/bytes.ts';
import type { Certificate } from './x509.ts';

function sha1(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(b).digest());
}

function last4(b: Uint8Array): number {
  if (b.length < 4) {
    // A SKID shorter than 4 bytes: the kernel's partial match compares the tail; left-pad with zeros.
    const p = new Uint8Array(4);
    p.set(b, 4 - b.length);
    b = p;
  }
  const t = b.subarray(b.length - 4);
  return ((t[0]! << 24) | (t[1]! << 16) | (t[2]! << 8) | t[3]!) >>> 0;
}

/**
 * evmctl `calc_keyid_v2`: last 4 bytes of SHA-1 over the subjectPublicKey BIT STRING contents
 * (DER RSAPublicKey for RSA, the uncompressed point `04‖X‖Y` for EC/SM2).
 * @example keyIdFromSubjectPublicKey(cert.subjectPublicKey) === 0x4d0e4f4d // rsa2048 vector
 */
export function keyIdFromSubjectPublicKey(bits: Uint8Array): number {
  assertBytes(bits, undefined, 'subjectPublicKey');
  return last4(sha1(bits));
}

/**
 * The id the kernel will match for this certificate: the last 4 bytes of its SKID, or (no SKID)
 * the SPKI-hash id.
 */
export function keyIdOfCertificate(cert: Pick<Certificate, 'skid' | 'subjectPublicKey'>): number {
  return cert.skid && cert.skid.length > 0
    ? last4(cert.skid)
    : keyIdFromSubjectPublicKey(cert.subjectPublicKey);
}

/** The kernel's rendering: `%08x` (8 lowercase hex digits), as in `id:%08x` and audit logs. */
export function formatKeyId(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** evmctl's rendering: `%x` (leading zeros dropped, e.g. `27eaa7d`). */
export function formatKeyIdEvmctl(n: number): string {
  return (n >>> 0).toString(16);
}

/**
 * Parse a key id given as hex (1-8 digits, optional `0x` / `id:` prefix), like evmctl `--keyid`.
 * evmctl refuses 0, so does this.
 * @throws ImakitError E_KEYID_BAD
 * @example parseKeyId('aabbccdd') === 0xaabbccdd
 */
export function parseKeyId(text: string): number {
  const t = text.trim().replace(/^id:/, '').replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,8}$/.test(t))
    throw new ImakitError('E_KEYID_BAD', `key id '${text}' must be 1..8 hex digits`, { token: text });
  const n = parseInt(t, 16) >>> 0;
  if (n === 0) throw new ImakitError('E_KEYID_BAD', 'key id 0 is not allowed', { token: text });
  return n;
}

/** MPI as lib/digsig.c reads it: u16 BE bit count ‖ big-endian magnitude (leading zeros stripped). */
function mpi(mag: Uint8Array): Uint8Array {
  let i = 0;
  while (i < mag.length && mag[i] === 0) i++;
  const m = mag.subarray(i);
  const bits = m.length === 0 ? 0 : (m.length - 1) * 8 + (32 - Math.clz32(m[0]!));
  return concatBytes(u16Bytes(bits, 'be'), m);
}

/**
 * The v1 key blob (`key2bin` in evmctl): `01 ‖ 00000000 ‖ 00 ‖ 02 ‖ MPI(n) ‖ MPI(e)`
 * (version 1, timestamp 0, algo RSA, 2 MPIs). This is also the payload `evmctl import --rsa` loads.
 */
export function rsaKeyBlobV1(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  return concatBytes(new Uint8Array([1, 0, 0, 0, 0, 0, 2]), mpi(modulus), mpi(exponent));
}

/** v1 key id: bytes 12..19 of SHA-1 over the key blob (formats.md §3.4). */
export function keyIdV1(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  return sha1(rsaKeyBlobV1(modulus, exponent)).slice(12, 20);
}

/** The kernel's `user` key description for a v1 key id: `%llX` (uppercase, no leading zeros). */
export function formatKeyIdV1(keyid8: Uint8Array): string {
  assertBytes(keyid8, 8, 'v1 keyid');
  return BigInt('0x' + Buffer.from(keyid8).toString('hex'))
    .toString(16)
    .toUpperCase();
}
