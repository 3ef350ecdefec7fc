/**
 * Signatures carried inside measurement-list entries (formats.md §1.6): the `sig` field of
 * `ima-sig`/`ima-sigv2`/`ima-modsig` (a whole security.ima value, v2 type 0x03 or v3 type 0x06,
 * or a portable EVM 0x05 value as fallback) verified against the entry's own `d-ng`/`d-ngv2`
 * digest, and keys measured by `ima-buf` KEY_CHECK entries (name = keyring, buf = DER cert).
 *
 * A `pass` proves the key holder signed the digest the LIST records. It does not prove the file
 * on disk has that digest, nor that the key is trusted, nor (without replay) that the entry is
 * genuine. EVM portable signatures in `sig`/`evmsig` sign EVM metadata that the list does not
 * carry completely, so they are reported `unsupported`.
 */
import { ImakitError } from '../../errors.ts';
import { loadPublicKey, type PublicKey } from '../keys.ts';
import { hashAlgoByName, type HashAlgo } from '../hash-algo.ts';
import { Keyring, verifySignatureValue, type SigVerdict } from '../ima-signature.ts';
import { parseSignatureV2 } from '../signature-header.ts';
import type { Endian } from '../bytes.ts';
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
}

function fieldText(fs: readonly DecodedField[], id: string): string | undefined {
  const f = fs.find((x) => x.id === id);
  return f && 'text' in f ? f.text : undefined;
}

/**
 * Verify the `sig` field of every entry that has one against `keyring`.
 * Entries without a signature field or with an empty one are skipped.
 */
export function verifyListSignatures(
  entries: readonly UntrustedEntry[],
  keyring: Keyring,
  endian: Endian = 'le',
): EntrySignature[] {
  const out: EntrySignature[] = [];
  for (const e of entries) {
    const tpl = lookupTemplate(e.templateName);
    if (!tpl || !tpl.fields.includes('sig')) continue;
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
