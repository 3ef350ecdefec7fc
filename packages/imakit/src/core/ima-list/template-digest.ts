/**
 * Template digests per bank (formats.md §1.7, §1.4; security/integrity/ima/ima_crypto.c
 * `ima_calc_field_array_hash`).
 *
 * Every template except `ima`: H_bank(template data), the u32 length words included in the list's
 * byte order (pitfall 6). The legacy `ima` template: H_bank(d(20) ‖ name ‖ NUL, zero-padded to 256
 * bytes) — 276 bytes, no length words (pitfall 2).
 */
import { createHasher, resolveHashAlgo, type HashAlgoLike } from '../hash/hash-algo.ts';
import { fastHashFor, type ExtendChain, type FastHash, type FastHashProvider } from './fast-hash.ts';
import { LEGACY_DIGEST_SIZE, LEGACY_NAME_MAX } from './fields.ts';

/** Size of the NUL-padded name buffer hashed by the legacy `ima` template (IMA_EVENT_NAME_LEN_MAX + 1). */
export const LEGACY_NAME_BUF = LEGACY_NAME_MAX + 1;

/**
 * A reusable per-bank template hasher: sha1/sha256 without allocation, other banks via node:crypto,
 * or the hashers of `provider` where it has one. One instance per replay; not shared between
 * concurrent replays.
 */
export class BankHasher {
  readonly bank: string;
  readonly size: number;
  private readonly fast: FastHash | undefined;
  private readonly legacyBuf = new Uint8Array(LEGACY_DIGEST_SIZE + LEGACY_NAME_BUF);
  constructor(bank: HashAlgoLike, provider?: FastHashProvider) {
    const a = resolveHashAlgo(bank);
    this.bank = a.name;
    this.size = a.size;
    this.fast = provider?.(a.name) ?? fastHashFor(a.name);
    if (!this.fast) createHasher(a); // fail early (E_HASH_UNSUPPORTED) for banks we cannot compute
  }
  /** out[outOff..) = H(src[off..off+len)) */
  hashInto(src: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
    if (this.fast) return this.fast.hashInto(src, off, len, out, outOff);
    const d = createHasher(this.bank)
      .update(src.subarray(off, off + len))
      .digest();
    out.set(d, outOff);
  }
  /** True when {@link spansInto} hashes many entries in one call (a native hasher). */
  get batches(): boolean {
    return this.fast?.hashSpansInto !== undefined;
  }
  /**
   * Template digests of many non-legacy entries at once: out[i*size ..) = H(buf[spans[2i] ..
   * +spans[2i+1])), spans of negative length skipped. Only when {@link batches}.
   */
  spansInto(buf: Uint8Array, spans: Int32Array, count: number, out: Uint8Array): void {
    this.fast!.hashSpansInto!(buf, spans, count, out, 0);
  }
  /** True when {@link chainInto} extends a run in one call (a native hasher). */
  get chains(): boolean {
    return this.fast?.extendChainInto !== undefined;
  }
  /** Extend pcrs[pcrOff..) with `count` values in turn, each PCR value into trace. Only when {@link chains}. */
  chainInto(...args: Parameters<ExtendChain>): void {
    this.fast!.extendChainInto!(...args);
  }
  /** out = H(a ‖ b): a PCR extend */
  extendInto(
    pcr: Uint8Array,
    pcrOff: number,
    value: Uint8Array,
    valueOff: number,
    out: Uint8Array,
    outOff: number,
  ): void {
    if (this.fast)
      return this.fast.hash2Into(pcr, pcrOff, this.size, value, valueOff, this.size, out, outOff);
    const d = createHasher(this.bank)
      .update(pcr.subarray(pcrOff, pcrOff + this.size))
      .update(value.subarray(valueOff, valueOff + this.size))
      .digest();
    out.set(d, outOff);
  }
  /**
   * Template digest of an entry's hashed data into out. For the legacy template `data` is the
   * binary form d ‖ u32 strlen ‖ name; the name is truncated to 255 bytes like the kernel's buffer.
   */
  templateDigestInto(
    buf: Uint8Array,
    dataOff: number,
    dataLen: number,
    legacy: boolean,
    out: Uint8Array,
    outOff: number,
  ): void {
    if (!legacy) return this.hashInto(buf, dataOff, dataLen, out, outOff);
    const lb = this.legacyBuf;
    lb.fill(0);
    lb.set(buf.subarray(dataOff, dataOff + LEGACY_DIGEST_SIZE), 0);
    const nameOff = dataOff + LEGACY_DIGEST_SIZE + 4;
    const nameLen = Math.min(dataLen - LEGACY_DIGEST_SIZE - 4, LEGACY_NAME_MAX);
    lb.set(buf.subarray(nameOff, nameOff + nameLen), LEGACY_DIGEST_SIZE);
    this.hashInto(lb, 0, lb.length, out, outOff);
  }
}

/**
 * Template digest of one entry's data for `bank` (convenience, allocates).
 * @param legacy true for the `ima` template (data = d ‖ u32 strlen ‖ name)
 */
export function templateDigest(templateData: Uint8Array, bank: HashAlgoLike, legacy = false): Uint8Array {
  const h = new BankHasher(bank);
  const out = new Uint8Array(h.size);
  h.templateDigestInto(templateData, 0, templateData.length, legacy, out, 0);
  return out;
}
