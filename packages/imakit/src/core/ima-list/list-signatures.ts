/**
 * Signatures carried inside measurement-list entries (formats.md §1.6): the `sig` field of
 * `ima-sig`/`ima-sigv2`/`ima-modsig` (a whole security.ima value, v2 type 0x03 or v3 type 0x06,
 * or a portable EVM 0x05 value as fallback) verified against the entry's own `d-ng`/`d-ngv2`
 * digest, and keys measured by `ima-buf` KEY_CHECK entries (name = keyring, buf = DER cert).
 *
 * A `pass` proves the key holder signed the digest the LIST records. It does not prove the file
 * on disk has that digest, nor that the key is trusted, nor (without replay) that the entry is
 * genuine. A portable EVM signature in an `ima-sig` `sig` field signs EVM metadata that template
 * does not carry, so it is reported `unsupported`; the `evm-sig` template does carry it (`evmsig`,
 * `xattrnames`/`xattrlengths`/`xattrvalues`, `iuid`/`igid`/`imode`), and the portable EVM input
 * (formats.md §4.3: the recorded xattr values in the recorded order ‖ h_misc with ino and
 * generation zero) is rebuilt with evm-input.ts and verified. Only portable (0x05) values can be
 * checked from a list: 0x03 EVM signatures also cover the inode number, generation and fs UUID.
 */
import { ImakitError } from '../../errors.ts';
import { loadPublicKey, type PublicKey } from '../keys/keys.ts';
import { hash, hashAlgoByName, type HashAlgo } from '../hash/hash-algo.ts';
import { evmInput } from '../evm/evm-input.ts';
import type { EvmConfig } from '../evm/evm-config.ts';
import { CodecError } from '../../errors.ts';
import { Keyring, verifySignatureValue, type SigVerdict } from '../labels/ima-signature.ts';
import { parseSignatureV2 } from '../labels/signature-header.ts';
import { verifyModsig } from '../labels/modsig.ts';
import type { Endian } from '../bytes/bytes.ts';
import type { UntrustedEntry } from './binary.ts';
import { decodeTemplateFields, type DecodedField } from './fields.ts';
import { lookupTemplate } from './templates.ts';

/** Per-entry signature outcome. */
export interface EntrySignature {
  readonly index: number;
  readonly name: string;
  readonly status: SigVerdict['status'] | 'unsupported' | 'no-signature';
  readonly detail: string;
  readonly verdict?: SigVerdict;
  /** `modsig` for the appended PKCS#7 of `ima-modsig` entries; absent for `sig`/`evmsig` verdicts */
  readonly source?: 'modsig';
}

function fieldText(fs: readonly DecodedField[], id: string): string | undefined {
  const f = fs.find((x) => x.id === id);
  return f && 'text' in f ? f.text : undefined;
}

/** Options of {@link verifyListSignatures}. */
export interface ListSignatureOptions {
  /** `h_misc` layout of the kernel that wrote an evm-sig list: 64-bit (default) or 32-bit */
  readonly evmLayout?: 64 | 32;
  /** verify `modsig` fields (appended PKCS#7, modsig.ts); default true */
  readonly modsig?: boolean;
}

/**
 * The portable EVM input an `evm-sig` entry describes: recorded xattr values (names split on '|',
 * lengths as u32 in the list's byte order) ‖ h_misc(uid, gid, mode; ino = generation = 0).
 * @throws CodecError E_LIST_TEMPLATE when the names, lengths and values do not agree
 */
