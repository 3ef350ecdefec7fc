/**
 * `imakit log verify LIST --quote DIR --ak AK --nonce HEX` (or `--nonce-file FILE`): the list bound
 * to a TPM quote in one verdict (host/attest/quote-bind.ts). DIR is what `imakit tpm quote --out`
 * writes (quote.attest, quote.sig, pcrs.txt); AK an AK directory or public key file.
 *
 * Exit: 0 the quote verified and the list (or the prefix named) replays to its PCR 10; 1 the quote
 * failed, PCR 10 is not signed, or the list does not replay; 2 bad flags or files.
 */
import { ImakitError } from '../../errors.ts';
import { fromHex } from '../../core/bytes/bytes.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import {
  quoteFilesInDir,
  verifyListWithQuote,
  type ListQuoteOptions,
  type ListQuoteReport,
} from '../../host/attest/quote-bind.ts';
import type { CliIo } from '../io.ts';
import { printJson } from './attest-output.ts';
import { renderVerify, verifyJson } from './log-render.ts';

/** The flags `log verify` passes on when --quote is given. */
export interface QuoteFlags {
  quote?: string;
  ak?: string;
  nonce?: string;
  nonceFile?: string;
  pcrs?: string[];
  pcrsJson?: string[];
  tpm?: string;
  json?: boolean;
}

const usage = (d: string): ImakitError => new ImakitError('E_USAGE', d);

/** The nonce from --nonce HEX or --nonce-file FILE (exactly one). */
export function quoteNonce(f: QuoteFlags): Uint8Array {
  if ((f.nonce === undefined) === (f.nonceFile === undefined))
    throw usage('--quote needs exactly one of --nonce and --nonce-file');
  return f.nonce !== undefined
    ? fromHex(f.nonce.replace(/^0x/i, ''), '--nonce')
    : readBoundedFile(f.nonceFile!, 'signature');
}

/** Run the bound verification; the list options come from `log verify`'s flags. */
export async function verifyWithQuote(
  file: string | undefined,
  f: QuoteFlags,
  listOptions: Omit<ListQuoteOptions, 'quote' | 'ak' | 'nonce'>,
): Promise<ListQuoteReport> {
  if (f.ak === undefined) throw usage('--quote needs --ak (the AK directory or public key)');
  if (f.pcrs !== undefined || f.pcrsJson !== undefined || f.tpm !== undefined)
    throw usage('--quote takes the PCR values from the quote: drop --pcrs, --pcrs-json and --tpm');
  const r = await verifyListWithQuote(file, {
    ...listOptions,
    quote: quoteFilesInDir(f.quote!),
    ak: f.ak,
    nonce: quoteNonce(f),
  });
  return r;
}

/** Print the report as text or JSON (`extra`: more top-level JSON keys, e.g. the refs evaluation). */
export function renderQuoteReport(
  io: CliIo,
  r: ListQuoteReport,
  json: boolean,
  extra?: Record<string, unknown>,
): void {
  if (json) printJson(io, reportJson(r, extra));
  else renderText(io, r);
}

function reportJson(r: ListQuoteReport, extra: Record<string, unknown> | undefined): unknown {
  const list = r.list ? (verifyJson(r.list) as Record<string, unknown>) : undefined;
  const verdict = list?.verdict as Record<string, unknown> | undefined;
  return {
    status: r.status,
    failures: r.failures,
    quote: {
      status: r.quote.status,
      code: r.quote.code,
      failures: r.quote.failures,
      established: r.quote.established,
      signature: r.quote.signature,
    },
    pcr10: r.pcr10,
    covered: r.covered,
    notEstablished: r.notEstablished,
    ...(list
      ? { list: { ...list, verdict: verdict && { ...verdict, notEstablished: r.notEstablished } } }
      : {}),
    ...extra,
  };
}

function renderText(io: CliIo, r: ListQuoteReport): void {
  const out = (s: string): void => io.stdout(s + '\n');
  if (r.quote.status === 'pass') out('PASS  quote: signature, nonce and PCR digest verified');
  else for (const q of r.quote.failures) out(`FAIL  quote ${q.code}: ${q.detail}`);
  if (r.list) renderVerify(io, r.list);
  for (const p of r.pcr10)
    out(
      `  quoted ${p.bank}:10 ${p.quoted}: ${p.status}${p.coveredEntries !== undefined ? ` (${p.coveredEntries} entries)` : ''}`,
    );
  if (r.covered)
    out(
      r.covered.entries === r.covered.ofEntries
        ? `  the quote covers the whole list: ${r.covered.entries} entries, ${r.covered.bytes} bytes`
        : `  the quote covers entries 0..${r.covered.entries - 1} (bytes 0..${r.covered.bytes}) of ${r.covered.ofEntries} (${r.covered.ofBytes} bytes): the rest came after the quote`,
    );
  for (const x of r.failures) out(`FAIL  ${x.code}: ${x.detail}`);
  for (const n of r.notEstablished) out(`  not established: ${n}`);
}
