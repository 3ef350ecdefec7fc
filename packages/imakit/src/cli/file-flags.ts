/**
 * What the modern per-file commands (`imakit hash|sign|verify|evm`) share: flag → option mapping
 * for keys, key lists, xattr names and EVM input, the per-file loop (one file's failure does not
 * stop the others and leaves its labels untouched) and the exit status it implies.
 *
 * Exit statuses (src/errors.ts EXIT): 0 every file ok; 1 a verification failed (bad hash or
 * signature, unknown key, no label); 2 bad input (bad flags, not a regular file, bad key,
 * wrong passphrase); 3 I/O (unreadable file, xattr write failed); 4 unsupported algorithm;
 * 5 environment (no fs UUID, no inode generation, no xattr support).
 */
import { CATALOGUE, ImakitError, isImakitError, EXIT, type ErrorCode } from '../errors.ts';
import { hashAlgoByName, type HashAlgo } from '../core/hash/hash-algo.ts';
import { Keyring } from '../core/labels/ima-signature.ts';
import type { PrivateKey, PublicKey } from '../core/keys/keys.ts';
import { parseKeyId } from '../core/keys/keyid.ts';
import { parseUuid } from '../core/bytes/uuid.ts';
import { resolveEvmConfig, EVM_PRESETS, type EvmConfig, type EvmPresetName } from '../core/evm/evm-config.ts';
import { loadSigningKeyFile, loadVerifyKeyFile } from '../host/label/label-file.ts';
import { readEvmHmacKey } from '../host/label/evm-file.ts';
import type { CliIo } from './io.ts';
import { toHex } from '../core/bytes/bytes.ts';
import type { LabelImaFileResult } from '../host/label/label-file.ts';

/**
 * The modern CLI's default EVM configuration: the Debian 6.1 kernel (SELinux, AppArmor, IMA
 * appraisal, fs UUID on), the kernel the real-kernel tests boot. Values are made for a KERNEL to
 * verify; the evmctl drop-in keeps evmctl's own list (`evmctl` preset) for parity.
 */
export const DEFAULT_EVM_PRESET: EvmPresetName = 'debian-6.1';

/** Environment variable holding the signing key's passphrase (like evmctl's EVMCTL_KEY_PASSWORD). */
export const PASSWORD_ENV = 'IMAKIT_KEY_PASSWORD';

/** commander collector for repeatable options. */
export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** `--algo` → kernel hash algorithm. @throws ImakitError E_HASH_UNKNOWN / E_HASH_UNSUPPORTED */
export function algoFlag(name: string): HashAlgo {
  return hashAlgoByName(name);
}

/** security.* names, or user.* under `--xattr-user`. */
export function xattrNamesFlag(user: boolean | undefined): { readonly ima: string; readonly evm: string } {
  return user ? { ima: 'user.ima', evm: 'user.evm' } : { ima: 'security.ima', evm: 'security.evm' };
}

/** Signing-key flags. */
export interface SignerFlags {
  key?: string;
  pass?: string;
  keyid?: string;
  keyidFromCert?: string;
}

/**
 * Load the signing key (`--pass`, else $IMAKIT_KEY_PASSWORD) and the header key id (`--keyid HEX`
 * or the SKID of `--keyid-from-cert CERT`; default the key's own).
 * @throws ImakitError E_USAGE (no --key), E_IO_READ, E_KEY_PARSE, E_KEY_PASSPHRASE, E_KEY_TYPE, E_KEYID_BAD
 */
export function signerFromFlags(f: SignerFlags, io: CliIo): { key: PrivateKey; keyid?: number } {
  if (f.key === undefined) throw new ImakitError('E_USAGE', 'a signing key is needed: --key FILE');
  const key = loadSigningKeyFile(f.key, f.pass ?? io.env[PASSWORD_ENV]);
  if (f.keyid !== undefined && f.keyidFromCert !== undefined)
    throw new ImakitError('E_USAGE', '--keyid and --keyid-from-cert exclude each other');
  if (f.keyid !== undefined) return { key, keyid: parseKeyId(f.keyid) };
  if (f.keyidFromCert !== undefined) return { key, keyid: loadVerifyKeyFile(f.keyidFromCert)[0]!.keyid };
  return { key };
}

/**
 * Verification keys from repeatable `--key` values, each a comma-separated list of certificate or
 * public key files. An unreadable key file is an error (unlike evmctl, which skips it).
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_TYPE naming the file
 */
