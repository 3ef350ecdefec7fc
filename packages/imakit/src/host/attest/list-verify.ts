/**
 * Verify a measurement list file (or the live securityfs list) end to end: replay it against PCR
 * values from files or the TPM, resume from a checkpoint, check boot_aggregate against the boot
 * PCRs, verify entry signatures with given certificates, cross-check an ascii rendering, and write
 * the checkpoint back on success. The orchestration behind `imakit log verify`.
 */
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import { ImakitError } from '../../errors.ts';
import type { Endian } from '../../core/bytes/bytes.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import {
  cursorTemplateName,
  cursorToEntry,
  detectListFormat,
  encodeBinaryList,
  type EntryCursor,
  type UntrustedEntry,
} from '../../core/ima-list/binary.ts';
import { crossCheckAsciiBinary, parseAsciiList } from '../../core/ima-list/ascii.ts';
import { lookupTemplate } from '../../core/ima-list/templates.ts';
import { verifyMeasurementList, type ListVerdict } from '../../core/ima-list/verify.ts';
import {
  checkpointFromVerdict,
  checkpointToJson,
  parseCheckpoint,
  resumeMeasurementList,
  type ResumeVerdict,
} from '../../core/ima-list/checkpoint.ts';
// signatures and keys load only for --key (their X.509/curve modules cost a list verify
// ~0.05 CPU-s and ~6 MB to initialise): checkSignatures imports them
import type { EntrySignature } from '../../core/ima-list/list-signatures.ts';
import { looksAscii } from '../../core/ima-list/list-form.ts';
import {
  checkBootAggregate,
  findBootAggregateClaims,
  type BootAggregateVerdict,
} from '../../core/tcg/boot-aggregate.ts';
import {
  fileSize,
  liveListPath,
  loadListFile,
  readHead,
  readInput,
  readPcrOptions,
  readTpmPcrs,
  writeAtomic,
} from './attest-input.ts';
import { readFileChunks } from './list-file.ts';
import { offloadForFile } from './list-replay-offload.ts';
import { nativeHashes } from '../workers/native-hash.ts';
import { bankFromListName } from './securityfs.ts';
import { DEFAULT_TPM_SYSFS } from './tpm-sysfs.ts';

/** A progress sink for the bytes replayed. */
export interface ByteProgress {
  update(bytes: number): void;
  stop(): void;
}

/** Options of {@link verifyListFile}; file and key paths as given on the command line. */
export interface ListFileVerifyOptions {
  /** `[ALG,]FILE` PCR files (any supported format) */
  readonly pcrs?: readonly string[];
  /** JSON PCR files */
  readonly pcrsJson?: readonly string[];
  /**
   * PCR values already in hand (a verified quote's: host/attest/quote-bind.ts) and where they came
   * from; used instead of files or the TPM
   */
  readonly expected?: { readonly values: PcrValues; readonly source: string };
  /** replay only these banks (canonical names); default every bank given */
  readonly banks?: readonly string[];
  /** an ascii list to cross-check the binary list against, entry by entry */
  readonly ascii?: string;
  /** certificates/public keys to verify entry signatures with */
  readonly keys?: readonly string[];
  /** checkpoint file: resumed from when it exists, written back on success */
  readonly checkpoint?: string;
  /** how violations are extended: 'ones' (kernel, default) or 'zeros' (evmctl) */
  readonly violations?: 'ones' | 'zeros';
  /** do not try kernel quirks */
  readonly strict?: boolean;
  /** TPM sysfs directory, read when no PCR files are given */
  readonly tpm?: string;
  /** IMA securityfs directory, read when no list file is given */
  readonly securityfs?: string;
  /** a progress sink for a binary list's replay (`label`, total bytes: 0 when unknown) */
  readonly progress?: (label: string, total: number) => ByteProgress;
  /**
   * called once the list's byte order is known; the returned function sees every entry of the
   * replay (reference-set evaluation, `log verify --refs`). A checkpoint is not resumed from then:
   * every entry is read.
   */
  readonly entryHook?: (endian: Endian) => (c: EntryCursor) => void;
}

