/**
 * References from a root filesystem or a mounted image (issue 12 part 3): walk the tree, keep the
 * files a given IMA policy would measure (the policy engine's view, `core/policy`), hash them on
 * the worker pool, and add `{kind: 'rootfs'}` references keyed by their path inside the root.
 *
 * Which accesses are asked of the policy for each regular file (as the kernel would see them once
 * the tree is the running root):
 *  - every file: FILE_CHECK with MAY_READ by root (uid 0);
 *  - files with an execute bit: BPRM_CHECK and MMAP_CHECK with MAY_EXEC (run and mapped);
 *  - `*.so*`: MMAP_CHECK with MAY_EXEC (shared libraries are mapped, not run);
 *  - `*.ko*`: MODULE_CHECK; under `lib/firmware`: FIRMWARE_CHECK.
 * Without a policy every regular file goes in. The object is the file's owner and group on a
 * filesystem with `fsmagic` (ext4 by default), so `dont_measure fsmagic=` and `fowner=` rules apply.
 *
 * Memory stays flat: the walk is streamed, at most `inflight` files are being hashed at once, and
 * only the resulting references are kept.
 */
import { lstatSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { resolveHashAlgo } from '../../core/hash/hash-algo.ts';
import { compilePolicy, IMA, MAY, type CompiledPolicy, type Func } from '../../core/policy/index.ts';
import { ReferenceSetBuilder, type ReferenceSet } from '../../core/refs/reference-set.ts';
import { getProfile } from '../../kernel/profiles.ts';
import { loadPolicyRules, type PolicySource } from '../preflight/policy-source.ts';
import { walkTree } from '../fs/walk.ts';
import { HashPool } from '../workers/hash-pool.ts';

/** ext4's superblock magic, the default filesystem of the object. */
export const EXT4_MAGIC = 0xef53;

export interface RootfsOptions {
  /** file hash algorithm (kernel name) */
  readonly algo: string;
  /** an IMA policy: only the files it would measure go in */
  readonly policy?: PolicySource;
  /** kernel profile for parsing the policy (default mainline) */
  readonly profile?: string;
  /** only files owned by this uid */
  readonly owner?: number;
  readonly oneFileSystem?: boolean;
  /** fsmagic of the filesystem the tree will live on (policy `fsmagic=` rules) */
  readonly fsmagic?: number;
  /** prefix for paths in the set (default '/': the root becomes '/') */
  readonly prefix?: string;
  readonly workers?: number;
  readonly onProgress?: (files: number, bytes: number, seen: number) => void;
}

export interface RootfsResult {
  readonly set: ReferenceSet;
  readonly files: number;
  readonly bytes: number;
  /** regular files the policy would not measure */
  readonly skippedByPolicy: number;
  readonly skippedByOwner: number;
  readonly errors: readonly { path: string; message: string }[];
}

function hooksFor(rel: string, mode: number): [Func, number][] {
  const hooks: [Func, number][] = [['FILE_CHECK', MAY.MAY_READ]];
  if (mode & 0o111) hooks.push(['BPRM_CHECK', MAY.MAY_EXEC], ['MMAP_CHECK', MAY.MAY_EXEC]);
  else if (/\.so(\.|$)/.test(rel)) hooks.push(['MMAP_CHECK', MAY.MAY_EXEC]);
  if (/\.ko(\.(xz|zst|gz))?$/.test(rel)) hooks.push(['MODULE_CHECK', MAY.MAY_READ]);
  if (rel.startsWith('lib/firmware/') || rel.startsWith('usr/lib/firmware/'))
    hooks.push(['FIRMWARE_CHECK', MAY.MAY_READ]);
  return hooks;
}

function measured(
  policy: CompiledPolicy,
  rel: string,
  st: { mode: number; uid: number; gid: number },
  fsmagic: number,
): boolean {
  const subject = { uid: 0, euid: 0, gid: 0, egid: 0 };
  const object = { uid: st.uid, gid: st.gid, fsmagic, fsname: 'ext4' };
  return hooksFor(rel, st.mode).some(
    ([func, mask]) => (policy.match({ func, mask, subject, object }, IMA.MEASURE).action & IMA.MEASURE) !== 0,
  );
}

/**
 * Build a reference set from the tree at `root`.
 * @throws ImakitError E_IO_READ (root unreadable), E_POLICY_* (bad policy), E_HASH_UNKNOWN
 */
export async function referencesFromRootfs(root: string, o: RootfsOptions): Promise<RootfsResult> {
  const algo = resolveHashAlgo(o.algo).name;
  try {
    lstatSync(root);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', root);
  }
  let policy: CompiledPolicy | undefined;
  if (o.policy) {
    const loaded = loadPolicyRules(o.policy, getProfile(o.profile));
    policy = compilePolicy(loaded.rules, { inactive: loaded.inactive, failSecurely: loaded.failSecurely });
  }
  const fsmagic = o.fsmagic ?? EXT4_MAGIC;
  const prefix = o.prefix ?? '/';
  const b = new ReferenceSetBuilder({ hashAlgo: algo, meta: { generator: 'imakit refs from-rootfs' } });
  const prov = b.provenance({ kind: 'rootfs', source: root });
  const pool = HashPool.create(o.workers !== undefined ? { workers: o.workers } : {});
  const errors: { path: string; message: string }[] = [];
  let files = 0;
  let bytes = 0;
  let seen = 0;
  let skippedByPolicy = 0;
  let skippedByOwner = 0;
  const inflight = new Set<Promise<void>>();
  const MAX_INFLIGHT = 256;
  try {
    for await (const e of walkTree(root, { oneFileSystem: o.oneFileSystem })) {
      if (e.kind === 'error') {
        errors.push({ path: e.path, message: e.error.message });
        continue;
      }
      if (e.type !== 'file') continue;
      seen++;
      const rel = relative(root, e.path).split(sep).join('/');
      let st;
      try {
        st = lstatSync(e.path);
      } catch (err) {
        errors.push({ path: e.path, message: (err as Error).message });
        continue;
      }
      if (o.owner !== undefined && st.uid !== o.owner) {
        skippedByOwner++;
        continue;
      }
      if (policy && !measured(policy, rel, st, fsmagic)) {
        skippedByPolicy++;
        continue;
      }
      const path = prefix.endsWith('/') ? prefix + rel : `${prefix}/${rel}`;
      const job = pool
        .hash(e.path, [algo])
        .then((d) => {
          b.addRef(path, { algo, digest: d.digests.get(algo)!, provenance: prov });
          files++;
          bytes += d.size;
          o.onProgress?.(files, bytes, seen);
        })
        .catch((err: unknown) => {
          errors.push({ path: e.path, message: err instanceof ImakitError ? err.message : String(err) });
        });
      inflight.add(job);
      void job.finally(() => inflight.delete(job));
      if (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    await pool.close();
  }
  return { set: b.build(), files, bytes, skippedByPolicy, skippedByOwner, errors };
}
