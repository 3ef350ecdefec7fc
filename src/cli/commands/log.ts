/**
 * `imakit log …`: IMA measurement lists (issue 4 §8).
 *
 *   log show    [LIST] [--bank ALG] [--endian le|be] [--limit N] [--json]
 *   log verify  [LIST] [--pcrs [ALG,]FILE]... [--pcrs-json FILE]... [--bank ALG]... [--ascii FILE]
 *               [--key CERT]... [--checkpoint FILE] [--violations ones|zeros] [--strict] [--json]
 *   log diff    A B [--json]
 *   log convert IN --to ascii|binary [--endian le|be] [--out FILE] [--json]
 *
 * LIST may be binary (byte order and digest size detected, a `*_runtime_measurements_<alg>` name
 * fixes the bank) or ascii (detected). `log verify` with no LIST reads the live list from
 * securityfs and, without --pcrs, the TPM's PCRs from sysfs.
 *
 * Exit: 0 match / identical / converted, 1 mismatch or verification failed (bad signature,
 * boot_aggregate, ascii/binary differences, lists differ), 2 bad input (malformed list, PCR file or
 * checkpoint), 3 I/O, 5 environment (no securityfs list or TPM PCRs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { ImakitError } from '../../errors.ts';
import { toHex, type Endian } from '../../core/bytes.ts';
import type { PcrValues } from '../../core/pcr-values.ts';
import {
  cursorTemplateName,
  cursorToEntry,
  detectListFormat,
  encodeBinaryList,
  parseBinaryList,
  type EntryCursor,
  type ListFormat,
  type UntrustedEntry,
} from '../../core/ima-list/binary.ts';
import {
  asciiToEntries,
  crossCheckAsciiBinary,
  parseAsciiList,
  renderAsciiEntry,
  renderAsciiList,
} from '../../core/ima-list/ascii.ts';
import { decodeTemplateFields } from '../../core/ima-list/fields.ts';
import { lookupTemplate } from '../../core/ima-list/templates.ts';
import { verifyMeasurementList, type ListVerdict } from '../../core/ima-list/verify.ts';
import {
  checkpointFromVerdict,
  checkpointToJson,
  parseCheckpoint,
  resumeMeasurementList,
  type ResumeVerdict,
} from '../../core/ima-list/checkpoint.ts';
import { convertListByteOrder } from '../../core/ima-list/byte-order.ts';
import { verifyListSignatures, type EntrySignature } from '../../core/ima-list/list-signatures.ts';
import {
  checkBootAggregate,
  findBootAggregateClaims,
  type BootAggregateVerdict,
} from '../../core/boot-aggregate.ts';
import { Keyring } from '../../core/ima-signature.ts';
import { findHashAlgo } from '../../core/hash-algo.ts';
import { readFileChunks } from '../../host/list-file.ts';
import { bankFromListName, findImaSecurityfs, listBinaryLists } from '../../host/securityfs.ts';
import { loadVerifyKeyFile } from '../../host/label-file.ts';
import { DEFAULT_TPM_SYSFS } from '../../host/tpm-sysfs.ts';
import { offloadForFile } from '../../host/list-replay-offload.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import {
  byteProgress,
  collect,
  fileSize,
  looksAscii,
  printJson,
  readInput,
  readPcrOptions,
  readTpmPcrs,
  writeAtomic,
} from './attest-input.ts';

const usage = (detail: string): ImakitError => new ImakitError('E_USAGE', detail);

function endianOpt(v: string | undefined): Endian | undefined {
  if (v === undefined) return undefined;
  if (v !== 'le' && v !== 'be') throw usage(`--endian must be le or be (got '${v}')`);
  return v;
}

function bankOpt(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const a = findHashAlgo(v.toLowerCase());
  if (!a) throw usage(`unknown bank '${v}'`);
  return a.name;
}

/** A list file loaded into memory as entries (binary or ascii). */
interface LoadedList {
  readonly path: string;
  readonly kind: 'binary' | 'ascii';
  readonly format: ListFormat;
  readonly evidence: string;
  readonly entries: UntrustedEntry[];
}

