/**
 * EVM for one real file: gather the protected xattrs, the inode metadata and the fs UUID, build the
 * kernel's EVM input (core/evm-input.ts, formats.md §4.3), then HMAC, sign or verify it.
 * Shared by `imakit evm`, `imakit label --evm` and the evmctl drop-in (`sign`, `verify`, `hmac`),
 * which differ only in the options they pass.
 *
 * The EVM input covers security.ima, so callers that write a new security.ima in the same run pass
 * it as `ima` (the value the kernel will see once both are written).
 */
import { ImakitError, withPath } from '../../errors.ts';
import { bytesEqual } from '../../core/bytes/bytes.ts';
import type { HashAlgo } from '../../core/hash/hash-algo.ts';
import type { EvmConfig } from '../../core/evm/evm-config.ts';
import {
  evmDigest,
  evmHmac,
  evmInput,
  EVM_HMAC_KEY_BUFFER,
  type EvmInputKind,
  type InodeMeta,
} from '../../core/evm/evm-input.ts';
import { encodeEvmXattr, parseEvmXattr, type EvmXattr } from '../../core/labels/evm-xattr.ts';
import { signImaDigest, verifySignatureValue, type Keyring } from '../../core/labels/ima-signature.ts';
import type { PrivateKey } from '../../core/keys/keys.ts';
import { fgetXattr, fsetXattr } from '../fs/xattr.ts';
import { readOpenInodeMeta } from '../fs/inode.ts';
import { readFsUuidOfDev } from '../fs/fs-uuid.ts';
import { computeImaValue, type ImaValueRequest } from './label-file.ts';
import { withOpenFile, type OpenFile } from '../fs/open-file.ts';
import {
  errorVerdict,
  fileVerdict,
  isFileVerdict,
  readParsedLabel,
  signatureFileVerdict,
  type FileVerdict,
} from './file-verdict.ts';
import { readKeyFile } from '../keys/key-files.ts';
import { decryptEvmKeyBlob } from '../../core/evm/evm-key-blob.ts';

/** How to build one file's EVM input. */
export interface EvmFileOptions {
  readonly kind: EvmInputKind;
  readonly config: EvmConfig;
  /** fs UUID: read from the file's filesystem, none, or this value (ignored for portable) */
  readonly uuid: 'fs' | 'none' | Uint8Array;
  /** security.ima value to hash instead of the file's current one (a label written in this run) */
  readonly ima?: Uint8Array;
  /** read the security.ima value from this xattr instead (`user.ima` under `--xattr-user`) */
  readonly imaXattrName?: string;
  /** replace (value) or drop (null) protected xattr values (evmctl `--selinux`, `--caps`) */
  readonly xattrOverrides?: ReadonlyMap<string, Uint8Array | null>;
  /** force inode fields (evmctl `--ino --generation --uid --gid --mode`); others are read */
  readonly meta?: Partial<InodeMeta>;
  /** fs UUIDs by device, reused across files of one run (the caller owns the map) */
  readonly uuidCache?: Map<bigint, Uint8Array>;
  /**
   * read xattrs and metadata from this open file (the one being labelled) instead of opening
   * `path`: the value then describes the file the caller writes to
   */
  readonly file?: OpenFile;
}

/**
 * The exact bytes the kernel hashes for `path`'s security.evm.
 * @throws ImakitError E_IO_READ, E_IO_NOT_REGULAR, E_INODE_GENERATION (non-portable without
 *   FS_IOC_GETVERSION and no forced generation), E_FS_UUID, E_XATTR_MISSING (portable without ima)
 */
