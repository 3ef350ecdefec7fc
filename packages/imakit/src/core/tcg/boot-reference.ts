/**
 * A measured-boot reference: what an agent's boot chain (PCRs 0-9 and the events the firmware,
 * loader and kernel logged) must be. Three forms, as operators have them:
 *
 *  - `eventlog`: a golden TCG event log (binary_bios_measurements of a known-good boot); the
 *    agent's log must extend PCRs 0-9 with the same events (type and digest), in the same order.
 *  - `pcrs`: expected PCR values, one `bank:index=hex` per line (`#` comments); the quoted values
 *    must equal them.
 *  - `keylime-mb-refstate`: Keylime's measured-boot reference state, the JSON
 *    `keylime-policy create measured-boot` (create_mb_refstate) writes; checked as Keylime's
 *    example policy (keylime/mba/elchecking/example.py) checks it, for the rules listed at
 *    `compareMbRefstate`.
 *
 * Decoding is strict (unknown fields of a refstate are kept, malformed ones refused with the field
 * named); comparison is pure and reports every mismatch with the PCR, the event index, type and
 * digest in the agent's log, what the reference expected, and what would make it pass.
 *
 * Establishes: the log (or the PCR values) given match the reference. Does NOT establish that the
 * log came from the TPM — the caller compares the log with a verified quote first
 * (compareEventLogPcrs) and passes only PCRs the quote covered as `quoted`.
 */
import { bytesEqual, fromHex, toHex } from '../bytes/bytes.ts';
import { findHashAlgo, hash } from '../hash/hash-algo.ts';
import { ImakitError } from '../../errors.ts';
import { parseEventLog, type TcgEvent, type TcgEventLog } from './event-log.ts';
import { decodeEventData, EV_NO_ACTION, eventTypeName } from './event-types.ts';
import type { PcrValues } from './pcr-values.ts';

export const BOOT_REFERENCE_FORMS = ['eventlog', 'pcrs', 'keylime-mb-refstate'] as const;
export type BootReferenceForm = (typeof BOOT_REFERENCE_FORMS)[number];

/** The largest reference accepted (a golden log of a real machine is tens of KiB). */
export const MAX_BOOT_REFERENCE_BYTES = 4 * 1024 * 1024;

/** Keylime's mb_refstate, as far as the checks here read it (other fields are kept, unread). */
export interface MbRefstate {
  readonly hasSecureboot: boolean;
  readonly scrtmAndBios: readonly { readonly scrtm: string; readonly platformFirmware: readonly string[] }[];
  /** pk, kek, db, dbx: the EFI signatures (owner GUID, data hex) each variable must contain */
  readonly keys: Readonly<
    Record<'pk' | 'kek' | 'db' | 'dbx' | 'vendor_db', readonly { owner: string; data: string }[]>
  >;
  readonly mokdig: readonly string[];
  readonly mokxdig: readonly string[];
  readonly kernels: readonly {
    readonly shim: string;
    readonly grub: string;
    /** with Secure Boot: the kernel's Authenticode digest */
    readonly kernel?: string;
    /** without Secure Boot: the kernel image's digest as grub measures it (PCR 9) */
    readonly vmlinuz?: string;
    readonly initrd: string;
    /** a regular expression the command line matches whole */
    readonly cmdline: string;
  }[];
}

export type BootReference =
  | { readonly form: 'eventlog'; readonly log: TcgEventLog }
  | { readonly form: 'pcrs'; readonly pcrs: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>> }
  | { readonly form: 'keylime-mb-refstate'; readonly refstate: MbRefstate };

const fail = (detail: string, field?: string): ImakitError =>
  new ImakitError('E_BOOTREF_FORMAT', detail, field !== undefined ? { field } : {});

/**
 * Which form `bytes` is: a JSON object with Keylime's refstate keys, text of `bank:index=hex`
 * lines, or else a binary event log (which `decodeBootReference` then parses strictly).
 */