function loadList(path: string, bank?: string, endian?: Endian): LoadedList {
  const bytes = readInput(path);
  if (looksAscii(bytes)) {
    const e = endian ?? 'le';
    const entries = asciiToEntries(parseAsciiList(new TextDecoder('latin1').decode(bytes), e));
    const size = entries[0]?.digest.length ?? 20;
    const b = bank ?? (size === 20 ? 'sha1' : size === 32 ? 'sha256' : size === 48 ? 'sha384' : 'sha512');
    return {
      path,
      kind: 'ascii',
      format: { endian: e, digestSize: size, bank: b },
      evidence: `ascii list, ${size}-byte template digests`,
      entries,
    };
  }
  const det = detectListFormat(bytes.subarray(0, 65536), {
    bank: bank ?? bankFromListName(path),
    endian,
  });
  return {
    path,
    kind: 'binary',
    format: det.format,
    evidence: det.evidence,
    entries: parseBinaryList(bytes, det.format),
  };
}

function entryJson(e: UntrustedEntry, endian: Endian): Record<string, unknown> {
  const tpl = lookupTemplate(e.templateName);
  let fields: unknown;
  if (tpl && !tpl.legacy)
    try {
      fields = decodeTemplateFields(tpl, e.templateData, endian, e.offset).map((f) => {
        const { data, ...rest } = f as { data: Uint8Array } & Record<string, unknown>;
        return { ...rest, hex: toHex(data) };
      });
    } catch (err) {
      fields = { error: (err as Error).message };
    }
  return {
    index: e.index,
    offset: e.offset,
    pcr: e.pcr,
    digest: toHex(e.digest),
    templateName: e.templateName,
    interpreted: tpl !== undefined,
    fields,
    templateData: toHex(e.templateData),
  };
}

// ---------------------------------------------------------------------------------------- show

function registerShow(log: Command, ctx: CommandContext): void {
  log
    .command('show')
    .description('print a measurement list (binary or ascii) as ascii lines or JSON')
    .argument('[list]', 'list file (default: the live securityfs list)')
    .option('--bank <alg>', "bank of the list's template digests (default: detected)")
    .option('--endian <order>', 'byte order le|be (default: detected)')
    .option('--limit <n>', 'print at most N entries')
    .option('--json', 'JSON output')
    .action(
      (file: string | undefined, f: { bank?: string; endian?: string; limit?: string; json?: boolean }) =>
        ctx.run(
          () => {
            const path = file ?? liveList();
            const l = loadList(path, bankOpt(f.bank), endianOpt(f.endian));
            const limit = f.limit === undefined ? Infinity : Number(f.limit);
            if (!Number.isInteger(limit) && limit !== Infinity) throw usage('--limit must be an integer');
            const shown = l.entries.slice(0, limit);
            if (f.json)
              printJson(ctx.io, {
                file: path,
                kind: l.kind,
                format: l.format,
                evidence: l.evidence,
                entries: l.entries.length,
                list: shown.map((e) => entryJson(e, l.format.endian)),
              });
            else {
              ctx.io.stderr(`# ${path}: ${l.evidence}; ${l.entries.length} entries\n`);
              for (const e of shown) ctx.io.stdout(renderAsciiEntry(e, l.format.endian) + '\n');
            }
            return 0;
          },
          { json: f.json === true },
        ),
    );
}

// -------------------------------------------------------------------------------------- verify

function liveList(dir?: string): string {
  const d = findImaSecurityfs(dir ? [dir] : undefined);
  if (!d)
    throw new ImakitError(
      'E_TOOL_MISSING',
      `no IMA measurement list at ${dir ?? '/sys/kernel/security/ima'}/binary_runtime_measurements (securityfs not mounted, IMA off, or not root); give a LIST file`,
      { path: join(dir ?? '/sys/kernel/security/ima', 'binary_runtime_measurements') },
    );
  const lists = listBinaryLists(d);
  const classic = join(d, 'binary_runtime_measurements');
  return existsSync(classic) ? classic : [...lists.values()][0]!;
}

