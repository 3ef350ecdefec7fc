/**
 * The one error catalogue (style.md practice 6).
 *
 * Every error imakit raises for bad input or a failed operation carries a stable `code` from this
 * table. Tests assert `err.code`, never the English text. Each code has a message template and the
 * CLI exit status it maps to; the README documents the table.
 *
 * Exit statuses (evmctl-compatible where it has an equivalent):
 *  - 0   success
 *  - 1   verification failed (a signature, hash, HMAC or PCR did not match)
 *  - 2   bad input: malformed bytes, wrong option, bad policy, unreadable key
 *  - 3   I/O: a file or xattr could not be read or written
 *  - 4   unsupported: an algorithm, key type or feature imakit or the target cannot handle
 *  - 5   environment: a required tool, privilege or kernel facility is missing
 *  - 125 internal error (evmctl maps its negative results here too)
 */

export const EXIT = Object.freeze({
  OK: 0,
  VERIFY_FAILED: 1,
  BAD_INPUT: 2,
  IO: 3,
  UNSUPPORTED: 4,
  ENVIRONMENT: 5,
  INTERNAL: 125,
});

interface CatalogueEntry {
  readonly exit: number;
  readonly http: number;
  readonly message: string;
}

const entry = (exit: number, http: number, message: string): CatalogueEntry =>
  Object.freeze({ exit, http, message });