/** What {@link verifyListFile} did and found. */
export interface ListFileReport {
  list: string;
  pcrSource: string;
  verdict?: ListVerdict;
  resume?: ResumeVerdict;
  bootAggregate?: BootAggregateVerdict;
  bootAggregateSkipped?: string;
  signatures?: EntrySignature[];
  crossCheck?: ReturnType<typeof crossCheckAsciiBinary>;
  checkpointWritten?: string;
  status: 'pass' | 'fail';
}

const SIG_TEMPLATES = (name: string): boolean => {
  const t = lookupTemplate(name);
  return t !== undefined && (t.fields.includes('sig') || t.fields.includes('evmsig'));
};

const NO_PROGRESS: ByteProgress = { update() {}, stop() {} };

/**
 * Read size of a verify: the read buffer, the scanner's joined tail and the per-chunk batch of
 * template digests all scale with it; 256 KiB instead of 1 MiB took 1.6 MB off the peak RSS of a
 * 100k-entry `log verify --refs` at the same CPU time (bench/refs-eval.ts).
 */
const VERIFY_CHUNK = 256 * 1024;

/**
 * Verify a list file (default: the live securityfs list).
 * @throws ImakitError E_TOOL_MISSING (no live list / TPM PCRs), E_PCR_FILE (no values for a bank),
 *   E_IO_READ/E_IO_WRITE; CodecError for a malformed list, PCR file or checkpoint
 */
export async function verifyListFile(
  file: string | undefined,
  o: ListFileVerifyOptions = {},
): Promise<ListFileReport> {
  const path = file ?? liveListPath(o.securityfs);
  const banks = o.banks ? [...o.banks] : undefined;
  let expected: PcrValues | undefined = o.expected?.values ?? readPcrOptions(o.pcrs ?? [], o.pcrsJson ?? []);
  let pcrSource = o.expected?.source ?? 'given files';
  if (!expected) {
    expected = readTpmPcrs(o.tpm ?? DEFAULT_TPM_SYSFS, banks);
    pcrSource = `TPM sysfs ${o.tpm ?? DEFAULT_TPM_SYSFS}`;
  }
  if (banks) {
    const missing = banks.filter((b) => !expected!.has(b));
    if (missing.length > 0)
      throw new ImakitError('E_PCR_FILE', `no PCR values for bank ${missing.join(', ')}`, {
        token: missing[0],
      });
  }
  const violations = o.violations ?? 'ones';
  const hashes = nativeHashes();
  if (looksAscii(readHead(path))) return verifyAscii(path, o, expected, banks, pcrSource);

  const hint = bankFromListName(path) ? { bank: bankFromListName(path) } : undefined;
  const progress = o.progress?.(`verify ${basename(path)}`, fileSize(path)) ?? NO_PROGRESS;
  const keep: UntrustedEntry[] = [];
  let first: UntrustedEntry | undefined;
  const keepAll = o.ascii !== undefined;
  const keepSigs = (o.keys?.length ?? 0) > 0;
  const hook = o.entryHook?.(detectListFormat(readHead(path), hint).format.endian);
  const onEntry = (c: EntryCursor): void => {
    hook?.(c);
    const size = c.nameOff - c.digestOff - 4;
    if (c.index === 0) first = cursorToEntry(c, size);
    if (keepAll || (keepSigs && SIG_TEMPLATES(cursorTemplateName(c)))) keep.push(cursorToEntry(c, size));
  };
  const report: ListFileReport = { list: path, pcrSource, status: 'fail' };
  try {
    const cpText =
      o.checkpoint !== undefined && existsSync(o.checkpoint)
        ? new TextDecoder().decode(readInput(o.checkpoint, 'checkpoint'))
        : undefined;
    if (cpText !== undefined && !keepAll && !keepSigs && !hook) {
      const cp = parseCheckpoint(cpText);
      report.resume = await resumeMeasurementList(() => readFileChunks(path), cp, {
        expected,
        seek: (off) => readFileChunks(path, undefined, off),
        onProgress: (b) => progress.update(b),
        hashes,
      });
      report.status = report.resume.status;
      if (report.resume.status === 'fail' && !report.resume.full) {
        // diagnose from the start: say where and why
        report.verdict = await verifyMeasurementList(() => readFileChunks(path), {
          expected,
          banks: cp.banks.map((b) => b.bank),
          violations: cp.violationMode,
          hint,
          hashes,
        });
      }
    } else {
      // reuse: the verifier is done with a chunk when it asks for the next
      report.verdict = await verifyMeasurementList(() => readFileChunks(path, VERIFY_CHUNK, 0, true), {
        expected,
        banks,
        violations,
        strictOnly: o.strict,
        hint,
        onEntry,
        onProgress: (_n, b) => progress.update(b),
        offload: offloadForFile(path),
        hashes,
        // a live securityfs list (size 0) usually runs ahead of PCRs read before it: a prefix
        // match, for which the listed-digest shortcut would only add a second pass
        recomputeAll: fileSize(path) === 0,
      });
      report.status = report.verdict.status;
    }
  } finally {
    progress.stop();
  }
  const v = report.verdict;
  const endian = v?.format.format.endian ?? 'le';
  // boot_aggregate: checked when boot PCRs were given (some PCR 0-7 not at its reset value); PCR
  // files that carry only the IMA PCR (synthetic lists, evmctl --pcrs with zeros) cannot bind it
  const bootKnown = [...expected.values()].some((m) =>
    [0, 1, 2, 3, 4, 5, 6, 7].some((i) => m.get(i)?.some((x) => x !== 0) === true),
  );
  if (first) {
    const claim = findBootAggregateClaims([first], endian).at(-1);
    if (claim && bootKnown) {
      report.bootAggregate = checkBootAggregate(claim, expected);
      if (report.bootAggregate.status !== 'pass' && report.bootAggregate.note !== 'no-tpm')
        report.status = 'fail';
    } else if (claim)
      report.bootAggregateSkipped = 'no boot PCR (0-7) values were given: boot_aggregate not checked';
  }
  if (keepSigs)
    await checkSignatures(
      report,
      o.keys!,
      keep.filter((e) => SIG_TEMPLATES(e.templateName)),
      endian,
    );
  if (o.ascii !== undefined) {
    const asc = parseAsciiList(
      new TextDecoder('latin1').decode(readInput(o.ascii, 'measurement-list')),
      endian,
    );
    report.crossCheck = crossCheckAsciiBinary(asc, keep, endian);
    if (report.crossCheck.length > 0) report.status = 'fail';
  }
  if (o.checkpoint !== undefined && report.status === 'pass') {
    const cp = report.resume ? report.resume.checkpoint : checkpointFromVerdict(v!);
    writeAtomic(o.checkpoint, JSON.stringify(checkpointToJson(cp), null, 2) + '\n');
    report.checkpointWritten = o.checkpoint;
  }
  return report;
}