interface VerifyFlags {
  pcrs?: string[];
  pcrsJson?: string[];
  bank?: string[];
  ascii?: string;
  key?: string[];
  checkpoint?: string;
  violations?: string;
  strict?: boolean;
  tpm?: string;
  securityfs?: string;
  json?: boolean;
}

interface VerifyReport {
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

async function runVerify(file: string | undefined, f: VerifyFlags, io: CliIo): Promise<VerifyReport> {
  const path = file ?? liveList(f.securityfs);
  const banks = f.bank?.map((b) => bankOpt(b)!);
  let expected: PcrValues | undefined = readPcrOptions(f.pcrs ?? [], f.pcrsJson ?? []);
  let pcrSource = 'given files';
  if (!expected) {
    expected = readTpmPcrs(f.tpm ?? DEFAULT_TPM_SYSFS, banks);
    pcrSource = `TPM sysfs ${f.tpm ?? DEFAULT_TPM_SYSFS}`;
  }
  if (banks) {
    const missing = banks.filter((b) => !expected!.has(b));
    if (missing.length > 0)
      throw new ImakitError('E_PCR_FILE', `no PCR values for bank ${missing.join(', ')}`, {
        token: missing[0],
      });
  }
  const violations = f.violations ?? 'ones';
  if (violations !== 'ones' && violations !== 'zeros') throw usage('--violations must be ones or zeros');
  const bytesHead = readHead(path);
  if (looksAscii(bytesHead)) return verifyAscii(path, f, expected, banks, pcrSource);

  const hint = bankFromListName(path) ? { bank: bankFromListName(path) } : undefined;
  const total = fileSize(path);
  const progress = byteProgress(io, `verify ${basename(path)}`, total, f.json === true);
  const keep: UntrustedEntry[] = [];
  let first: UntrustedEntry | undefined;
  const keepAll = f.ascii !== undefined;
  const keepSigs = (f.key?.length ?? 0) > 0;
  const onEntry = (c: EntryCursor): void => {
    const size = c.nameOff - c.digestOff - 4;
    if (c.index === 0) first = cursorToEntry(c, size);
    if (keepAll || (keepSigs && SIG_TEMPLATES(cursorTemplateName(c)))) keep.push(cursorToEntry(c, size));
  };
  const report: VerifyReport = { list: path, pcrSource, status: 'fail' };
  try {
    const cpText =
      f.checkpoint !== undefined && existsSync(f.checkpoint) ? readFileSync(f.checkpoint, 'utf8') : undefined;
    if (cpText !== undefined && !keepAll && !keepSigs) {
      const cp = parseCheckpoint(cpText);
      report.resume = await resumeMeasurementList(() => readFileChunks(path), cp, {
        expected,
        seek: (off) => readFileChunks(path, undefined, off),
        onProgress: (b) => progress.update(b),
      });
      report.status = report.resume.status;
      if (report.resume.status === 'fail' && !report.resume.full) {
        // diagnose from the start: say where and why
        report.verdict = await verifyMeasurementList(() => readFileChunks(path), {
          expected,
          banks: cp.banks.map((b) => b.bank),
          violations: cp.violationMode,
          hint,
        });
      }
    } else {
      // reuse: the verifier is done with a chunk when it asks for the next
      report.verdict = await verifyMeasurementList(() => readFileChunks(path, undefined, 0, true), {
        expected,
        banks,
        violations,
        strictOnly: f.strict,
        hint,
        onEntry,
        onProgress: (_n, b) => progress.update(b),
        offload: offloadForFile(path),
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
  if (keepSigs) {
    const keys = f.key!.flatMap((k) => loadVerifyKeyFile(k));
    report.signatures = verifyListSignatures(
      keep.filter((e) => SIG_TEMPLATES(e.templateName)),
      new Keyring(keys),
      endian,
    );
    if (report.signatures.some((s) => s.status !== 'pass' && s.status !== 'no-signature'))
      report.status = 'fail';
  }
  if (f.ascii !== undefined) {
    const asc = parseAsciiList(new TextDecoder('latin1').decode(readInput(f.ascii)), endian);
    report.crossCheck = crossCheckAsciiBinary(asc, keep, endian);
    if (report.crossCheck.length > 0) report.status = 'fail';
  }
  if (f.checkpoint !== undefined && report.status === 'pass') {
    const cp = report.resume ? report.resume.checkpoint : checkpointFromVerdict(v!);
    writeAtomic(f.checkpoint, JSON.stringify(checkpointToJson(cp), null, 2) + '\n');
    report.checkpointWritten = f.checkpoint;
  }
  return report;
}

function readHead(path: string): Uint8Array {
  for (const c of readFileChunks(path, 4096)) return c;
  return new Uint8Array(0);
}

async function verifyAscii(
  path: string,
  f: VerifyFlags,
  expected: PcrValues,
  banks: string[] | undefined,
  pcrSource: string,
): Promise<VerifyReport> {
  // an ascii list replays like a binary one: its template data is rebuilt from the printed fields
  const l = loadList(path);
  const bytes = encodeBinaryList(l.entries, l.format);
  const verdict = await verifyMeasurementList(() => [bytes], {
    expected,
    banks,
    violations: f.violations === 'zeros' ? 'zeros' : 'ones',
    strictOnly: f.strict,
    hint: { bank: l.format.bank, endian: l.format.endian },
  });
  const report: VerifyReport = { list: path, pcrSource, verdict, status: verdict.status };
  if ((f.key?.length ?? 0) > 0) {
    const keys = f.key!.flatMap((k) => loadVerifyKeyFile(k));
    report.signatures = verifyListSignatures(l.entries, new Keyring(keys), l.format.endian);
    if (report.signatures.some((s) => s.status !== 'pass' && s.status !== 'no-signature'))
      report.status = 'fail';
  }
  return report;
}

function renderVerify(io: CliIo, r: VerifyReport): void {
  const out = (s: string): void => io.stdout(s + '\n');
  out(`${r.status === 'pass' ? 'PASS' : 'FAIL'}  ${r.list} against PCRs from ${r.pcrSource}`);
  if (r.resume) {
    const z = r.resume;
    if (z.restart) out(`  restart: ${z.restart.detail}`);
    out(
      `  resumed at entry ${z.resumedFrom.entries} (byte ${z.resumedFrom.offset}): ${z.newEntries} new entries, ${z.skippedEntries} already covered`,
    );
    out(`  ${z.detail}`);
    for (const b of z.banks) for (const p of b.pcrs) out(pcrLine(b.bank, b.mode, p));
  }
  const v = r.verdict;
  if (v) {
    out(`  format: ${v.format.evidence}`);
    out(
      `  ${v.entries} entries, ${v.violations} violations (extended as ${v.violationMode === 'ones' ? '0xff, like the kernel' : 'zeros, like evmctl'})`,
    );
    for (const b of v.banks) for (const p of b.pcrs) out(pcrLine(b.bank, b.mode, p));
    if (v.status !== 'pass') out(`  why: ${v.detail}`);
    for (const d of v.diagnosis) {
      const where = [
        d.entry !== undefined ? `entry ${d.entry}` : '',
        d.offset !== undefined ? `byte ${d.offset}` : '',
        d.field ? `field '${d.field}'` : '',
      ]
        .filter(Boolean)
        .join(', ');
      out(`  [${d.kind}]${where ? ` ${where}:` : ''} ${d.detail}`);
      if (d.expected !== undefined || d.actual !== undefined)
        out(`      expected ${d.expected ?? '-'}\n      actual   ${d.actual ?? '-'}`);
    }
  }
  if (r.bootAggregate) out(`  boot_aggregate: ${r.bootAggregate.status}: ${r.bootAggregate.detail}`);
  if (r.bootAggregateSkipped) out(`  boot_aggregate: ${r.bootAggregateSkipped}`);
  if (r.signatures) {
    const by = new Map<string, number>();
    for (const s of r.signatures) by.set(s.status, (by.get(s.status) ?? 0) + 1);
    out(`  signatures: ${[...by].map(([k, n]) => `${n} ${k}`).join(', ') || 'none in the list'}`);
    for (const s of r.signatures
      .filter((x) => x.status !== 'pass' && x.status !== 'no-signature')
      .slice(0, 20))
      out(`    entry ${s.index} ${s.name}: ${s.status}: ${s.detail}`);
  }
  if (r.crossCheck) {
    out(
      `  ascii cross-check: ${r.crossCheck.length === 0 ? 'every entry agrees' : `${r.crossCheck.length} differences`}`,
    );
    for (const d of r.crossCheck.slice(0, 20))
      out(`    entry ${d.entry} ${d.field}: ascii ${d.ascii.slice(0, 80)} / binary ${d.binary.slice(0, 80)}`);
  }
  if (r.checkpointWritten) out(`  checkpoint written to ${r.checkpointWritten}`);
  if (v) for (const n of v.notEstablished) out(`  not established: ${n}`);
}

function pcrLine(
  bank: string,
  mode: string,
  p: {
    pcr: number;
    status: string;
    value: Uint8Array;
    expected: Uint8Array | undefined;
    matchedThrough: number | undefined;
    entries: number;
  },
): string {
  const m = mode === 'strict' ? '' : ` (${mode})`;
  const head = `  ${bank}${m} PCR ${p.pcr}: ${p.status}`;
  const tail =
    p.status === 'prefix'
      ? ` through entry ${p.matchedThrough} of ${p.entries}`
      : p.status === 'match'
        ? ` (${p.entries} entries)`
        : '';
  return (
    head +
    tail +
    `\n      replayed ${toHex(p.value)}` +
    (p.expected ? `\n      given    ${toHex(p.expected)}` : '')
  );
}

function verifyJson(r: VerifyReport): unknown {
  const v = r.verdict;
  return {
    status: r.status,
    list: r.list,
    pcrSource: r.pcrSource,
    verdict: v && {
      status: v.status,
      code: v.code,
      detail: v.detail,
      format: v.format,
      entries: v.entries,
      violations: v.violations,
      violationMode: v.violationMode,
      quirks: v.quirks,
      banks: v.banks,
      mismatches: v.mismatches,
      diagnosis: v.diagnosis,
      notEstablished: v.notEstablished,
    },
    resume: r.resume && { ...r.resume, full: undefined, checkpoint: checkpointToJson(r.resume.checkpoint) },
    bootAggregate: r.bootAggregate && {
      status: r.bootAggregate.status,
      detail: r.bootAggregate.detail,
      matched: r.bootAggregate.matched,
      claim: r.bootAggregate.claim,
    },
    bootAggregateSkipped: r.bootAggregateSkipped,
    signatures: r.signatures?.map((s) => ({
      index: s.index,
      name: s.name,
      status: s.status,
      detail: s.detail,
    })),
    crossCheck: r.crossCheck,
    checkpointWritten: r.checkpointWritten,
  };
}

function registerVerify(log: Command, ctx: CommandContext): void {
  log
    .command('verify')
    .description('replay a measurement list against PCR values and explain any mismatch')
    .argument('[list]', 'binary or ascii list (default: the live securityfs list)')
    .option(
      '--pcrs <[alg,]file>',
      'PCR values: evmctl PCR-NN lines (alg names the bank), tpm2_pcrread output or JSON; repeatable',
      collect,
    )
    .option('--pcrs-json <file>', 'PCR values as JSON {"sha256": {"10": "hex"}}; repeatable', collect)
    .option('--bank <alg>', 'replay only these banks (repeatable; default: every bank given)', collect)
    .option('--ascii <file>', 'cross-check the binary list against this ascii list, entry by entry')
    .option(
      '--key <cert>',
      'verify ima-sig/ima-sigv2/ima-modsig signatures with this certificate (repeatable)',
      collect,
    )
    .option('--checkpoint <file>', 'resume from this checkpoint when it exists; write it back on success')
    .option('--violations <mode>', "extend violations as 'ones' (kernel, default) or 'zeros' (evmctl)")
    .option('--strict', 'do not try kernel quirks (padded SHA-1 banks)')
    .option('--tpm <dir>', `TPM sysfs directory (default ${DEFAULT_TPM_SYSFS})`)
    .option('--securityfs <dir>', 'IMA securityfs directory (default /sys/kernel/security/ima)')
    .option('--json', 'JSON output')
    .action((file: string | undefined, f: VerifyFlags) =>
      ctx.run(
        async () => {
          const r = await runVerify(file, f, ctx.io);
          if (f.json) printJson(ctx.io, verifyJson(r));
          else renderVerify(ctx.io, r);
          return r.status === 'pass' ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

// ---------------------------------------------------------------------------------------- diff

interface ListDiff {
  identical: boolean;
  a: { path: string; entries: number };
  b: { path: string; entries: number };
  /** entries equal from the start */
  commonPrefix: number;
  relation: 'identical' | 'a-prefix-of-b' | 'b-prefix-of-a' | 'diverge';
  differences: { entry: number; field: string; a: string; b: string }[];
}

function diffLists(a: LoadedList, b: LoadedList): ListDiff {
  const n = Math.min(a.entries.length, b.entries.length);
  let common = 0;
  const same = (x: UntrustedEntry, y: UntrustedEntry): boolean =>
    x.pcr === y.pcr &&
    x.templateName === y.templateName &&
    toHex(x.digest) === toHex(y.digest) &&
    toHex(x.templateData) === toHex(y.templateData);
  while (common < n && same(a.entries[common]!, b.entries[common]!)) common++;
  const differences: ListDiff['differences'] = [];
  for (let i = common; i < n && differences.length < 50; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x.pcr !== y.pcr) differences.push({ entry: i, field: 'pcr', a: String(x.pcr), b: String(y.pcr) });
    if (toHex(x.digest) !== toHex(y.digest))
      differences.push({ entry: i, field: 'template digest', a: toHex(x.digest), b: toHex(y.digest) });
    if (x.templateName !== y.templateName)
      differences.push({ entry: i, field: 'template name', a: x.templateName, b: y.templateName });
    else if (toHex(x.templateData) !== toHex(y.templateData)) {
      const ra = renderAsciiEntry(x, a.format.endian).split(' ');
      const rb = renderAsciiEntry(y, b.format.endian).split(' ');
      const tpl = lookupTemplate(x.templateName);
      let named = false;
      if (tpl && !tpl.legacy && ra.length === rb.length)
        tpl.fields.forEach((fid, k) => {
          if (ra[3 + k] !== rb[3 + k]) {
            differences.push({ entry: i, field: fid, a: ra[3 + k] ?? '', b: rb[3 + k] ?? '' });
            named = true;
          }
        });
      if (!named)
        differences.push({
          entry: i,
          field: 'template data',
          a: toHex(x.templateData),
          b: toHex(y.templateData),
        });
    }
  }
  const relation =
    common === a.entries.length && common === b.entries.length
      ? 'identical'
      : common === a.entries.length
        ? 'a-prefix-of-b'
        : common === b.entries.length
          ? 'b-prefix-of-a'
          : 'diverge';
  return {
    identical: relation === 'identical',
    a: { path: a.path, entries: a.entries.length },
    b: { path: b.path, entries: b.entries.length },
    commonPrefix: common,
    relation,
    differences,
  };
}

function registerDiff(log: Command, ctx: CommandContext): void {
  log
    .command('diff')
    .description('compare two measurement lists (binary or ascii) entry by entry')
    .argument('<a>', 'first list')
    .argument('<b>', 'second list')
    .option('--json', 'JSON output')
    .action((pa: string, pb: string, f: { json?: boolean }) =>
      ctx.run(
        () => {
          const d = diffLists(loadList(pa), loadList(pb));
          if (f.json) printJson(ctx.io, d);
          else {
            const out = (s: string): void => ctx.io.stdout(s + '\n');
            out(
              `${pa}: ${d.a.entries} entries; ${pb}: ${d.b.entries} entries; ${d.commonPrefix} equal from the start`,
            );
            if (d.relation === 'identical') out('identical');
            else if (d.relation === 'a-prefix-of-b')
              out(`${pb} extends ${pa} by ${d.b.entries - d.commonPrefix} entries (same boot, later read)`);
            else if (d.relation === 'b-prefix-of-a')
              out(`${pa} extends ${pb} by ${d.a.entries - d.commonPrefix} entries (same boot, later read)`);
            else {
              out(
                `first difference at entry ${d.commonPrefix}${d.commonPrefix === 0 ? ' (different boots: the boot_aggregate entries differ)' : ''}`,
              );
              for (const x of d.differences.slice(0, 20))
                out(`  entry ${x.entry} ${x.field}:\n    a ${x.a.slice(0, 120)}\n    b ${x.b.slice(0, 120)}`);
            }
          }
          return d.identical ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

// ------------------------------------------------------------------------------------- convert

function registerConvert(log: Command, ctx: CommandContext): void {
  log
    .command('convert')
    .description('convert a list: ascii <-> binary, canonical (le) <-> big-endian host order')
    .argument('<in>', 'input list (binary or ascii, detected)')
    .requiredOption('--to <form>', 'ascii or binary')
    .option(
      '--endian <order>',
      "byte order of the binary output: le (canonical) or be (default: the input's)",
    )
    .option('--bank <alg>', "bank of the input's template digests (default: detected)")
    .option('--out <file>', 'output file (required for binary output)')
    .option('--json', 'JSON output (a summary)')
    .action(
      (input: string, f: { to: string; endian?: string; bank?: string; out?: string; json?: boolean }) =>
        ctx.run(
          () => {
            if (f.to !== 'ascii' && f.to !== 'binary') throw usage('--to must be ascii or binary');
            if (f.json && f.out === undefined)
              throw usage('--json needs --out FILE (the list itself goes there)');
            const to = endianOpt(f.endian);
            const l = loadList(input, bankOpt(f.bank));
            let note = '';
            let data: Uint8Array | string;
            if (f.to === 'ascii') data = renderAsciiList(l.entries, l.format.endian);
            else {
              if (f.out === undefined) throw usage('binary output needs --out FILE');
              const native = encodeBinaryList(l.entries, l.format);
              if (to !== undefined && to !== l.format.endian) {
                const c = convertListByteOrder(native, l.format, to);
                data = c.bytes;
                note = c.note;
              } else data = native;
            }
            if (f.out !== undefined) writeAtomic(f.out, data);
            else ctx.io.stdout(data as string);
            const summary = {
              input,
              from: { kind: l.kind, endian: l.format.endian, bank: l.format.bank },
              to: { kind: f.to, endian: f.to === 'binary' ? (to ?? l.format.endian) : l.format.endian },
              entries: l.entries.length,
              out: f.out,
              note: note || undefined,
            };
            if (f.json) printJson(ctx.io, summary);
            else if (f.out !== undefined)
              ctx.io.stderr(
                `${l.entries.length} entries written to ${f.out}${note ? `; note: ${note}` : ''}\n`,
              );
            return 0;
          },
          { json: f.json === true },
        ),
    );
}

export const command: CommandModule = {
  name: 'log',
  register(program, ctx) {
    const log = program.command('log').description('IMA measurement lists: show, verify, diff, convert');
    registerShow(log, ctx);
    registerVerify(log, ctx);
    registerDiff(log, ctx);
    registerConvert(log, ctx);
  },
};