export function keyringFromFlags(keys: readonly string[]): Keyring {
  const pubs: PublicKey[] = [];
  for (const item of keys)
    for (const file of item.split(',').map((s) => s.trim()))
      if (file.length > 0) pubs.push(...loadVerifyKeyFile(file));
  return new Keyring(pubs);
}

/** EVM input flags shared by `imakit evm` and `imakit label`. */
export interface EvmInputFlags {
  evmConfig?: string;
  /** commander: a string for `--uuid UUID`, false for `--no-uuid`, undefined otherwise */
  uuid?: string | boolean;
  generation?: string;
}

/** `--evm-config PRESET`. @throws ImakitError E_USAGE for an unknown preset */
export function evmConfigFlag(name: string | undefined): EvmConfig {
  const preset = name ?? DEFAULT_EVM_PRESET;
  if (!Object.hasOwn(EVM_PRESETS, preset))
    throw new ImakitError(
      'E_USAGE',
      `unknown --evm-config ${preset} (known: ${Object.keys(EVM_PRESETS).join(', ')})`,
      { token: preset },
    );
  return resolveEvmConfig(preset as EvmPresetName);
}

/** `--uuid UUID` / `--no-uuid` / default (read from the filesystem). @throws ImakitError E_CODEC_BAD_VALUE */
export function uuidFlag(v: string | boolean | undefined): 'fs' | 'none' | Uint8Array {
  if (v === false) return 'none';
  if (typeof v === 'string') return parseUuid(v);
  return 'fs';
}

/** `--generation N` (decimal or 0x hex u32). @throws ImakitError E_USAGE */
export function generationFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new ImakitError('E_USAGE', `--generation ${v}: must be a u32`, { token: v });
  return n;
}

/** EVM HMAC key flags: `--hmac-key FILE` (plain) or `--kmk FILE --evm-key BLOB` (kernel blob). */
export interface HmacKeyFlags {
  hmacKey?: string;
  kmk?: string;
  evmKey?: string;
}

/**
 * The EVM HMAC key the flags name, or undefined when none is given.
 * @throws ImakitError E_USAGE (conflicting flags), E_IO_READ, E_KEY_PARSE, E_EVMKEY_BLOB, E_EVMKEY_MAC
 */
export function hmacKeyFlags(f: HmacKeyFlags): Uint8Array | undefined {
  if (f.hmacKey !== undefined) {
    if (f.kmk !== undefined || f.evmKey !== undefined)
      throw new ImakitError('E_USAGE', '--hmac-key excludes --kmk/--evm-key');
    return readEvmHmacKey({ plain: f.hmacKey });
  }
  if ((f.kmk === undefined) !== (f.evmKey === undefined))
    throw new ImakitError('E_USAGE', '--kmk and --evm-key go together');
  return f.kmk !== undefined ? readEvmHmacKey({ blob: f.evmKey!, kmk: f.kmk }) : undefined;
}

/** One file's outcome in a per-file loop. */
export type FileOutcome<T> =
  | { readonly path: string; readonly ok: true; readonly value: T }
  | {
      readonly path: string;
      readonly ok: false;
      readonly error: { readonly code: ErrorCode; readonly message: string; readonly exitCode: number };
    };

/**
 * Run `fn` on each path; an ImakitError on one file is recorded and the loop goes on (anything
 * else is a bug and propagates). Errors are printed to stderr unless `json`.
 */
export function forEachFile<T>(
  paths: readonly string[],
  io: CliIo,
  json: boolean,
  fn: (path: string) => T,
): FileOutcome<T>[] {
  return paths.map((path) => {
    try {
      return { path, ok: true as const, value: fn(path) };
    } catch (e) {
      if (!isImakitError(e)) throw e;
      const named = e.message.startsWith(path) ? e.message : `${path}: ${e.message}`;
      if (!json) io.stderr(`imakit: ${named} [${e.code}]\n`);
      return { path, ok: false as const, error: { code: e.code, message: named, exitCode: e.exitCode } };
    }
  });
}

/** The exit status of a per-file run: the first error's status, else 0. */
export function exitOf(outcomes: readonly FileOutcome<unknown>[]): number {
  for (const o of outcomes) if (!o.ok) return o.error.exitCode;
  return EXIT.OK;
}

