/**
 * Shared pieces of the real-kernel suite: locating the kernel cache, list / event-log /
 * boot_aggregate checks through imakit's own library (src/core/ima-list, src/core/tcg,
 * src/core/boot-aggregate.ts, src/core/pcr-values.ts), evmctl / tpm2_eventlog cross-checks
 * (tools we did not write), and saving fixtures for later issues.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import {
  DEFAULT_DATA_UUID,
  defaultKernelDir,
  type FileState,
  type VmResult,
  type VmSpec,
} from '../../src/host/vm/index.ts';
import { evmHmac, evmInput } from '../../src/core/evm/evm-input.ts';
import { resolveEvmConfig } from '../../src/core/evm/evm-config.ts';
import { parseUuid } from '../../src/core/bytes/uuid.ts';
import { hash, resolveHashAlgo } from '../../src/core/hash/hash-algo.ts';
import { parseEvmctlPcrs } from '../../src/core/tcg/pcr-values.ts';
import { detectListFormat, parseBinaryList, type UntrustedEntry } from '../../src/core/ima-list/binary.ts';
import { splitTemplateData, LEGACY_DIGEST_SIZE } from '../../src/core/ima-list/fields.ts';
import { lookupTemplate } from '../../src/core/ima-list/templates.ts';
import { templateDigest } from '../../src/core/ima-list/template-digest.ts';
import { bytesSource, verifyMeasurementList, type ListVerdict } from '../../src/core/ima-list/verify.ts';
import {
  checkBootAggregate,
  findBootAggregateClaims,
  kernelBootAggregates,
  type BootAggregateVerdict,
} from '../../src/core/tcg/boot-aggregate.ts';
import { parseEventLog } from '../../src/core/tcg/event-log.ts';
import { compareEventLogPcrs, replayEventLog } from '../../src/core/tcg/replay.ts';
import { FIXTURES_DIR, run } from '../helpers.ts';

/** Kernel cache used by the suite (scripts/setup-kernel.sh fills it). */
export const KERNEL_DIR = defaultKernelDir(process.env);

/** Per-boot timeout for the suite. */
export const BOOT_TIMEOUT_MS = 180_000;

/** One entry of the SHA-1 binary list (imakit's parser), untrusted. */
export interface ListEntry {
  readonly pcr: number;
  readonly digest: Buffer;
  readonly template: string;
  /** the hashed template data as the library returns it (legacy `ima`: d ‖ u32 strlen ‖ name) */
  readonly templateData: Uint8Array;
  readonly legacy: boolean;
  /** raw fields (for `ima`: [d, name without NUL]) */
  readonly fields: Buffer[];
}

/** Every entry of a captured binary list through imakit's parser (format detected). */
export function libraryEntries(bytes: Uint8Array): UntrustedEntry[] {
  return parseBinaryList(bytes, detectListFormat(bytes).format);
}

/** Parse a little-endian SHA-1 binary list with imakit's parser and split the fields. */
export function parseList(bytes: Uint8Array): ListEntry[] {
  return libraryEntries(bytes).map((e) => {
    const tpl = lookupTemplate(e.templateName);
    const legacy = tpl?.legacy === true;
    const d = e.templateData;
    const fields = legacy
      ? [d.subarray(0, LEGACY_DIGEST_SIZE), d.subarray(LEGACY_DIGEST_SIZE + 4)]
      : splitTemplateData(d, 'le', tpl?.fields.length ?? 0);
    return {
      pcr: e.pcr,
      digest: Buffer.from(e.digest),
      template: e.templateName,
      templateData: d,
      legacy,
      fields: fields.map((f) => Buffer.from(f)),
    };
  });
}

/** The captured PCRs of `banks`, parsed by imakit's evmctl-format reader from the guest's files. */
export function capturedPcrs(r: VmResult, banks: readonly string[]): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const b of banks) {
    const f = join(r.outDir, `pcrs-${b}.txt`);
    if (existsSync(f)) out.set(b, parseEvmctlPcrs(readFileSync(f, 'utf8'), b));
  }
  return out;
}