/** Stable codes. Add new codes in the section of the subsystem that raises them. */
export const CATALOGUE = Object.freeze({
  // --- misuse (programming errors surface as TypeError/RangeError; these are for CLI usage)
  E_USAGE: entry(EXIT.BAD_INPUT, 400, 'invalid usage'),
  E_INTERNAL: entry(EXIT.INTERNAL, 500, 'internal error'),

  // --- codecs (core): malformed untrusted bytes
  E_CODEC_TRUNCATED: entry(EXIT.BAD_INPUT, 400, 'input is truncated'),
  E_CODEC_TRAILING: entry(EXIT.BAD_INPUT, 400, 'trailing bytes after the value'),
  E_CODEC_BAD_LENGTH: entry(EXIT.BAD_INPUT, 400, 'a length field is inconsistent'),
  E_CODEC_TOO_LARGE: entry(EXIT.BAD_INPUT, 400, 'a declared size exceeds the allowed maximum'),
  E_CODEC_UNKNOWN_TYPE: entry(EXIT.BAD_INPUT, 400, 'unknown type byte'),
  E_CODEC_BAD_VERSION: entry(EXIT.BAD_INPUT, 400, 'unsupported version'),
  E_CODEC_UNKNOWN_ALGO: entry(EXIT.BAD_INPUT, 400, 'unknown hash algorithm id'),
  E_CODEC_BAD_VALUE: entry(EXIT.BAD_INPUT, 400, 'a field has an invalid value'),
  E_CODEC_BAD_HEX: entry(EXIT.BAD_INPUT, 400, 'invalid hexadecimal text'),
  E_CODEC_BAD_TEXT: entry(EXIT.BAD_INPUT, 400, 'malformed text line'),
  E_CODEC_DER: entry(EXIT.BAD_INPUT, 400, 'malformed DER'),

  // --- hash algorithms
  E_HASH_UNKNOWN: entry(EXIT.BAD_INPUT, 400, 'unknown hash algorithm'),
  E_HASH_UNSUPPORTED: entry(EXIT.UNSUPPORTED, 422, 'hash algorithm not supported by this runtime'),

  // --- keys and signatures
  E_KEY_PARSE: entry(EXIT.BAD_INPUT, 400, 'cannot parse key or certificate'),
  E_KEY_PASSPHRASE: entry(EXIT.BAD_INPUT, 400, 'wrong or missing passphrase for an encrypted key'),
  E_KEY_TYPE: entry(EXIT.UNSUPPORTED, 422, 'key type or curve not supported for this operation'),
  E_KEY_MISMATCH: entry(EXIT.BAD_INPUT, 400, 'key does not fit the requested algorithm'),
  E_KEY_NOT_FOUND: entry(EXIT.VERIFY_FAILED, 404, 'no key with this key id'),
  E_KEYID_BAD: entry(EXIT.BAD_INPUT, 400, 'invalid key id'),
  E_SIG_INVALID: entry(EXIT.VERIFY_FAILED, 422, 'signature verification failed'),
  E_SIG_UNSUPPORTED: entry(EXIT.UNSUPPORTED, 422, 'signature format not supported'),
  E_CERT_BUILD: entry(EXIT.BAD_INPUT, 400, 'cannot build certificate'),
  E_KEYRING: entry(EXIT.ENVIRONMENT, 500, 'kernel keyring operation failed'),
  E_KEYRING_NOT_FOUND: entry(EXIT.ENVIRONMENT, 404, 'no such kernel keyring'),
  E_KEYRING_RESTRICTED: entry(
    EXIT.VERIFY_FAILED,
    422,
    'the keyring only accepts keys vouched for by a trusted key (restricted keyring)',
  ),
  E_KEYRING_ALGO: entry(EXIT.UNSUPPORTED, 422, "the kernel lacks the key's algorithm"),
  E_EVMKEY_BLOB: entry(EXIT.BAD_INPUT, 400, 'malformed encrypted key blob'),
  E_EVMKEY_MAC: entry(
    EXIT.VERIFY_FAILED,
    422,
    'encrypted key blob HMAC mismatch (wrong master key or tampered blob)',
  ),

  // --- verification verdict failures surfaced as errors by the CLI
  E_VERIFY_HASH_MISMATCH: entry(EXIT.VERIFY_FAILED, 422, 'file hash does not match security.ima'),
  E_VERIFY_HMAC_MISMATCH: entry(EXIT.VERIFY_FAILED, 422, 'EVM HMAC does not match'),
  E_VERIFY_PCR_MISMATCH: entry(EXIT.VERIFY_FAILED, 422, 'replayed PCR does not match'),
  E_VERIFY_NO_LABEL: entry(EXIT.VERIFY_FAILED, 422, 'no integrity label'),

  // --- host I/O
  E_IO_READ: entry(EXIT.IO, 500, 'cannot read file'),
  E_IO_WRITE: entry(EXIT.IO, 500, 'cannot write file'),
  E_IO_NOT_REGULAR: entry(EXIT.BAD_INPUT, 400, 'not a regular file'),
  E_IO_CHANGED: entry(EXIT.IO, 409, 'file changed while it was read'),
  // an input larger than the cap for its kind (a key, a policy...): /dev/zero, a FIFO, a wrong file
  E_IO_TOO_LARGE: entry(EXIT.BAD_INPUT, 413, 'input larger than the cap for its kind'),
  E_XATTR_READ: entry(EXIT.IO, 500, 'cannot read extended attribute'),
  E_XATTR_WRITE: entry(EXIT.IO, 500, 'cannot write extended attribute'),
  E_XATTR_UNSUPPORTED: entry(EXIT.ENVIRONMENT, 500, 'filesystem does not support extended attributes'),
  E_XATTR_UNAVAILABLE: entry(
    EXIT.ENVIRONMENT,
    500,
    'extended attributes unavailable: the optional fs-xattr addon is not installed',
  ),
  // a precondition of the requested operation (portable EVM signing needs security.ima): bad input
  E_XATTR_MISSING: entry(EXIT.BAD_INPUT, 404, 'extended attribute not present'),
  E_PERMISSION: entry(EXIT.ENVIRONMENT, 403, 'operation not permitted (needs root / CAP_SYS_ADMIN)'),
  E_FS_UUID: entry(EXIT.ENVIRONMENT, 500, 'cannot determine the filesystem UUID'),
  E_INODE_GENERATION: entry(
    EXIT.ENVIRONMENT,
    500,
    'cannot read the inode generation (no FS_IOC_GETVERSION on this filesystem): pass one explicitly',
  ),
  E_TOOL_MISSING: entry(EXIT.ENVIRONMENT, 500, 'a required external tool is missing'),

  // --- measurement lists, event logs, PCRs
  E_LIST_ENTRY: entry(EXIT.BAD_INPUT, 400, 'malformed measurement list entry'),
  E_LIST_TEMPLATE: entry(EXIT.BAD_INPUT, 400, 'malformed template field'),
  E_LIST_ENDIAN: entry(EXIT.BAD_INPUT, 400, 'cannot determine the list byte order'),
  E_PCR_FILE: entry(EXIT.BAD_INPUT, 400, 'malformed PCR values'),
  E_BOOTREF_FORMAT: entry(EXIT.BAD_INPUT, 400, 'malformed measured-boot reference'),
  E_EVENTLOG: entry(EXIT.BAD_INPUT, 400, 'malformed TCG event log'),
  E_CHECKPOINT: entry(EXIT.BAD_INPUT, 400, 'checkpoint does not fit this list'),

  // --- policy
  E_POLICY_SYNTAX: entry(EXIT.BAD_INPUT, 400, 'invalid policy rule'),
  E_POLICY_UNKNOWN_KEYWORD: entry(EXIT.BAD_INPUT, 400, 'unknown policy keyword'),
  E_POLICY_DUPLICATE: entry(EXIT.BAD_INPUT, 400, 'policy keyword given twice'),
  E_POLICY_VALUE: entry(EXIT.BAD_INPUT, 400, 'invalid value for policy keyword'),
  E_POLICY_ORDER: entry(EXIT.BAD_INPUT, 400, 'policy keyword in the wrong position'),
  E_POLICY_COMBINATION: entry(EXIT.BAD_INPUT, 400, 'policy keyword not allowed with this action or func'),
  E_POLICY_BUILTIN: entry(EXIT.BAD_INPUT, 400, 'unknown built-in policy'),
  E_PROFILE_UNKNOWN: entry(EXIT.BAD_INPUT, 400, 'unknown kernel profile'),
  E_SCENARIO: entry(EXIT.BAD_INPUT, 400, 'invalid scenario file'),

  // --- reference sets (refs): Keylime runtime policies, imakit's compact form
  E_REFS_FORMAT: entry(EXIT.BAD_INPUT, 400, 'malformed reference set or runtime policy'),
  E_REFS_PATH: entry(EXIT.BAD_INPUT, 400, 'invalid path in a reference set'),
  E_REFS_PATTERN: entry(EXIT.BAD_INPUT, 400, 'invalid exclude pattern'),
  E_REFS_ALGO_MISMATCH: entry(
    EXIT.BAD_INPUT,
    400,
    'the reference set was built for a file hash algorithm no file entry of the list was measured with',
  ),
  E_REFS_SIGNATURE: entry(EXIT.VERIFY_FAILED, 422, 'reference set signature does not verify'),
  E_REFS_UNSIGNED: entry(EXIT.VERIFY_FAILED, 422, 'reference set is not signed but a key was given'),

  // --- packages and images (deb, dpkg, rpm, rpmdb, OCI): the context names the archive member / tag
  E_PKG_FORMAT: entry(EXIT.BAD_INPUT, 400, 'malformed package, archive or package database'),
  E_PKG_COMPRESSION: entry(EXIT.BAD_INPUT, 400, 'unsupported or corrupt compressed stream'),
  // a declared or decompressed size past the cap (a 4 GiB header, a zip bomb): refused before it runs away
  E_PKG_TOO_LARGE: entry(EXIT.BAD_INPUT, 413, 'package member larger than the cap'),
  // a member's content differs from the digest its package records (md5sums, RPM FILEDIGESTS)
  E_PKG_DIGEST_MISMATCH: entry(EXIT.VERIFY_FAILED, 422, "content does not match the package's digest"),
  E_OCI_FORMAT: entry(EXIT.BAD_INPUT, 400, 'malformed OCI image layout or docker save archive'),
  // --image / --platform matched nothing (or several images and no --image): the detail lists the choices
  E_OCI_SELECT: entry(EXIT.BAD_INPUT, 400, 'no single image or platform matches the selection'),

  // --- real-kernel harness
  E_VM_SETUP: entry(EXIT.ENVIRONMENT, 500, 'kernel harness setup failed'),
  E_VM_BOOT: entry(EXIT.ENVIRONMENT, 500, 'guest did not complete'),
  E_VM_TIMEOUT: entry(EXIT.ENVIRONMENT, 504, 'guest timed out'),
  E_VM_OOPS: entry(EXIT.ENVIRONMENT, 500, 'guest kernel oopsed or panicked'),
  E_VM_POLICY_REJECTED: entry(EXIT.BAD_INPUT, 400, 'the guest kernel rejected the policy'),
  E_VM_IMAGE: entry(EXIT.BAD_INPUT, 400, 'cannot build the guest disk image'),

  // --- TPM client (host/tpm, core/tpm/commands)
  E_TPM_TRANSPORT: entry(EXIT.ENVIRONMENT, 502, 'cannot talk to the TPM'),
  E_TPM_TIMEOUT: entry(EXIT.ENVIRONMENT, 504, 'the TPM did not answer in time'),
  // a response whose header, size or areas do not parse: the TPM (or what answers for it) is broken
  E_TPM_RESPONSE: entry(EXIT.ENVIRONMENT, 502, 'malformed TPM response'),
  // the TPM answered with a non-zero response code; the detail names the command and the decoded code
  E_TPM_RC: entry(EXIT.ENVIRONMENT, 502, 'the TPM returned an error'),

  // --- fleet: the verifier's API (host/agent, cli agent/fleet/verifier)
  // the verifier answered 4xx; the message carries its own code (V_NOT_FOUND, V_VALIDATION, ...)
  E_API_REJECTED: entry(EXIT.VERIFY_FAILED, 400, 'the verifier refused the request'),
  // no answer (refused, timed out, an untrusted certificate) or a 5xx
  E_API_UNAVAILABLE: entry(EXIT.ENVIRONMENT, 502, 'cannot reach the verifier'),
  // the agent's evidence was judged and did not pass
  E_AGENT_FAILING: entry(EXIT.VERIFY_FAILED, 422, 'the verifier judged the evidence failing'),
  E_AGENT_NOT_ENROLLED: entry(EXIT.BAD_INPUT, 400, 'the agent is not enrolled (run imakit agent enrol)'),
});

