/**
 * Reference sets on disk: load any supported form (detected from the bytes), write one.
 *
 * Detected on load: imakit's compact binary form (magic `IMAREFS\0`), imakit JSON (`imakitRefs`),
 * a Keylime runtime policy (JSON v1, or a DSSE envelope around one: the payload is read; its
 * signature is checked only when keys are given, see `verifyDsseEnvelope`), a Keylime legacy flat
 * allowlist (`<hex> <path>` lines).
 */
import { readFileSync } from 'node:fs';
import { fromSystemError, withPath } from '../../errors.ts';
import { decodeRefsBinary, encodeRefsBinary, isRefsBinary } from '../../core/refs/refs-binary.ts';
import { decodeRefsJson, encodeRefsJson } from '../../core/refs/refs-json.ts';
import { readFlatAllowlist, readKeylimePolicy, writeKeylimePolicy } from '../../core/refs/keylime-policy.ts';
import type { ReferenceSet } from '../../core/refs/reference-set.ts';
import { writeAtomic } from '../attest/attest-input.ts';

/** Output forms: `imakit` the compact binary file, `json` imakit JSON, `keylime` a runtime policy. */
export type RefsFormat = 'imakit' | 'json' | 'keylime';
export const REFS_FORMATS: readonly RefsFormat[] = ['imakit', 'json', 'keylime'];

export type RefsFileKind = 'imakit' | 'json' | 'keylime' | 'keylime-dsse' | 'flat-allowlist';

export interface LoadedRefs {
  readonly path: string;
  readonly kind: RefsFileKind;
  readonly set: ReferenceSet;
}

/** What a loaded reference file is, from its first bytes. */
export function detectRefsKind(bytes: Uint8Array): RefsFileKind {
  if (isRefsBinary(bytes)) return 'imakit';
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] !== 0x7b) return 'flat-allowlist';
  const head = Buffer.from(bytes.subarray(i, i + 4096)).toString('utf8');
  if (/"imakitRefs"\s*:/.test(head)) return 'json';
  if (/"payloadType"\s*:/.test(head) || /^\{\s*"payload"\s*:/.test(head)) return 'keylime-dsse';
  return 'keylime';
}

/**
 * Load a reference set file of any supported form.
 * @throws ImakitError E_IO_READ; E_REFS_FORMAT / E_REFS_PATTERN / E_CODEC_* naming the file
 */
export function loadReferenceSet(path: string): LoadedRefs {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  const kind = detectRefsKind(bytes);
  const set = withPath(path, () => {
    switch (kind) {
      case 'imakit':
        return decodeRefsBinary(bytes);
      case 'json':
        return decodeRefsJson(Buffer.from(bytes).toString('utf8'));
      case 'keylime':
      case 'keylime-dsse':
        return readKeylimePolicy(Buffer.from(bytes).toString('utf8'), {
          provenance: { kind: 'keylime', source: path },
        });
      case 'flat-allowlist':
        return readFlatAllowlist(Buffer.from(bytes).toString('utf8'), {
          provenance: { kind: 'keylime', source: path },
        });
    }
  });
  return { path, kind, set };
}

/** Serialize a set in `format`; `dropped` says what the format could not carry. */
export function encodeReferenceSet(
  set: ReferenceSet,
  format: RefsFormat,
): { data: Uint8Array | string; dropped: readonly string[] } {
  switch (format) {
    case 'imakit':
      return { data: encodeRefsBinary(set), dropped: [] };
    case 'json':
      return { data: encodeRefsJson(set), dropped: [] };
    case 'keylime': {
      const r = writeKeylimePolicy(set);
      return { data: r.text, dropped: r.dropped };
    }
  }
}

/** Write a set atomically (nothing half-written on failure). @throws ImakitError E_IO_WRITE */
export function writeReferenceSet(
  path: string,
  set: ReferenceSet,
  format: RefsFormat,
): { bytes: number; dropped: readonly string[] } {
  const { data, dropped } = encodeReferenceSet(set, format);
  writeAtomic(path, data);
  return { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.length, dropped };
}
