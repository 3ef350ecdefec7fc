/**
 * `imakit preflight ROOT --policy FILE|--builtin NAME …`: what the kernel would do with this policy on
 * this tree, file by file and operation by operation, before appraisal is switched on (issue 5).
 *
 * The tree's real xattrs, owners and modes feed the emulator (src/kernel); `--fsuuid` makes the tree
 * stand for a filesystem with that UUID. Only files whose decision depends on their digest (an
 * appraised file with a hash or signature xattr in an algorithm the kernel can allocate) are hashed,
 * in parallel in the hash pool (src/host/hash-pool.ts); everything else is decided from metadata.
 *
 * Exit: 0 every access allowed, 1 some access denied, 2 bad options or policy, 3 some files
 * unreadable (reported per file; the walk goes on).
 */
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statfsSync,
} from 'node:fs';
import { join } from 'node:path';
import { relative } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { ImakitError, EXIT, fromSystemError } from '../../errors.ts';
import { createHasher } from '../../core/hash-algo.ts';
import { loadPublicKeys } from '../../core/keys.ts';
import { compilePolicy, formatPolicy, IMA } from '../../core/policy/index.ts';
import { FS_MAGIC } from '../../core/policy/builtin.ts';
import { Emulator, type HookOutcome, type Task } from '../../kernel/emulator.ts';
import { imaGetHashAlgo } from '../../kernel/appraise.ts';
import type { FsInfo } from '../../kernel/inode-state.ts';
import { getProfile, PROFILES, DEFAULT_PROFILE } from '../../kernel/profiles.ts';
import { getXattr } from '../../host/xattr.ts';
import { HashPool } from '../../host/hash-pool.ts';
import { createProgress } from '../progress.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { loadRules, OP_HOOKS } from './policy.ts';

/** One decision of the report. */
export interface PreflightResult {
  readonly path: string;
  readonly op: string;
  readonly decision: 'allowed' | 'denied';
  /** the kernel's audit `op=` (appraise_data, collect_data), null when the kernel logs nothing */
  readonly auditOp: string | null;
  readonly cause: string | null;
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
    readonly durationMs: number;
    readonly filesPerSecond: number;
  };
}

interface PreflightFlags {
  policy?: string;
  builtin?: string;
  appraise: string;
  key: string[];
  fsuuid?: string;
  profile: string;
  op: string[];
  uid: string;
  workers?: string;
  json?: boolean;
}

interface Candidate {
  readonly abs: string;
  readonly rel: string;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  readonly ino: number;
  readonly size: number;
  readonly ima: Uint8Array | null;
  readonly ops: string[];
  digest?: { algo: string; value: Uint8Array };
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Files at least this large are hashed in the worker pool; smaller ones inline. */
const POOL_MIN_SIZE = 1 << 20;

/**
 * A synchronous depth-first walk of regular files (and errors). Preflight is metadata-bound: the
 * async generator of host/walk.ts costs ~10 µs per entry, readdirSync with file types ~1 µs, which
 * matters against `sha256sum` on trees of small files (bench/policy-match.ts).
 */
function* walkFiles(root: string): Generator<{ path: string; error?: NodeJS.ErrnoException }> {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      yield { path: dir, error: e as NodeJS.ErrnoException };
      continue;
    }
    const subdirs: string[] = [];
    for (const d of ents) {
      const p = join(dir, d.name);
      if (d.isDirectory()) subdirs.push(p);
      else if (
        d.isFile() ||
        (d.isSymbolicLink() === false &&
          !d.isFIFO() &&
          !d.isSocket() &&
          !d.isBlockDevice() &&
          !d.isCharacterDevice())
      )
        yield { path: p };
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i] as string);
  }
}

/**
 * Hash a small file inline: open (no symlink following), read into a reused buffer, close. For
 * small files this is ~4x cheaper than a round trip through the worker pool.
 */
function hashSmallFile(path: string, algo: string, buffer: Buffer): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const h = createHasher(algo);
    let n: number;
    while ((n = readSync(fd, buffer, 0, buffer.length, null)) > 0) h.update(buffer.subarray(0, n));
    return h.digest();
  } finally {
    closeSync(fd);
  }
}

