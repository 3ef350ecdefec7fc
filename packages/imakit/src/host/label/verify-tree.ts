/**
 * Verify labelled trees (`imakit verify DIR`, issue 10 item 7): security.ima of every regular file
 * below the roots (hash recomputed, signature checked against the keyring) and optionally
 * security.evm (HMAC with the evm-key, signatures with the keyring), with a summary per verdict and
 * every failing file with its cause. The library returns the report; it never prints.
 *
 * Like `labelTree`: the walk is host/tree-files.ts (same --exclude, --owner, --one-file-system;
 * hard links checked once per inode, reported for every path), each file is opened once and its
 * label read through that descriptor, and the content is hashed by the worker pool with the
 * algorithm the label names (so each file is read once).
 *
 * Not established: that the kernel would appraise the files the same way (policy, keyrings, EVM
 * state), nor key trust (see each verdict's `notEstablished`).
 */
import { ImakitError, isImakitError, type ErrorCode } from '../../errors.ts';
import { hashAlgoById, type HashAlgo } from '../../core/hash/hash-algo.ts';
import type { Keyring } from '../../core/labels/ima-signature.ts';
import { parseImaXattr } from '../../core/labels/ima-xattr.ts';
import { HashPool } from '../workers/hash-pool.ts';
import type { FileDigests } from '../fs/file-hash.ts';
import { fgetXattr } from '../fs/xattr.ts';
import { closeFile, type OpenFile } from '../fs/open-file.ts';
import { HardLinks, forEachInode, type TreeWalkCounts } from '../fs/tree-files.ts';
import { verifyImaFile, type ImaFileVerdict } from './label-file.ts';
import { verifyEvmFile, type EvmFileVerdict, type VerifyEvmFileOptions } from './evm-file.ts';

/** What to check and where. */
export interface VerifyTreeOptions {
  readonly roots: readonly string[];
  /** certificates for IMA (and EVM) signatures */
  readonly keyring: Keyring;
  /** read user.ima / user.evm (tests, unprivileged runs) */
  readonly xattrUser?: boolean;
  /** also verify security.evm with these input options and the HMAC key (if any) */
  readonly evm?: Omit<VerifyEvmFileOptions, 'keyring' | 'xattrName' | 'file' | 'imaXattrName'>;
  readonly owner?: number;
  readonly oneFileSystem?: boolean;
  readonly exclude?: readonly string[];
  /** hashing workers (default: available parallelism) */
  readonly workers?: number;
  /** after each file: files done, files found so far, whether the walk has finished */
  readonly onProgress?: (done: number, found: number, walked: boolean) => void;
}

/** Verdict statuses, as in FileVerdict. */
export type VerdictStatus = ImaFileVerdict['status'];

/** One file that did not pass, with its cause. */
export interface VerifyTreeFailure {
  readonly path: string;
  /** which label failed (the first that did: ima, then evm) */
  readonly label: 'ima' | 'evm' | 'file';
  readonly status: VerdictStatus;
  /** catalogue code of the cause (E_VERIFY_HASH_MISMATCH, E_SIG_INVALID, E_VERIFY_NO_LABEL…) */
  readonly code: ErrorCode;
  readonly detail: string;
}

/** The report. */
export interface VerifyTreeReport {
  /** regular files checked (after filters), one per path */
  readonly files: number;
  readonly inodes: number;
  readonly hardLinks: number;
  /** files whose every checked label passed */
  readonly passed: number;
  readonly failed: number;
  /** entries skipped: not regular files, or filtered out */
  readonly skipped: number;
  /** files per security.ima verdict status */
  readonly ima: Readonly<Partial<Record<VerdictStatus, number>>>;
  /** files per security.evm verdict status (when EVM was checked) */
  readonly evm?: Readonly<Partial<Record<VerdictStatus, number>>>;
  /** every file that did not pass */
  readonly failures: readonly VerifyTreeFailure[];
  readonly bytes: number;
  readonly durationMs: number;
}

/** Files in flight between walk and verdict. */
const IN_FLIGHT = 64;

interface Outcome {
  readonly ima: ImaFileVerdict | null;
  readonly evm: EvmFileVerdict | null;
  /** could not even be opened / read */
  readonly error?: { readonly code: ErrorCode; readonly detail: string };
}