/**
 * The exit status of a verification run: a file that could not be checked (bad input, I/O) wins,
 * then any failed verification (1), then unsupported (4), else 0.
 */
export function verifyExit(
  verdicts: readonly { readonly status: string; readonly code?: ErrorCode | undefined }[],
): number {
  const err = verdicts.find((v) => v.status === 'error');
  if (err) return err.code === undefined ? EXIT.INTERNAL : CATALOGUE[err.code].exit;
  if (verdicts.some((v) => v.status === 'fail' || v.status === 'unknown-key' || v.status === 'no-label'))
    return EXIT.VERIFY_FAILED;
  if (verdicts.some((v) => v.status === 'unsupported')) return EXIT.UNSUPPORTED;
  return EXIT.OK;
}

const FAIL_WORDS: Readonly<Record<string, string>> = Object.freeze({
  E_VERIFY_HASH_MISMATCH: 'invalid-hash',
  E_SIG_INVALID: 'invalid-signature',
  E_VERIFY_HMAC_MISMATCH: 'invalid-hmac',
});

function failWord(code: string | undefined): string {
  if (code === undefined) return 'invalid';
  return FAIL_WORDS[code] ?? (code.startsWith('E_CODEC') ? 'malformed-label' : 'invalid');
}

/**
 * `text` without a leading `PATH: ` or `PATH, ` when it names `path` already, so a line that starts
 * with the path does not repeat it (`f: error (f: f is a FIFO)`).
 */
export function withoutPath(path: string, text: string): string {
  return text.startsWith(`${path}: `) || text.startsWith(`${path}, `) ? text.slice(path.length + 2) : text;
}

/**
 * The text line for one file verdict (`imakit verify`, `imakit evm verify`):
 * `PATH: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)`, `PATH: FAILED invalid-hash`, `PATH: FAILED malformed-label (…)`,
 * `PATH: FAILED unknown-key 4d0e4f4d`, `PATH: no label`, `PATH: unsupported (…)`, `PATH: error (…) [CODE]`.
 */
export function verdictLine(v: {
  readonly path: string;
  readonly status: string;
  readonly kind?: string;
  readonly algo?: string;
  readonly keyid?: string;
  readonly keyAlg?: string;
  readonly code?: string;
  readonly detail: string;
}): string {
  switch (v.status) {
    case 'pass': {
      const what = [v.kind, v.keyAlg, v.algo].filter((x) => x !== undefined).join(' ');
      return `${v.path}: ok (${what}${v.keyid ? ` keyid ${v.keyid}` : ''})`;
    }
    case 'fail': {
      // A malformed label's reason (offset, field) is the only clue to what is wrong with it.
      const word = failWord(v.code);
      return `${v.path}: FAILED ${word}${word === 'malformed-label' ? ` (${v.detail})` : ''}`;
    }
    case 'unknown-key':
      return `${v.path}: FAILED unknown-key ${v.keyid ?? ''}`.trimEnd();
    case 'no-label':
      return `${v.path}: no label`;
    case 'unsupported':
      return `${v.path}: unsupported (${v.detail})`;
    default:
      return `${v.path}: error (${withoutPath(v.path, v.detail)})${v.code ? ` [${v.code}]` : ''}`;
  }
}

/**
 * Print `imakit hash|sign` results: `VALUE_HEX  PATH` lines, or JSON
 * `{...top, files:[{path, ok:true, kind, algo, digest, value, written, sigfile?} | {path, ok:false, error}]}`.
 */
export function printImaResults(
  io: CliIo,
  json: boolean,
  results: readonly FileOutcome<LabelImaFileResult>[],
  fields: { readonly kind: string; readonly algo: string },
  top: Readonly<Record<string, unknown>> = {},
): void {
  if (!json) {
    for (const r of results) if (r.ok) io.stdout(`${toHex(r.value.value)}  ${r.path}\n`);
    return;
  }
  const files = results.map((r) =>
    r.ok
      ? {
          path: r.path,
          ok: true,
          ...fields,
          digest: toHex(r.value.digest),
          value: toHex(r.value.value),
          written: r.value.written,
          ...(r.value.sigfile ? { sigfile: r.value.sigfile } : {}),
        }
      : { path: r.path, ok: false, error: r.error },
  );
  io.stdout(JSON.stringify({ ...top, files }, null, 2) + '\n');
}