/** The filesystem the tree lives on (statfs magic → name). */
function treeFs(root: string, uuid: string | null): FsInfo {
  let magic = FS_MAGIC.ext4;
  try {
    magic = Number(statfsSync(root).type) >>> 0;
  } catch {
    // keep ext4
  }
  const name = Object.entries(FS_MAGIC).find(([, m]) => m === magic)?.[0] ?? 'ext4';
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
 * Run the preflight.
 * @throws ImakitError E_USAGE, E_POLICY_*, E_PROFILE_UNKNOWN, E_KEY_PARSE
 */
export async function preflight(root: string, f: PreflightFlags, io: CliIo): Promise<PreflightReport> {
  const started = Date.now();
  const profile = getProfile(f.profile);
  if (!['enforce', 'log', 'fix'].includes(f.appraise))
    throw new ImakitError('E_USAGE', `--appraise ${f.appraise}: use enforce, log or fix`);
  const ops = f.op.length > 0 ? f.op : ['read', 'exec'];
  for (const o of ops)
    if (!['read', 'exec', 'mmap'].includes(o))
      throw new ImakitError('E_USAGE', `--op ${o}: use exec, read or mmap`);
  const uid = Number(f.uid);
  if (!Number.isInteger(uid) || uid < 0) throw new ImakitError('E_USAGE', `--uid ${f.uid}: not a uid`);
  const { rules, inactive, failSecurely } = loadRules(f, profile);
  const fsuuid = f.fsuuid?.toLowerCase() ?? null;
  if (fsuuid !== null && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(fsuuid))
    throw new ImakitError('E_USAGE', `--fsuuid ${f.fsuuid}: not a dashed UUID`);
  const fs = treeFs(root, fsuuid);
  // a built-in policy is the boot policy (ima_policy=…); a file is a custom policy written after boot
  const builtinNames = f.builtin?.split(/[|,]/) ?? [];
  const cmdline = [
    `ima_appraise=${f.appraise}`,
    ...builtinNames.map((n) => (n === 'ima_tcb' || n === 'ima_appraise_tcb' ? n : `ima_policy=${n}`)),
    ...(failSecurely && builtinNames.length === 0 ? ['ima_policy=fail_securely'] : []),
  ];
  const emu = new Emulator({ profile, cmdline, banks: [], recordMeasurements: false });
  if (f.builtin === undefined) {
    const load = emu.loadPolicy(formatPolicy(rules, { reloadable: true, hidden: inactive }));
    if (!load.ok)
      throw new ImakitError(
        'E_POLICY_SYNTAX',
        `the policy does not load on ${profile.name}: ${load.diagnostics[0]?.message ?? ''}`,
      );
  }
  for (const k of f.key) {
    let data: Uint8Array;
    try {
      data = new Uint8Array(readFileSync(k));
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', k);
    }
    for (const pub of loadPublicKeys(data)) {
      const r = emu.addKey(profile.imaKeyring, pub, pub.cert?.der ?? data);
      if (!r.ok)
        io.stderr(
          `imakit: ${k}: ${profile.name} cannot load this ${pub.alg} key (${r.error}); files signed with it will fail\n`,
        );
    }
  }
  const task: Task = { uid, gid: uid, comm: 'preflight' };
  const subject = { uid, euid: uid, gid: uid, egid: uid, capSetuid: uid === 0, capSetgid: uid === 0 };
  const cp = compilePolicy(emu.rules, { defaultPcr: profile.pcrIdx });
  const unreadable: PreflightReport['summary']['unreadable'] = [];
  const candidates: Candidate[] = [];
  const progress = createProgress(io, { label: 'preflight', json: f.json === true });

  // pass 1: walk, stat, xattrs; decide which files need a digest
  for (const e of walkFiles(root)) {
    if (e.error) {
      unreadable.push({
        path: relative(root, e.path),
        code: e.error.code ?? 'EIO',
        message: e.error.message,
      });
      continue;
    }
    let st;
    let ima: Uint8Array | null;
    try {
      st = lstatSync(e.path);
      ima = getXattr(e.path, 'security.ima');
    } catch (err) {
      const ie = fromSystemError(err, 'E_IO_READ', e.path);
      unreadable.push({ path: relative(root, e.path), code: ie.code, message: ie.message });
      continue;
    }
    if (!st.isFile()) continue;
    const fileOps = f.op.length > 0 ? ops : ops.filter((o) => o !== 'exec' || (st.mode & 0o111) !== 0);
    const c: Candidate = {
      abs: e.path,
      rel: relative(root, e.path),
      uid: st.uid,
      gid: st.gid,
      mode: st.mode,
      ino: st.ino,
      size: st.size,
      ima,
      ops: fileOps,
    };
    candidates.push(c);
  }
  const needs = (c: Candidate): string | null => {
    if (!c.ima || c.ima.length < 2) return null;
    const t = c.ima[0];
    if (t !== 0x01 && t !== 0x03 && t !== 0x04) return null;
    const object = { uid: c.uid, gid: c.gid, fsmagic: fs.magic, fsname: fs.name, fsuuid: fs.uuid };
    const appraised = c.ops.some((op) =>
      (OP_HOOKS[op === 'mmap' ? 'mmap' : op] ?? []).some(
        ([func, mask]) => cp.match({ func, mask, subject, object }, IMA.APPRAISE).action & IMA.APPRAISE,
      ),
    );
    if (!appraised) return null;
    const algo = imaGetHashAlgo(c.ima, emu.settings.hash, profile.policy.hashAlgoLast);
    return emu.hashAvailable(algo) ? algo : null;
  };

  // pass 2: hash what appraisal needs, in parallel
  const toHash = candidates.flatMap((c) => {
    const a = needs(c);
    return a ? [{ c, a }] : [];
  });
  progress.setTotal(toHash.length + candidates.length);
  let hashed = 0;
  // Small files are cheaper to hash inline than to ship to a worker (the per-message cost dominates
  // below ~1 MiB); large ones go to the pool so that they hash in parallel with the inline ones.
  const big = toHash.filter(({ c }) => c.size >= POOL_MIN_SIZE);
  const small = toHash.filter(({ c }) => c.size < POOL_MIN_SIZE);
  const fail = (c: Candidate, err: unknown): void => {
    const ie = fromSystemError(err, 'E_IO_READ', c.abs);
    unreadable.push({ path: c.rel, code: ie.code, message: ie.message });
    c.ops.length = 0;
  };
  const pool =
    big.length > 0
      ? HashPool.create({
          workers: f.workers !== undefined ? Number(f.workers) : Math.max(1, availableParallelism() - 1),
        })
      : null;
  try {
    const pending = big.map(async ({ c, a }) => {
      try {
        const d = await (pool as HashPool).hash(c.abs, [a]);
        const v = d.digests.get(a);
        if (v) c.digest = { algo: a, value: v };
        hashed++;
      } catch (err) {
        fail(c, err);
      }
      progress.tick();
    });
    const buffer = Buffer.allocUnsafe(1 << 16);
    for (const { c, a } of small) {
      try {
        c.digest = { algo: a, value: hashSmallFile(c.abs, a, buffer) };
        hashed++;
      } catch (err) {
        fail(c, err);
      }
      progress.tick();
    }
    await Promise.all(pending);
  } finally {
    await pool?.close();
  }

  // pass 3: the emulator decides every (file, op) from a fresh inode, as a first access would
  const results: PreflightResult[] = [];
  const causes: Record<string, number> = {};
  let fixWrites = 0;
  for (const c of candidates) {
    for (const op of c.ops) {
      const spec = {
        path: c.rel,
        fs,
        size: c.size,
        uid: c.uid,
        gid: c.gid,
        mode: c.mode,
        ino: c.ino,
        digests: new Map(c.digest ? [[c.digest.algo, c.digest.value]] : []),
        xattrs: new Map(c.ima ? [['security.ima', c.ima]] : []),
        unknownDigests: true,
      };
      const inode = emu.addFile(spec);
      let hooks: HookOutcome[];
      let ok: boolean;
      if (op === 'read') ({ ok, hooks } = emu.readFile(c.rel, task, fs));
      else if (op === 'mmap') ({ ok, hooks } = emu.mmapExec(c.rel, task, fs));
      else ({ ok, hooks } = emu.exec(c.rel, task, fs));
      const rec = hooks.flatMap((h) => h.audit).find((a) => a.type === 1800);
      const cause = rec?.fields.cause ?? null;
      if (cause !== null) causes[cause] = (causes[cause] ?? 0) + 1;
      const after = inode.xattrs.get('security.ima');
      if (
        f.appraise === 'fix' &&
        after !== c.ima &&
        (c.ima === null || after === undefined || Buffer.compare(after, c.ima) !== 0)
      )
        fixWrites++;
      results.push({
        path: c.rel,
        op,
        decision: ok ? 'allowed' : 'denied',
        auditOp: rec?.fields.op ?? null,
        cause,
      });
    }
    progress.tick();
  }
  progress.stop();
  const durationMs = Date.now() - started;
  const denied = results.filter((r) => r.decision === 'denied').length;
  return {
    results,
    summary: {
      profile: profile.name,
      appraise: f.appraise,
      files: candidates.length,
      checks: results.length,
      allowed: results.length - denied,
      denied,
      causes,
      fixWrites,
      hashed,
      unreadable,
      durationMs,
      filesPerSecond:
        durationMs > 0 ? Math.round((candidates.length * 1000) / durationMs) : candidates.length,
    },
  };
}

const SIG_CAUSES = new Set([
  'IMA-signature-required',
  'invalid-signature',
  'invalid-signature-version',
  'verity-signature-required',
]);

/** Human rendering: denials grouped by cause, then the `imakit label` command that fixes them. */
export function renderPreflight(root: string, r: PreflightReport): string {
  const s = r.summary;
  const lines: string[] = [];
  const flagged = r.results.filter((x) => x.cause !== null);
  const byCause = new Map<string, PreflightResult[]>();
  for (const x of flagged)
    byCause.set(`${x.auditOp}/${x.cause}`, [...(byCause.get(`${x.auditOp}/${x.cause}`) ?? []), x]);
  const verb = s.appraise === 'enforce' ? 'denied' : `logged (${s.appraise} mode allows)`;
  for (const [k, xs] of [...byCause.entries()].sort((a, b) => b[1].length - a[1].length)) {
    lines.push(`${verb}: ${k} (${xs.length})`);
    for (const x of xs.slice(0, 20)) lines.push(`  ${x.op.padEnd(4)} ${x.path}`);
    if (xs.length > 20) lines.push(`  … ${xs.length - 20} more (use --json)`);
  }
  for (const u of s.unreadable) lines.push(`unreadable: ${u.path}: ${u.message} [${u.code}]`);
  lines.push(
    `${s.files} files, ${s.checks} checks on ${s.profile} (ima_appraise=${s.appraise}): ${s.allowed} allowed, ${s.denied} denied; ${flagged.length} audited${s.appraise === 'fix' ? `; fix mode would write ${s.fixWrites} security.ima values` : ''}; ${s.hashed} hashed in ${(s.durationMs / 1000).toFixed(2)} s`,
  );
  if (flagged.length > 0) {
    const needSig = flagged.some((x) => x.cause !== null && SIG_CAUSES.has(x.cause));
    const unavailable = flagged.some((x) => x.auditOp === 'collect_data');
    lines.push(
      needSig
        ? `fix: imakit label --sign --key <signing-key.pem> -a sha256 ${root}   (signature-required files need signatures; add the certificate to the kernel's IMA keyring)`
        : `fix: imakit label --hash -a sha256 ${root}`,
    );
    if (unavailable)
      lines.push(
        "note: collect_data/failed means the kernel cannot allocate the xattr's hash algorithm: relabel with -a sha256",
      );
  }
  return lines.join('\n') + '\n';
}

async function run(root: string, f: PreflightFlags, io: CliIo): Promise<number> {
  try {
    lstatSync(root);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', root);
  }
  const r = await preflight(root, f, io);
  if (f.json) io.stdout(JSON.stringify(r, null, 2) + '\n');
  else io.stdout(renderPreflight(root, r));
  if (r.summary.denied > 0) return EXIT.VERIFY_FAILED;
  return r.summary.unreadable.length > 0 ? EXIT.IO : EXIT.OK;
}

export const command: CommandModule = {
  name: 'preflight',
  register(program: Command, ctx) {
    program
      .command('preflight')
      .description(
        'predict, for every file below ROOT and each operation, what the kernel would do with this policy (before you enforce it)',
      )
      .argument('<root>', 'directory (its real xattrs, owners and modes are used)')
      .option('--policy <file>', 'policy file')
      .option('--builtin <names>', 'built-in policy, e.g. appraise_tcb or tcb|appraise_tcb')
      .option('--appraise <mode>', 'enforce, log or fix', 'enforce')
      .option('--key <cert>', 'certificate for the IMA keyring (repeatable)', collect, [])
      .option('--fsuuid <uuid>', 'the tree stands for a filesystem with this UUID (for fsuuid= rules)')
      .option('--profile <name>', `kernel profile (${Object.keys(PROFILES).join(', ')})`, DEFAULT_PROFILE)
      .option(
        '--op <op>',
        'exec, read or mmap (repeatable; default read, plus exec for executable files)',
        collect,
        [],
      )
      .option('--uid <n>', 'uid of the process doing the accesses', '0')
      .option('--workers <n>', 'hashing threads (default: CPUs)')
      .option('--json', 'JSON: {"results":[{path,op,decision,auditOp,cause}],"summary":{…}}')
      .addHelpText(
        'after',
        '\nExample:\n  imakit preflight /usr --builtin appraise_tcb --appraise enforce --key /etc/keys/x509_ima.der\n',
      )
      .action(async (root: string, f: PreflightFlags) =>
        ctx.run(() => run(root, f, ctx.io), { json: f.json === true }),
      );
  },
};
