/**
 * Measurement in the emulator: template field data (security/integrity/ima/ima_template_lib.c),
 * template digests per PCR bank, de-duplication and PCR extension (ima_queue.c), formats.md §1.
 * The list encodings are H5's (src/core/ima-list), so emulated lists are byte-compatible with what
 * `imakit log` parses.
 */
import { concatBytes, u16Bytes, u32Bytes, toHex, type Endian } from '../core/bytes/bytes.ts';
import { hash, resolveHashAlgo } from '../core/hash/hash-algo.ts';
import { joinTemplateData } from '../core/ima-list/fields.ts';
import { templateDigest } from '../core/ima-list/template-digest.ts';
import { encodeBinaryList, type UntrustedEntry } from '../core/ima-list/binary.ts';
import { renderAsciiList } from '../core/ima-list/ascii.ts';
import type { FieldId, TemplateDescriptor } from '../core/ima-list/templates.ts';
import type { Inode } from './inode-state.ts';

/** What a template is filled from (`struct ima_event_data`). */
export interface EventData {
  /** the recorded name (absolute path, `boot_aggregate`, keyring name, event name) */
  readonly name: string;
  /** the collected digest, absent for violations */
  readonly digest: { readonly algo: string; readonly digest: Uint8Array } | null;
  /** the security.ima value read for this event (sig field) */
  readonly xattr: Uint8Array | null;
  /** the inode, for iuid, igid, imode, the xattr fields, evmsig and the legacy name fallback */
  readonly file: Inode | null;
  readonly buf: Uint8Array | null;
  readonly violation: boolean;
  /** the rule had digest_type=verity (d-ngv2 type `verity`) */
  readonly verity: boolean;
  /** the kernel's ima_hash */
  readonly imaHash: string;
  /** every EVM-listed name in list order (xattrnames covers config-disabled names too) */
  readonly evmNames: readonly string[];
  /** the SHA-1 a legacy `d` field needs when the collected digest is not sha1/md5 */
  readonly sha1Digest?: () => Uint8Array;
  /** violation d-ng zero run: full digest size or 20 bytes (old kernels) */
  readonly violationDigest: 'full' | 'sha1-20';
}

const enc = new TextEncoder();
const latin = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** DATA_FMT_STRING: every space becomes `_`, a NUL is appended (ima_write_template_field_data). */
function stringField(s: string): Uint8Array {
  const b = latin(s);
  const out = new Uint8Array(b.length + 1);
  for (let i = 0; i < b.length; i++) out[i] = b[i] === 0x20 ? 0x5f : (b[i] as number);
  return out;
}

function digestWithAlgo(
  prefix: string,
  algo: string,
  digest: Uint8Array | null,
  zeroLen: number,
): Uint8Array {
  const p = enc.encode(`${prefix}${algo}:`);
  return concatBytes(p, new Uint8Array(1), digest ?? new Uint8Array(zeroLen));
}