export type ErrorCode = keyof typeof CATALOGUE;

/** Where an error applies: whatever of these is known. */
export interface ErrorContext {
  /** byte offset into the value being decoded */
  offset?: number;
  /** name of the field being decoded or checked */
  field?: string;
  /** file path the error concerns */
  path?: string;
  /** index of a measurement list entry or event */
  entry?: number;
  /** 1-based line of a policy or text file */
  line?: number;
  /** 1-based column */
  col?: number;
  /** offending token */
  token?: string;
  /** archive member (ar member, tar entry, OCI layer) or RPM header tag the error concerns */
  member?: string;
}

/** Every imakit error: a stable code, a human message, and where it happened. */
export class ImakitError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<ErrorContext>;
  /** The reason alone, without the where-prefix of `message`: re-wrap with `detail`, not `message`. */
  readonly detail: string;
  constructor(code: ErrorCode, detail?: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(formatMessage(code, detail, context), options);
    this.name = 'ImakitError';
    this.code = code;
    this.detail = detail ?? CATALOGUE[code].message;
    this.context = Object.freeze({ ...context });
  }
  /** CLI exit status for this error. */
  get exitCode(): number {
    return CATALOGUE[this.code].exit;
  }
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.context };
  }
}

/** Raised by decoders for malformed untrusted bytes: always names the offset and field. */
export class CodecError extends ImakitError {
  constructor(code: ErrorCode, detail: string, context: ErrorContext & { offset: number }) {
    super(code, detail, context);
    this.name = 'CodecError';
  }
}

