/**
 * The kernel's `encrypted` key type, format `default` (security/keys/encrypted-keys/encrypted.c):
 * the blob behind `/etc/keys/evm-key` (seed 000) and `keyctl add encrypted evm-key "load …"`.
 * real-kernel.md §5.2 describes it; the details below are from encrypted.c.
 *
 * Text form (what `keyctl print` / `keyctl pipe` return and what `load` takes):
 *
 *     default user:kmk 32 <hex(iv[16] ‖ 00 ‖ ciphertext[roundup(32,16)] ‖ hmac[32])>
 *
 * Key derivation (`get_derived_key`): a zero-filled buffer of `max(9 + len(mk), 32)` bytes that
 * starts with `"AUTH_KEY\0" ‖ mk` (resp. `"ENC_KEY\0" ‖ mk`, one zero byte shorter so one extra
 * trailing zero) is hashed with SHA-256. The ENC key is the AES-256-CBC key (zero-padded plain
 * text, no PKCS#7); the AUTH key is the HMAC-SHA256 key over the datablob
 * `format\0 master_desc\0 datalen\0 iv 00 ciphertext` (`datablob_hmac_append`).
 *
 * Quirk kept on purpose: when a `load` command omits the format word (pre-4.x syntax), the kernel's
 * `datablob_hmac_verify` skips the `format\0` prefix in the HMAC input, so such a payload only
 * verifies if its MAC was computed without the prefix. {@link EncryptedKeyPayload.format} is
 * `undefined` in that case and the MAC is checked the same way.
 *
 * Pure: no I/O. Randomness (IV, `new` keys) comes from node:crypto unless given.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { assertBytes, concatBytes, fromHex, toHex, utf8 } from '../bytes/bytes.ts';
import { CodecError, ImakitError } from '../../errors.ts';

/** AES block / IV size (`ivsize` from crypto_skcipher_ivsize(cbc(aes))). */
export const ENCRYPTED_KEY_IV_SIZE = 16;
/** HMAC-SHA256 size (`HASH_SIZE`). */
export const ENCRYPTED_KEY_MAC_SIZE = 32;
/** encrypted.c MIN_DATA_SIZE / MAX_DATA_SIZE: the allowed decrypted key lengths. */
export const ENCRYPTED_KEY_MIN_LEN = 20;
export const ENCRYPTED_KEY_MAX_LEN = 4096;
/** EVM only uses the first 128 bytes (security/integrity/evm/evm_crypto.c MAX_KEY_SIZE). */
export const EVM_MAX_KEY_LEN = 128;
/** `enc32` format requires exactly this length (KEY_ENC32_PAYLOAD_LEN). */
const ENC32_LEN = 32;

/** Formats whose datablob is handled here (`ecryptfs` wraps an auth token: not supported). */
export type EncryptedKeyFormat = 'default' | 'enc32';

/** A parsed `encrypted` key payload. Parsing never verifies the MAC. */
export interface EncryptedKeyPayload {
  /** the format word, or undefined when the text omitted it (legacy syntax; changes the MAC input) */
  readonly format: EncryptedKeyFormat | undefined;
  /** master key description, `user:NAME` or `trusted:NAME` */
  readonly masterDesc: string;
  /** the decimal length text exactly as written (it is covered by the MAC) */
  readonly datalenText: string;
  /** decrypted key length in bytes */
  readonly decryptedLen: number;
  readonly iv: Uint8Array;
  /** AES-CBC ciphertext, roundup(decryptedLen, 16) bytes */
  readonly ciphertext: Uint8Array;
  /** HMAC-SHA256 over the datablob */
  readonly mac: Uint8Array;
}

/** The result of creating a blob. */
export interface EvmKeyBlob {
  readonly payload: EncryptedKeyPayload;
  /** binary tail `iv ‖ 00 ‖ ciphertext ‖ mac` (what the hex in the text encodes) */
  readonly blob: Uint8Array;
  /**
   * The text form `default user:kmk 32 <hex>`: the contents of `/etc/keys/evm-key` (what
   * `keyctl pipe` writes, no newline) and the argument of `load`.
   */
  readonly payloadHex: string;
  /** `load <payloadHex>`: the payload for `keyctl add encrypted evm-key "…" @u` */
  readonly loadCommand: string;
}

const roundup16 = (n: number): number => Math.ceil(n / 16) * 16;