function fieldData(id: FieldId, ev: EventData, endian: Endian): Uint8Array {
  const f = ev.file;
  switch (id) {
    case 'd': {
      if (ev.violation || !ev.digest) return new Uint8Array(20);
      if (ev.digest.algo === 'sha1' || ev.digest.algo === 'md5') {
        const out = new Uint8Array(20);
        out.set(ev.digest.digest);
        return out;
      }
      if (ev.name === 'boot_aggregate') return new Uint8Array(20); // non-SHA1 bank: zeros (formats.md §1.4)
      return ev.sha1Digest ? ev.sha1Digest() : new Uint8Array(20);
    }
    case 'n': {
      // IMA_EVENT_NAME_LEN_MAX: longer names are replaced by the last path component (real-kernel.md §7)
      let name = ev.name;
      if (Buffer.byteLength(name, 'latin1') > 255)
        name = f ? (name.split('/').pop() ?? name) : name.slice(0, 255);
      return stringField(name);
    }
    case 'd-ng': {
      const algo = ev.violation || !ev.digest ? ev.imaHash : ev.digest.algo;
      const zeros = ev.violationDigest === 'full' ? resolveHashAlgo(algo).size : 20;
      return digestWithAlgo('', algo, ev.violation ? null : (ev.digest?.digest ?? null), zeros);
    }
    case 'd-ngv2': {
      const algo = ev.violation || !ev.digest ? ev.imaHash : ev.digest.algo;
      return digestWithAlgo(
        ev.verity ? 'verity:' : 'ima:',
        algo,
        ev.violation ? null : (ev.digest?.digest ?? null),
        resolveHashAlgo(algo).size,
      );
    }
    case 'n-ng':
      return stringField(ev.name);
    case 'sig': {
      const x = ev.xattr;
      if (x && x.length > 0 && (x[0] === 0x03 || x[0] === 0x06)) return x;
      return fieldData('evmsig', ev, endian);
    }
    case 'evmsig': {
      const e = f?.xattrs.get('security.evm');
      return e && e[0] === 0x05 ? e : new Uint8Array(0);
    }
    case 'buf':
      return ev.buf ?? new Uint8Array(0);
    case 'd-modsig':
    case 'modsig':
      return new Uint8Array(0); // appended signatures are not modelled
    case 'iuid':
      return f ? u32Bytes(f.uid >>> 0, endian) : new Uint8Array(0);
    case 'igid':
      return f ? u32Bytes(f.gid >>> 0, endian) : new Uint8Array(0);
    case 'imode':
      return f ? u16Bytes(f.mode & 0xffff, endian) : new Uint8Array(0);
    case 'xattrnames':
    case 'xattrlengths':
    case 'xattrvalues': {
      if (!f) return new Uint8Array(0);
      const present = ev.evmNames.filter((n) => f.xattrs.has(n));
      if (present.length === 0) return new Uint8Array(0);
      if (id === 'xattrnames') return stringField(present.join('|'));
      if (id === 'xattrlengths')
        return concatBytes(...present.map((n) => u32Bytes((f.xattrs.get(n) as Uint8Array).length, endian)));
      return concatBytes(...present.map((n) => f.xattrs.get(n) as Uint8Array));
    }
    default:
      return new Uint8Array(0);
  }
}

/**
 * The hashed template data of an event: Σ(u32 len ‖ data), or for the legacy `ima` template
 * d(20) ‖ u32 strlen ‖ name (formats.md §1.4, the shape H5's list codec uses).
 */
export function buildTemplateData(
  tmpl: TemplateDescriptor,
  ev: EventData,
  endian: Endian = 'le',
): Uint8Array {
  if (tmpl.legacy) {
    const d = fieldData('d', ev, endian);
    const n = fieldData('n', ev, endian).subarray(0, -1); // the binary list drops the NUL
    return concatBytes(d, u32Bytes(n.length, endian), n);
  }
  return joinTemplateData(
    tmpl.fields.map((id) => fieldData(id, ev, endian)),
    endian,
  );
}

/** A PCR bank of the emulated TPM. */
export interface Bank {
  readonly name: string;
  readonly size: number;
  /** IMA could allocate the bank's hash at init; otherwise it gets the zero-padded SHA-1 digest */
  readonly allocated: boolean;
  /**
   * The kernel knows the bank's algorithm (a hash_algo id exists). Unmapped banks extend violations
   * with 20 bytes of 0xff zero-padded; mapped ones with the full size, even when the hash could not
   * be allocated (ima_init_digests(); real kernel, scenario h: sha384/sha512 without the module).
   */
  readonly mapped: boolean;
}

/** One list entry with every bank's digest. */
export interface EmuEntry {
  readonly pcr: number;
  /** the name the list shows (the format string for a custom template) */
  readonly templateName: string;
  readonly templateData: Uint8Array;
  readonly legacy: boolean;
  readonly violation: boolean;
  /** bank name → listed template digest */
  readonly digests: ReadonlyMap<string, Uint8Array>;
}

