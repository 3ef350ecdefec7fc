/**
 * What several evmctl commands share: default paths, xattr names under `--xattr-user`, algorithm
 * lookup with evmctl's spelling rules, the security.ima value per `-a`/`--key`, evmctl's `do_cmd` (one path,
 * or a `-r` walk with `-t fxm`), and the EVM input with evmctl's metadata overrides.
 */
import type { OpenFile } from '../../host/fs/open-file.ts';
import { ImakitError, isImakitError } from '../../errors.ts';
import { toHex, fromHex } from '../../core/bytes/bytes.ts';
import { hashAlgoByName, type HashAlgo } from '../../core/hash/hash-algo.ts';
import { resolveEvmConfig, type EvmConfig } from '../../core/evm/evm-config.ts';
import type { EvmInputKind, InodeMeta } from '../../core/evm/evm-input.ts';
import { Keyring } from '../../core/labels/ima-signature.ts';
import { parseUuid } from '../../core/bytes/uuid.ts';
import { listXattrs } from '../../host/fs/xattr.ts';
import { walkTree } from '../../host/fs/walk.ts';
import {
  evmFileInput,
  evmValueFromInput,
  type EvmFileOptions,
  type EvmValueRequest,
} from '../../host/label/evm-file.ts';
import type { CliIo } from '../io.ts';
import type { PrivateKey, PublicKey } from '../../core/keys/keys.ts';
import { formatKeyIdEvmctl } from '../../core/keys/keyid.ts';
import { computeImaValue, loadSigningKeyFile, loadVerifyKeyFile } from '../../host/label/label-file.ts';
import { parseDecimalOverride, type EvmctlOptions } from './options.ts';

export const DEFAULT_SIGN_KEY = '/etc/keys/privkey_evm.pem';
export const DEFAULT_VERIFY_KEY = '/etc/keys/x509_evm.der';
export const DEFAULT_HMAC_KEY = '/etc/keys/evm-key-plain';

/** evmctl's negative-result status. */
export const INTERNAL = 125;

/** `security.ima`/`security.evm`, or `user.*` under `--xattr-user`. */
export function xattrNames(opts: EvmctlOptions): { readonly ima: string; readonly evm: string } {
  return opts.xattrUser ? { ima: 'user.ima', evm: 'user.evm' } : { ima: 'security.ima', evm: 'security.evm' };
}

/**
 * `-a` as evmctl reads it: case-sensitive names from the kernel table and its aliases (`SHA1`
 * fails like in ima-evm-utils' ima_hash.test).
 * @throws ImakitError E_HASH_UNKNOWN / E_HASH_UNSUPPORTED
 */
export function evmctlAlgo(name: string): HashAlgo {
  if (name !== name.toLowerCase())
    throw new ImakitError('E_HASH_UNKNOWN', `Unknown hash algo: ${name}`, { token: name });
  return hashAlgoByName(name);
}

/** Lowercase hex, as evmctl's bin2hex. */
export function hex(b: Uint8Array): string {
  return toHex(b);
}

/** Print an error for one file the way evmctl's log_err does (to stderr), naming the code. */
export function reportFileError(io: CliIo, e: unknown): void {
  if (isImakitError(e)) io.stderr(`${e.message} [${e.code}]\n`);
  else io.stderr(`${e instanceof Error ? e.message : String(e)}\n`);
}

/**
 * evmctl's `do_cmd`: apply `fn` to `args[0]`, or with `-r` to every file below it. `-t` letters:
 * `f` regular files, `x` skip files that already have both xattrs (only `ima_fix` honours it in
 * evmctl; passed to `fn`), `m` stay on one filesystem. Without `-t`, `-r` visits regular files.
 *
 * Differs from evmctl on purpose: a failure on any file of a `-r` walk makes the status 125 (evmctl
 * ignores per-file results inside its find()), so scripts notice a half-labelled tree.
 */
