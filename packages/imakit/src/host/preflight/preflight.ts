/**
 * Preflight (issue 5): what the kernel would do with a policy on a real tree, file by file and
 * operation by operation, before appraisal is switched on. The tree's real xattrs, owners, modes
 * (and, with EVM, inode numbers and generations) feed the emulator (src/kernel); only files whose
 * decision depends on their digest are hashed.
 *
 * Pipeline: the main thread walks (readdirSync with file types: ~1 µs per entry) and cuts the paths
 * into batches; each worker (host/preflight-worker.ts) lstat's, reads xattrs, hashes and asks its
 * own emulated kernel, so the per-file work runs on every core and the per-message cost is paid
 * once per batch. Small trees are judged inline (a worker's start-up costs more than they do).
 * The library never prints: progress goes to `hooks.onProgress`.
 */
import { readdirSync, statfsSync, lstatSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { formatPolicy } from '../../core/policy/index.ts';
import { FS_MAGIC } from '../../core/policy/builtin.ts';
import { formatUuid } from '../../core/bytes/uuid.ts';
import type { FsInfo } from '../../kernel/inode-state.ts';
import { getProfile, DEFAULT_PROFILE } from '../../kernel/profiles.ts';
import { loadPolicyRules } from './policy-source.ts';
import { readEvmHmacKey, type EvmHmacKeySource } from '../label/evm-file.ts';
import { readFsUuid } from '../fs/fs-uuid.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import {
  PreflightJudge,
  type FileJudgement,
  type JudgeSetup,
  type KeyNote,
  type PreflightResult,
} from './preflight-judge.ts';
import { JudgePool } from './preflight-pool.ts';

export type { PreflightResult, KeyNote } from './preflight-judge.ts';

/** Options of {@link preflight}. Exactly one of `policyFile`, `policyText`, `builtin`. */
export interface PreflightOptions {
  readonly policyFile?: string;
  readonly policyText?: string;
  /** built-in policy names (`appraise_tcb`, `tcb|appraise_tcb`): the boot policy */
  readonly builtin?: string;
  /** ima_appraise= (default enforce) */
  readonly appraise?: 'enforce' | 'log' | 'fix';
  /** certificates for the IMA keyring: file paths or DER/PEM bytes */
  readonly keys?: ReadonlyArray<string | Uint8Array>;
  /** the tree stands for a filesystem with this UUID (fsuuid= rules; the EVM HMAC) */
  readonly fsuuid?: string | null;
  /** the tree stands for this filesystem type (a name of FS_MAGIC); default: statfs of ROOT */
  readonly fsType?: string;
  /** kernel profile (default: the mainline default) */
  readonly profile?: string;
  /** operations: read, exec, mmap (default read, plus exec for files with an x bit) */
  readonly ops?: readonly string[];
  /** uid of the accessing process (default 0) */
  readonly uid?: number;
  /**
   * EVM initialised with this HMAC key (`echo 1 > evm`): bytes, or where to read it (a plain key
   * file, or the kernel's encrypted blob with its master key). Files are then judged with their
   * security.evm (missing-HMAC, invalid-HMAC). Needs the tree's fs UUID (`fsuuid` or readable).
   */
  readonly evmKey?: Uint8Array | EvmHmacKeySource;
  /** worker threads: 0 = judge on this thread; default: up to the CPUs for trees of >= 2,048 files */
  readonly workers?: number;
}

