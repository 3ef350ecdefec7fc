/**
 * `imakit quote verify`: strict TPM2_Quote verification (issue 11 §2).
 *
 *   quote verify --attest FILE --signature FILE --ak FILE (--nonce HEX | --nonce-file FILE)
 *                --pcrs FILE [--require SEL] [--previous ATTEST_FILE] [--json]
 *
 * --attest is the raw TPMS_ATTEST (`tpm2_quote -m`), --signature the raw TPMT_SIGNATURE
 * (`tpm2_quote -s`), --ak a TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER public key, --pcrs `bank:index
 * hex` lines, tpm2_pcrread YAML or `tpm2_quote -o` output, --require the PCRs the quote must cover
 * (`sha256:0-7,10`), --previous an earlier verified quote of the same AK for the clock checks.
 *
 * Exit: 0 the quote is valid, 1 it is not, 2 bad input (unreadable or malformed files/flags).
 */
import { ImakitError, withPath } from '../../errors.ts';
import { fromHex, toHex } from '../../core/bytes/bytes.ts';
import { parseQuotePcrs } from '../../core/tcg/quote-pcrs.ts';
import { formatPcrSelection, parsePcrSelectionText } from '../../core/tpm/pcr-selection.ts';
import { loadQuoteAk, verifyQuote, type QuoteVerdict } from '../../core/tpm/quote-verify.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import type { CommandModule } from '../command.ts';

function verdictJson(v: QuoteVerdict): unknown {
  const pcrMap = (m: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>) =>
    Object.fromEntries(
      [...m].map(([b, vals]) => [b, Object.fromEntries([...vals].map(([i, d]) => [i, toHex(d)]))]),
    );
  return {
    status: v.status,
    code: v.code,
    failures: v.failures,
    established: v.established,
    notEstablished: v.notEstablished,
    signature: v.signature,
    quotedSelection: v.quotedSelection && formatPcrSelection(v.quotedSelection),
    verifiedPcrs: pcrMap(v.verifiedPcrs),
    notCovered: v.notCovered,
    clockInfo: v.clockInfo && {
      clock: v.clockInfo.clock.toString(),
      resetCount: v.clockInfo.resetCount,
      restartCount: v.clockInfo.restartCount,
      safe: v.clockInfo.safe,
    },
    firmwareVersion:
      v.firmwareVersion === undefined ? undefined : v.firmwareVersion.toString(16).padStart(16, '0'),
    qualifiedSigner: v.attest && toHex(v.attest.qualifiedSigner),
  };
}

function renderText(v: QuoteVerdict, out: (s: string) => void): void {
  if (v.status === 'pass') {
    const s = v.signature;
    out(
      `PASS quote: ${s?.sigAlg}/${s?.hashAlg}${s?.pssSaltLength !== undefined ? ` salt ${s.pssSaltLength}` : ''} signature, nonce, ` +
        `pcrDigest over ${v.quotedSelection ? formatPcrSelection(v.quotedSelection) : '-'}`,
    );
  } else for (const f of v.failures) out(`FAIL ${f.code}: ${f.detail}`);
  if (v.notCovered.length > 0) out(`not covered by the quote (not verified): ${v.notCovered.join(', ')}`);
  if (v.clockInfo)
    out(
      `clock ${v.clockInfo.clock} ms, resetCount ${v.clockInfo.resetCount}, restartCount ${v.clockInfo.restartCount}, ` +
        `safe ${v.clockInfo.safe ? 'yes' : 'no'}, firmwareVersion ${v.firmwareVersion?.toString(16).padStart(16, '0')}`,
    );
  for (const n of v.notEstablished) out(`not established: ${n}`);
}

export const command: CommandModule = {
  name: 'quote',
  register(program, ctx) {
    const quote = program.command('quote').description('TPM 2.0 quotes');
    quote
      .command('verify')
      .description('verify a TPM2_Quote strictly: signature, magic/type, nonce, PCR digest, coverage, clock')
      .requiredOption('--attest <file>', 'raw TPMS_ATTEST (tpm2_quote -m)')
      .requiredOption('--signature <file>', 'raw TPMT_SIGNATURE (tpm2_quote -s)')
      .requiredOption('--ak <file>', 'the AK: TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER public key')
      .option('--nonce <hex>', 'the nonce sent to the TPM, hex')
      .option('--nonce-file <file>', 'the nonce sent to the TPM, raw bytes')
      .requiredOption(
        '--pcrs <file>',
        "PCR values: 'bank:index hex' lines, tpm2_pcrread YAML or tpm2_quote -o",
      )
      .option('--require <sel>', 'PCRs the quote must cover, e.g. sha256:0-7,10')
      .option(
        '--previous <file>',
        'an earlier verified quote (TPMS_ATTEST) of the same AK, for the clock checks',
      )
      .option('--counters-obfuscated', 'the AK is outside the endorsement hierarchy: skip counter checks')
      .option('--json', 'JSON output')
      .action((f) =>
        ctx.run(
          () => {
            if ((f.nonce === undefined) === (f.nonceFile === undefined))
              throw new ImakitError('E_USAGE', 'give exactly one of --nonce and --nonce-file');
            const nonce =
              f.nonce !== undefined
                ? fromHex(f.nonce.replace(/^0x/i, ''), '--nonce')
                : readBoundedFile(f.nonceFile!, 'signature');
            const ak = withPath(f.ak, () => loadQuoteAk(readBoundedFile(f.ak, 'key')));
            const pcrs = withPath(f.pcrs, () => parseQuotePcrs(readBoundedFile(f.pcrs, 'pcrs')));
            const require = f.require === undefined ? undefined : parsePcrSelectionText(f.require);
            const v = verifyQuote(ak, {
              attest: readBoundedFile(f.attest, 'signature'),
              signature: readBoundedFile(f.signature, 'signature'),
              nonce,
              pcrs,
              ...(require ? { require } : {}),
              ...(f.previous !== undefined ? { previous: readBoundedFile(f.previous, 'signature') } : {}),
              ...(f.countersObfuscated ? { countersObfuscated: true } : {}),
            });
            if (f.json) ctx.io.stdout(JSON.stringify(verdictJson(v), null, 2) + '\n');
            else renderText(v, (s) => ctx.io.stdout(s + '\n'));
            return v.status === 'pass' ? 0 : 1;
          },
          { json: f.json },
        ),
      );
  },
};