export async function doCmd(
  opts: EvmctlOptions,
  args: readonly string[],
  io: CliIo,
  usage: string,
  fn: (path: string) => Promise<void> | void,
): Promise<number> {
  const path = args[0];
  if (path === undefined) {
    io.stderr(`Parameters missing\nusage: ${usage}\n`);
    return INTERNAL;
  }
  if (!opts.recursive) {
    try {
      await fn(path);
      return 0;
    } catch (e) {
      reportFileError(io, e);
      return INTERNAL;
    }
  }
  const types = opts.searchType;
  const regular = types === undefined || types.includes('f');
  let failures = 0;
  for await (const e of walkTree(path, { oneFileSystem: types?.includes('m') ?? false })) {
    if (e.kind === 'error') {
      io.stderr(`Failed to open directory ${e.path}: ${e.error.code ?? e.error.message}\n`);
      failures++;
      continue;
    }
    if (e.type !== 'file' || !regular) continue;
    try {
      await fn(e.path);
    } catch (err) {
      reportFileError(io, err);
      failures++;
    }
  }
  return failures > 0 ? INTERNAL : 0;
}

/** Whether a file already carries both labels (`-t x`). */
export function hasBothLabels(path: string, opts: EvmctlOptions): boolean {
  const names = new Set(listXattrs(path));
  const { ima, evm } = xattrNames(opts);
  return names.has(ima) && names.has(evm);
}

/** The EVM configuration evmctl hashes: its list (or `--smack`), UUID on, `--m32/--m64` layout. */
export function evmctlConfig(opts: EvmctlOptions): EvmConfig {
  return resolveEvmConfig({
    preset: opts.smack ? 'evmctl-smack' : 'evmctl',
    ...(opts.hmiscBits !== undefined ? { layout: opts.hmiscBits } : {}),
  });
}

/** evmctl's metadata overrides (`--ino --uid --gid --mode --generation`, all decimal). */
function evmctlMeta(opts: EvmctlOptions): Partial<InodeMeta> {
  const m: { -readonly [K in keyof InodeMeta]?: InodeMeta[K] } = {};
  if (opts.ino !== undefined) m.ino = BigInt(parseDecimalOverride(opts.ino));
  if (opts.generation !== undefined) m.generation = parseDecimalOverride(opts.generation) >>> 0;
  if (opts.uid !== undefined) m.uid = parseDecimalOverride(opts.uid);
  if (opts.gid !== undefined) m.gid = parseDecimalOverride(opts.gid);
  if (opts.mode !== undefined) m.mode = parseDecimalOverride(opts.mode);
  return m;
}

/**
 * The EVM input options evmctl's flags describe (host/evm-file.ts does the work).
 * Pitfall 23: under `--xattr-user` non-portable digests still read `security.*`; portable ones read
 * `user.ima` (evmctl's calc_evm_hash). `--ima HEX`, `--selinux STR` (+NUL), `--caps[=STR]` override.
 * `-u` (pitfall 22): the fs UUID from the filesystem, none, or given.
 */
export function evmctlInputOptions(opts: EvmctlOptions, kind: EvmInputKind): Omit<EvmFileOptions, 'kind'> {
  const overrides = new Map<string, Uint8Array | null>();
  if (opts.ima !== undefined) overrides.set('security.ima', fromHex(opts.ima, '--ima'));
  if (opts.selinux !== undefined)
    overrides.set('security.selinux', new Uint8Array(Buffer.from(opts.selinux + '\0', 'utf8')));
  if (opts.capsSet)
    overrides.set(
      'security.capability',
      opts.caps === undefined ? null : new Uint8Array(Buffer.from(opts.caps, 'utf8')),
    );
  return {
    config: evmctlConfig(opts),
    uuid: opts.uuid.mode === 'none' ? 'none' : opts.uuid.mode === 'given' ? parseUuid(opts.uuid.value) : 'fs',
    ...(kind === 'portable' ? { imaXattrName: xattrNames(opts).ima } : {}),
    xattrOverrides: overrides,
    meta: evmctlMeta(opts),
  };
}

/**
 * The EVM hash/HMAC input for `path` as evmctl builds it. `imaOverride` is a security.ima value
 * computed in this run (`-s`/`-d`), used in place of the file's current one (under `--xattr-user`
 * only for portable signatures, which read user.ima).
 */