/** Callbacks; the library never prints. */
export interface PreflightHooks {
  /** files judged so far, of `total` found by the walk */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The report. */
export interface PreflightReport {
  readonly results: PreflightResult[];
  readonly summary: {
    readonly profile: string;
    readonly appraise: string;
    readonly files: number;
    readonly checks: number;
    readonly allowed: number;
    readonly denied: number;
    /** audit causes (also in log/fix mode) with their counts */
    readonly causes: Record<string, number>;
    /** files whose security.ima fix mode would (re)write */
    readonly fixWrites: number;
    readonly hashed: number;
    readonly unreadable: Array<{ path: string; code: string; message: string }>;
    /** certificates given, and whether the profile's kernel could load each */
    readonly keys: readonly KeyNote[];
    /** EVM was initialised with an HMAC key */
    readonly evm: boolean;
    /** the fs UUID the tree stood for (given, or read for EVM), mixed into HMACs */
    readonly fsuuid: string | null;
    /** the profile's EVM xattr list (core/evm-config.ts preset): what a relabel must hash */
    readonly evmPreset: string;
    readonly workers: number;
    readonly durationMs: number;
    readonly filesPerSecond: number;
  };
}

/** Trees with fewer files are judged inline unless `workers` is given. */
const WORKER_MIN_FILES = 2048;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Run a preflight over `root`.
 * @throws ImakitError E_USAGE (bad options), E_IO_READ (root, key or policy file), E_POLICY_*,
 *   E_PROFILE_UNKNOWN, E_KEY_PARSE, E_EVMKEY_* — never for a file of the tree (those are reported
 *   in `summary.unreadable` and the walk goes on)
 */
export async function preflight(
  root: string,
  opts: PreflightOptions,
  hooks: PreflightHooks = {},
): Promise<PreflightReport> {
  const started = performance.now();
  try {
    lstatSync(root);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', root);
  }
  const setup = buildSetup(root, opts);
  // the main thread's judge validates the policy and keys before any worker starts
  const local = new PreflightJudge(setup);
  let walkErrors: Array<{ path: string; code: string; message: string }> = [];
  let workers = 0;
  if (
    opts.workers !== undefined &&
    (!Number.isInteger(opts.workers) || opts.workers < 0 || opts.workers > 256)
  )
    throw new ImakitError('E_USAGE', `workers: ${String(opts.workers)}: use 0..256`);
  // workers start while the walk goes on, once the tree is known to be large enough to pay them
  let pool: JudgePool | null = null;
  let judged: FileJudgement[];
  try {
    const { files, errors } = walkFiles(root, (count) => {
      if (pool !== null) return;
      if (opts.workers !== undefined ? opts.workers > 0 && count === 1 : count === WORKER_MIN_FILES)
        pool = new JudgePool(setup, opts.workers ?? Math.min(availableParallelism(), 8));
    });
    walkErrors = errors;
    const pairs = files.map((p) => [p, relative(root, p)] as const);
    const p = pool as JudgePool | null;
    workers = p?.size ?? 0;
    judged =
      p !== null
        ? await p.run(pairs, hooks.onProgress)
        : pairs.map(([abs, rel], i) => {
            const j = local.judge(abs, rel);
            if ((i & 255) === 255 || i === pairs.length - 1) hooks.onProgress?.(i + 1, pairs.length);
            return j;
          });
  } finally {
    await (pool as JudgePool | null)?.close();
  }

  const results: PreflightResult[] = [];
  const causes: Record<string, number> = {};
  const unreadable = walkErrors.map((e) => ({
    path: relative(root, e.path),
    code: e.code,
    message: e.message,
  }));
  let fixWrites = 0;
  let hashed = 0;
  let nFiles = 0;
  for (const j of judged) {
    if (j.kind === 'skipped') continue;
    if (j.kind === 'unreadable') {
      unreadable.push({ path: j.path, code: j.code, message: j.message });
      continue;
    }
    nFiles++;
    if (j.hashed) hashed++;
    if (j.fixWrite) fixWrites++;
    for (const r of j.results) {
      results.push(r);
      if (r.cause !== null) causes[r.cause] = (causes[r.cause] ?? 0) + 1;
    }
  }
  const durationMs = Math.round(performance.now() - started);
  const denied = results.filter((r) => r.decision === 'denied').length;
  return {
    results,
    summary: {
      profile: setup.profile,
      appraise: setup.appraise,
      files: nFiles,
      checks: results.length,
      allowed: results.length - denied,
      denied,
      causes,
      fixWrites,
      hashed,
      unreadable,
      keys: local.keys,
      evm: setup.evmHmacKey !== null,
      fsuuid: setup.fs.uuid,
      evmPreset: getProfile(setup.profile).evmPreset,
      workers,
      durationMs,
      filesPerSecond: durationMs > 0 ? Math.round((nFiles * 1000) / durationMs) : nFiles,
    },
  };
}

/** Options → the plain-data setup every judge is built from. */
function buildSetup(root: string, opts: PreflightOptions): JudgeSetup {
  const profile = getProfile(opts.profile ?? DEFAULT_PROFILE);
  const appraise = opts.appraise ?? 'enforce';
  if (!['enforce', 'log', 'fix'].includes(appraise))
    throw new ImakitError('E_USAGE', `appraise ${appraise}: use enforce, log or fix`);
  const opsGiven = opts.ops !== undefined && opts.ops.length > 0;
  const ops = opsGiven ? [...(opts.ops ?? [])] : ['read', 'exec'];
  for (const o of ops)
    if (!['read', 'exec', 'mmap'].includes(o))
      throw new ImakitError('E_USAGE', `op ${o}: use exec, read or mmap`);
  const uid = opts.uid ?? 0;
  if (!Number.isInteger(uid) || uid < 0 || uid > 0xffffffff)
    throw new ImakitError('E_USAGE', `uid ${String(opts.uid)}: not a uid`);
  const rules = loadPolicyRules(
    opts.builtin !== undefined
      ? { builtin: opts.builtin }
      : opts.policyFile !== undefined
        ? { policyFile: opts.policyFile }
        : opts.policyText !== undefined
          ? { policyText: opts.policyText }
          : {},
    profile,
  );
  let fsuuid = opts.fsuuid?.toLowerCase() ?? null;
  if (fsuuid !== null && !UUID_RE.test(fsuuid))
    throw new ImakitError('E_USAGE', `fsuuid ${String(opts.fsuuid)}: not a dashed UUID`);
  const evmHmacKey =
    opts.evmKey === undefined
      ? null
      : opts.evmKey instanceof Uint8Array
        ? opts.evmKey
        : readEvmHmacKey(opts.evmKey);
  if (evmHmacKey !== null && fsuuid === null) {
    // the kernel mixes the filesystem's UUID into every HMAC (formats.md §4.3)
    try {
      fsuuid = formatUuid(readFsUuid(root).uuid);
    } catch (e) {
      throw new ImakitError(
        'E_USAGE',
        `EVM: the UUID of the filesystem holding ${root} is not readable here; give it (--fsuuid)`,
        { path: root },
        { cause: e },
      );
    }
  }
  // a built-in policy is the boot policy (ima_policy=…); a file is a custom policy written after boot
  const cmdline = [
    `ima_appraise=${appraise}`,
    ...rules.builtinNames.map((n) => (n === 'ima_tcb' || n === 'ima_appraise_tcb' ? n : `ima_policy=${n}`)),
    ...(rules.failSecurely && rules.builtinNames.length === 0 ? ['ima_policy=fail_securely'] : []),
  ];
  const keys = (opts.keys ?? []).map((k, i) => {
    if (k instanceof Uint8Array) return { source: `key ${i + 1}`, data: k };
    return { source: k, data: readBoundedFile(k, 'certificate') };
  });
  return {
    profile: profile.name,
    cmdline,
    policyText:
      rules.builtinNames.length > 0
        ? null
        : formatPolicy(rules.rules, { reloadable: true, hidden: rules.inactive }),
    keys,
    evmHmacKey,
    fs: treeFs(root, fsuuid, opts.fsType),
    ops,
    opsGiven,
    uid,
    appraise,
  };
}

/** The filesystem the tree stands for (statfs magic → name, unless a type is given). */
function treeFs(root: string, uuid: string | null, fsType: string | undefined): FsInfo {
  let magic: number = FS_MAGIC.ext4;
  if (fsType !== undefined) {
    const m = (FS_MAGIC as Record<string, number>)[fsType];
    if (m === undefined)
      throw new ImakitError(
        'E_USAGE',
        `filesystem type ${fsType}: use one of ${Object.keys(FS_MAGIC).join(', ')}`,
      );
    magic = m;
  } else {
    try {
      magic = Number(statfsSync(root).type) >>> 0;
    } catch {
      // keep ext4
    }
  }
  const name = fsType ?? Object.entries(FS_MAGIC).find(([, m]) => m === magic)?.[0] ?? 'ext4';
  return Object.freeze({
    name,
    magic,
    uuid,
    dev: 'preflight',
    mountpoint: '/',
    xattrs: true,
    unverifiableSignatures: false,
    untrustedMounter: false,
  });
}

/**
 * Regular-looking entries below `root` (depth first, sorted as readdir returns them) and the
 * directories that could not be read. Symlinks, FIFOs, sockets and devices are not files IMA
 * appraises through a path walk, and opening a FIFO could block.
 */
function walkFiles(
  root: string,
  onCount: (count: number) => void,
): {
  files: string[];
  errors: Array<{ path: string; code: string; message: string }>;
} {
  const files: string[] = [];
  const errors: Array<{ path: string; code: string; message: string }> = [];
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      const ie = fromSystemError(e, 'E_IO_READ', dir);
      errors.push({ path: dir, code: ie.code, message: ie.message });
      continue;
    }
    const subdirs: string[] = [];
    for (const d of ents) {
      const p = join(dir, d.name);
      if (d.isDirectory()) subdirs.push(p);
      else if (d.isFile()) onCount(files.push(p));
      else if (
        !d.isSymbolicLink() &&
        !d.isFIFO() &&
        !d.isSocket() &&
        !d.isBlockDevice() &&
        !d.isCharacterDevice()
      )
        onCount(files.push(p)); // DT_UNKNOWN: the judge's lstat decides
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i] as string);
  }
  return { files, errors };
}

