/**
 * What the per-file verifiers (label-file.ts `verifyImaFile`, evm-file.ts `verifyEvmFile`) share:
 * the verdict shape, its construction (frozen, with what it does not establish), turning an I/O
 * error into an `error` verdict, reading the label, and carrying over a core signature verdict.
 */
import { isImakitError, type ErrorCode } from '../errors.ts';
import type { SigVerdict } from '../core/ima-signature.ts';
import { requireRegularFile } from './regular-file.ts';
import { getXattr } from './xattr.ts';

/** Fields of every per-file verdict; `kind` is specific to the label checked. */
export interface FileVerdict<K extends string> {
  readonly path: string;
  readonly status: 'pass' | 'fail' | 'unknown-key' | 'no-label' | 'unsupported' | 'error';
  readonly kind?: K;
  readonly algo?: string;
  readonly keyid?: string;
  /** the matching key's algorithm (`rsa-2048`, `ec-P-256`, `sm2`) */
  readonly keyAlg?: string;
  readonly code?: ErrorCode;
  readonly detail: string;
  /** what a pass does not prove (key trust, EVM protection, kernel policy…) */
  readonly notEstablished: readonly string[];
}

/** A frozen verdict for `path`. */
export function fileVerdict<K extends string>(
  path: string,
  v: Omit<FileVerdict<K>, 'path' | 'notEstablished'>,
  notEstablished: readonly string[] = [],
): FileVerdict<K> {
  return Object.freeze({ path, ...v, notEstablished: Object.freeze([...notEstablished]) });
}

/** An `error` verdict for an ImakitError (anything else is a bug and is re-thrown). */
export function errorVerdict<K extends string>(path: string, e: unknown): FileVerdict<K> {
  if (!isImakitError(e)) throw e;
  return fileVerdict<K>(path, { status: 'error', code: e.code, detail: e.message });
}

/**
 * The label to check: `override` (e.g. a `.sig` file) or the xattr `name` of the regular file `path`.
 * @returns the value, null when absent, or an `error` verdict (missing file, symlink, device…)
 */
export function readLabel<K extends string>(
  path: string,
  name: string,
  override?: Uint8Array,
): Uint8Array | null | FileVerdict<K> {
  try {
    requireRegularFile(path);
    return override ?? getXattr(path, name);
  } catch (e) {
    return errorVerdict<K>(path, e);
  }
}

/** A file verdict carrying a core signature verdict's outcome. */
export function signatureFileVerdict<K extends string>(
  path: string,
  kind: K,
  v: SigVerdict,
  notEstablished: readonly string[],
): FileVerdict<K> {
  return fileVerdict<K>(
    path,
    {
      status: v.status,
      kind,
      algo: v.algo,
      keyid: v.keyid,
      ...(v.keyAlg === undefined ? {} : { keyAlg: v.keyAlg }),
      ...(v.code === undefined ? {} : { code: v.code }),
      detail: v.detail,
    },
    notEstablished,
  );
}
