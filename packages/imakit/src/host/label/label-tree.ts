/**
 * Label whole trees: security.ima hashes or signatures, optionally EVM, for every regular file
 * below the given roots (`imakit label`). The library returns a typed report; it never prints.
 *
 * Speed: files are hashed by the worker pool (host/hash-pool.ts), each read once, while the main
 * thread signs and writes xattrs; a bounded number of files is in flight so memory stays flat.
 * Resume: a file whose existing labels are already right for the request is not rewritten
 * (`unchanged`), so a re-run after an interruption only does the remaining work. For RSA
 * (deterministic) "right" is byte equality; for ECDSA/SM2 a signature with the same algorithm and
 * key id that verifies against the key counts as right.
 * Safety: each file's values are fully computed before the first write; a failing file is
 * reported with its error code and the walk continues. Each file is opened once (O_NOFOLLOW) by the
 * main thread; the worker hashes that descriptor and the labels are read and written through it
 * (host/xattr.ts `fsetXattr`), so a symlink swapped in at the path never receives them (issue 10
 * item 15).
 * Hard links: one inode is hashed and labelled once per run and its outcome reported for every
 * path. Hashing it again through another link would race with our own xattr write, whose ctime
 * change the hash's change detection reports as E_IO_CHANGED (issue 10 item 1).
 * Signatures are never downgraded: in `hash` mode an existing signature is kept (`signaturesKept`),
 * and `keep` mode leaves security.ima alone and only (re)writes security.evm.
 */
import { ImakitError, isImakitError, type ErrorCode } from '../../errors.ts';
import { bytesEqual } from '../../core/bytes/bytes.ts';
import type { HashAlgo } from '../../core/hash/hash-algo.ts';
import type { PrivateKey } from '../../core/keys/keys.ts';
import type { EvmConfig } from '../../core/evm/evm-config.ts';
import { evmDigest, type EvmInputKind } from '../../core/evm/evm-input.ts';
import { HashPool } from '../workers/hash-pool.ts';
import { fgetXattr, flistXattrs, fsetXattr } from '../fs/xattr.ts';
import { closeFile, type OpenFile } from '../fs/open-file.ts';
import { HardLinks, forEachInode, type TreeWalkCounts } from '../fs/tree-files.ts';
import { imaLabelIsCurrent, imaValueFromDigest, signatureIsCurrent } from './label-file.ts';
import { evmFileInput, evmValueFromInput, type EvmValueRequest } from './evm-file.ts';

/** EVM part of a label request. */
export interface LabelEvmOptions {
  /** 0x02 HMAC, 0x03 signature, 0x05 portable signature */
  readonly kind: EvmInputKind;
  readonly config: EvmConfig;
  /** the evm-key (for `hmac`) */
  readonly hmacKey?: Uint8Array;
  /** fs UUID: read from each file's filesystem, none, or this value */
  readonly uuid: 'fs' | 'none' | Uint8Array;
}

/** What to label and how. */
export interface LabelTreeOptions {
  readonly roots: readonly string[];
  /**
   * security.ima content: a hash (0x01/0x04; an existing signature is kept, never downgraded), a v2
   * signature (needs `key`), or `keep` (leave security.ima as it is; only security.evm is written,
   * e.g. to recompute HMACs after a chmod)
   */
  readonly ima: 'hash' | 'sign' | 'keep';
  readonly algo: HashAlgo;
  readonly key?: PrivateKey;
  readonly keyid?: number;
  readonly evm?: LabelEvmOptions;
  /** write user.ima / user.evm instead of security.* (tests, unprivileged runs) */
  readonly xattrUser?: boolean;
  /** only files owned by this uid */
  readonly owner?: number;
  readonly oneFileSystem?: boolean;
  /** skip files that already carry both labels, without checking them (evmctl `-t x`) */
  readonly skipLabelled?: boolean;
  readonly exclude?: readonly string[];
  /** compute and compare, write nothing */
  readonly dryRun?: boolean;
  /** hashing workers (default: available parallelism) */
  readonly workers?: number;
  /**
   * called after each file (progress bars) with files done, files found so far, and whether the
   * walk has finished (only then is `found` the total)
   */
  readonly onProgress?: (done: number, found: number, walked: boolean) => void;
  /**
   * test seam: called after a file's values are computed and before they are written (a test swaps
   * the path for a symlink here to prove the write lands on the opened file only)
   */
  readonly beforeWrite?: (path: string) => void;
}

