/**
 * A measurement list bound to a TPM quote in one verdict (`imakit log verify --quote Q --ak AK
 * --nonce N`). The quote is verified strictly first (core `verifyQuote`: AK attributes, signature,
 * magic and type, nonce, PCR digest); only the PCR values its signature covers are then used to
 * replay the list, in every quoted bank that has PCR 10. A list that ran ahead of the quote (a live
 * list read after quoting) passes at the prefix the quote covers, which is named by entry count and
 * byte offset. PCR 10 missing from the signed selection is a failure, never a silent pass.
 *
 * Establishes, on pass: the named prefix of the list replays to PCR 10 values signed by the AK over
 * the nonce. Does NOT establish: that the AK resides in a genuine TPM (credential activation and
 * the EK certificate chain do), that entries past the covered prefix are genuine, nor what the
 * list's own verdict leaves open (file trustworthiness, template names).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError, withPath } from '../../errors.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import { parseQuotePcrs } from '../../core/tcg/quote-pcrs.ts';
import { loadQuoteAk, verifyQuote, type QuoteVerdict } from '../../core/tpm/quote-verify.ts';
import { formatPcrSelection } from '../../core/tpm/pcr-selection.ts';
import { findHashAlgo } from '../../core/hash/hash-algo.ts';
import type { EntryCursor } from '../../core/ima-list/binary.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import { verifyListFile, type ListFileReport, type ListFileVerifyOptions } from './list-verify.ts';

/** The IMA PCR (CONFIG_IMA_MEASURE_PCR_IDX). */
export const IMA_PCR = 10;

/** The files of one quote: what `imakit tpm quote --out DIR` writes. */
export interface QuoteFiles {
  /** raw TPMS_ATTEST */
  readonly attest: string;
  /** raw TPMT_SIGNATURE */
  readonly signature: string;
  /** claimed PCR values (`bank:index hex` lines, tpm2_pcrread YAML or tpm2_quote -o) */
  readonly pcrs: string;
}

/** A quote directory's files (quote.attest, quote.sig, pcrs.txt). */
export function quoteFilesInDir(dir: string): QuoteFiles {
  return Object.freeze({
    attest: join(dir, 'quote.attest'),
    signature: join(dir, 'quote.sig'),
    pcrs: join(dir, 'pcrs.txt'),
  });
}

/** Options of {@link verifyListWithQuote}: the list options (PCR sources excluded) and the quote. */
export interface ListQuoteOptions extends Omit<
  ListFileVerifyOptions,
  'pcrs' | 'pcrsJson' | 'expected' | 'tpm'
> {
  readonly quote: QuoteFiles;
  /** the AK: an AK directory (its ak.pub), TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER */
  readonly ak: string;
  /** the nonce the verifier sent */
  readonly nonce: Uint8Array;
}

/** PCR 10 of one quoted bank against the list's replay. */
export interface QuotedPcrBinding {
  readonly bank: string;
  /** the quoted (signed) value, hex */
  readonly quoted: string;
  /** match: the whole list; prefix: the list ran ahead; mismatch: no prefix; not-replayed: bank skipped */
  readonly status: 'match' | 'prefix' | 'mismatch' | 'not-replayed';
  /** entries the quote covers (the matching prefix), when it matched */
  readonly coveredEntries?: number;
}

/** Why a list-and-quote verification failed; each its own code. */
export type ListQuoteFailureCode =
  'quote' | 'pcr10-not-quoted' | 'list' | 'pcr10-mismatch' | 'prefix-disagrees';

/** The one verdict over list and quote. */
export interface ListQuoteReport {
  readonly status: 'pass' | 'fail';
  readonly failures: readonly { readonly code: ListQuoteFailureCode; readonly detail: string }[];
  readonly quote: QuoteVerdict;
  /** the list's report (absent when the quote failed: no verified PCR values to replay against) */
  readonly list: ListFileReport | undefined;
  readonly pcr10: readonly QuotedPcrBinding[];
  /** the prefix of the list the quote covers, on pass */
  readonly covered?: {
    readonly entries: number;
    readonly bytes: number;
    readonly ofEntries: number;
    readonly ofBytes: number;
  };
  readonly notEstablished: readonly string[];
}

const NO_QUOTE_NOTE = 'that the PCR values came from a TPM (no quote was verified)';

/** End offsets of the entries seen, growing by doubling (8 bytes an entry). */
class EntryEnds {
  private a = new Float64Array(1024);
  n = 0;
  push(end: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = end;
  }
  /** bytes covered by entries 0..k (0 for k = -1) */
  endOf(k: number): number {
    return k < 0 ? 0 : (this.a[k] ?? 0);
  }
}

function loadAk(path: string): ReturnType<typeof loadQuoteAk> {
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, 'ak.pub');
  } catch {
    // readBoundedFile names the path and the reason
  }
  return withPath(file, () => loadQuoteAk(readBoundedFile(file, 'key')));
}

/**
 * Verify a measurement list against a quote.
 * @param file the list (default: the live securityfs list)
 * @throws ImakitError E_IO_READ / E_KEY_PARSE / E_PCR_FILE for unreadable or malformed inputs,
 *   E_USAGE for a --bank the quote does not carry PCR 10 in; CodecError for a malformed list
 * @example
 * const r = await verifyListWithQuote('binary_runtime_measurements',
 *   { quote: quoteFilesInDir('q'), ak: 'ak', nonce });
 * if (r.status === 'pass') console.log(`quote covers ${r.covered?.entries} entries`);
 */
