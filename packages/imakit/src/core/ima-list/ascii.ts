/**
 * The ascii measurement list (`ascii_runtime_measurements[_<alg>]`, formats.md §1.3; ima_fs.c
 * `ima_ascii_measurements_show`): `%2d <digest hex> <template name>` then ` <field>` per field,
 * empty fields still preceded by their space (pitfall 7).
 *
 * Parsing rebuilds the binary template data from the printed fields, so an ascii list replays
 * like a binary one (this is what Keylime does). An entry of an unknown template cannot be
 * rebuilt: its data is undefined and only its listed digest is known.
 */
import { CodecError } from '../../errors.ts';
import { fromHex, latin1, toHex, type Endian } from '../bytes/bytes.ts';
import type { UntrustedEntry } from './binary.ts';
import {
  decodeTemplateFields,
  joinTemplateData,
  parseFieldText,
  renderField,
  LEGACY_DIGEST_SIZE,
} from './fields.ts';
import { lookupTemplate } from './templates.ts';

/** One parsed ascii line (untrusted). */
export interface AsciiEntry {
  readonly index: number;
  /** 1-based line number */
  readonly line: number;
  readonly pcr: number;
  readonly digest: Uint8Array;
  readonly templateName: string;
  /** field texts as printed */
  readonly fields: readonly string[];
  /** rebuilt template data, undefined for an unknown template */
  readonly templateData: Uint8Array | undefined;
}

/**
 * Parse one ascii line.
 * @throws CodecError E_CODEC_BAD_TEXT / E_CODEC_BAD_HEX naming the line and entry
 */
export function parseAsciiLine(text: string, index: number, line: number, endian: Endian = 'le'): AsciiEntry {
  const m = /^ ?(\d{1,2}) ([0-9a-f]+) (\S+)(?: (.*))?$/.exec(text);
  if (!m)
    throw new CodecError(
      'E_CODEC_BAD_TEXT',
      `expected '<pcr> <digest> <template> <fields>', got '${text.slice(0, 60)}'`,
      {
        offset: 0,
        line,
        entry: index,
      },
    );
  const pcr = Number(m[1]);
  if (pcr > 23)
    throw new CodecError('E_CODEC_BAD_TEXT', `pcr ${pcr} out of range`, { offset: 0, line, entry: index });
  let digest: Uint8Array;
  try {
    digest = fromHex(m[2]!, 'template digest');
  } catch (e) {
    throw new CodecError('E_CODEC_BAD_HEX', (e as Error).message, {
      offset: m[1]!.length + 1,
      line,
      entry: index,
    });
  }
  const templateName = m[3]!;
  const rest = m[4];
  const tpl = lookupTemplate(templateName);
  let fields: string[] = rest === undefined ? [] : rest.split(' ');
  let templateData: Uint8Array | undefined;
  if (tpl) {
    // a legacy name could in principle contain no spaces only (the kernel rewrote them to '_')
    if (fields.length !== tpl.fields.length)
      throw new CodecError(
        'E_CODEC_BAD_TEXT',
        `template ${templateName} has ${tpl.fields.length} fields, the line has ${fields.length}`,
        { offset: 0, line, entry: index, field: 'fields' },
      );
    try {
      if (tpl.legacy) {
        const d = parseFieldText('d', fields[0]!, endian);
        if (d.length !== LEGACY_DIGEST_SIZE)
          throw new CodecError('E_CODEC_BAD_TEXT', `d must be 20 bytes`, { offset: 0, field: 'd' });
        const n = parseFieldText('n', fields[1]!, endian, true);
        templateData = new Uint8Array(LEGACY_DIGEST_SIZE + 4 + n.length);
        templateData.set(d, 0);
        new DataView(templateData.buffer).setUint32(LEGACY_DIGEST_SIZE, n.length, endian === 'le');
        templateData.set(n, LEGACY_DIGEST_SIZE + 4);
      } else
        templateData = joinTemplateData(
          tpl.fields.map((f, i) => parseFieldText(f, fields[i]!, endian)),
          endian,
        );
    } catch (e) {
      if (e instanceof CodecError)
        throw new CodecError(e.code, e.detail, { offset: 0, line, entry: index, field: e.context.field });
      throw e;
    }
  } else fields = rest === undefined ? [] : [rest];
  return Object.freeze({
    index,
    line,
    pcr,
    digest,
    templateName,
    fields: Object.freeze(fields),
    templateData,
  });
}