/** What the label needs hashed: the algorithm (and fs-verity) its own header names. */
function hashNeeds(raw: Uint8Array | null): { algo: HashAlgo; verity: boolean } | null {
  if (raw === null) return null;
  try {
    const x = parseImaXattr(raw);
    if (x.kind === 'digest') return { algo: x.algo, verity: false };
    if (x.kind !== 'signature') return null;
    const algo = hashAlgoById(x.sig.hashAlgo);
    return algo === undefined ? null : { algo, verity: x.sig.xattrType === 0x06 };
  } catch {
    return null; // malformed: the verifier reports it without hashing
  }
}

/**
 * Verify every regular file below `opts.roots`.
 * @throws ImakitError only for misuse (E_USAGE); per-file problems are in the report
 * @example const r = await verifyTree({ roots: ['/usr/bin'], keyring }); r.failed
 */
export async function verifyTree(opts: VerifyTreeOptions): Promise<VerifyTreeReport> {
  if (opts.roots.length === 0) throw new ImakitError('E_USAGE', 'no paths to verify');
  const started = performance.now();
  const names = opts.xattrUser
    ? { ima: 'user.ima', evm: 'user.evm' }
    : { ima: 'security.ima', evm: 'security.evm' };
  const pool = HashPool.create(opts.workers === undefined ? {} : { workers: opts.workers });
  const failures: VerifyTreeFailure[] = [];
  const ima: Partial<Record<VerdictStatus, number>> = {};
  const evm: Partial<Record<VerdictStatus, number>> = {};
  const counts: TreeWalkCounts = { files: 0, inodes: 0, skipped: 0, walked: false };
  let passed = 0;
  let bytes = 0;
  let done = 0;
  const uuidCache = new Map<bigint, Uint8Array>();

  const links = new HardLinks<Outcome>((path, o) => {
    if (o.error !== undefined)
      failures.push({ path, label: 'file', status: 'error', code: o.error.code, detail: o.error.detail });
    else {
      if (o.ima !== null) ima[o.ima.status] = (ima[o.ima.status] ?? 0) + 1;
      if (o.evm !== null) evm[o.evm.status] = (evm[o.evm.status] ?? 0) + 1;
      const bad = [o.ima, o.evm].find((v) => v !== null && v.status !== 'pass');
      if (bad === undefined || bad === null) passed++;
      else
        failures.push({
          path,
          label: bad === o.ima ? 'ima' : 'evm',
          status: bad.status,
          code: bad.code ?? 'E_INTERNAL',
          detail: bad.detail,
        });
    }
    done++;
    opts.onProgress?.(done, counts.files, counts.walked);
  });

  const check = async (file: OpenFile): Promise<void> => {
    let outcome: Outcome;
    try {
      const raw = fgetXattr(file.fd, names.ima, file.path);
      const need = hashNeeds(raw);
      let hashed: FileDigests | undefined;
      if (need !== null) {
        hashed = await pool.hash(file.path, need.verity ? [] : [need.algo], {
          fd: file.fd,
          ...(need.verity && (need.algo.name === 'sha256' || need.algo.name === 'sha512')
            ? { verity: need.algo.name }
            : {}),
        });
        bytes += hashed.size;
      }
      const iv = verifyImaFile(file.path, {
        keyring: opts.keyring,
        xattrName: names.ima,
        file,
        ...(raw !== null ? { value: raw } : {}),
        ...(hashed !== undefined ? { hashed } : {}),
      });
      const ev =
        opts.evm === undefined
          ? null
          : verifyEvmFile(file.path, {
              ...opts.evm,
              keyring: opts.keyring,
              xattrName: names.evm,
              imaXattrName: names.ima,
              uuidCache,
              file,
            });
      outcome = { ima: iv, evm: ev };
    } catch (e) {
      outcome = {
        ima: null,
        evm: null,
        error: isImakitError(e)
          ? { code: e.code, detail: e.message }
          : { code: 'E_INTERNAL', detail: e instanceof Error ? e.message : String(e) },
      };
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
      onError: (path, e) =>
        failures.push({ path, label: 'file', status: 'error', code: e.code, detail: e.message }),
      process: check,
      onWalked: () => opts.onProgress?.(done, counts.files, true),
    });
  } finally {
    await pool.close();
  }
  return Object.freeze({
    files: counts.files,
    inodes: counts.inodes,
    hardLinks: links.hardLinks,
    passed,
    failed: failures.length,
    skipped: counts.skipped,
    ima: Object.freeze(ima),
    ...(opts.evm !== undefined ? { evm: Object.freeze(evm) } : {}),
    failures: Object.freeze(failures),
    bytes,
    durationMs: Math.round(performance.now() - started),
  });
}