/** imakit's verifyMeasurementList over the captured list and PCRs of `banks`. */
export async function verifyListWithLibrary(r: VmResult, banks: readonly string[]): Promise<ListVerdict> {
  return verifyMeasurementList(bytesSource(r.binaryList), { expected: capturedPcrs(r, banks), banks });
}

/** A verdict's failure detail for assertion messages. */
export function verdictDetail(v: ListVerdict): string {
  return [v.detail, ...v.diagnosis.map((d) => d.detail)].join('\n');
}

/** imakit's boot_aggregate check of the list's (last) boot_aggregate entry against the captured PCRs. */
export function bootAggregateWithLibrary(r: VmResult, banks: readonly string[]): BootAggregateVerdict {
  const claim = findBootAggregateClaims(libraryEntries(r.binaryList)).at(-1);
  if (claim === undefined) throw new Error('no boot_aggregate entry in the list');
  return checkBootAggregate(claim, capturedPcrs(r, banks));
}

/** imakit's TCG event log parser + replay against the captured PCRs at `indexes`. */
export function eventLogWithLibrary(
  r: VmResult,
  banks: readonly string[],
  indexes: readonly number[],
): ReturnType<typeof compareEventLogPcrs> {
  return compareEventLogPcrs(replayEventLog(parseEventLog(r.eventLog)), capturedPcrs(r, banks), indexes);
}

/**
 * PCR `pcr` of `bank` replayed from the list: template digests from imakit's `templateDigest`, the
 * extend loop here. `padded`: the bank is extended with the SHA-1 template digest zero-padded
 * (banks IMA could not allocate, real-kernel.md §7). Violations extend 0xff over the bank size.
 */
export function replayPcr(entries: readonly ListEntry[], bank: string, pcr = 10, padded = false): string {
  const a = resolveHashAlgo(bank);
  let v: Uint8Array = new Uint8Array(a.size);
  for (const e of entries) {
    if (e.pcr !== pcr) continue;
    let d: Uint8Array;
    if (e.digest.every((x) => x === 0)) d = new Uint8Array(a.size).fill(0xff);
    else if (padded) {
      d = new Uint8Array(a.size);
      d.set(templateDigest(e.templateData, 'sha1', e.legacy));
    } else d = templateDigest(e.templateData, a, e.legacy);
    v = hash(a, v, d);
  }
  return Buffer.from(v).toString('hex');
}

/** Entries whose listed SHA-1 digest differs from imakit's templateDigest of their data (violations skipped). */
export function templateDigestMismatches(entries: readonly ListEntry[]): number[] {
  const bad: number[] = [];
  entries.forEach((e, i) => {
    if (e.digest.every((x) => x === 0)) return;
    if (!Buffer.from(templateDigest(e.templateData, 'sha1', e.legacy)).equals(e.digest)) bad.push(i);
  });
  return bad;
}

/** The string of an `n-ng`-style field (NUL removed). */
export function fieldString(f: Buffer | undefined): string {
  if (f === undefined) return '';
  return f.subarray(0, f.length > 0 && f[f.length - 1] === 0 ? f.length - 1 : f.length).toString('latin1');
}

/** `d-ng` field → {algo, digest hex}. */
export function digestField(f: Buffer | undefined): { algo: string; hex: string } {
  if (f === undefined) return { algo: '', hex: '' };
  const nul = f.indexOf(0);
  return {
    algo: f.subarray(0, nul).toString('latin1').replace(/:$/, ''),
    hex: f.subarray(nul + 1).toString('hex'),
  };
}

/** The kernel's `boot_aggregate` for `bank` from the captured PCRs (imakit's kernelBootAggregates). */
export function bootAggregate(pcrs: readonly string[], bank: string): string {
  const values = new Map(pcrs.map((p, i) => [i, new Uint8Array(Buffer.from(p, 'hex'))] as const));
  const v = kernelBootAggregates(new Map([[bank, values]]))[0];
  if (v === undefined) throw new Error(`no boot_aggregate for ${bank}`);
  return Buffer.from(v.digest).toString('hex');
}