/** Verify the entries' signatures with the key files; any bad signature fails the report. */
async function checkSignatures(
  report: ListFileReport,
  keyFiles: readonly string[],
  entries: readonly UntrustedEntry[],
  endian: Endian,
): Promise<void> {
  const [{ loadVerifyKeyFile }, { verifyListSignatures }, { Keyring }] = await Promise.all([
    import('../label/label-file.ts'),
    import('../../core/ima-list/list-signatures.ts'),
    import('../../core/labels/ima-signature.ts'),
  ]);
  const keys = keyFiles.flatMap((k) => loadVerifyKeyFile(k));
  report.signatures = verifyListSignatures(entries, new Keyring(keys), endian);
  if (report.signatures.some((s) => s.status !== 'pass' && s.status !== 'no-signature'))
    report.status = 'fail';
}

async function verifyAscii(
  path: string,
  o: ListFileVerifyOptions,
  expected: PcrValues,
  banks: string[] | undefined,
  pcrSource: string,
): Promise<ListFileReport> {
  // an ascii list replays like a binary one: its template data is rebuilt from the printed fields
  const l = loadListFile(path);
  const bytes = encodeBinaryList(l.entries, l.format);
  const verdict = await verifyMeasurementList(() => [bytes], {
    expected,
    banks,
    violations: o.violations === 'zeros' ? 'zeros' : 'ones',
    strictOnly: o.strict,
    hint: { bank: l.format.bank, endian: l.format.endian },
    hashes: nativeHashes(),
    onEntry: o.entryHook?.(l.format.endian),
  });
  const report: ListFileReport = { list: path, pcrSource, verdict, status: verdict.status };
  if ((o.keys?.length ?? 0) > 0) await checkSignatures(report, o.keys!, l.entries, l.format.endian);
  return report;
}
