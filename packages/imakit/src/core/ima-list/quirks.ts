/**
 * Kernel quirks of measurement-list replay, as data (style.md practice 7). A quirk is applied to a
 * copy of the replay only after the strict replay of the affected bank failed, and the verdict
 * names the quirk id that made it pass.
 */

/** How a bank is replayed. */
export type BankMode = 'strict' | 'sha1-padded' | 'sha1-padded-ones';

/** Every bank mode (checkpoint parsing). */
export const BANK_MODES: readonly BankMode[] = Object.freeze(['strict', 'sha1-padded', 'sha1-padded-ones']);

/** True for the modes that extend the zero-padded SHA-1 template digest. */
export const isPaddedMode = (m: BankMode): boolean => m !== 'strict';

/** A replay quirk. */
export interface ReplayQuirk {
  readonly id: string;
  readonly description: string;
  /** true when the quirk can explain a failed strict replay of `bank` */
  readonly appliesTo: (bank: string) => boolean;
  /** the bank mode to retry with */
  readonly apply: BankMode;
}

/** The table. */
export const REPLAY_QUIRKS: readonly ReplayQuirk[] = Object.freeze([
  Object.freeze({
    id: 'sha1-padded-bank',
    description:
      'kernels before 5.1 (and banks without a kernel crypto mapping) extend every non-SHA1 bank with the ' +
      'SHA-1 template digest zero-padded to the bank size, violations as 0xFF×20 zero-padded ' +
      '(formats.md §1.8, pitfall 4)',
    appliesTo: (bank: string) => bank !== 'sha1',
    apply: 'sha1-padded' as const,
  }),
  Object.freeze({
    id: 'bank-hash-unavailable',
    description:
      'the bank has a kernel crypto mapping but its hash could not be allocated at IMA init (e.g. ' +
      'CONFIG_CRYPTO_SHA512=m not loaded: "ima: Can not allocate sha384"): entries are extended with the ' +
      'zero-padded SHA-1 template digest, violations with 0xFF over the whole bank size (ima_init_digests ' +
      'pads only unmapped algorithms; seen on Debian 6.1 with sha384/sha512 banks, real-kernel.md §7)',
    appliesTo: (bank: string) => bank !== 'sha1',
    apply: 'sha1-padded-ones' as const,
  }),
]);
