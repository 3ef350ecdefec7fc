/**
 * What the per-file verifiers (label-file.ts `verifyImaFile`, evm-file.ts `verifyEvmFile`) share:
 * the verdict shape, its construction (frozen, with what it does not establish), turning an I/O
 * error into an `error` verdict, reading the label, and carrying over a core signature verdict.
 */
import { isImakitError, type ErrorCode } from '../../errors.ts';
import type { SigVerdict } from '../../core/labels/ima-signature.ts';
import { requireRegularFile } from '../fs/regular-file.ts';
import { fgetXattr, getXattr } from '../fs/xattr.ts';
import type { OpenFile } from '../fs/open-file.ts';

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
 * Read and decode the label to check: `override` (e.g. a `.sig` file) or the xattr `name` of the
 * regular file `path` (read through `file` when it is already open), decoded with `parse`.
 * @returns the decoded value, or the verdict that ends the check: `error` (missing file, symlink,
 *   device…), `no-label`, `fail` with the codec's code (malformed), `unsupported` (v1 signature)
 */
export function readParsedLabel<K extends string, T extends { readonly kind: string }>(
  path: string,
  name: string,
  parse: (bytes: Uint8Array) => T,
  override?: Uint8Array,
  file?: OpenFile,
): Exclude<T, { readonly kind: 'signature-v1' }> | FileVerdict<K> {
  let raw: Uint8Array | null;
  try {
    if (file === undefined) requireRegularFile(path);
    raw = override ?? (file === undefined ? getXattr(path, name) : fgetXattr(file.fd, name, path));
  } catch (e) {
    return errorVerdict<K>(path, e);
  }
  if (raw === null)
    return fileVerdict<K>(path, { status: 'no-label', code: 'E_VERIFY_NO_LABEL', detail: `no ${name}` });
  let v: T;
  try {
    v = parse(raw);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    return fileVerdict<K>(path, { status: 'fail', code: e.code, detail: `malformed ${name}: ${e.message}` });
  }
  if (v.kind === 'signature-v1')
    return fileVerdict<K>(path, {
      status: 'unsupported',
      // both callers list signature-v1 among their kinds
      kind: v.kind as K,
      code: 'E_SIG_UNSUPPORTED',
      detail: 'v1 (digsig) signatures are reported, not verified',
    });
  return v as Exclude<T, { readonly kind: 'signature-v1' }>;
}

/** Whether a readParsedLabel result is a final verdict. */
export function isFileVerdict<K extends string>(x: object): x is FileVerdict<K> {
  return 'status' in x && 'notEstablished' in x;
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
