/**
 * Template field codecs: split hashed template data into fields, decode each field's data bytes,
 * render it the way `ima_ascii_measurements_show` does, and parse that rendering back
 * (formats.md §1.3, §1.6; security/integrity/ima/ima_template_lib.c).
 *
 * Everything decoded here is UNTRUSTED until replay (replay.ts) has tied the template data to a
 * PCR value; the field values are only as good as that replay.
 */
import { CodecError } from '../../errors.ts';
import { fromHex, latin1, toHex, type Endian } from '../bytes/bytes.ts';
import { FIELD_FORMAT, type FieldId, type TemplateDescriptor } from './templates.ts';

/** A decoded field: its id, the exact data bytes, and the typed interpretation. */
export type DecodedField =
  | { readonly id: 'd'; readonly data: Uint8Array; readonly digest: Uint8Array }
  | { readonly id: 'n'; readonly data: Uint8Array; readonly name: string }
  | {
      readonly id: 'd-ng' | 'd-modsig';
      readonly data: Uint8Array;
      /** the text before the NUL without the trailing ':' ('' for an empty d-modsig) */
      readonly algo: string;
      readonly digest: Uint8Array;
    }
  | {
      readonly id: 'd-ngv2';
      readonly data: Uint8Array;
      /** `ima` or `verity` */
      readonly digestType: string;
      readonly algo: string;
      readonly digest: Uint8Array;
    }
  | { readonly id: 'n-ng' | 'xattrnames'; readonly data: Uint8Array; readonly text: string }
  | {
      readonly id: 'sig' | 'buf' | 'modsig' | 'evmsig' | 'xattrlengths' | 'xattrvalues';
      readonly data: Uint8Array;
    }
  | { readonly id: 'iuid' | 'igid' | 'imode'; readonly data: Uint8Array; readonly value: number | undefined };

/** Legacy `d` field size (formats.md §1.4). */
export const LEGACY_DIGEST_SIZE = 20;
/** The kernel truncates legacy `n` names to this many characters (IMA_EVENT_NAME_LEN_MAX). */
export const LEGACY_NAME_MAX = 255;

/**
 * Split non-legacy template data (Σ u32 len ‖ data) into field views, one per descriptor field.
 * @param base absolute offset of `data` in the list, for error offsets
 * @throws CodecError E_LIST_TEMPLATE when the lengths do not tile the data exactly
 */
export function splitTemplateData(data: Uint8Array, endian: Endian, count: number, base = 0): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (data.length - p < 4)
      throw new CodecError('E_LIST_TEMPLATE', `field ${i}: missing length word`, {
        offset: base + p,
        field: `field[${i}]`,
      });
    const len = dv.getUint32(p, endian === 'le');
    p += 4;
    if (len > data.length - p)
      throw new CodecError(
        'E_LIST_TEMPLATE',
        `field ${i}: length ${len} exceeds the ${data.length - p} bytes left`,
        {
          offset: base + p - 4,
          field: `field[${i}]`,
        },
      );
    out.push(data.subarray(p, p + len));
    p += len;
  }
  if (p !== data.length)
    throw new CodecError('E_LIST_TEMPLATE', `${data.length - p} bytes after the last field`, {
      offset: base + p,
      field: 'template data',
    });
  return out;
}

/** Join field data into template data (inverse of splitTemplateData). */
export function joinTemplateData(fields: readonly Uint8Array[], endian: Endian): Uint8Array {
  let n = 0;
  for (const f of fields) n += 4 + f.length;
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  let p = 0;
  for (const f of fields) {
    dv.setUint32(p, f.length, endian === 'le');
    out.set(f, p + 4);
    p += 4 + f.length;
  }
  return out;
}

function nulIndex(b: Uint8Array): number {
  return b.indexOf(0);
}

/**
 * Decode one field's data bytes.
 * @throws CodecError E_LIST_TEMPLATE for a digest field without its NUL separator
 */
export function decodeField(id: FieldId, data: Uint8Array, endian: Endian, base = 0): DecodedField {
  switch (id) {
    case 'd':
      return { id, data, digest: data };
    case 'n':
      return { id, data, name: latin1(nulIndex(data) < 0 ? data : data.subarray(0, nulIndex(data))) };
    case 'd-ng':
    case 'd-modsig': {
      if (data.length === 0) return { id, data, algo: '', digest: data };
      const z = nulIndex(data);
      if (z < 1 || data[z - 1] !== 0x3a)
        throw new CodecError('E_LIST_TEMPLATE', `${id}: no '<algo>:' NUL prefix`, {
          offset: base,
          field: id,
        });
      return { id, data, algo: latin1(data.subarray(0, z - 1)), digest: data.subarray(z + 1) };
    }
    case 'd-ngv2': {
      const z = nulIndex(data);
      if (z < 1 || data[z - 1] !== 0x3a)
        throw new CodecError('E_LIST_TEMPLATE', `${id}: no '<type>:<algo>:' NUL prefix`, {
          offset: base,
          field: id,
        });
      const prefix = latin1(data.subarray(0, z - 1));
      const c = prefix.indexOf(':');
      if (c < 0)
        throw new CodecError('E_LIST_TEMPLATE', `${id}: no digest type`, { offset: base, field: id });
      return {
        id,
        data,
        digestType: prefix.slice(0, c),
        algo: prefix.slice(c + 1),
        digest: data.subarray(z + 1),
      };
    }
    case 'n-ng':
    case 'xattrnames': {
      const z = nulIndex(data);
      return { id, data, text: latin1(z < 0 ? data : data.subarray(0, z)) };
    }
    case 'iuid':
    case 'igid':
    case 'imode':
      return { id, data, value: readUint(data, endian) };
    default:
      return { id, data };
  }
}