export function bootReferenceForm(bytes: Uint8Array): BootReferenceForm {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes: expected a Uint8Array');
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] === 0x7b /* { */) return 'keylime-mb-refstate';
  const head = new TextDecoder('latin1').decode(bytes.subarray(i, i + 64));
  if (/^(#|(sha1|sha256|sha384|sha512|sm3_256):\d)/.test(head)) return 'pcrs';
  return 'eventlog';
}

/**
 * Decode a reference (its form detected when not given).
 * @throws ImakitError E_BOOTREF_FORMAT naming the line or field; E_CODEC_* from the event-log
 *   parser (with the offset); RangeError for more than MAX_BOOT_REFERENCE_BYTES
 * @example decodeBootReference(new TextEncoder().encode('sha256:0=' + '00'.repeat(32))).form // 'pcrs'
 */
export function decodeBootReference(bytes: Uint8Array, form = bootReferenceForm(bytes)): BootReference {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes: expected a Uint8Array');
  if (bytes.length > MAX_BOOT_REFERENCE_BYTES)
    throw fail(`the reference is ${bytes.length} bytes, more than ${MAX_BOOT_REFERENCE_BYTES}`);
  if (form === 'eventlog') return Object.freeze({ form, log: parseEventLog(bytes) });
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (form === 'pcrs') return Object.freeze({ form, pcrs: decodePcrLines(text) });
  return Object.freeze({ form, refstate: decodeMbRefstate(text) });
}

function decodePcrLines(text: string): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  text.split('\n').forEach((raw, n) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const m = /^(sha1|sha256|sha384|sha512|sm3_256):(\d{1,2})=([0-9a-fA-F]+)$/.exec(line);
    if (m === null)
      throw fail(`line ${n + 1}: expected bank:index=hex, got '${line.slice(0, 80)}'`, `line ${n + 1}`);
    const [, bank, idx, hex] = m;
    const pcr = Number(idx);
    const size = findHashAlgo(bank!)!.size;
    if (pcr > 23) throw fail(`line ${n + 1}: PCR ${pcr} does not exist (0-23)`, `line ${n + 1}`);
    if (hex!.length !== size * 2)
      throw fail(`line ${n + 1}: a ${bank} value is ${size} bytes, not ${hex!.length / 2}`, `line ${n + 1}`);
    const m2 = out.get(bank!) ?? new Map<number, Uint8Array>();
    if (m2.has(pcr)) throw fail(`line ${n + 1}: ${bank}:${pcr} is given twice`, `line ${n + 1}`);
    m2.set(pcr, fromHex(hex!));
    out.set(bank!, m2);
  });
  if (out.size === 0) throw fail('no PCR values: expected lines of bank:index=hex');
  return out;
}

/** `0x`-prefixed or bare hex digest, lower-cased, without the prefix. */
function digestHex(v: unknown, field: string): string {
  if (typeof v !== 'string' || !/^(0x)?([0-9a-fA-F]{2})+$/.test(v))
    throw fail(`${field}: expected hex`, field);
  return v.replace(/^0x/, '').toLowerCase();
}
const sha256Of = (v: unknown, field: string): string =>
  digestHex((v as { sha256?: unknown } | null)?.sha256, `${field}.sha256`);
function list(v: unknown, field: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw fail(`${field}: expected a list`, field);
  return v;
}