export async function verifyListWithQuote(
  file: string | undefined,
  o: ListQuoteOptions,
): Promise<ListQuoteReport> {
  const ak = loadAk(o.ak);
  const pcrs = withPath(o.quote.pcrs, () => parseQuotePcrs(readBoundedFile(o.quote.pcrs, 'pcrs')));
  const quote = verifyQuote(ak, {
    attest: readBoundedFile(o.quote.attest, 'signature'),
    signature: readBoundedFile(o.quote.signature, 'signature'),
    nonce: o.nonce,
    pcrs,
  });
  const failures: { code: ListQuoteFailureCode; detail: string }[] = [];
  const quoteNotes = quote.notEstablished;
  if (quote.status !== 'pass') {
    failures.push({
      code: 'quote',
      detail: `the quote did not verify (${quote.failures.map((f) => f.code).join(', ')}): the list was not replayed`,
    });
    return freeze({
      status: 'fail',
      failures,
      quote,
      list: undefined,
      pcr10: [],
      notEstablished: [NO_QUOTE_NOTE, ...quoteNotes],
    });
  }
  // only signed values: verifiedPcrs holds the PCRs of the signed selection, nothing else
  const verified: PcrValues = quote.verifiedPcrs;
  const quotedBanks = [...verified].filter(([, m]) => m.has(IMA_PCR)).map(([b]) => b);
  const replayable = quotedBanks.filter((b) => findHashAlgo(b)?.node != null);
  const selection = quote.quotedSelection ? formatPcrSelection(quote.quotedSelection) : 'nothing';
  if (replayable.length === 0) {
    failures.push({
      code: 'pcr10-not-quoted',
      detail: `PCR ${IMA_PCR} is not in the quote's signed selection (${selection}): the list is not bound to it`,
    });
    return freeze({
      status: 'fail',
      failures,
      quote,
      list: undefined,
      pcr10: [],
      notEstablished: [NO_QUOTE_NOTE, ...quoteNotes],
    });
  }
  let banks = replayable;
  if (o.banks !== undefined) {
    const unquoted = o.banks.filter((b) => !replayable.includes(b));
    if (unquoted.length > 0)
      throw new ImakitError(
        'E_USAGE',
        `--bank ${unquoted.join(', ')}: the quote signs PCR ${IMA_PCR} only in ${replayable.join(', ')}`,
      );
    banks = [...o.banks];
  }
  const ends = new EntryEnds();
  const outer = o.entryHook;
  const list = await verifyListFile(file, {
    ...o,
    expected: {
      values: verified,
      source: `the quote ${o.quote.attest} (signature, nonce and PCR digest verified)`,
    },
    banks,
    entryHook: (endian) => {
      const inner = outer?.(endian);
      return (c: EntryCursor) => {
        ends.push(c.offset + c.length);
        inner?.(c);
      };
    },
  });
  const pcr10: QuotedPcrBinding[] = quotedBanks.map((bank) => {
    const quoted = verified.get(bank)!.get(IMA_PCR)!;
    const hex = Buffer.from(quoted).toString('hex');
    const outcome = list.verdict?.banks.find((b) => b.bank === bank)?.pcrs.find((p) => p.pcr === IMA_PCR);
    if (!banks.includes(bank) || outcome === undefined) return { bank, quoted: hex, status: 'not-replayed' };
    if (outcome.status === 'match' || outcome.status === 'prefix')
      return {
        bank,
        quoted: hex,
        status: outcome.status,
        coveredEntries: (outcome.matchedThrough ?? -1) + 1,
      };
    return { bank, quoted: hex, status: 'mismatch' };
  });
  const checked = pcr10.filter((p) => p.status !== 'not-replayed');
  for (const p of checked)
    if (p.status === 'mismatch')
      failures.push({
        code: 'pcr10-mismatch',
        detail: `no prefix of the list replays to the quoted ${p.bank}:${IMA_PCR} ${p.quoted}`,
      });
  if (checked.length === 0 && list.status === 'pass')
    failures.push({ code: 'pcr10-mismatch', detail: `the list extends nothing into PCR ${IMA_PCR}` });
  if (list.status !== 'pass')
    failures.push({ code: 'list', detail: list.verdict?.detail ?? 'the list did not verify' });
  const counts = new Set(checked.map((p) => p.coveredEntries));
  if (failures.length === 0 && counts.size > 1)
    failures.push({
      code: 'prefix-disagrees',
      detail: `the quoted banks cover different prefixes: ${checked.map((p) => `${p.bank} ${p.coveredEntries} entries`).join(', ')}`,
    });
  const total = list.verdict?.entries ?? ends.n;
  const coveredEntries = checked[0]?.coveredEntries ?? 0;
  const listNotes = (list.verdict?.notEstablished ?? []).filter((n) => n !== NO_QUOTE_NOTE);
  const notEstablished = [...quoteNotes, ...listNotes];
  if (failures.length === 0 && coveredEntries < total)
    notEstablished.push(
      `entries ${coveredEntries}..${total - 1} (after the quote was taken): not covered by any quote`,
    );
  const status = failures.length === 0 ? 'pass' : 'fail';
  return freeze({
    status,
    failures,
    quote,
    list,
    pcr10,
    ...(status === 'pass'
      ? {
          covered: {
            entries: coveredEntries,
            bytes: ends.endOf(coveredEntries - 1),
            ofEntries: total,
            ofBytes: ends.endOf(ends.n - 1),
          },
        }
      : {}),
    notEstablished:
      status === 'pass'
        ? notEstablished
        : [
            NO_QUOTE_NOTE.replace('no quote was verified', 'the list is not bound to the quote'),
            ...notEstablished,
          ],
  });
}

function freeze(r: ListQuoteReport): ListQuoteReport {
  return Object.freeze(r);
}