export function evmFileInput(path: string, o: EvmFileOptions): Uint8Array {
  if (o.file === undefined) return withOpenFile(path, (file) => evmFileInput(path, { ...o, file }));
  const file = o.file;
  const portable = o.kind === 'portable';
  const xattrs = new Map<string, Uint8Array>();
  for (const name of portable ? o.config.all : o.config.enabled) {
    const v = fgetXattr(file.fd, name, path);
    if (v !== null) xattrs.set(name, v);
  }
  if (o.imaXattrName !== undefined && o.imaXattrName !== 'security.ima') {
    xattrs.delete('security.ima');
    const v = fgetXattr(file.fd, o.imaXattrName, path);
    if (v !== null) xattrs.set('security.ima', v);
  }
  if (o.ima !== undefined) xattrs.set('security.ima', o.ima);
  for (const [name, v] of o.xattrOverrides ?? []) {
    if (v === null) xattrs.delete(name);
    else xattrs.set(name, v);
  }
  if (portable && !xattrs.has('security.ima'))
    throw new ImakitError(
      'E_XATTR_MISSING',
      `${path}: a portable EVM signature needs ${o.imaXattrName ?? 'security.ima'} (write it first: --imahash/--imasig)`,
      { path, field: o.imaXattrName ?? 'security.ima' },
    );
  // the generation is hashed only for non-portable values, and only read when not forced
  const needGen = !portable && o.meta?.generation === undefined;
  const host = readOpenInodeMeta(file, { generation: needGen });
  let generation = o.meta?.generation ?? 0;
  if (needGen) {
    if (host.generation === null)
      throw new ImakitError(
        'E_INODE_GENERATION',
        `${path}: the filesystem has no FS_IOC_GETVERSION; give the generation explicitly`,
        { path },
      );
    generation = host.generation;
  }
  const meta: InodeMeta = {
    ino: o.meta?.ino ?? host.ino,
    generation,
    uid: o.meta?.uid ?? host.uid,
    gid: o.meta?.gid ?? host.gid,
    mode: (o.meta?.mode ?? host.mode) & 0xffff,
  };
  let fsUuid: Uint8Array | null = null;
  if (!portable && o.config.fsUuid && o.uuid !== 'none') {
    if (o.uuid === 'fs') {
      fsUuid = o.uuidCache?.get(host.dev) ?? readFsUuidOfDev(host.dev, path).uuid;
      o.uuidCache?.set(host.dev, fsUuid);
    } else fsUuid = o.uuid;
  }
  return evmInput({ kind: o.kind, xattrs, meta, fsUuid, config: o.config });
}

/** How to make a security.evm value: HMAC with a key, or a signature. */
export type EvmValueRequest =
  | { readonly kind: 'hmac'; readonly hmacKey: Uint8Array }
  | {
      readonly kind: 'signature' | 'portable';
      readonly key: PrivateKey;
      readonly algo: HashAlgo;
      readonly keyid?: number;
    };

/**
 * The security.evm value (0x02 HMAC, 0x03 or 0x05 v2 signature) over an EVM input.
 * @throws ImakitError E_KEY_PARSE (HMAC key over 128 bytes), signer errors
 */
export function evmValueFromInput(req: EvmValueRequest, input: Uint8Array): Uint8Array {
  if (req.kind === 'hmac') {
    if (req.hmacKey.length > EVM_HMAC_KEY_BUFFER)
      throw new ImakitError(
        'E_KEY_PARSE',
        `EVM key is ${req.hmacKey.length} bytes (at most ${EVM_HMAC_KEY_BUFFER})`,
      );
    return encodeEvmXattr({ kind: 'hmac', mac: evmHmac(req.hmacKey, input) });
  }
  return signImaDigest({
    key: req.key,
    algo: req.algo,
    digest: evmDigest(req.algo, input),
    xattrType: req.kind === 'portable' ? 0x05 : 0x03,
    ...(req.keyid === undefined ? {} : { keyid: req.keyid }),
  });
}

/**
 * The verdict on one file's security.evm (statuses as ImaFileVerdict). The input is built with the
 * same options as when signing: a `fail` may mean that the metadata, the protected xattrs, the EVM
 * config or the fs UUID differ from the signer's, not only tampering.
 */
export type EvmFileVerdict = FileVerdict<'hmac' | 'signature' | 'portable' | 'signature-v1'>;

/** Options of {@link verifyEvmFile}: the input options (kind comes from the value) and the keys. */
export interface VerifyEvmFileOptions extends Omit<EvmFileOptions, 'kind'> {
  readonly keyring?: Keyring;
  readonly hmacKey?: Uint8Array;
  /** xattr to read (default security.evm) */
  readonly xattrName?: string;
}

const EVM_NOT_ESTABLISHED = [
  'that the verifying kernel uses the same EVM xattr list, h_misc layout and fs UUID setting',
  'that security.ima matches the file content (verify it separately)',
] as const;

/**
 * Verify one file's security.evm against its current metadata. Never throws for bad labels or
 * unreadable files: those are verdicts.
 */
