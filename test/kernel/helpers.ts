/**
 * Shared pieces of the real-kernel suite: locating the kernel cache, a minimal independent list
 * replay (formats.md §1.2, §1.4, §1.7, §1.8; the list parser of a later issue replaces it),
 * evmctl / tpm2_eventlog cross-checks, and saving fixtures for later issues.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKernelDir, type VmResult, type VmSpec } from '../../src/host/vm/index.ts';
import { FIXTURES_DIR, run } from '../helpers.ts';

/** Kernel cache used by the suite (scripts/setup-kernel.sh fills it). */
export const KERNEL_DIR = defaultKernelDir(process.env);

/** Per-boot timeout for the suite. */
export const BOOT_TIMEOUT_MS = 180_000;

/** One entry of the SHA-1 binary list, untrusted. */
export interface ListEntry {
  readonly pcr: number;
  readonly digest: Buffer;
  readonly template: string;
  /** template data as hashed (for `ima`: d ‖ name zero-padded, 276 bytes) */
  readonly hashed: Buffer;
  /** raw fields (for `ima`: [d, name without NUL]) */
  readonly fields: Buffer[];
}

/** Parse a little-endian SHA-1 binary measurement list (formats.md §1.2, §1.4). */
export function parseList(bytes: Uint8Array): ListEntry[] {
  const b = Buffer.from(bytes);
  const out: ListEntry[] = [];
  let o = 0;
  const u32 = (): number => {
    if (o + 4 > b.length) throw new Error(`truncated at ${o}`);
    const v = b.readUInt32LE(o);
    o += 4;
    return v;
  };
  const take = (n: number): Buffer => {
    if (o + n > b.length) throw new Error(`truncated at ${o}`);
    const s = b.subarray(o, o + n);
    o += n;
    return s;
  };
  while (o < b.length) {
    const pcr = u32();
    const digest = take(20);
    const template = take(u32()).toString('latin1');
    if (template === 'ima') {
      const d = take(20);
      const name = take(u32());
      const padded = Buffer.alloc(256);
      name.copy(padded, 0, 0, Math.min(name.length, 255));
      out.push({ pcr, digest, template, hashed: Buffer.concat([d, padded]), fields: [d, name] });
    } else {
      const data = take(u32());
      const fields: Buffer[] = [];
      for (let f = 0; f < data.length;) {
        const len = data.readUInt32LE(f);
        fields.push(data.subarray(f + 4, f + 4 + len));
        f += 4 + len;
      }
      out.push({ pcr, digest, template, hashed: data, fields });
    }
  }
  return out;
}

const SIZES: Record<string, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/**
 * Replay PCR `pcr` of `bank` from the list. `padded`: the bank is extended with the SHA-1
 * template digest zero-padded (banks IMA could not allocate, real-kernel.md §7).
 */
export function replayPcr(entries: readonly ListEntry[], bank: string, pcr = 10, padded = false): string {
  const size = SIZES[bank];
  if (size === undefined) throw new Error(`bank ${bank}`);
  let v = Buffer.alloc(size);
  for (const e of entries) {
    if (e.pcr !== pcr) continue;
    const violation = e.digest.every((x) => x === 0);
    let d: Buffer;
    if (violation) d = Buffer.alloc(size, 0xff);
    else if (padded) {
      d = Buffer.alloc(size);
      createHash('sha1').update(e.hashed).digest().copy(d);
    } else d = createHash(bank).update(e.hashed).digest();
    v = createHash(bank)
      .update(Buffer.concat([v, d]))
      .digest();
  }
  return v.toString('hex');
}

/** Every non-violation entry's listed SHA-1 digest equals SHA-1 of its template data. */
export function templateDigestMismatches(entries: readonly ListEntry[]): number[] {
  const bad: number[] = [];
  entries.forEach((e, i) => {
    if (e.digest.every((x) => x === 0)) return;
    if (!createHash('sha1').update(e.hashed).digest().equals(e.digest)) bad.push(i);
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

/** `boot_aggregate` per formats.md §2.1 from the captured PCRs. */
export function bootAggregate(pcrs: readonly string[], bank: string): string {
  const n = bank === 'sha1' ? 8 : 10;
  return createHash(bank)
    .update(Buffer.concat(pcrs.slice(0, n).map((p) => Buffer.from(p, 'hex'))))
    .digest('hex');
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