/** One file that could not be labelled. */
export interface LabelFailure {
  readonly path: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/** The typed report of a run. */
export interface LabelTreeReport {
  readonly dryRun: boolean;
  /** regular files considered (after filters), one per path */
  readonly files: number;
  /** distinct inodes among them (hashed and labelled once each) */
  readonly inodes: number;
  /** paths that are another hard link of an inode met earlier in the run */
  readonly hardLinks: number;
  /** files whose labels were written (or would be, in a dry run) */
  readonly labelled: number;
  /** files already correctly labelled (not rewritten) */
  readonly unchanged: number;
  /** files whose existing signature was kept although hashes were asked for (never downgraded) */
  readonly signaturesKept: number;
  /** entries skipped by filters or because they are not regular files */
  readonly skipped: number;
  readonly failed: number;
  /** bytes hashed */
  readonly bytes: number;
  readonly durationMs: number;
  readonly failures: readonly LabelFailure[];
  /** every path whose labels were written (or would be, in a dry run), in completion order */
  readonly changed: readonly string[];
}

/** What labelling one inode came to; shared by all its paths. */
type Outcome =
  | { readonly kind: 'labelled' | 'unchanged'; readonly signatureKept: boolean }
  | { readonly kind: 'failed'; readonly code: ErrorCode; readonly message: string };

/** Files in flight between walk and write: bounds memory whatever the tree size. */
const IN_FLIGHT = 64;

/**
 * Label every regular file below `opts.roots`.
 * @throws ImakitError only for misuse (E_USAGE: signing without a key, HMAC without a key);
 *   per-file problems are in the report
 * @example const r = await labelTree({ roots: ['/usr/bin'], ima: 'sign', algo, key }); r.labelled
 */
export async function labelTree(opts: LabelTreeOptions): Promise<LabelTreeReport> {
  if (opts.ima === 'sign' && opts.key === undefined)
    throw new ImakitError('E_USAGE', 'signing needs a private key');
  if ((opts.evm?.kind === 'signature' || opts.evm?.kind === 'portable') && opts.key === undefined)
    throw new ImakitError('E_USAGE', 'EVM signatures need a private key');
  if (opts.evm?.kind === 'hmac' && opts.evm.hmacKey === undefined)
    throw new ImakitError('E_USAGE', 'EVM HMACs need the evm-key (--hmac-key)');
  const started = performance.now();
  const names = opts.xattrUser
    ? { ima: 'user.ima', evm: 'user.evm' }
    : { ima: 'security.ima', evm: 'security.evm' };
  const pool = HashPool.create(opts.workers === undefined ? {} : { workers: opts.workers });
  const failures: LabelFailure[] = [];
  const changed: string[] = [];
  const counts: TreeWalkCounts = { files: 0, inodes: 0, skipped: 0, walked: false };
  let labelled = 0;
  let unchanged = 0;
  let signaturesKept = 0;
  let bytes = 0;
  let done = 0;
  const uuidCache = new Map<bigint, Uint8Array>();

  const failureOf = (e: unknown): Outcome =>
    isImakitError(e)
      ? { kind: 'failed', code: e.code, message: e.message }
      : { kind: 'failed', code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
  const links = new HardLinks<Outcome>((path, o) => {
    if (o.kind === 'failed') failures.push({ path, code: o.code, message: o.message });
    else {
      if (o.kind === 'labelled') {
        labelled++;
        changed.push(path);
      } else unchanged++;
      if (o.signatureKept) signaturesKept++;
    }
    done++;
    opts.onProgress?.(done, counts.files, counts.walked);
  });

  const finish = async (file: OpenFile): Promise<void> => {
    let outcome: Outcome;
    try {
      const r = await pool.hash(file.path, [opts.algo], { fd: file.fd });
      bytes += r.size;
      const digest = r.digests.get(opts.algo.name)!;
      outcome = labelOne(file, digest, opts, names, uuidCache);
    } catch (e) {
      outcome = failureOf(e);
    } finally {
      closeFile(file);
    }
    links.settle(file, outcome);
  };

  try {
    await forEachInode(opts.roots, links, counts, {
      walk: {
        oneFileSystem: opts.oneFileSystem ?? false,
        exclude: opts.exclude ?? [],
        ...(opts.owner !== undefined ? { owner: opts.owner } : {}),
      },
      inFlight: IN_FLIGHT,
      onError: (path, e) => failures.push({ path, code: e.code, message: e.message }),
      ...(opts.skipLabelled === true ? { keep: (file: OpenFile) => !hasBothLabels(file, names) } : {}),
      process: finish,
      onWalked: () => opts.onProgress?.(done, counts.files, true),
    });
  } finally {
    await pool.close();
  }
  return Object.freeze({
    dryRun: opts.dryRun ?? false,
    files: counts.files,
    inodes: counts.inodes,
    hardLinks: links.hardLinks,
    labelled,
    unchanged,
    signaturesKept,
    skipped: counts.skipped,
    failed: failures.length,
    bytes,
    durationMs: Math.round(performance.now() - started),
    failures: Object.freeze(failures),
    changed: Object.freeze(changed),
  });
}

/** A security.ima value that is a signature (v2 0x03 / v1 digsig 0x03, fs-verity sigv3 0x06). */
function isSignatureValue(v: Uint8Array | null): boolean {
  return v !== null && v.length > 0 && (v[0] === 0x03 || v[0] === 0x06);
}

/**
 * Compute one file's labels from its digest, compare with what is there, write what differs,
 * all through the open descriptor.
 */
function labelOne(
  file: OpenFile,
  digest: Uint8Array,
  opts: LabelTreeOptions,
  names: { ima: string; evm: string },
  uuidCache: Map<bigint, Uint8Array>,
): Outcome {
  const path = file.path;
  const currentIma = fgetXattr(file.fd, names.ima, path);
  const keyid = opts.keyid === undefined ? {} : { keyid: opts.keyid };
  // never downgrade a signature to a hash (issue 10 item 2): `hash` keeps an existing signature
  const keepIma = opts.ima === 'keep' || (opts.ima === 'hash' && isSignatureValue(currentIma));
  const signatureKept = opts.ima === 'hash' && keepIma;
  let imaOk = true;
  let imaValue: Uint8Array | null = currentIma;
  if (!keepIma) {
    const kind = opts.ima === 'sign' ? 'sign' : 'hash';
    const wantIma = imaValueFromDigest(
      { kind, algo: opts.algo, ...(opts.key ? { key: opts.key } : {}), ...keyid },
      digest,
    );
    imaOk = imaLabelIsCurrent(
      currentIma,
      { kind: kind === 'sign' ? 'signature' : 'hash', value: wantIma, digest },
      opts.algo,
      opts.key,
    );
    // keep a valid existing (randomized ECDSA/SM2) signature: EVM must cover what stays on disk
    imaValue = imaOk ? currentIma! : wantIma;
  }
  let evmValue: Uint8Array | undefined;
  let evmOk = true;
  if (opts.evm !== undefined) {
    const ev = opts.evm;
    const input = evmFileInput(path, {
      kind: ev.kind,
      config: ev.config,
      uuid: ev.uuid,
      ...(imaValue !== null ? { ima: imaValue } : {}),
      uuidCache,
      file,
    });
    const req: EvmValueRequest =
      ev.kind === 'hmac'
        ? { kind: 'hmac', hmacKey: ev.hmacKey! }
        : { kind: ev.kind, key: opts.key!, algo: opts.algo, ...keyid };
    evmValue = evmValueFromInput(req, input);
    const currentEvm = fgetXattr(file.fd, names.evm, path);
    evmOk =
      currentEvm !== null &&
      (bytesEqual(currentEvm, evmValue) ||
        (req.kind !== 'hmac' &&
          signatureIsCurrent(currentEvm, evmValue, opts.algo, evmDigest(opts.algo, input), req.key)));
  }
  if (imaOk && evmOk) return { kind: 'unchanged', signatureKept };
  if (opts.dryRun) return { kind: 'labelled', signatureKept };
  opts.beforeWrite?.(path);
  if (!imaOk) fsetXattr(file.fd, names.ima, imaValue!, path);
  if (evmValue !== undefined && (!evmOk || !imaOk)) fsetXattr(file.fd, names.evm, evmValue, path);
  return { kind: 'labelled', signatureKept };
}

/** Whether a file already has both the IMA and the EVM xattr (errors: treat as not labelled). */
function hasBothLabels(file: OpenFile, names: { ima: string; evm: string }): boolean {
  try {
    const have = new Set(flistXattrs(file.fd, file.path));
    return have.has(names.ima) && have.has(names.evm);
  } catch {
    return false;
  }
}