function validMasterDesc(desc: string): boolean {
  // valid_master_desc(): "trusted:" or "user:" followed by a non-empty name
  for (const p of ['user:', 'trusted:'])
    if (desc.startsWith(p) && desc.length > p.length && !/[\s\0]/.test(desc)) return true;
  return false;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * The kernel's derived key (`get_derived_key`): SHA-256 over a zeroed `max(9 + len(mk), 32)`
 * byte buffer starting with the label, a NUL and the master key.
 * @param which `AUTH` (HMAC key) or `ENC` (AES key)
 * @param masterKey the master key's payload bytes (e.g. the 32 bytes of `user:kmk`)
 */
export function deriveEncryptedKeyKey(which: 'AUTH' | 'ENC', masterKey: Uint8Array): Uint8Array {
  assertBytes(masterKey, undefined, 'master key');
  const len = Math.max('AUTH_KEY'.length + 1 + masterKey.length, 32);
  const buf = new Uint8Array(len);
  const label = utf8(which === 'AUTH' ? 'AUTH_KEY' : 'ENC_KEY');
  buf.set(label, 0);
  buf.set(masterKey, label.length + 1);
  return sha256(buf);
}

/** The bytes the MAC covers (datablob), honouring the legacy no-format quirk. */
export function encryptedKeyMacInput(p: EncryptedKeyPayload): Uint8Array {
  const z = new Uint8Array([0]);
  const parts: Uint8Array[] = [];
  if (p.format !== undefined) parts.push(utf8(p.format), z);
  parts.push(utf8(p.masterDesc), z, utf8(p.datalenText), z, p.iv, z, p.ciphertext);
  return concatBytes(...parts);
}

function checkLen(len: number, format: EncryptedKeyFormat | undefined): void {
  if (!Number.isInteger(len) || len < ENCRYPTED_KEY_MIN_LEN || len > ENCRYPTED_KEY_MAX_LEN)
    throw new RangeError(`key length must be ${ENCRYPTED_KEY_MIN_LEN}..${ENCRYPTED_KEY_MAX_LEN}, got ${len}`);
  if (format === 'enc32' && len !== ENC32_LEN) throw new RangeError('enc32 keys must be 32 bytes');
}

/**
 * Encrypt `plain` under the master key like `keyctl add encrypted NAME "new default user:kmk LEN"`
 * does with a random key (or the 6.0+ `new … <decrypted-data>` with a given one).
 * @param opts.masterKey master key payload (any length ≥ 1; `keyctl padd user kmk` of a 32-byte file)
 * @param opts.masterDesc default `user:kmk`
 * @param opts.plain the key to wrap, 20..4096 bytes (EVM uses at most 128)
 * @param opts.iv 16 bytes; random if omitted
 * @param opts.format default `default`
 * @throws RangeError for a bad length / IV, TypeError for non-bytes (misuse)
 * @example createEvmKeyBlob({ masterKey: kmk, plain: evmKey }).payloadHex // 'default user:kmk 32 …'
 */
export function createEvmKeyBlob(opts: {
  masterKey: Uint8Array;
  plain: Uint8Array;
  masterDesc?: string;
  iv?: Uint8Array;
  format?: EncryptedKeyFormat;
}): EvmKeyBlob {
  const { masterKey, plain } = opts;
  assertBytes(masterKey, undefined, 'master key');
  assertBytes(plain, undefined, 'plain key');
  if (masterKey.length === 0) throw new RangeError('master key is empty');
  const format = opts.format ?? 'default';
  const masterDesc = opts.masterDesc ?? 'user:kmk';
  if (!validMasterDesc(masterDesc)) throw new RangeError(`invalid master key description '${masterDesc}'`);
  checkLen(plain.length, format);
  const iv = opts.iv ?? new Uint8Array(randomBytes(ENCRYPTED_KEY_IV_SIZE));
  assertBytes(iv, ENCRYPTED_KEY_IV_SIZE, 'iv');
  const padded = new Uint8Array(roundup16(plain.length));
  padded.set(plain);
  const c = createCipheriv('aes-256-cbc', deriveEncryptedKeyKey('ENC', masterKey), iv);
  c.setAutoPadding(false);
  const ciphertext = new Uint8Array(Buffer.concat([c.update(padded), c.final()]));
  padded.fill(0);
  const unsigned = {
    format,
    masterDesc,
    datalenText: String(plain.length),
    decryptedLen: plain.length,
    iv: Uint8Array.from(iv),
    ciphertext,
    mac: new Uint8Array(ENCRYPTED_KEY_MAC_SIZE),
  };
  const mac = hmac(deriveEncryptedKeyKey('AUTH', masterKey), encryptedKeyMacInput(unsigned));
  const payload: EncryptedKeyPayload = Object.freeze({ ...unsigned, mac });
  return blobResult(payload);
}

/**
 * `new` semantics: a random key of `len` bytes (default 32), wrapped under the master key.
 * @returns the blob and the plain key (the EVM HMAC key; handle as a secret)
 */
export function newEvmKeyBlob(opts: {
  masterKey: Uint8Array;
  len?: number;
  masterDesc?: string;
  format?: EncryptedKeyFormat;
}): EvmKeyBlob & { plain: Uint8Array } {
  const len = opts.len ?? 32;
  checkLen(len, opts.format);
  const plain = new Uint8Array(randomBytes(len));
  const r = createEvmKeyBlob({ ...opts, plain });
  return { ...r, plain };
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

function blobResult(payload: EncryptedKeyPayload): EvmKeyBlob {
  const payloadHex = encodeEncryptedKeyPayload(payload);
  return Object.freeze({
    payload,
    blob: concatBytes(payload.iv, new Uint8Array([0]), payload.ciphertext, payload.mac),
    payloadHex,
    loadCommand: `load ${payloadHex}`,
  });
}

/**
 * Canonical text form, as `keyctl print` shows it (`datablob_format`: lowercase hex, one space
 * between fields, no newline). A payload parsed without a format word is printed without it.
 */
export function encodeEncryptedKeyPayload(p: EncryptedKeyPayload): string {
  const hex = toHex(p.iv) + '00' + toHex(p.ciphertext) + toHex(p.mac);
  const head = p.format === undefined ? [] : [p.format];
  return [...head, p.masterDesc, p.datalenText, hex].join(' ');
}

const FORMATS: ReadonlySet<string> = new Set(['default', 'enc32', 'ecryptfs']);

/**
 * Parse the text form: `[load ]default user:kmk 32 <hex>` (or without the format word), as written
 * by `keyctl pipe` into /etc/keys/evm-key. Fields are separated by ONE space or tab (the kernel's
 * `strsep(" \t")`: two separators make an empty field); a single trailing newline is tolerated
 * (files written by `keyctl print`). Does not verify the MAC.
 * @throws CodecError E_EVMKEY_BLOB (with the character offset and field) for anything malformed,
 *   E_CODEC_BAD_HEX for bad hex digits
 * @example parseEncryptedKeyPayload(readFileSync('/etc/keys/evm-key', 'utf8'))
 */
export function parseEncryptedKeyPayload(text: string): EncryptedKeyPayload {
  if (typeof text !== 'string') throw new TypeError('payload must be a string');
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const fields: { s: string; at: number }[] = [];
  let at = 0;
  for (const s of body.split(/[ \t]/)) {
    fields.push({ s, at });
    at += s.length + 1;
  }
  const bad = (detail: string, field: string, offset: number): never => {
    throw new CodecError('E_EVMKEY_BLOB', detail, { offset, field });
  };
  let i = 0;
  if (fields[0]?.s === 'load') i++;
  const word = fields[i];
  if (word === undefined || word.s === '')
    return bad('missing format or master key description', 'format', 0);
  let format: EncryptedKeyFormat | undefined;
  if (FORMATS.has(word.s)) {
    if (word.s === 'ecryptfs') return bad('the ecryptfs format is not supported', 'format', word.at);
    format = word.s as EncryptedKeyFormat;
    i++;
  }
  const md = fields[i++];
  if (md === undefined || !validMasterDesc(md.s))
    return bad(`invalid master key description '${md?.s ?? ''}'`, 'master_desc', md?.at ?? body.length);
  const dl = fields[i++];
  if (dl === undefined || !/^[0-9]{1,5}$/.test(dl.s))
    return bad(`invalid key length '${dl?.s ?? ''}'`, 'datalen', dl?.at ?? body.length);
  const decryptedLen = Number(dl.s);
  if (decryptedLen < ENCRYPTED_KEY_MIN_LEN || decryptedLen > ENCRYPTED_KEY_MAX_LEN)
    return bad(
      `key length ${decryptedLen} outside ${ENCRYPTED_KEY_MIN_LEN}..${ENCRYPTED_KEY_MAX_LEN}`,
      'datalen',
      dl.at,
    );
  if (format === 'enc32' && decryptedLen !== ENC32_LEN)
    return bad('enc32 keys must be 32 bytes', 'datalen', dl.at);
  const hx = fields[i++];
  if (hx === undefined || hx.s === '') return bad('hex blob is missing', 'hex', body.length);
  if (i !== fields.length) return bad('unexpected text after the hex blob', 'trailing', fields[i]!.at);
  const encLen = roundup16(decryptedLen);
  // encrypted_key_decrypt(): the hex length must be exactly (ivsize + 1 + enc + HASH_SIZE) * 2
  const want = (ENCRYPTED_KEY_IV_SIZE + 1 + encLen + ENCRYPTED_KEY_MAC_SIZE) * 2;
  if (hx.s.length !== want)
    return bad(
      `hex blob has ${hx.s.length} digits, ${want} expected for a ${decryptedLen}-byte key`,
      'hex',
      hx.at,
    );
  let raw: Uint8Array;
  try {
    raw = fromHex(hx.s, 'hex');
  } catch (e) {
    const off = e instanceof CodecError ? (e.context.offset ?? 0) : 0;
    throw new CodecError('E_CODEC_BAD_HEX', e instanceof Error ? e.message : String(e), {
      offset: hx.at + off,
      field: 'hex',
    });
  }
  // The kernel skips the separator byte without reading it and MACs a zero there; it only ever
  // writes 00. Anything else is corruption the MAC cannot see, so reject it.
  if (raw[ENCRYPTED_KEY_IV_SIZE] !== 0)
    return bad('separator byte after the IV is not 00', 'separator', hx.at + 2 * ENCRYPTED_KEY_IV_SIZE);
  const ivEnd = ENCRYPTED_KEY_IV_SIZE;
  const ctStart = ivEnd + 1;
  return Object.freeze({
    format,
    masterDesc: md.s,
    datalenText: dl.s,
    decryptedLen,
    iv: raw.slice(0, ivEnd),
    ciphertext: raw.slice(ctStart, ctStart + encLen),
    mac: raw.slice(ctStart + encLen),
  });
}

/**
 * Verify the HMAC, then decrypt: the kernel's `encrypted_key_decrypt` order. No decryption
 * happens unless the MAC matches, so a wrong master key or a tampered blob never yields bytes.
 * @param blobOrPayload the text form (string or its bytes, e.g. /etc/keys/evm-key) or a parsed payload
 * @param masterKey the master key payload (e.g. the bytes of /etc/keys/kmk)
 * @returns the decrypted key (`decryptedLen` bytes): for `evm-key`, the EVM HMAC key
 * @throws CodecError E_EVMKEY_BLOB / E_CODEC_BAD_HEX for malformed text;
 *   ImakitError E_EVMKEY_MAC when the MAC does not verify (wrong master key or tampering)
 */
export function decryptEvmKeyBlob(
  blobOrPayload: string | Uint8Array | EncryptedKeyPayload,
  masterKey: Uint8Array,
): Uint8Array {
  assertBytes(masterKey, undefined, 'master key');
  const p =
    typeof blobOrPayload === 'string'
      ? parseEncryptedKeyPayload(blobOrPayload)
      : blobOrPayload instanceof Uint8Array
        ? parseEncryptedKeyPayload(textOf(blobOrPayload))
        : blobOrPayload;
  const expected = hmac(deriveEncryptedKeyKey('AUTH', masterKey), encryptedKeyMacInput(p));
  if (p.mac.length !== expected.length || !timingSafeEqual(p.mac, expected))
    throw new ImakitError('E_EVMKEY_MAC', undefined, { field: 'hmac' });
  if (p.ciphertext.length === 0 || p.ciphertext.length % 16 !== 0 || p.ciphertext.length < p.decryptedLen)
    throw new CodecError('E_EVMKEY_BLOB', 'ciphertext length does not fit the key length', {
      offset: 0,
      field: 'ciphertext',
    });
  const d = createDecipheriv('aes-256-cbc', deriveEncryptedKeyKey('ENC', masterKey), p.iv);
  d.setAutoPadding(false);
  const padded = Buffer.concat([d.update(p.ciphertext), d.final()]);
  const out = new Uint8Array(padded.subarray(0, p.decryptedLen));
  padded.fill(0);
  return out;
}

/** The text of a blob file's bytes; only printable ASCII and a final newline are accepted. */
function textOf(b: Uint8Array): string {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    const ok = (c >= 0x20 && c < 0x7f) || c === 0x09 || (c === 0x0a && i === b.length - 1);
    if (!ok) throw new CodecError('E_EVMKEY_BLOB', 'blob file is not text', { offset: i, field: 'text' });
  }
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** Convenience: parse then re-encode to the canonical text (`keyctl print` form). */
export function canonicalEncryptedKeyText(text: string): string {
  return encodeEncryptedKeyPayload(parseEncryptedKeyPayload(text));
}