function decodeMbRefstate(text: string): MbRefstate {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw fail(`not JSON: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw fail('expected a JSON object');
  const o = j as Record<string, unknown>;
  if (o.has_secureboot !== undefined && typeof o.has_secureboot !== 'boolean')
    throw fail('has_secureboot: expected true or false', 'has_secureboot');
  const hasSecureboot = o.has_secureboot !== false;
  if (o.scrtm_and_bios === undefined)
    throw fail("scrtm_and_bios is missing (Keylime's example policy needs it)", 'scrtm_and_bios');
  const scrtmAndBios = list(o.scrtm_and_bios, 'scrtm_and_bios').map((a, i) => {
    const f = `scrtm_and_bios[${i}]`;
    const x = a as { scrtm?: unknown; platform_firmware?: unknown };
    return {
      scrtm: sha256Of(x?.scrtm, `${f}.scrtm`),
      platformFirmware: list(x?.platform_firmware, `${f}.platform_firmware`).map((p, k) =>
        sha256Of(p, `${f}.platform_firmware[${k}]`),
      ),
    };
  });
  const sigs = (name: 'pk' | 'kek' | 'db' | 'dbx' | 'vendor_db') =>
    list(o[name], name).map((s, i) => {
      const x = s as { SignatureOwner?: unknown; SignatureData?: unknown };
      if (typeof x?.SignatureOwner !== 'string' || !/^[0-9a-fA-F-]{36}$/.test(x.SignatureOwner))
        throw fail(`${name}[${i}].SignatureOwner: expected a GUID`, `${name}[${i}].SignatureOwner`);
      return {
        owner: x.SignatureOwner.toLowerCase(),
        data: digestHex(x.SignatureData, `${name}[${i}].SignatureData`),
      };
    });
  // the fields Keylime's example policy requires of each kernel (example.py allowed_kernel_test)
  const kernels = list(o.kernels, 'kernels').map((k, i) => {
    const f = `kernels[${i}]`;
    const x = (k ?? {}) as Record<string, unknown>;
    const hex = (key: string) => digestHex(x[key], `${f}.${key}`);
    if (typeof x.kernel_cmdline !== 'string')
      throw fail(`${f}.kernel_cmdline: expected a string`, `${f}.kernel_cmdline`);
    try {
      new RegExp(x.kernel_cmdline);
    } catch {
      throw fail(`${f}.kernel_cmdline: not a regular expression`, `${f}.kernel_cmdline`);
    }
    return {
      shim: hex('shim_authcode_sha256'),
      grub: hex('grub_authcode_sha256'),
      ...(hasSecureboot
        ? { kernel: hex('kernel_authcode_sha256') }
        : { vmlinuz: hex('vmlinuz_plain_sha256') }),
      initrd: hex('initrd_plain_sha256'),
      cmdline: x.kernel_cmdline,
    };
  });
  return Object.freeze({
    hasSecureboot,
    scrtmAndBios,
    keys: {
      pk: sigs('pk'),
      kek: sigs('kek'),
      db: sigs('db'),
      dbx: sigs('dbx'),
      vendor_db: sigs('vendor_db'),
    },
    mokdig: list(o.mokdig, 'mokdig').map((d, i) => sha256Of(d, `mokdig[${i}]`)),
    mokxdig: list(o.mokxdig, 'mokxdig').map((d, i) => sha256Of(d, `mokxdig[${i}]`)),
    kernels,
  });
}

/** One difference between the agent's boot and the reference. */
export interface BootMismatch {
  readonly code:
    | 'boot-event-differs'
    | 'boot-event-missing'
    | 'boot-event-extra'
    | 'boot-pcr-differs'
    | 'boot-pcr-not-quoted'
    | 'boot-refstate-mismatch';
  readonly pcr: number;
  readonly bank?: string;
  /** the agent's event (index in its log, type, digest in `bank`) */
  readonly event?: { readonly index: number; readonly type: string; readonly digest: string };
  /** what the reference has there: its event, a PCR value, or the refstate rule */
  readonly expected?: unknown;
  readonly actual?: unknown;
  readonly message: string;
  readonly fix: string;
}

export interface BootReferenceResult {
  readonly status: 'pass' | 'fail';
  readonly form: BootReferenceForm;
  /** every mismatch, in log order (the first names the failure) */
  readonly mismatches: readonly BootMismatch[];
  /** what the comparison covered, in words */
  readonly checked: readonly string[];
  readonly notEstablished: readonly string[];
}

/** What the agent booted: its parsed log (when sent) and the PCR values its quote proved. */
export interface BootActual {
  readonly log?: TcgEventLog;
  /** only the PCRs the verified quote covers */
  readonly quoted: PcrValues;
}

export const BOOT_PCRS: readonly number[] = Object.freeze([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

const measured = (log: TcgEventLog, pcr: number): TcgEvent[] =>
  log.events.filter((e) => e.pcr === pcr && e.type !== EV_NO_ACTION);
const quotedPcr = (q: PcrValues, pcr: number): boolean => [...q.values()].some((m) => m.has(pcr));
const view = (e: TcgEvent, bank: string) => ({
  index: e.index,
  type: eventTypeName(e.type),
  digest: toHex(e.digests.get(bank) ?? new Uint8Array()),
});

/**
 * Compare what the agent booted with the reference. Pure.
 * @throws TypeError when `actual.quoted` is missing
 */
export function compareBootReference(ref: BootReference, actual: BootActual): BootReferenceResult {
  if (actual?.quoted === undefined) throw new TypeError('actual.quoted: expected the verified PCR values');
  if (ref.form === 'pcrs') return comparePcrs(ref.pcrs, actual);
  if (actual.log === undefined)
    return freeze(ref.form, [], [], [], {
      code: 'boot-event-missing',
      pcr: 0,
      message: 'the agent sent no event log, and its boot reference is an event log or refstate',
      fix: 'send the TCG event log (binary_bios_measurements) with the evidence',
    });
  return ref.form === 'eventlog'
    ? compareLogs(ref.log, actual.log, actual.quoted)
    : compareMbRefstate(ref.refstate, actual.log, actual.quoted);
}

function freeze(
  form: BootReferenceForm,
  mismatches: BootMismatch[],
  checked: string[],
  notEstablished: string[],
  extra?: BootMismatch,
  inLogOrder = true,
): BootReferenceResult {
  const all = extra !== undefined ? [extra, ...mismatches] : mismatches;
  if (inLogOrder) all.sort((a, b) => (a.event?.index ?? Infinity) - (b.event?.index ?? Infinity));
  return Object.freeze({
    status: all.length === 0 ? 'pass' : 'fail',
    form,
    mismatches: all,
    checked,
    notEstablished,
  });
}

function notQuoted(pcr: number): BootMismatch {
  return {
    code: 'boot-pcr-not-quoted',
    pcr,
    message: `the boot reference covers PCR ${pcr}, which the quote does not`,
    fix: `add PCR ${pcr} to the agent's requirePcrs, so the quote proves what the reference is compared with`,
  };
}

