/**
 * Reference sets on disk: load any supported form (detected from the bytes), write one.
 *
 * Detected on load: imakit's compact binary form (magic `IMAREFS\0`), imakit JSON (`imakitRefs`),
 * a Keylime runtime policy (JSON v1, or a DSSE envelope around one: the payload is read; its
 * signature is checked only when keys are given, see `verifyDsseEnvelope`), a Keylime legacy flat
 * allowlist (`<hex> <path>` lines).
 */
import { withPath } from '../../errors.ts';
import { decodeRefsBinary, encodeRefsBinary, isRefsBinary } from '../../core/refs/refs-binary.ts';
import { decodeRefsJson, encodeRefsJson } from '../../core/refs/refs-json.ts';
import {
  keylimePolicyFromJson,
  readFlatAllowlist,
  readKeylimePolicy,
  writeKeylimePolicy,
} from '../../core/refs/keylime-policy.ts';
import {
  encodeDsseEnvelope,
  KEYLIME_PAYLOAD_TYPE,
  parseDsseEnvelope,
  signDsse,
  type DsseEnvelope,
  type DsseVerdict,
} from '../../core/refs/dsse.ts';
import type { RefsSignatureVerdict } from '../../core/refs/refs-signature.ts';
import { checkRefsTrust } from '../../core/refs/refs-trust.ts';
import type { PrivateKey, PublicKey } from '../../core/keys/keys.ts';
import type { ReferenceSet } from '../../core/refs/reference-set.ts';
import { ImakitError } from '../../errors.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import { writeAtomic } from '../attest/attest-input.ts';

/** Output forms: `imakit` the compact binary file, `json` imakit JSON, `keylime` a runtime policy. */
export type RefsFormat = 'imakit' | 'json' | 'keylime';
export const REFS_FORMATS: readonly RefsFormat[] = ['imakit', 'json', 'keylime'];

import { detectRefsKind, type RefsFileKind } from '../../core/refs/refs-kind.ts';
export { detectRefsKind, type RefsFileKind };

export interface LoadedRefs {
  readonly path: string;
  readonly kind: RefsFileKind;
  readonly set: ReferenceSet;
  /** how the set's signature was checked (only when keys were given) */
  readonly signature?: RefsTrust;
}

/** The signature check behind a loaded set: a detached signature file or the DSSE envelope's own. */
export type RefsTrust =
  | { readonly form: 'detached'; readonly sigFile: string; readonly verdict: RefsSignatureVerdict }
  | { readonly form: 'dsse'; readonly verdict: DsseVerdict };

/** Options of {@link loadReferenceSet}. */
export interface LoadRefsOptions {
  /** detached signature file over the set file's bytes (`refs sign`) */
  readonly sig?: string;
  /**
   * trusted keys: when given, the set must be signed (a detached `sig`, or a DSSE envelope) and the
   * signature must verify under one of them, else E_REFS_UNSIGNED / E_REFS_SIGNATURE
   */
  readonly keys?: readonly PublicKey[];
  /**
   * the compact form: check every path and record up front (default true). `false` checks only
   * integers up front (milliseconds for a million paths); enough for lookups (`log verify`), not
   * for iterating the paths (convert, merge, diff).
   */
  readonly fullCheck?: boolean;
}

/**
 * The bytes of a reference set file, bounded (issue 10 item 3): a regular file over the cap is
 * refused from its size; a device or FIFO is refused from its first bytes when they are no set of
 * any form (a NUL byte in text), else read only up to the cap.
 * @throws ImakitError E_IO_READ; E_IO_TOO_LARGE naming the file, kind and cap; E_REFS_FORMAT
 */
export function readReferenceSetBytes(path: string): Uint8Array {
  return readBoundedFile(path, 'reference-set', {
    probe: {
      bytes: 64,
      check: (head) => {
        if (isRefsBinary(head)) return;
        const nul = head.indexOf(0);
        if (nul >= 0)
          throw new ImakitError(
            'E_REFS_FORMAT',
            "not a reference set: a 0x00 byte among its first (neither the compact form's magic nor text)",
            { path, offset: nul },
          );
      },
    },
  });
}

/**
 * Load a reference set file of any supported form.
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE; E_REFS_FORMAT / E_REFS_PATTERN / E_CODEC_* naming the file
 */