export function verifyEvmFile(path: string, o: VerifyEvmFileOptions): EvmFileVerdict {
  const name = o.xattrName ?? 'security.evm';
  type K = NonNullable<EvmFileVerdict['kind']>;
  const out = (v: Omit<EvmFileVerdict, 'path' | 'notEstablished'>, ne: readonly string[] = []) =>
    fileVerdict<K>(path, v, ne);
  const v = readParsedLabel<K, EvmXattr>(path, name, parseEvmXattr, undefined, o.file);
  if (isFileVerdict<K>(v)) return v;
  const kind: EvmInputKind = v.kind === 'hmac' ? 'hmac' : v.portable ? 'portable' : 'signature';
  let input: Uint8Array;
  try {
    input = evmFileInput(path, { ...o, kind });
  } catch (e) {
    return errorVerdict(path, e);
  }
  if (v.kind === 'hmac') {
    if (o.hmacKey === undefined)
      return out({
        status: 'unsupported',
        kind,
        code: 'E_USAGE',
        detail: 'an HMAC needs the EVM key (--hmac-key or --kmk with --evm-key)',
      });
    const ok = bytesEqual(evmHmac(o.hmacKey, input), v.mac);
    return out(
      ok
        ? { status: 'pass', kind, algo: 'sha1', detail: 'HMAC-SHA1 matches' }
        : {
            status: 'fail',
            kind,
            algo: 'sha1',
            code: 'E_VERIFY_HMAC_MISMATCH',
            detail: 'HMAC-SHA1 does not match (wrong key, or metadata/xattrs changed)',
          },
      ['that the key is the one loaded in the kernel', ...EVM_NOT_ESTABLISHED],
    );
  }
  if (o.keyring === undefined)
    return out({ status: 'unsupported', kind, code: 'E_USAGE', detail: 'a signature needs --key' });
  const sv = verifySignatureValue(v.sig, (algo) => evmDigest(algo, input), o.keyring);
  return signatureFileVerdict<K>(path, kind, sv, [
    'key trust: whether the key is in the kernel .evm keyring',
    ...EVM_NOT_ESTABLISHED,
  ]);
}

/** Where the EVM HMAC key comes from: a plain key file, or the kernel's encrypted blob and its master key. */
export type EvmHmacKeySource = { readonly plain: string } | { readonly blob: string; readonly kmk: string };

/**
 * Read the EVM HMAC key: a plain key file (at most 128 bytes), or decrypt the `evm-key` blob
 * (`keyctl pipe` text) with the master key file, as the kernel does (core/evm-key-blob.ts).
 * @throws ImakitError E_IO_READ, E_KEY_PARSE (too long), E_EVMKEY_BLOB, E_EVMKEY_MAC (wrong kmk)
 */
export function readEvmHmacKey(src: EvmHmacKeySource): Uint8Array {
  if ('plain' in src) {
    const key = readKeyFile(src.plain);
    if (key.length > EVM_HMAC_KEY_BUFFER)
      throw new ImakitError(
        'E_KEY_PARSE',
        `EVM key is ${key.length} bytes (at most ${EVM_HMAC_KEY_BUFFER})`,
        {
          path: src.plain,
        },
      );
    return key;
  }
  const blob = readKeyFile(src.blob);
  const kmk = readKeyFile(src.kmk);
  return withPath(src.blob, () => decryptEvmKeyBlob(blob, kmk));
}

/** A whole EVM labelling of one file (`imakit evm sign|hmac`). */
export interface EvmLabelRequest {
  readonly evm: EvmValueRequest;
  /** how the input is built (kind comes from `evm`) */
  readonly input: Omit<EvmFileOptions, 'kind' | 'ima'>;
  /** write this security.ima first (`--imasig` / `--imahash`); the EVM value covers it */
  readonly ima?: ImaValueRequest;
  /** xattr names (default security.ima / security.evm); with user.ima, that value stands in for security.ima */
  readonly names?: { readonly ima: string; readonly evm: string };
  /** false: compute only (`--print`) */
  readonly write?: boolean;
  /** test seam: called after the values are computed, before the first write */
  readonly beforeWrite?: (path: string) => void;
}

/** What {@link evmLabelFile} produced. */
export interface EvmLabelResult {
  readonly path: string;
  readonly ima?: Uint8Array;
  readonly evm: Uint8Array;
  readonly written: boolean;
}

/**
 * Compute (and by default write) one file's security.evm, after its new security.ima if asked.
 * Both values are computed before the first write, so a failure leaves the labels as they were.
 * @throws ImakitError the errors of computeImaValue, evmFileInput and the xattr writes
 */
export function evmLabelFile(path: string, req: EvmLabelRequest): EvmLabelResult {
  const names = req.names ?? { ima: 'security.ima', evm: 'security.evm' };
  // one descriptor for hashing, reading the metadata and writing: a path swapped for a symlink
  // in between cannot receive the values (issue 10 item 15)
  return withOpenFile(path, (file) => {
    const ima = req.ima === undefined ? undefined : computeImaValue(path, req.ima, file).value;
    const input = evmFileInput(path, {
      imaXattrName: names.ima,
      ...req.input,
      kind: req.evm.kind,
      file,
      ...(ima === undefined ? {} : { ima }),
    });
    const evm = evmValueFromInput(req.evm, input);
    const write = req.write ?? true;
    if (write) {
      req.beforeWrite?.(path);
      if (ima !== undefined) fsetXattr(file.fd, names.ima, ima, path);
      fsetXattr(file.fd, names.evm, evm, path);
    }
    return Object.freeze({ path, ...(ima === undefined ? {} : { ima }), evm, written: write });
  });
}
