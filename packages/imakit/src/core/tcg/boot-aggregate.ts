/**
 * boot_aggregate (formats.md §2; security/integrity/ima/ima_crypto.c `ima_calc_boot_aggregate`).
 *
 * The kernel hashes PCRs 0-7 of the SHA-1 bank, or PCRs 0-9 of any other bank (5.8+, stable
 * backports make the version unreliable: pitfall 9), with the bank's hash. Without a TPM the digest
 * is all zero. We compute every variant for every bank we have values for and report the one that
 * matches the list's boot_aggregate entry.
 *
 * Establishes: the list's boot_aggregate equals the aggregate of the given PCR values (or of an
 * event log's replay). Does NOT establish that those PCR values are genuine (a quote does) nor that
 * the firmware they measure is trusted.
 */
import { bytesEqual, isAllZero, toHex, type Endian } from '../bytes/bytes.ts';
import { decodeTemplateFields } from '../ima-list/fields.ts';
import { lookupTemplate } from '../ima-list/templates.ts';
import { hash, resolveHashAlgo } from '../hash/hash-algo.ts';
import type { PcrValues } from './pcr-values.ts';

/** One aggregate variant. */
export interface BootAggregateValue {
  readonly bank: string;
  /** 'pcr0-7' (SHA-1 bank, pre-5.8 kernels), 'pcr0-9' (non-SHA-1 banks, 5.8+) */
  readonly variant: 'pcr0-7' | 'pcr0-9';
  readonly digest: Uint8Array;
  /** the variant the current kernel computes for this bank */
  readonly kernelDefault: boolean;
}

/**
 * Every boot_aggregate variant computable from the values (missing PCRs count as zero, which is
 * what a reset PCR holds).
 */
export function computeBootAggregates(pcrs: PcrValues, banks?: readonly string[]): BootAggregateValue[] {
  const out: BootAggregateValue[] = [];
  for (const [bank, values] of pcrs) {
    if (banks && !banks.includes(bank)) continue;
    const a = resolveHashAlgo(bank);
    const zero = new Uint8Array(a.size);
    const get = (i: number): Uint8Array => values.get(i) ?? zero;
    const p07 = Array.from({ length: 8 }, (_, i) => get(i));
    out.push({ bank: a.name, variant: 'pcr0-7', digest: hash(a, ...p07), kernelDefault: a.name === 'sha1' });
    out.push({
      bank: a.name,
      variant: 'pcr0-9',
      digest: hash(a, ...p07, get(8), get(9)),
      kernelDefault: a.name !== 'sha1',
    });
  }
  return out;
}

/** The kernel's value per bank (sha1: PCRs 0-7, others: 0-9), as evmctl prints it. */
export function kernelBootAggregates(pcrs: PcrValues, banks?: readonly string[]): BootAggregateValue[] {
  return computeBootAggregates(pcrs, banks).filter((v) => v.kernelDefault);
}

/** A boot_aggregate entry's claim: algorithm prefix and digest (from `d-ng`, or the legacy `d`). */
export interface BootAggregateClaim {
  readonly index: number;
  readonly algo: string;
  readonly digest: Uint8Array;
}

/** Verdict of a boot_aggregate check. */
export interface BootAggregateVerdict {
  readonly status: 'pass' | 'fail';
  readonly detail: string;
  readonly claim: BootAggregateClaim;
  /** the variant that matched */
  readonly matched?: BootAggregateValue;
  /** 'no-tpm' when the claim is all zero (the kernel found no TPM; nothing to check) */
  readonly note?: 'no-tpm';
  readonly candidates: readonly BootAggregateValue[];
  readonly notEstablished: readonly string[];
}

/**
 * Check a list's boot_aggregate claim against PCR values: every bank and variant is tried; the
 * bank named by the claim's algorithm first.
 */
export function checkBootAggregate(claim: BootAggregateClaim, pcrs: PcrValues): BootAggregateVerdict {
  const candidates = computeBootAggregates(pcrs);
  const notEstablished = [
    'that the PCR values are genuine (no quote verified)',
    'that the measured firmware is trusted',
  ];
  if (isAllZero(claim.digest))
    return {
      status: 'fail',
      detail: `boot_aggregate (entry ${claim.index}) is all zero: the kernel found no TPM, so it binds nothing`,
      claim,
      note: 'no-tpm',
      candidates,
      notEstablished,
    };
  const ordered = [...candidates].sort(
    (x, y) =>
      Number(y.bank === claim.algo) - Number(x.bank === claim.algo) ||
      Number(y.kernelDefault) - Number(x.kernelDefault),
  );
  const m = ordered.find((c) => bytesEqual(c.digest, claim.digest));
  if (m)
    return {
      status: 'pass',
      detail: `boot_aggregate (entry ${claim.index}) = ${m.bank} over PCRs ${m.variant === 'pcr0-7' ? '0-7' : '0-9'}${m.kernelDefault ? '' : ' (not the current kernel rule for this bank)'}${m.bank !== claim.algo && claim.algo !== '' ? ` although the entry names ${claim.algo}` : ''}`,
      claim,
      matched: m,
      candidates,
      notEstablished,
    };
  return {
    status: 'fail',
    detail: `boot_aggregate (entry ${claim.index}) ${claim.algo}:${toHex(claim.digest)} matches no bank/PCR-range variant of the given PCRs (${candidates.map((c) => `${c.bank} ${c.variant}`).join(', ') || 'none given'})`,
    claim,
    candidates,
    notEstablished,
  };
}

/**
 * The boot_aggregate claims of a list (entries whose name field is `boot_aggregate`), in order.
 * Use the LAST one after a kexec (pitfall 9).
 */
export function findBootAggregateClaims(
  entries: readonly { index: number; templateName: string; templateData: Uint8Array | undefined }[],
  endian: Endian = 'le',
): BootAggregateClaim[] {
  const out: BootAggregateClaim[] = [];
  for (const e of entries) {
    const tpl = lookupTemplate(e.templateName);
    if (!tpl || !e.templateData) continue;
    let fields;
    try {
      fields = decodeTemplateFields(tpl, e.templateData, endian);
    } catch {
      continue;
    }
    const name = fields.find((f) => f.id === 'n-ng' || f.id === 'n');
    const nm = name && 'text' in name ? name.text : name && 'name' in name ? name.name : undefined;
    if (nm !== 'boot_aggregate') continue;
    const d = fields[0]!;
    if (d.id === 'd') out.push({ index: e.index, algo: 'sha1', digest: d.digest });
    else if (d.id === 'd-ng' || d.id === 'd-ngv2')
      out.push({ index: e.index, algo: d.algo, digest: d.digest });
  }
  return out;
}