/** `evmctl ima_measurement --ignore-violations` over two banks; returns the exit status and output. */
export function evmctlReplay(outDir: string, banks: readonly string[]): { status: number; out: string } {
  const args = ['ima_measurement', '--ignore-violations'];
  for (const b of banks.slice(0, 2)) args.push('--pcrs', `${b},${join(outDir, `pcrs-${b}.txt`)}`);
  args.push(join(outDir, 'binary_runtime_measurements'));
  const r = run('evmctl', args);
  return { status: r.status, out: r.stdout + r.stderr };
}

/** `evmctl ima_boot_aggregate` lines `alg:hex`. */
export function evmctlBootAggregate(outDir: string, banks: readonly string[]): Record<string, string> {
  const args = ['ima_boot_aggregate'];
  for (const b of banks.filter((x) => x === 'sha1' || x === 'sha256'))
    args.push('--pcrs', `${b},${join(outDir, `pcrs-${b}.txt`)}`);
  const r = run('evmctl', args);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+):([0-9a-f]+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/** `tpm2_eventlog` replayed PCRs: bank → pcr → hex. */
export function tpm2EventlogPcrs(eventLogPath: string): {
  status: number;
  pcrs: Record<string, Record<number, string>>;
  text: string;
} {
  const r = run('tpm2_eventlog', [eventLogPath]);
  const pcrs: Record<string, Record<number, string>> = {};
  let bank: string | null = null;
  let inPcrs = false;
  for (const line of r.stdout.split('\n')) {
    if (/^pcrs:/.test(line)) {
      inPcrs = true;
      continue;
    }
    if (!inPcrs) continue;
    const mb = /^ {2}(\w+):\s*$/.exec(line);
    if (mb?.[1] !== undefined) {
      bank = mb[1];
      pcrs[bank] = {};
      continue;
    }
    const mp = /^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)/.exec(line);
    if (mp?.[1] !== undefined && mp[2] !== undefined && bank !== null) {
      const rec = pcrs[bank];
      if (rec !== undefined) rec[Number(mp[1])] = mp[2].toLowerCase();
    }
  }
  return { status: r.status, pcrs, text: r.stdout + r.stderr };
}

/** Accesses by label, for assertions. */
export function byLabel(r: VmResult): Map<string, VmResult['accesses'][number]> {
  const m = new Map<string, VmResult['accesses'][number]>();
  for (const a of r.accesses) if (a.label !== undefined) m.set(a.label, a);
  return m;
}

/** The integrity cause of an access (`op:cause` of its first 1800 record), or ''. */
export function causeOf(a: VmResult['accesses'][number] | undefined): string {
  const rec = a?.audit.find((x) => x.type === 1800);
  return rec === undefined ? '' : `${rec.fields.op ?? ''}:${rec.fields.cause ?? ''}`;
}

/** Boot times collected by the suite (printed as a diagnostic table at the end of each file). */
export const BOOT_TIMES: { scenario: string; bootMs: number; totalMs: number; asserts: string }[] = [];

/** Print this file's boot times as TAP comments (a kernel suite's `after` hook). */
export function printBootTimes(): void {
  for (const t of BOOT_TIMES)
    console.log(`# boot ${t.scenario}: ${t.bootMs} ms (total ${t.totalMs} ms) — ${t.asserts}`);
}

const FIXTURE_FILES = [
  'binary_runtime_measurements',
  'ascii_runtime_measurements',
  'runtime_measurements_count',
  'violations',
  'pcrs-sha1.txt',
  'pcrs-sha256.txt',
  'pcrs-sha384.txt',
  'pcrs-sha512.txt',
  'binary_bios_measurements',
  'result.json',
  'run.json',
  'policy.txt',
  'cmdline.txt',
  'keys.log',
  'lsm.txt',
  'evm-state',
  'proc-keys.txt',
  'dmesg.txt',
];

/**
 * Save a scenario's artifacts under test/fixtures/kernel/<scenario>/ with a manifest, when
 * IMAKIT_UPDATE_FIXTURES=1 (so that an ordinary test run leaves the checkout clean). The
 * suite's own assertions never read these files; later issues' tests do.
 */