function readUint(data: Uint8Array, endian: Endian): number | undefined {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = endian === 'le';
  if (data.length === 1) return data[0];
  if (data.length === 2) return dv.getUint16(0, le);
  if (data.length === 4) return dv.getUint32(0, le);
  if (data.length === 8) return Number(dv.getBigUint64(0, le));
  return undefined;
}

/**
 * Render one field's data as the kernel's ascii list does (formats.md §1.3): digests as
 * `<prefix>hex`, strings up to their NUL, the rest hex, uints in decimal.
 */
export function renderField(id: FieldId, data: Uint8Array, endian: Endian): string {
  switch (FIELD_FORMAT[id]) {
    case 'digest':
    case 'hex':
      return toHex(data);
    case 'digest-algo':
    case 'digest-type-algo': {
      const z = nulIndex(data);
      // ima_show_template_digest_ng: "%s" of the prefix (up to the NUL), then hex of the digest
      if (z < 0) return toHex(data);
      return latin1(data.subarray(0, z)) + toHex(data.subarray(z + 1));
    }
    case 'string': {
      const z = nulIndex(data);
      return latin1(z < 0 ? data : data.subarray(0, z));
    }
    case 'uint': {
      const v = readUint(data, endian);
      return v === undefined ? toHex(data) : String(v);
    }
  }
}

const UINT_WIDTH: Readonly<Partial<Record<FieldId, number>>> = { iuid: 4, igid: 4, imode: 2 };

/**
 * Parse an ascii rendering back into field data bytes (inverse of renderField for kernel-produced
 * text). The legacy `n` field is stored without NUL (its binary form, formats.md §1.4).
 * @throws CodecError E_CODEC_BAD_TEXT / E_CODEC_BAD_HEX
 */
export function parseFieldText(id: FieldId, text: string, endian: Endian, legacy = false): Uint8Array {
  const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
  switch (FIELD_FORMAT[id]) {
    case 'digest':
    case 'hex':
      return fromHex(text, id);
    case 'digest-algo':
    case 'digest-type-algo': {
      if (text === '') return new Uint8Array(0);
      const c = text.lastIndexOf(':');
      if (c < 0)
        throw new CodecError('E_CODEC_BAD_TEXT', `${id}: no '<algo>:' prefix`, { offset: 0, field: id });
      const prefix = bytes(text.slice(0, c + 1));
      const digest = fromHex(text.slice(c + 1), id);
      const out = new Uint8Array(prefix.length + 1 + digest.length);
      out.set(prefix, 0);
      out.set(digest, prefix.length + 1);
      return out;
    }
    case 'string': {
      if (legacy) return bytes(text);
      if (text === '' && id === 'xattrnames') return new Uint8Array(0);
      const b = bytes(text);
      const out = new Uint8Array(b.length + 1);
      out.set(b, 0);
      return out;
    }
    case 'uint': {
      if (text === '') return new Uint8Array(0);
      if (!/^[0-9]+$/.test(text))
        throw new CodecError('E_CODEC_BAD_TEXT', `${id}: '${text}' is not a decimal number`, {
          offset: 0,
          field: id,
        });
      const w = UINT_WIDTH[id] ?? 4;
      const v = Number(text);
      if (v >= 2 ** (8 * w))
        throw new CodecError('E_CODEC_BAD_TEXT', `${id}: ${text} does not fit in ${w} bytes`, {
          offset: 0,
          field: id,
        });
      const out = new Uint8Array(w);
      const dv = new DataView(out.buffer);
      if (w === 2) dv.setUint16(0, v, endian === 'le');
      else dv.setUint32(0, v, endian === 'le');
      return out;
    }
  }
}

/**
 * Decode all fields of an entry's template data according to `tpl`.
 * @throws CodecError E_LIST_TEMPLATE when the data does not fit the template
 */
export function decodeTemplateFields(
  tpl: TemplateDescriptor,
  templateData: Uint8Array,
  endian: Endian,
  base = 0,
): DecodedField[] {
  if (tpl.legacy) {
    const d = templateData.subarray(0, LEGACY_DIGEST_SIZE);
    const name = templateData.subarray(LEGACY_DIGEST_SIZE + 4);
    return [decodeField('d', d, endian, base), decodeField('n', name, endian, base + LEGACY_DIGEST_SIZE)];
  }
  const parts = splitTemplateData(templateData, endian, tpl.fields.length, base);
  return parts.map((p, i) => decodeField(tpl.fields[i]!, p, endian, base));
}