export function evmSigInput(fs: readonly DecodedField[], endian: Endian, layout: 64 | 32 = 64): Uint8Array {
  const f = (id: string) => fs.find((x) => x.id === id);
  const names = fieldText(fs, 'xattrnames') ?? '';
  const lengths = f('xattrlengths')?.data ?? new Uint8Array(0);
  const values = f('xattrvalues')?.data ?? new Uint8Array(0);
  const list = names === '' ? [] : names.split('|');
  if (lengths.length !== 4 * list.length)
    throw new CodecError('E_LIST_TEMPLATE', `${list.length} xattr names but ${lengths.length} length bytes`, {
      offset: 0,
      field: 'xattrlengths',
    });
  const dv = new DataView(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const xattrs = new Map<string, Uint8Array>();
  let p = 0;
  list.forEach((name, i) => {
    const n = dv.getUint32(4 * i, endian === 'le');
    if (n > values.length - p)
      throw new CodecError('E_LIST_TEMPLATE', `xattr ${name}: length ${n} runs past the values`, {
        offset: p,
        field: 'xattrvalues',
      });
    xattrs.set(name, values.subarray(p, p + n));
    p += n;
  });
  if (p !== values.length)
    throw new CodecError('E_LIST_TEMPLATE', `${values.length - p} xattr value bytes left over`, {
      offset: p,
      field: 'xattrvalues',
    });
  const num = (id: string): number => {
    const x = f(id);
    const v = x && 'value' in x ? x.value : undefined;
    if (v === undefined)
      throw new CodecError('E_LIST_TEMPLATE', `${id} missing or of odd size`, { offset: 0, field: id });
    return v;
  };
  // the recorded names ARE the kernel's order (evm_config_xattrnames); portable input uses them all
  const config: EvmConfig = { preset: 'list', enabled: list, all: list, fsUuid: false, layout };
  return evmInput({
    kind: 'portable',
    xattrs,
    meta: { ino: 0n, generation: 0, uid: num('iuid'), gid: num('igid'), mode: num('imode') },
    fsUuid: null,
    config,
  });
}

function verifyEvmSigEntry(
  e: UntrustedEntry,
  fs: DecodedField[],
  keyring: Keyring,
  endian: Endian,
  layout: 64 | 32,
): EntrySignature | undefined {
  const name = fieldText(fs, 'n-ng') ?? '';
  const sig = fs.find((f) => f.id === 'evmsig')!.data;
  if (sig.length === 0) return undefined;
  if (sig[0] !== 0x05)
    return {
      index: e.index,
      name,
      status: 'unsupported',
      detail: `EVM value type 0x${sig[0]!.toString(16).padStart(2, '0')}: only portable (0x05) signatures can be checked from a list (0x03 covers inode number, generation and fs UUID)`,
    };
  let parsed;
  try {
    parsed = parseSignatureV2(sig);
  } catch (err) {
    return {
      index: e.index,
      name,
      status: 'fail',
      detail: `malformed EVM signature: ${(err as Error).message}`,
    };
  }
  let input: Uint8Array;
  try {
    input = evmSigInput(fs, endian, layout);
  } catch (err) {
    return {
      index: e.index,
      name,
      status: 'unsupported',
      detail: `EVM metadata fields do not rebuild: ${(err as Error).message}`,
    };
  }
  const verdict = verifySignatureValue(parsed, (algo) => hash(algo, input), keyring);
  return { index: e.index, name, status: verdict.status, detail: `EVM: ${verdict.detail}`, verdict };
}

/**
 * An `ima-modsig` entry's appended PKCS#7 (`modsig`) checked over its `d-modsig` digest, which the
 * kernel records with the PKCS#7's algorithm (ima_modsig.c ima_collect_modsig → pkcs7_get_digest:
 * the content digest, or the signed-attributes digest when the message has them). The verdict
 * says nothing about the `sig` field, which gets its own.
 */
function verifyModsigEntry(
  e: UntrustedEntry,
  fs: DecodedField[],
  keyring: Keyring,
): EntrySignature | undefined {
  const modsig = fs.find((f) => f.id === 'modsig')?.data;
  if (!modsig || modsig.length === 0) return undefined;
  const name = fieldText(fs, 'n-ng') ?? '';
  const d = fs.find((f) => f.id === 'd-modsig');
  if (!d || d.id !== 'd-modsig' || d.data.length === 0)
    return {
      index: e.index,
      name,
      source: 'modsig',
      status: 'unsupported',
      detail: 'modsig: the template records no d-modsig digest to check the appended signature over',
    };
  let algo: HashAlgo;
  try {
    algo = hashAlgoByName(d.algo);
  } catch {
    return {
      index: e.index,
      name,
      source: 'modsig',
      status: 'unsupported',
      detail: `modsig: d-modsig algorithm '${d.algo}' unknown`,
    };
  }
  const verdict = verifyModsig({ pkcs7: modsig, digest: d.digest, algo, digestKind: 'recorded' }, keyring);
  return {
    index: e.index,
    name,
    source: 'modsig',
    status: verdict.status,
    detail: `modsig: ${verdict.detail}`,
    verdict,
  };
}

/**
 * Verify the `sig` field (and the `evmsig` field of `evm-sig` entries, the `modsig` field of
 * `ima-modsig` entries: separate verdicts with `source` set) of every entry that has one against
 * `keyring`. Entries without a signature field or with an empty one are skipped.
 */
export function verifyListSignatures(
  entries: readonly UntrustedEntry[],
  keyring: Keyring,
  endian: Endian = 'le',
  opts: ListSignatureOptions = {},
): EntrySignature[] {
  const out: EntrySignature[] = [];
  for (const e of entries) {
    const tpl = lookupTemplate(e.templateName);
    if (!tpl) continue;
    const hasEvmsig = tpl.fields.includes('evmsig');
    const hasModsig = tpl.fields.includes('modsig') && opts.modsig !== false;
    const hasSig = tpl.fields.includes('sig');
    if (!hasEvmsig && !hasModsig && !hasSig) continue;
    // decode once; an entry whose fields do not parse gets one verdict saying so
    let fs: DecodedField[];
    try {
      fs = decodeTemplateFields(tpl, e.templateData, endian, e.offset);
    } catch (err) {
      out.push({
        index: e.index,
        name: '',
        status: 'unsupported',
        detail: `fields do not parse: ${(err as Error).message}`,
      });
      continue;
    }
    if (hasEvmsig) {
      const r = verifyEvmSigEntry(e, fs, keyring, endian, opts.evmLayout ?? 64);
      if (r) out.push(r);
    }
    if (hasModsig) {
      const r = verifyModsigEntry(e, fs, keyring);
      if (r) out.push(r);
    }
    if (!hasSig) continue;
    const name = fieldText(fs, 'n-ng') ?? '';
    const sig = fs.find((f) => f.id === 'sig')!;
    if (sig.data.length === 0) continue;
    const d = fs[0]!;
    if (d.id !== 'd-ng' && d.id !== 'd-ngv2') continue;
    const type = sig.data[0];
    if (type !== 0x03 && type !== 0x06) {
      out.push({
        index: e.index,
        name,
        status: 'unsupported',
        detail: `signature type 0x${type?.toString(16).padStart(2, '0')} (EVM portable signatures sign metadata the list does not carry)`,
      });
      continue;
    }
    let parsed;
    try {
      parsed = parseSignatureV2(sig.data);
    } catch (err) {
      out.push({
        index: e.index,
        name,
        status: 'fail',
        detail: `malformed signature: ${(err as Error).message}`,
      });
      continue;
    }
    let listedAlgo: HashAlgo | undefined;
    try {
      listedAlgo = hashAlgoByName(d.algo);
    } catch {
      listedAlgo = undefined;
    }
    const digest = d.digest;
    const verdict = verifySignatureValue(
      parsed,
      (algo) => {
        // the list records one digest: a signature over another algorithm cannot be checked from the list
        if (!listedAlgo || algo.id !== listedAlgo.id)
          throw new ImakitError(
            'E_HASH_UNSUPPORTED',
            `signature uses ${algo.name}, the list records only a ${d.algo} digest`,
          );
        return digest;
      },
      keyring,
    );
    out.push({ index: e.index, name, status: verdict.status, detail: verdict.detail, verdict });
  }
  return out;
}

/** A key measured into the list (`ima-buf`, KEY_CHECK): keyring name and the parsed key. */
export interface MeasuredKey {
  readonly index: number;
  readonly keyring: string;
  readonly key: PublicKey;
}

/**
 * Keys carried by `ima-buf` entries whose name is a keyring (`.ima`, `.evm`, `.builtin_trusted_keys`,
 * ...) and whose buffer parses as a certificate. Add them to a Keyring only if you trust the list.
 */
export function measuredKeys(entries: readonly UntrustedEntry[], endian: Endian = 'le'): MeasuredKey[] {
  const out: MeasuredKey[] = [];
  for (const e of entries) {
    const tpl = lookupTemplate(e.templateName);
    if (!tpl || !tpl.fields.includes('buf')) continue;
    let fs: DecodedField[];
    try {
      fs = decodeTemplateFields(tpl, e.templateData, endian);
    } catch {
      continue;
    }
    const name = fieldText(fs, 'n-ng') ?? '';
    const buf = fs.find((f) => f.id === 'buf')!.data;
    if (!name.startsWith('.') && !name.startsWith('_') && !name.includes('keyring')) continue;
    if (buf.length < 16 || buf[0] !== 0x30) continue;
    try {
      out.push({ index: e.index, keyring: name, key: loadPublicKey(buf) });
    } catch {
      // not a certificate this runtime can parse: skip
    }
  }
  return out;
}

/** A keyring of the given keys plus measured ones. */
export function keyringWith(base: readonly PublicKey[], measured: readonly MeasuredKey[]): Keyring {
  return new Keyring([...base, ...measured.map((m) => m.key)]);
}