/** Shaped like host/demo.ts `DemoPrediction`. */
export interface TreePrediction {
  readonly policy: string;
  readonly mode: string;
  readonly checks: number;
  readonly denied: Array<{ path: string; op: string; cause: string | null }>;
}

/** Options of {@link predictTree}. */
export interface PredictTreeOptions {
  /** EVM initialised with this HMAC key (then metadata changes are invalid-HMAC) */
  readonly evmHmacKey?: Uint8Array;
  /** fs UUID the labels were made for (EVM); default: the filesystem's own */
  readonly fsuuid?: string;
  /** the filesystem type the tree stands for (default: statfs) */
  readonly fsType?: string;
  readonly profile?: string;
}

/**
 * What a Debian 6.1 kernel booted with `ima_policy=appraise_tcb ima_appraise=enforce` and `certDer`
 * in its IMA keyring would deny below `root` (reads, and execs of executables): the demo's step 7.
 */
export async function predictTree(
  root: string,
  certDer: Uint8Array,
  o: PredictTreeOptions = {},
): Promise<TreePrediction> {
  const r = await preflight(root, {
    builtin: 'appraise_tcb',
    appraise: 'enforce',
    profile: o.profile ?? 'debian-6.1',
    keys: [certDer],
    ...(o.evmHmacKey !== undefined ? { evmKey: o.evmHmacKey } : {}),
    ...(o.fsuuid !== undefined ? { fsuuid: o.fsuuid } : {}),
    ...(o.fsType !== undefined ? { fsType: o.fsType } : {}),
  });
  return {
    policy: `appraise_tcb (${r.summary.profile}${r.summary.evm ? ', EVM HMAC key loaded' : ''})`,
    mode: r.summary.appraise,
    checks: r.summary.checks,
    denied: r.results
      .filter((x) => x.decision === 'denied')
      .map((x) => ({ path: x.path, op: x.op, cause: x.cause })),
  };
}