/** The measurement list, the TPM PCRs it extends, and the hash table that de-duplicates it. */
export class MeasurementStore {
  readonly entries: EmuEntry[] = [];
  /** bank → 24 PCR values */
  readonly pcrs = new Map<string, Uint8Array[]>();
  violations = 0;
  private readonly htable = new Set<string>();
  constructor(
    readonly banks: readonly Bank[],
    readonly imaHash: string,
    readonly dedup: boolean,
    readonly perBankDigests: boolean,
    initialPcrs: ReadonlyMap<string, readonly Uint8Array[]> = new Map(),
  ) {
    for (const b of banks) {
      const init = initialPcrs.get(b.name);
      this.pcrs.set(
        b.name,
        Array.from({ length: 24 }, (_, i) => Uint8Array.from(init?.[i] ?? new Uint8Array(b.size))),
      );
    }
  }

  /**
   * ima_store_template() + ima_add_template_entry(): compute digests (none for violations), drop a
   * duplicate (same ima_hash digest on the same PCR), append, extend every bank.
   * @returns 'added' or 'exists'
   */
  add(
    pcr: number,
    templateName: string,
    templateData: Uint8Array,
    legacy: boolean,
    violation: boolean,
  ): 'added' | 'exists' {
    const digests = new Map<string, Uint8Array>();
    let sha1: Uint8Array | undefined;
    const sha1Of = (): Uint8Array => (sha1 ??= templateDigest(templateData, 'sha1', legacy));
    for (const b of this.banks) {
      if (violation) digests.set(b.name, new Uint8Array(b.size));
      else if (b.allocated && this.perBankDigests)
        digests.set(b.name, templateDigest(templateData, b.name, legacy));
      else {
        const d = new Uint8Array(b.size);
        d.set(sha1Of().subarray(0, Math.min(20, b.size)));
        digests.set(b.name, d);
      }
    }
    // the sha1 slot always exists (ima_sha1_idx): the classic list shows it even without a SHA-1 bank
    if (!digests.has('sha1')) digests.set('sha1', violation ? new Uint8Array(20) : sha1Of());
    if (!violation && this.dedup) {
      const key = `${pcr}:${toHex(templateDigest(templateData, this.imaHash, legacy))}`;
      if (this.htable.has(key)) return 'exists';
      this.htable.add(key);
    }
    this.entries.push(Object.freeze({ pcr, templateName, templateData, legacy, violation, digests }));
    for (const b of this.banks) {
      const regs = this.pcrs.get(b.name) as Uint8Array[];
      let value: Uint8Array;
      if (violation) {
        // 0xff of the bank size; an unmapped bank gets 20 bytes of 0xff zero-padded
        value = new Uint8Array(b.size);
        value.fill(0xff, 0, b.mapped ? b.size : Math.min(20, b.size));
      } else value = digests.get(b.name) as Uint8Array;
      regs[pcr] = hash(b.name, regs[pcr] as Uint8Array, value);
    }
    if (violation) this.violations++;
    return 'added';
  }

  /** The list as UntrustedEntry values for one bank (the classic list is `sha1`). */
  listEntries(bank = 'sha1'): UntrustedEntry[] {
    let offset = 0;
    return this.entries.map((e, index) => {
      const digest = e.digests.get(bank);
      if (!digest) throw new RangeError(`no bank ${bank}`);
      const u: UntrustedEntry = {
        index,
        offset,
        pcr: e.pcr,
        digest,
        templateName: e.templateName,
        templateData: e.templateData,
      };
      offset += 4 + digest.length + 4 + e.templateName.length + (e.legacy ? 0 : 4) + e.templateData.length;
      return u;
    });
  }

  /** binary_runtime_measurements(_<bank>) bytes. */
  binary(bank = 'sha1', endian: Endian = 'le'): Uint8Array {
    const size = this.banks.find((b) => b.name === bank)?.size ?? 20;
    return encodeBinaryList(this.listEntries(bank), { endian, digestSize: size, bank });
  }

  /** ascii_runtime_measurements(_<bank>) text. */
  ascii(bank = 'sha1', endian: Endian = 'le'): string {
    return renderAsciiList(this.listEntries(bank), endian);
  }
}