export function evmctlInput(
  path: string,
  opts: EvmctlOptions,
  kind: EvmInputKind,
  imaOverride?: Uint8Array,
  file?: OpenFile,
): Uint8Array {
  const ima = kind === 'portable' || !opts.xattrUser ? imaOverride : undefined;
  return evmFileInput(path, {
    ...evmctlInputOptions(opts, kind),
    kind,
    ...(file === undefined ? {} : { file }),
    ...(ima === undefined ? {} : { ima }),
  });
}

/** Split evmctl's `--key` list for verification (comma or space separated; empty items skipped). */
export function keyList(opts: EvmctlOptions): string[] {
  return (opts.key ?? DEFAULT_VERIFY_KEY).split(/[, ]+/).filter((s) => s.length > 0);
}

/**
 * The signing key for sign/ima_sign/sign_hash: `--key`, else the legacy positional key argument,
 * else /etc/keys/privkey_evm.pem; passphrase from `-p`/EVMCTL_KEY_PASSWORD. `--keyid` and
 * `--keyid-from-cert` override the key id written in the header.
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_PASSPHRASE, E_KEY_TYPE (naming the key file)
 */
export function loadSigner(opts: EvmctlOptions, positionalKey?: string): PrivateKey {
  const path = opts.key ?? positionalKey ?? DEFAULT_SIGN_KEY;
  const key = loadSigningKeyFile(path, opts.pass);
  if (opts.keyidFromCert !== undefined) {
    const [cert] = loadVerifyKeyFile(opts.keyidFromCert);
    return Object.freeze({ ...key, keyid: cert!.keyid });
  }
  return key;
}

/**
 * Verification keys from `--key` (comma/space list, default /etc/keys/x509_evm.der), printed like
 * evmctl's init_public_keys (`key N: KEYID FILE`). Unreadable files are reported and skipped,
 * as evmctl does; signatures by their keys then fail as "unknown keyid".
 */
export function loadKeyring(opts: EvmctlOptions, io: CliIo): Keyring {
  const keys: PublicKey[] = [];
  let n = 1;
  for (const file of keyList(opts)) {
    try {
      for (const k of loadVerifyKeyFile(file)) {
        keys.push(k);
        io.stderr(`key ${n++}: ${formatKeyIdEvmctl(k.keyid)} ${file}\n`);
      }
    } catch (e) {
      reportFileError(io, e);
    }
  }
  return new Keyring(keys);
}

/**
 * The security.ima value of one file as `ima_hash` (`key` undefined) or `ima_sign` computes it with
 * `-a` and `--keyid`; `-v` logs the file digest like evmctl. Nothing is written.
 * @throws ImakitError E_IO_READ, E_IO_NOT_REGULAR, E_HASH_UNKNOWN, signer errors
 */
export function evmctlImaValue(
  path: string,
  opts: EvmctlOptions,
  io: CliIo,
  key?: PrivateKey,
  file?: OpenFile,
): Uint8Array {
  const algo = evmctlAlgo(opts.hashAlgo);
  const r = computeImaValue(
    path,
    {
      kind: key === undefined ? 'hash' : 'sign',
      algo,
      ...(key === undefined ? {} : { key }),
      ...(opts.keyid === undefined ? {} : { keyid: opts.keyid }),
    },
    file,
  );
  if (key !== undefined && opts.verbose > 0) io.stderr(`hash(${algo.name}): ${hex(r.digest)}\n`);
  return r.value;
}

/**
 * `sign` / `hmac` for one file: first the security.ima value of `-s` (signature with `imaKey`) or
 * `-d` (hash; evmctl runs -s then -d, so with both the hash wins), then the security.evm value over
 * metadata that includes that new value. Nothing is written, so a failure leaves labels untouched.
 */
export function evmctlEvmValues(
  path: string,
  opts: EvmctlOptions,
  io: CliIo,
  req: EvmValueRequest,
  imaKey?: PrivateKey,
  file?: OpenFile,
): { readonly ima?: Uint8Array; readonly evm: Uint8Array } {
  let ima: Uint8Array | undefined;
  if (opts.imasig && imaKey !== undefined) ima = evmctlImaValue(path, opts, io, imaKey, file);
  if (opts.imahash) ima = evmctlImaValue(path, opts, io, undefined, file);
  const evm = evmValueFromInput(req, evmctlInput(path, opts, req.kind, ima, file));
  return ima === undefined ? { evm } : { ima, evm };
}