/**
 * Parse a whole ascii list (blank trailing line allowed).
 * @throws CodecError naming the line and entry of the first malformed line
 */
export function parseAsciiList(text: string, endian: Endian = 'le'): AsciiEntry[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => parseAsciiLine(l, i, i + 1, endian));
}

/** Render one binary entry as its ascii line (without the newline). */
export function renderAsciiEntry(e: UntrustedEntry, endian: Endian = 'le'): string {
  const head = `${String(e.pcr).padStart(2, ' ')} ${toHex(e.digest)} ${e.templateName}`;
  const tpl = lookupTemplate(e.templateName);
  if (!tpl) return `${head} ${toHex(e.templateData)}`;
  if (tpl.legacy) {
    const d = e.templateData.subarray(0, LEGACY_DIGEST_SIZE);
    return `${head} ${toHex(d)} ${latin1(e.templateData.subarray(LEGACY_DIGEST_SIZE + 4))}`;
  }
  const fields = decodeTemplateFields(tpl, e.templateData, endian, e.offset);
  return head + fields.map((f, i) => ' ' + renderField(tpl.fields[i]!, f.data, endian)).join('');
}

/** Render a list as ascii text. */
export function renderAsciiList(entries: readonly UntrustedEntry[], endian: Endian = 'le'): string {
  let s = '';
  for (const e of entries) s += renderAsciiEntry(e, endian) + '\n';
  return s;
}

/**
 * Convert ascii entries to binary entries (templates known); offsets are not meaningful.
 * @throws CodecError E_LIST_TEMPLATE for an entry of an unknown template (its data cannot be rebuilt)
 */
export function asciiToEntries(entries: readonly AsciiEntry[]): UntrustedEntry[] {
  return entries.map((a) => {
    if (!a.templateData)
      throw new CodecError(
        'E_LIST_TEMPLATE',
        `unknown template '${a.templateName}': data cannot be rebuilt`,
        {
          offset: 0,
          line: a.line,
          entry: a.index,
        },
      );
    return Object.freeze({
      index: a.index,
      offset: 0,
      pcr: a.pcr,
      digest: a.digest,
      templateName: a.templateName,
      templateData: a.templateData,
    });
  });
}

/** A difference between the ascii and the binary form of the same entry. */
export interface FormDifference {
  readonly entry: number;
  readonly field: string;
  readonly ascii: string;
  readonly binary: string;
}

/** Cross-check ascii and binary lists entry by entry (issue 4 §1); returns the differences. */
export function crossCheckAsciiBinary(
  ascii: readonly AsciiEntry[],
  binary: readonly UntrustedEntry[],
  endian: Endian = 'le',
): FormDifference[] {
  const out: FormDifference[] = [];
  const n = Math.max(ascii.length, binary.length);
  for (let i = 0; i < n; i++) {
    const a = ascii[i];
    const b = binary[i];
    if (!a || !b) {
      out.push({
        entry: i,
        field: 'entry',
        ascii: a ? 'present' : 'missing',
        binary: b ? 'present' : 'missing',
      });
      continue;
    }
    if (a.pcr !== b.pcr) out.push({ entry: i, field: 'pcr', ascii: String(a.pcr), binary: String(b.pcr) });
    if (toHex(a.digest) !== toHex(b.digest))
      out.push({ entry: i, field: 'template digest', ascii: toHex(a.digest), binary: toHex(b.digest) });
    if (a.templateName !== b.templateName)
      out.push({ entry: i, field: 'template name', ascii: a.templateName, binary: b.templateName });
    else if (a.templateData && toHex(a.templateData) !== toHex(b.templateData)) {
      const tpl = lookupTemplate(a.templateName)!;
      let named = false;
      try {
        const fb = tpl.legacy ? null : decodeTemplateFields(tpl, b.templateData, endian);
        if (fb)
          tpl.fields.forEach((f, k) => {
            const bt = renderField(f, fb[k]!.data, endian);
            if (bt !== a.fields[k]) {
              out.push({ entry: i, field: f, ascii: a.fields[k]!, binary: bt });
              named = true;
            }
          });
      } catch {
        // binary data does not fit its template: report the data as a whole
      }
      if (!named)
        out.push({
          entry: i,
          field: 'template data',
          ascii: toHex(a.templateData),
          binary: toHex(b.templateData),
        });
    }
  }
  return out;
}