export function loadReferenceSet(path: string, opts: LoadRefsOptions = {}): LoadedRefs {
  const bytes = readReferenceSetBytes(path);
  if (opts.sig !== undefined && opts.keys === undefined)
    throw new ImakitError('E_USAGE', 'a reference-set signature needs a key to check it with', {
      path: opts.sig,
    });
  const kind = detectRefsKind(bytes);
  let envelope: DsseEnvelope | undefined;
  let signature: RefsTrust | undefined;
  if (opts.keys !== undefined) {
    const detached =
      opts.sig !== undefined ? { bytes: readBoundedFile(opts.sig, 'signature'), name: opts.sig } : undefined;
    const t = withPath(path, () => checkRefsTrust(bytes, kind, opts.keys!, detached));
    if (t.form === 'dsse') envelope = t.envelope;
    signature =
      t.form === 'detached'
        ? { form: 'detached', sigFile: opts.sig!, verdict: t.verdict }
        : { form: 'dsse', verdict: t.verdict };
  }
  const full = opts.fullCheck !== false;
  const set = withPath(path, () => decodeReferenceSet(bytes, kind, path, envelope, full));
  return signature ? { path, kind, set, signature } : { path, kind, set };
}

function decodeReferenceSet(
  bytes: Uint8Array,
  kind: RefsFileKind,
  path: string,
  envelope: DsseEnvelope | undefined,
  full: boolean,
): ReferenceSet {
  const provenance = { kind: 'keylime', source: path } as const;
  switch (kind) {
    case 'imakit':
      return decodeRefsBinary(bytes, { full });
    case 'json':
      return decodeRefsJson(Buffer.from(bytes).toString('utf8'));
    case 'keylime-dsse': {
      const env = envelope ?? parseDsseEnvelope(Buffer.from(bytes).toString('utf8'));
      if (env.payloadType !== KEYLIME_PAYLOAD_TYPE)
        throw new ImakitError(
          'E_REFS_FORMAT',
          `$.payloadType: '${env.payloadType}' (expected ${KEYLIME_PAYLOAD_TYPE})`,
          { field: '$.payloadType' },
        );
      let doc: unknown;
      try {
        doc = JSON.parse(Buffer.from(env.payload).toString('utf8'));
      } catch (e) {
        throw new ImakitError('E_REFS_FORMAT', `$.payload: not JSON: ${(e as Error).message}`, {
          field: '$.payload',
        });
      }
      return keylimePolicyFromJson(doc, { provenance });
    }
    case 'keylime':
      return readKeylimePolicy(Buffer.from(bytes).toString('utf8'), { provenance });
    case 'flat-allowlist':
      return readFlatAllowlist(Buffer.from(bytes).toString('utf8'), { provenance });
  }
}

/** Serialize a set in `format`; `dropped` says what the format could not carry. */
export function encodeReferenceSet(
  set: ReferenceSet,
  format: RefsFormat,
  opts: { dsseKey?: PrivateKey } = {},
): { data: Uint8Array | string; dropped: readonly string[] } {
  if (opts.dsseKey !== undefined && format !== 'keylime')
    throw new ImakitError('E_USAGE', 'a DSSE envelope wraps a Keylime policy: use --format keylime');
  switch (format) {
    case 'imakit':
      return { data: encodeRefsBinary(set), dropped: [] };
    case 'json':
      return { data: encodeRefsJson(set), dropped: [] };
    case 'keylime': {
      const r = writeKeylimePolicy(set);
      if (opts.dsseKey === undefined) return { data: r.text, dropped: r.dropped };
      const env = signDsse(KEYLIME_PAYLOAD_TYPE, Buffer.from(r.text, 'utf8'), opts.dsseKey);
      return { data: encodeDsseEnvelope(env), dropped: r.dropped };
    }
  }
}

/** Write a set atomically (nothing half-written on failure). @throws ImakitError E_IO_WRITE */
export function writeReferenceSet(
  path: string,
  set: ReferenceSet,
  format: RefsFormat,
  opts: { dsseKey?: PrivateKey } = {},
): { bytes: number; dropped: readonly string[] } {
  const { data, dropped } = encodeReferenceSet(set, format, opts);
  writeAtomic(path, data);
  return { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.length, dropped };
}
