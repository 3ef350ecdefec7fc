/**
 * What several evmctl commands share: default paths, xattr names under `--xattr-user`, algorithm
 * lookup with evmctl's spelling rules, "regular files only" checks, evmctl's `do_cmd` (one path,
 * or a `-r` walk with `-t fxm`), and the EVM input with evmctl's metadata overrides.
 */
import { lstatSync, type Stats } from 'node:fs';
import { readFsUuid } from '../../host/fs-uuid.ts';
import { ImakitError, isImakitError } from '../../errors.ts';
import { toHex, fromHex } from '../../core/bytes.ts';
import { hashAlgoByName, type HashAlgo } from '../../core/hash-algo.ts';
import { resolveEvmConfig, type EvmConfig } from '../../core/evm-config.ts';
import { evmInput, type EvmInputKind, type InodeMeta } from '../../core/evm-input.ts';
import { parseUuid } from '../../core/uuid.ts';
import { getXattr, listXattrs } from '../../host/xattr.ts';
import { readInodeMeta } from '../../host/inode.ts';
import { walkTree } from '../../host/walk.ts';
import type { CliIo } from '../io.ts';
import type { PrivateKey, PublicKey } from '../../core/keys.ts';
import { formatKeyIdEvmctl } from '../../core/keyid.ts';
import { loadSigningKeyFile, loadVerifyKeyFile } from '../../host/label-file.ts';
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

/**
 * lstat a path that must be a regular file (symlinks and devices are refused: IMA labels regular
 * files, and xattr calls would follow a symlink to its target).
 * @throws ImakitError E_IO_READ (missing), E_IO_NOT_REGULAR
 */
export function requireRegularFile(path: string): Stats {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ImakitError('E_IO_READ', `Failed to stat: ${path} (${errno})`, { path }, { cause: e });
  }
  if (!st.isFile()) {
    const what = st.isSymbolicLink()
      ? 'a symbolic link'
      : st.isDirectory()
        ? 'a directory'
        : st.isBlockDevice() || st.isCharacterDevice()
          ? 'a device file'
          : 'not a regular file';
    throw new ImakitError('E_IO_NOT_REGULAR', `${path} is ${what}`, { path });
  }
  return st;
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

/**
 * Inode metadata with evmctl's overrides (`--ino --uid --gid --mode --generation`, all decimal).
 * The generation is read with FS_IOC_GETVERSION only when needed (non-portable, not given).
 */
export function evmctlMeta(path: string, opts: EvmctlOptions, kind: EvmInputKind): InodeMeta {
  // evmctl 1.6 reads the generation only for regular files, and not for portable signatures
  const m = readInodeMeta(path, { generation: kind !== 'portable' && opts.generation === undefined });
  let generation = 0;
  if (opts.generation !== undefined) generation = parseDecimalOverride(opts.generation) >>> 0;
  else if (kind !== 'portable' && m.isRegular) {
    if (m.generation === null)
      throw new ImakitError(
        'E_INODE_GENERATION',
        `${path}: the filesystem has no FS_IOC_GETVERSION; give --generation N`,
        { path },
      );
    generation = m.generation;
  }
  return Object.freeze({
    ino: opts.ino !== undefined ? BigInt(parseDecimalOverride(opts.ino)) : m.ino,
    generation,
    uid: opts.uid !== undefined ? parseDecimalOverride(opts.uid) : m.uid,
    gid: opts.gid !== undefined ? parseDecimalOverride(opts.gid) : m.gid,
    mode: (opts.mode !== undefined ? parseDecimalOverride(opts.mode) : m.mode) & 0xffff,
  });
}

/** The fs UUID per `-u` (pitfall 22): from the filesystem, none, or given. */
export function evmctlUuid(path: string, opts: EvmctlOptions): Uint8Array | null {
  switch (opts.uuid.mode) {
    case 'none':
      return null;
    case 'given':
      return parseUuid(opts.uuid.value);
    case 'fs':
      return blkidUuid(path);
  }
}

/**
 * The EVM hash/HMAC input for `path` as evmctl builds it, with the kernel's rules where evmctl 1.6
 * and the kernel agree. `imaOverride` is a security.ima value computed in this run (`-s`/`-d`),
 * used in place of the file's current one.
 *
 * Pitfall 23: under `--xattr-user` non-portable digests still read `security.*`; portable ones read
 * `user.ima` (evmctl's calc_evm_hash). `--ima HEX`, `--selinux STR` (+NUL), `--caps[=STR]` override.
 */
export function evmctlInput(
  path: string,
  opts: EvmctlOptions,
  kind: EvmInputKind,
  imaOverride?: Uint8Array,
): Uint8Array {
  const config = evmctlConfig(opts);
  const names = kind === 'portable' ? config.all : config.enabled;
  const xattrs = new Map<string, Uint8Array>();
  for (const name of names) {
    const v = getXattr(path, name);
    if (v !== null) xattrs.set(name, v);
  }
  if (kind === 'portable') {
    xattrs.delete('security.ima');
    const ima = imaOverride ?? getXattr(path, xattrNames(opts).ima);
    if (ima === null)
      throw new ImakitError('E_XATTR_MISSING', `EVM portable sig: ${xattrNames(opts).ima} required`, {
        path,
        field: xattrNames(opts).ima,
      });
    xattrs.set('security.ima', ima);
  } else if (imaOverride !== undefined && !opts.xattrUser) {
    xattrs.set('security.ima', imaOverride);
  }
  if (opts.ima !== undefined) xattrs.set('security.ima', fromHex(opts.ima, '--ima'));
  if (opts.selinux !== undefined)
    xattrs.set('security.selinux', new Uint8Array(Buffer.from(opts.selinux + '\0', 'utf8')));
  if (opts.capsSet) {
    if (opts.caps === undefined) xattrs.delete('security.capability');
    else xattrs.set('security.capability', new Uint8Array(Buffer.from(opts.caps, 'utf8')));
  }
  const meta = evmctlMeta(path, opts, kind);
  const fsUuid = kind === 'portable' ? null : evmctlUuid(path, opts);
  return evmInput({ kind, xattrs, meta, fsUuid, config });
}

/** Split evmctl's `--key` list for verification (comma or space separated; empty items skipped). */
export function keyList(opts: EvmctlOptions): string[] {
  return (opts.key ?? DEFAULT_VERIFY_KEY).split(/[, ]+/).filter((s) => s.length > 0);
}

/**
 * evmctl's get_uuid() (blkid on the file's device), done by host/fs-uuid.ts: the superblock's
 * UUID, with blkid as fallback.
 * @throws ImakitError E_FS_UUID when there is none (tmpfs, overlayfs): use `-uUUID` or `-u`
 */
export function blkidUuid(path: string): Uint8Array {
  return readFsUuid(path).uuid;
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
export function loadKeyring(opts: EvmctlOptions, io: CliIo): PublicKey[] {
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
  return keys;
}
