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
 * reported with its error code and the walk continues.
 */
import { lstatSync } from 'node:fs';
import { ImakitError, isImakitError, type ErrorCode } from '../../errors.ts';
import { bytesEqual } from '../../core/bytes/bytes.ts';
import type { HashAlgo } from '../../core/hash/hash-algo.ts';
import type { PrivateKey } from '../../core/keys/keys.ts';
import type { EvmConfig } from '../../core/evm/evm-config.ts';
import { evmDigest, type EvmInputKind } from '../../core/evm/evm-input.ts';
import { HashPool } from '../workers/hash-pool.ts';
import { getXattr, listXattrs, setXattr } from '../fs/xattr.ts';
import { walkTree } from '../fs/walk.ts';
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
  /** security.ima content: a hash (0x01/0x04) or a v2 signature (needs `key`) */
  readonly ima: 'hash' | 'sign';
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
  /** called after each file (progress bars) with files done and files found so far */
  readonly onProgress?: (done: number, found: number) => void;
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
  /** regular files considered (after filters) */
  readonly files: number;
  /** files whose labels were written (or would be, in a dry run) */
  readonly labelled: number;
  /** files already correctly labelled (not rewritten) */
  readonly unchanged: number;
  /** entries skipped by filters or because they are not regular files */
  readonly skipped: number;
  readonly failed: number;
  /** bytes hashed */
  readonly bytes: number;
  readonly durationMs: number;
  readonly failures: readonly LabelFailure[];
}

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
  let files = 0;
  let labelled = 0;
  let unchanged = 0;
  let skipped = 0;
  let bytes = 0;
  let done = 0;
  const uuidCache = new Map<bigint, Uint8Array>();

  const fail = (path: string, e: unknown): void => {
    failures.push(
      isImakitError(e)
        ? { path, code: e.code, message: e.message }
        : { path, code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) },
    );
  };

  const finish = async (path: string): Promise<void> => {
    try {
      const r = await pool.hash(path, [opts.algo]);
      bytes += r.size;
      const digest = r.digests.get(opts.algo.name)!;
      const changed = labelOne(path, digest, opts, names, uuidCache);
      if (changed) labelled++;
      else unchanged++;
    } catch (e) {
      fail(path, e);
    } finally {
      done++;
      opts.onProgress?.(done, files);
    }
  };

  const inflight = new Set<Promise<void>>();
  try {
    for (const root of opts.roots) {
      for await (const e of walkTree(root, {
        oneFileSystem: opts.oneFileSystem ?? false,
        exclude: opts.exclude ?? [],
      })) {
        if (e.kind === 'error') {
          fail(
            e.path,
            new ImakitError('E_IO_READ', `${e.error.code ?? 'error'}: ${e.error.message}`, { path: e.path }),
          );
          continue;
        }
        if (e.type !== 'file') {
          skipped++;
          continue;
        }
        if (opts.owner !== undefined) {
          try {
            if (lstatSync(e.path).uid !== opts.owner) {
              skipped++;
              continue;
            }
          } catch (err) {
            fail(e.path, new ImakitError('E_IO_READ', (err as Error).message, { path: e.path }));
            continue;
          }
        }
        if (opts.skipLabelled === true && hasBothLabels(e.path, names)) {
          skipped++;
          continue;
        }
        files++;
        const p = finish(e.path).then(() => {
          inflight.delete(p);
        });
        inflight.add(p);
        if (inflight.size >= IN_FLIGHT) await Promise.race(inflight);
      }
    }
    await Promise.all(inflight);
  } finally {
    await pool.close();
  }
  return Object.freeze({
    dryRun: opts.dryRun ?? false,
    files,
    labelled,
    unchanged,
    skipped,
    failed: failures.length,
    bytes,
    durationMs: Math.round(performance.now() - started),
    failures: Object.freeze(failures),
  });
}

/**
 * Compute one file's labels from its digest, compare with what is there, write what differs.
 * @returns true when something was (or, dry run, would be) written
 */
function labelOne(
  path: string,
  digest: Uint8Array,
  opts: LabelTreeOptions,
  names: { ima: string; evm: string },
  uuidCache: Map<bigint, Uint8Array>,
): boolean {
  const currentIma = getXattr(path, names.ima);
  const keyid = opts.keyid === undefined ? {} : { keyid: opts.keyid };
  const wantIma = imaValueFromDigest(
    { kind: opts.ima, algo: opts.algo, ...(opts.key ? { key: opts.key } : {}), ...keyid },
    digest,
  );
  const imaOk = imaLabelIsCurrent(
    currentIma,
    { kind: opts.ima === 'sign' ? 'signature' : 'hash', value: wantIma, digest },
    opts.algo,
    opts.key,
  );
  // keep a valid existing (randomized ECDSA/SM2) signature: EVM must cover what stays on disk
  const imaValue = imaOk ? currentIma! : wantIma;
  let evmValue: Uint8Array | undefined;
  let evmOk = true;
  if (opts.evm !== undefined) {
    const ev = opts.evm;
    const input = evmFileInput(path, {
      kind: ev.kind,
      config: ev.config,
      uuid: ev.uuid,
      ima: imaValue,
      uuidCache,
    });
    const req: EvmValueRequest =
      ev.kind === 'hmac'
        ? { kind: 'hmac', hmacKey: ev.hmacKey! }
        : { kind: ev.kind, key: opts.key!, algo: opts.algo, ...keyid };
    evmValue = evmValueFromInput(req, input);
    const currentEvm = getXattr(path, names.evm);
    evmOk =
      currentEvm !== null &&
      (bytesEqual(currentEvm, evmValue) ||
        (req.kind !== 'hmac' &&
          signatureIsCurrent(currentEvm, evmValue, opts.algo, evmDigest(opts.algo, input), req.key)));
  }
  if (imaOk && evmOk) return false;
  if (opts.dryRun) return true;
  if (!imaOk) setXattr(path, names.ima, wantIma);
  if (evmValue !== undefined && (!evmOk || !imaOk)) setXattr(path, names.evm, evmValue);
  return true;
}

/** Whether a file already has both the IMA and the EVM xattr (errors: treat as not labelled). */
function hasBothLabels(path: string, names: { ima: string; evm: string }): boolean {
  try {
    const have = new Set(listXattrs(path));
    return have.has(names.ima) && have.has(names.evm);
  } catch {
    return false;
  }
}