function comparePcrs(
  expected: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
  actual: BootActual,
): BootReferenceResult {
  const mismatches: BootMismatch[] = [];
  const checked: string[] = [];
  for (const [bank, m] of expected)
    for (const [pcr, want] of m) {
      const got = actual.quoted.get(bank)?.get(pcr);
      if (got === undefined) {
        mismatches.push({
          ...notQuoted(pcr),
          bank,
          message: `the boot reference has ${bank}:${pcr}, which the quote does not cover`,
        });
        continue;
      }
      checked.push(`${bank}:${pcr}`);
      if (bytesEqual(got, want)) continue;
      // the last event that extended the PCR is where the chain left the reference
      const last = actual.log === undefined ? undefined : measured(actual.log, pcr).at(-1);
      mismatches.push({
        code: 'boot-pcr-differs',
        pcr,
        bank,
        ...(last !== undefined && { event: view(last, bank) }),
        expected: toHex(want),
        actual: toHex(got),
        message: `${bank} PCR ${pcr} is ${toHex(got).slice(0, 16)}…, the boot reference expects ${toHex(want).slice(0, 16)}…`,
        fix:
          actual.log === undefined
            ? `boot the reference chain, or update the reference value of ${bank}:${pcr}; send the event log to see which event differs`
            : `boot the reference chain, or update the reference value of ${bank}:${pcr} (its last event is #${last?.index ?? '?'})`,
      });
    }
  return freeze('pcrs', mismatches, checked.length > 0 ? [`PCR values ${checked.join(', ')}`] : [], []);
}

/** The bank both logs carry (sha256 first). */
function commonBank(a: TcgEventLog, b: TcgEventLog): string | undefined {
  const banks = (l: TcgEventLog) =>
    new Set(l.specAlgorithms.map((x) => x.bank).filter((x) => x !== undefined));
  const ab = banks(a);
  const both = [...banks(b)].filter((x) => ab.has(x));
  return both.includes('sha256') ? 'sha256' : both[0];
}

function compareLogs(ref: TcgEventLog, log: TcgEventLog, quoted: PcrValues): BootReferenceResult {
  const bank = commonBank(ref, log);
  if (bank === undefined)
    return freeze('eventlog', [], [], [], {
      code: 'boot-event-differs',
      pcr: 0,
      message: 'the agent’s event log and the golden log share no PCR bank',
      fix: 'record the golden log on a machine with the same TPM banks',
    });
  const mismatches: BootMismatch[] = [];
  const checked: string[] = [];
  for (const pcr of BOOT_PCRS) {
    const want = measured(ref, pcr);
    const got = measured(log, pcr);
    if (want.length === 0 && got.length === 0) continue;
    if (!quotedPcr(quoted, pcr)) {
      mismatches.push(notQuoted(pcr));
      continue;
    }
    checked.push(`PCR ${pcr}: ${want.length} events`);
    const n = Math.max(want.length, got.length);
    for (let i = 0; i < n; i++) {
      const w = want[i];
      const g = got[i];
      if (
        w !== undefined &&
        g !== undefined &&
        w.type === g.type &&
        bytesEqual(w.digests.get(bank)!, g.digests.get(bank) ?? new Uint8Array())
      )
        continue;
      const ev = g === undefined ? undefined : view(g, bank);
      const exp = w === undefined ? undefined : view(w, bank);
      mismatches.push({
        code:
          g === undefined
            ? 'boot-event-missing'
            : w === undefined
              ? 'boot-event-extra'
              : 'boot-event-differs',
        pcr,
        bank,
        ...(ev !== undefined && { event: ev }),
        ...(exp !== undefined && {
          expected: { goldenIndex: exp.index, type: exp.type, digest: exp.digest },
        }),
        message:
          g === undefined
            ? `PCR ${pcr}: the golden log's event #${exp!.index} (${exp!.type}) is missing from the agent's log`
            : w === undefined
              ? `PCR ${pcr}: event #${ev!.index} (${ev!.type}, ${bank} ${ev!.digest}) is not in the golden log`
              : `PCR ${pcr}: event #${ev!.index} (${ev!.type}, ${bank} ${ev!.digest}) differs from the golden log's #${exp!.index} (${exp!.type}, ${exp!.digest})`,
        fix: `boot the reference chain, or record this machine's log as its golden log if the change is intended`,
      });
      break; // later events of this PCR follow from the first difference
    }
  }
  return freeze('eventlog', mismatches, checked, []);
}