export function saveFixture(
  scenario: string,
  r: VmResult,
  spec: VmSpec,
  manifest: { description: string; asserts: string[]; inputs?: Record<string, unknown> },
): void {
  if (process.env.IMAKIT_UPDATE_FIXTURES !== '1') return;
  const dir = join(FIXTURES_DIR, 'kernel', scenario);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const f of FIXTURE_FILES) {
    const src = join(r.outDir, f);
    if (!existsSync(src) || readFileSync(src).length === 0) continue;
    copyFileSync(src, join(dir, f));
    files[f] = FILE_DESCRIPTIONS[f] ?? '';
  }
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify(
      {
        scenario,
        description: manifest.description,
        kernel: r.info.kernelPackage,
        kernelSha256: r.info.kernelSha256,
        qemu: r.info.qemuVersion,
        swtpm: r.info.swtpmVersion,
        firmware: r.info.firmware,
        banks: r.info.banks,
        cmdline: r.info.cmdline,
        modules: spec.modules ?? [],
        policy: spec.policy ?? null,
        workload: spec.workload ?? [],
        inputs: manifest.inputs ?? {},
        imaCertsDerHex: (spec.imaCerts ?? []).map((c) => Buffer.from(c).toString('hex')),
        evmCertsDerHex: (spec.evmCerts ?? []).map((c) => Buffer.from(c).toString('hex')),
        bootMs: r.info.bootMs,
        asserts: manifest.asserts,
        files,
      },
      null,
      2,
    ) + '\n',
  );
}

const FILE_DESCRIPTIONS: Record<string, string> = {
  binary_runtime_measurements: 'securityfs binary list (SHA-1 template digests, little-endian)',
  ascii_runtime_measurements: 'securityfs ASCII list',
  runtime_measurements_count: 'entry count',
  violations: 'violation count',
  'pcrs-sha1.txt': 'sysfs PCRs of the sha1 bank, evmctl --pcrs format',
  'pcrs-sha256.txt': 'sysfs PCRs of the sha256 bank, evmctl --pcrs format',
  'pcrs-sha384.txt': 'sysfs PCRs of the sha384 bank, evmctl --pcrs format',
  'pcrs-sha512.txt': 'sysfs PCRs of the sha512 bank, evmctl --pcrs format',
  binary_bios_measurements: 'TCG2 crypto-agile event log (securityfs tpm0)',
  'result.json':
    'allow/deny matrix with audit records per access, per-file metadata and xattrs after the run',
  'run.json': 'versions, QEMU command line, timings',
  'policy.txt': 'the policy written to securityfs',
  'cmdline.txt': '/proc/cmdline in the guest',
  'keys.log': 'keyring setup results in the guest',
  'lsm.txt': '/sys/kernel/security/lsm',
  'evm-state': '/sys/kernel/security/evm after setup',
  'proc-keys.txt': '/proc/keys in the guest',
  'dmesg.txt': 'kernel log (audit records, markers IMAKIT-MARK around accesses)',
};

/**
 * imakit's `02 ‖ HMAC` for a file state the guest reported, as the Debian 6.1 kernel computes it for
 * the data disk (real-kernel.md §7 "EVM HMAC layout": debian-6.1 xattr list, h_misc, fs UUID).
 */
export function kernelHmacOf(key: Uint8Array, f: FileState): string {
  const xattrs = new Map<string, Uint8Array>();
  for (const [n, v] of Object.entries(f.xattrs)) xattrs.set(n, new Uint8Array(Buffer.from(v, 'hex')));
  assert.ok(f.generation !== undefined, `${f.path}: generation collected`);
  const input = evmInput({
    kind: 'hmac',
    xattrs,
    meta: { ino: BigInt(f.ino), generation: f.generation, uid: f.uid, gid: f.gid, mode: f.mode },
    fsUuid: parseUuid(DEFAULT_DATA_UUID),
    config: resolveEvmConfig('debian-6.1'),
  });
  return '02' + Buffer.from(evmHmac(key, input)).toString('hex');
}