function formatMessage(code: ErrorCode, detail: string | undefined, c: ErrorContext): string {
  const where: string[] = [];
  if (c.path !== undefined) where.push(c.path);
  if (c.member !== undefined) where.push(`member ${c.member}`);
  if (c.entry !== undefined) where.push(`entry ${c.entry}`);
  if (c.line !== undefined) where.push(c.col !== undefined ? `line ${c.line}:${c.col}` : `line ${c.line}`);
  if (c.offset !== undefined) where.push(`offset ${c.offset}`);
  if (c.field !== undefined) where.push(`field ${c.field}`);
  if (c.token !== undefined) where.push(`token '${c.token}'`);
  let base = detail ?? CATALOGUE[code].message;
  // Details written as "PATH: reason" would name the path twice once the context is prefixed.
  if (c.path !== undefined && base.startsWith(`${c.path}: `)) base = base.slice(c.path.length + 2);
  return where.length > 0 ? `${where.join(', ')}: ${base}` : base;
}

/**
 * Run `fn`; an ImakitError it throws that names no path gets `path` added (parsers and decoders do
 * not know which file their bytes came from; the caller does). Anything else passes unchanged.
 */
export function withPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ImakitError && e.context.path === undefined)
      throw new ImakitError(e.code, e.detail, { ...e.context, path }, { cause: e });
    throw e;
  }
}

/** True when `e` is an ImakitError (optionally with the given code). */
export function isImakitError(e: unknown, code?: ErrorCode): e is ImakitError {
  return e instanceof ImakitError && (code === undefined || e.code === code);
}

/** Map a Node system error (ENOENT, EACCES, ...) on `path` to a catalogue error. */
export function fromSystemError(e: unknown, code: ErrorCode, path: string): ImakitError {
  if (e instanceof ImakitError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  // Node's messages usually start with the errno already ("ENOENT: no such file ..."): say it once.
  const text = errno && !msg.startsWith(errno) ? `${errno}: ${msg}` : msg;
  if (errno === 'EPERM' || errno === 'EACCES') {
    if (code === E_XATTR_WRITE_CODE || code === E_XATTR_READ_CODE)
      return new ImakitError('E_PERMISSION', text, { path }, { cause: e });
  }
  // a directory where a file was expected is bad input (exit 2), not an I/O failure
  if (errno === 'EISDIR')
    return new ImakitError('E_IO_NOT_REGULAR', 'is a directory, expected a file', { path }, { cause: e });
  if (errno === 'ENOTSUP' || errno === 'EOPNOTSUPP')
    return new ImakitError('E_XATTR_UNSUPPORTED', text, { path }, { cause: e });
  return new ImakitError(code, text, { path }, { cause: e });
}
const E_XATTR_WRITE_CODE: ErrorCode = 'E_XATTR_WRITE';
const E_XATTR_READ_CODE: ErrorCode = 'E_XATTR_READ';