/** EFI_SIGNATURE_LIST entries in an EFI variable's data (UEFI 2.9 §32.4.1): owner GUID + data. */
function efiSignatures(data: Uint8Array): { owner: string; data: string }[] | undefined {
  const out: { owner: string; data: string }[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  while (off < data.length) {
    if (off + 28 > data.length) return undefined;
    const listSize = dv.getUint32(off + 16, true);
    const headerSize = dv.getUint32(off + 20, true);
    const sigSize = dv.getUint32(off + 24, true);
    if (listSize < 28 + headerSize || off + listSize > data.length || sigSize < 16) return undefined;
    const body = listSize - 28 - headerSize;
    if (body % sigSize !== 0) return undefined;
    for (let p = off + 28 + headerSize; p < off + listSize; p += sigSize)
      out.push({ owner: guid(data.subarray(p, p + 16)), data: toHex(data.subarray(p + 16, p + sigSize)) });
    off += listSize;
  }
  return out;
}

function guid(b: Uint8Array): string {
  const h = toHex(b);
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return `${le(h.slice(0, 8))}-${le(h.slice(8, 12))}-${le(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** EV_EFI_ACTION strings the PC Client spec allows per PCR (Keylime tests.py EvEfiActionTest). */
const EFI_ACTIONS: Readonly<Record<number, readonly string[]>> = Object.freeze({
  1: ['Entering ROM Based Setup'],
  4: ['Calling EFI Application from Boot Option', 'Returning from EFI Application from Boot Option'],
  5: [
    'Exit Boot Services Invocation',
    'Exit Boot Services Returned with Failure',
    'Exit Boot Services Returned with Success',
  ],
});

/** Events Keylime's example policy accepts at most this often, whatever they hold. */
const ONCE: Readonly<Record<string, number>> = Object.freeze({
  '1:EV_CPU_MICROCODE': 1,
  '1:EV_EFI_HANDOFF_TABLES': 1,
  '1:EV_EFI_HANDOFF_TABLES2': 1,
  '1:EV_PLATFORM_CONFIG_FLAGS': 4,
  '5:EV_EFI_GPT_EVENT': 1,
});

/**
 * Keylime's example policy (keylime/mba/elchecking/example.py, 7.14) over the refstate. Every
 * event must be one the policy expects for its PCR and type (its dispatcher): one Spec ID header
 * (EV_NO_ACTION); microcode, handoff tables, GPT, platform config flags (counted); S-CRTM and
 * firmware blobs matching one `scrtm_and_bios` entry exactly; the SecureBoot variable matching
 * `has_secureboot`; PK, KEK, db, vendor_db containing the refstate's signatures and dbx containing
 * its revocations (a Secure-Boot-off refstate with an empty list accepts any); boot-order variables;
 * EFI actions and separators with the spec's strings and their digests; boot-services drivers (any);
 * the boot-services applications exactly [shim, grub] (and with Secure Boot the kernel, possibly
 * twice) of one `kernels` entry, whose PCR 9 vmlinuz (without Secure Boot) and initrd EV_IPL digests
 * and PCR 8 `kernel_cmdline:` (a regular expression, matched whole) must match too — an empty
 * `kernels` accepts no boot, as in Keylime; PCR 9 EV_IPL only for loader entries, grub, vmlinuz and
 * initrd; PCR 8 EV_IPL only `grub_cmd:` and `kernel_cmdline:`; PCR 14 MokList/MokListX digests in
 * `mokdig`/`mokxdig`. Anything else fails naming the event. Differences from Keylime, said in
 * notEstablished: EFI signature-list GUID types are not told apart (owner and data are), and the
 * EV_EFI_VARIABLE_AUTHORITY certificates of shim and SbatLevel are accepted as Keylime does.
 */
function compareMbRefstate(rs: MbRefstate, log: TcgEventLog, quoted: PcrValues): BootReferenceResult {
  const mismatches: BootMismatch[] = [];
  const checked = new Set<string>();
  const sha = (e: TcgEvent) => toHex(e.digests.get('sha256') ?? new Uint8Array());
  const text = (e: TcgEvent): string => {
    const d = decodeEventData(e.type, e.data);
    return d.kind === 'string' ? d.text : '';
  };
  const variable = (e: TcgEvent) => {
    const d = decodeEventData(e.type, e.data);
    return d.kind === 'efi-variable' ? d : undefined;
  };
  const bad = (
    e: TcgEvent | undefined,
    pcr: number,
    rule: string,
    expected: unknown,
    message: string,
    fix: string,
  ) =>
    mismatches.push({
      code: 'boot-refstate-mismatch',
      pcr,
      bank: 'sha256',
      ...(e !== undefined && { event: view(e, 'sha256') }),
      expected: { rule, value: expected },
      message,
      fix,
    });
  const notQuotedSeen = new Set<number>();
  const counts = new Map<string, number>();
  const once = (key: string, max = 1): boolean => {
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    return n <= max;
  };
  /** the digest in every bank equals the hash of `data` (actions, separators) */
  const digestsOf = (e: TcgEvent, data: Uint8Array): boolean =>
    [...e.digests].every(([bank, d]) => findHashAlgo(bank)?.node == null || bytesEqual(d, hash(bank, data)));

  // what the policy's delayed tests gather
  const sCrtms: TcgEvent[] = [];
  const blobs: TcgEvent[] = [];
  const apps: TcgEvent[] = [];
  const ipl9 = { vmlinuz: [] as TcgEvent[], initrd: [] as TcgEvent[] };
  const cmdlines: TcgEvent[] = [];
  const unexpected = (e: TcgEvent, why: string) =>
    bad(
      e,
      e.pcr,
      'dispatcher',
      `${e.pcr}:${eventTypeName(e.type)}`,
      `event #${e.index} (PCR ${e.pcr}, ${eventTypeName(e.type)}) ${why}`,
      "boot without this event, or use a measured-boot policy that expects it (Keylime's example policy does not)",
    );
  const keys = (
    name: 'pk' | 'kek' | 'db' | 'dbx' | 'vendor_db',
    e: TcgEvent,
    sigs: { owner: string; data: string }[] | undefined,
  ) => {
    const want = rs.keys[name];
    checked.add(name);
    if (!rs.hasSecureboot && want.length === 0) return;
    const missing = want.find((w) => !(sigs ?? []).some((h) => h.owner === w.owner && h.data === w.data));
    if (missing !== undefined)
      bad(
        e,
        7,
        name,
        missing,
        `${variable(e)?.name ?? name} does not contain the refstate's signature of owner ${missing.owner}`,
        `enrol the refstate's ${name} keys, or make a new refstate`,
      );
  };

  for (const e of log.events) {
    const type = eventTypeName(e.type);
    if (!quotedPcr(quoted, e.pcr)) {
      if (!notQuotedSeen.has(e.pcr)) mismatches.push(notQuoted(e.pcr));
      notQuotedSeen.add(e.pcr);
      continue;
    }
    const key = `${e.pcr}:${type}`;
    if (ONCE[key] !== undefined) {
      if (!once(key, ONCE[key])) unexpected(e, `appears more than ${ONCE[key]} time(s)`);
      continue;
    }
    switch (key) {
      case '0:EV_NO_ACTION':
        // the Spec ID header is the one EV_NO_ACTION the policy expects
        unexpected(e, 'is a second EV_NO_ACTION (the policy expects only the Spec ID header)');
        break;
      case '0:EV_S_CRTM_VERSION':
        sCrtms.push(e);
        break;
      case '0:EV_EFI_PLATFORM_FIRMWARE_BLOB':
      case '0:EV_EFI_PLATFORM_FIRMWARE_BLOB2':
        blobs.push(e);
        break;
      case '7:EV_EFI_VARIABLE_DRIVER_CONFIG': {
        const v = variable(e);
        const name = v?.name ?? '';
        if (!once(`dc:${name}`)) {
          unexpected(e, `measures ${name} twice`);
          break;
        }
        if (name === 'SecureBoot') {
          checked.add('has_secureboot');
          const on = v!.dataHex === '01';
          if (on !== rs.hasSecureboot)
            bad(
              e,
              7,
              'has_secureboot',
              rs.hasSecureboot,
              `Secure Boot is ${on ? 'on' : 'off'}; the refstate says has_secureboot ${rs.hasSecureboot}`,
              'boot with the Secure Boot state the refstate was made with, or make a new refstate',
            );
        } else if (name === 'PK' || name === 'KEK' || name === 'db' || name === 'dbx' || name === 'vendor_db')
          keys(name === 'PK' ? 'pk' : name === 'KEK' ? 'kek' : name, e, efiSignatures(fromHex(v!.dataHex)));
        else unexpected(e, `measures the variable ${JSON.stringify(name)}, which the policy does not expect`);
        break;
      }
      case '7:EV_EFI_VARIABLE_AUTHORITY': {
        const name = variable(e)?.name ?? '';
        if (name === 'vendor_db') {
          // one EFI_SIGNATURE_DATA: owner GUID, then the signature
          const raw = fromHex(variable(e)!.dataHex);
          const sig =
            raw.length > 16 ? [{ owner: guid(raw.subarray(0, 16)), data: toHex(raw.subarray(16)) }] : [];
          checked.add('vendor_db');
          if (
            (rs.hasSecureboot || rs.keys.vendor_db.length > 0) &&
            !sig.some((h) => rs.keys.vendor_db.some((w) => w.owner === h.owner && w.data === h.data))
          )
            bad(
              e,
              7,
              'vendor_db',
              rs.keys.vendor_db,
              'the vendor_db authority is not in the refstate',
              'add it to vendor_db',
            );
        } else if (!['db', 'SbatLevel', 'Shim', 'MokListTrusted', 'MokListRT'].includes(name))
          unexpected(e, `is an authority ${JSON.stringify(name)} the policy does not expect`);
        else if (!once(`auth:${name}`)) unexpected(e, `measures the authority ${name} twice`);
        break;
      }
      case '2:EV_EFI_BOOT_SERVICES_DRIVER':
        break;
      case '1:EV_EFI_VARIABLE_BOOT':
        if (!/^(BootOrder|Boot[0-9a-fA-F]+)$/.test(variable(e)?.name ?? ''))
          unexpected(e, `measures ${JSON.stringify(variable(e)?.name ?? '')}, not BootOrder or Boot####`);
        break;
      case '1:EV_EFI_ACTION':
      case '4:EV_EFI_ACTION':
      case '5:EV_EFI_ACTION': {
        const t = text(e);
        if (!EFI_ACTIONS[e.pcr]!.includes(t) || !digestsOf(e, new TextEncoder().encode(t)))
          unexpected(
            e,
            `is the action ${JSON.stringify(t)}, not one the spec names for PCR ${e.pcr} with its digest`,
          );
        break;
      }
      case '4:EV_EFI_BOOT_SERVICES_APPLICATION':
        apps.push(e);
        break;
      case '8:EV_IPL': {
        const t = text(e);
        if (t.startsWith('kernel_cmdline: ')) cmdlines.push(e);
        else if (!t.startsWith('grub_cmd: '))
          unexpected(e, `is ${JSON.stringify(t.slice(0, 60))}, not grub_cmd: or kernel_cmdline:`);
        break;
      }
      case '9:EV_IPL': {
        const t = text(e);
        if (/\/vmlinuz/.test(t)) ipl9.vmlinuz.push(e);
        else if (/\/(initrd|initramfs)/.test(t)) ipl9.initrd.push(e);
        else if (!/\/loader\/entries|\/grub/.test(t))
          unexpected(
            e,
            `names ${JSON.stringify(t.slice(0, 60))}, not a loader entry, grub, vmlinuz or initrd`,
          );
        break;
      }
      case '14:EV_IPL': {
        const t = text(e);
        const want = t === 'MokList' ? rs.mokdig : t === 'MokListX' ? rs.mokxdig : undefined;
        if (want !== undefined) {
          checked.add(t === 'MokList' ? 'mokdig' : 'mokxdig');
          if (!want.includes(sha(e)))
            bad(
              e,
              14,
              t === 'MokList' ? 'mokdig' : 'mokxdig',
              want,
              `${t}'s digest is not one the refstate allows`,
              "enrol the refstate's machine owner keys, or make a new refstate",
            );
        } else if (t !== 'MokListTrusted' || !once('14:MokListTrusted'))
          unexpected(e, `is ${JSON.stringify(t.slice(0, 60))}, not MokList, MokListX or MokListTrusted`);
        break;
      }
      default:
        if (type === 'EV_SEPARATOR' && e.pcr <= 7) {
          const hex = toHex(e.data);
          if ((hex !== '00000000' && hex !== 'ffffffff') || !digestsOf(e, e.data))
            unexpected(e, 'is a separator whose value or digest the spec does not allow');
        } else unexpected(e, 'has a (PCR, type) combination the policy does not expect');
    }
  }

  // the delayed tests: S-CRTM and firmware, then one kernels entry for the whole boot chain
  if (quotedPcr(quoted, 0)) {
    checked.add('scrtm_and_bios');
    const ok = rs.scrtmAndBios.some(
      (a) =>
        sCrtms.length === 1 &&
        sha(sCrtms[0]!) === a.scrtm &&
        blobs.length === a.platformFirmware.length &&
        blobs.every((b, i) => sha(b) === a.platformFirmware[i]),
    );
    if (!ok) {
      const a = rs.scrtmAndBios[0];
      const e =
        a === undefined || sCrtms.length !== 1 || sha(sCrtms[0]!) !== a.scrtm
          ? sCrtms[0]
          : (blobs.find((b, i) => sha(b) !== a.platformFirmware[i]) ?? blobs[a.platformFirmware.length]);
      bad(
        e,
        0,
        'scrtm_and_bios',
        a ?? [],
        `the S-CRTM and firmware blobs match none of the refstate's ${rs.scrtmAndBios.length} scrtm_and_bios entries`,
        'update the firmware to the reference version, or add this firmware to scrtm_and_bios',
      );
    }
  }
  if (quotedPcr(quoted, 4)) {
    checked.add('kernels');
    let why: { e: TcgEvent | undefined; what: string } | undefined;
    const seq = apps.map(sha);
    const matches = rs.kernels.some((k) => {
      const chain = [k.shim, k.grub, ...(rs.hasSecureboot ? [k.kernel!] : [])];
      const same = (c: readonly string[]) => c.length === seq.length && c.every((d, i) => seq[i] === d);
      if (!same(chain) && !(rs.hasSecureboot && same([...chain, k.kernel!]))) {
        const i = chain.findIndex((d, n) => seq[n] !== d);
        why ??= {
          e: apps[i === -1 ? chain.length : i],
          what: `boot application #${i === -1 ? chain.length : i} (shim, grub${rs.hasSecureboot ? ', kernel' : ''})`,
        };
        return false;
      }
      const one = (events: TcgEvent[], want: string | undefined, what: string): boolean => {
        if (events.length === 1 && (want === undefined || sha(events[0]!) === want)) return true;
        why ??= {
          e: events[0],
          what: events.length === 1 ? `the ${what} digest` : `${events.length} ${what} events (one expected)`,
        };
        return false;
      };
      if (!one(ipl9.initrd, k.initrd, 'initrd (PCR 9 EV_IPL)')) return false;
      if (!one(ipl9.vmlinuz, rs.hasSecureboot ? undefined : k.vmlinuz, 'vmlinuz (PCR 9 EV_IPL)'))
        return false;
      if (!one(cmdlines, undefined, 'kernel_cmdline (PCR 8 EV_IPL)')) return false;
      if (!new RegExp(`^(?:kernel_cmdline: ${k.cmdline})$`).test(text(cmdlines[0]!))) {
        why ??= { e: cmdlines[0], what: 'the kernel command line' };
        return false;
      }
      return true;
    });
    if (!matches)
      bad(
        why?.e,
        why?.e?.pcr ?? 4,
        'kernels',
        rs.kernels[0] ?? [],
        rs.kernels.length === 0
          ? "the refstate lists no kernels: Keylime's example policy accepts no boot chain then"
          : `the boot chain matches none of the refstate's ${rs.kernels.length} kernels: ${why?.what ?? 'no match'} differs`,
        'boot a shim, grub, kernel and initrd the refstate lists, or add this chain to kernels',
      );
  }
  // Keylime's order: the events in log order, then the boot chain as a whole
  return freeze(
    'keylime-mb-refstate',
    mismatches,
    [...checked],
    [
      "EFI signature-list types of the refstate's keys (owner and data are compared, not the list's type GUID)",
    ],
    undefined,
    false,
  );
}
