/**
 * The per-file work of `imakit preflight` (host/preflight.ts): read a real file's metadata and
 * labels, hash it only when the decision depends on its digest, and let the emulator decide every
 * operation as a first access would. The same judge runs on the main thread (small trees) and in
 * each preflight worker (host/preflight-worker.ts), so both paths give identical results.
 *
 * A judge is built from a structured-clone-able {@link JudgeSetup}: one emulated boot per judge.
 * Each file gets a fresh inode, so files never influence each other and any sharding across
 * workers is equivalent to one pass.
 */
import { closeSync, constants, lstatSync, openSync, readSync } from 'node:fs';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { createHasher } from '../../core/hash/hash-algo.ts';
import { loadPublicKeys } from '../../core/keys/keys.ts';
import { compilePolicy, IMA, type CompiledPolicy } from '../../core/policy/index.ts';
import { Emulator, type HookOutcome, type Task } from '../../kernel/emulator.ts';
import { imaGetHashAlgo } from '../../kernel/appraise.ts';
import type { FsInfo } from '../../kernel/inode-state.ts';
import { getProfile } from '../../kernel/profiles.ts';
import { OP_HOOKS } from '../../kernel/workload.ts';
import { getXattr, readXattrSet } from '../fs/xattr.ts';
import { readGeneration } from '../fs/inode.ts';

/** Everything a judge needs (plain data: it crosses to worker threads). */
export interface JudgeSetup {
  readonly profile: string;
  /** the boot command line (ima_appraise=, ima_policy=…) */
  readonly cmdline: readonly string[];
  /** a custom policy written after boot, or null (the boot policy only) */
  readonly policyText: string | null;
  /** certificates (DER or PEM) for the IMA keyring, with a name for messages */
  readonly keys: ReadonlyArray<{ readonly source: string; readonly data: Uint8Array }>;
  /** the EVM HMAC key (`echo 1 > evm`), or null: EVM not initialised */
  readonly evmHmacKey: Uint8Array | null;
  readonly fs: FsInfo;
  readonly ops: readonly string[];
  /** ops were chosen by the caller (else exec only for files with an x bit) */
  readonly opsGiven: boolean;
  readonly uid: number;
  readonly appraise: 'enforce' | 'log' | 'fix';
}

/** One decision. */
export interface PreflightResult {
  readonly path: string;
  readonly op: string;
  readonly decision: 'allowed' | 'denied';
  /** the kernel's audit `op=` (appraise_data, collect_data), null when the kernel logs nothing */
  readonly auditOp: string | null;
  readonly cause: string | null;
}

/** What a judge found for one path. */
export type FileJudgement =
  | { readonly kind: 'skipped' }
  | { readonly kind: 'unreadable'; readonly path: string; readonly code: string; readonly message: string }
  | {
      readonly kind: 'judged';
      readonly results: PreflightResult[];
      readonly hashed: boolean;
      /** fix mode would (re)write security.ima */
      readonly fixWrite: boolean;
    };

/** A certificate the emulated kernel could not load. */
export interface KeyNote {
  readonly source: string;
  readonly alg: string;
  readonly loaded: boolean;
  readonly error?: string;
}

const READ_BUFFER_SIZE = 1 << 16;

/** A judge: one emulated boot, reused for every file it is given. */
export class PreflightJudge {
  readonly keys: readonly KeyNote[];
  private readonly emu: Emulator;
  private readonly policy: CompiledPolicy;
  private readonly task: Task;
  private readonly subject: ReturnType<Emulator['subject']>;
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  private readonly evmNames: readonly string[] | null;

  /**
   * Boot the emulated kernel: profile, command line, custom policy, keys, EVM key.
   * @throws ImakitError E_PROFILE_UNKNOWN, E_POLICY_SYNTAX (the policy does not load), E_KEY_PARSE
   */
  constructor(readonly setup: JudgeSetup) {
    const profile = getProfile(setup.profile);
    this.emu = new Emulator({ profile, cmdline: [...setup.cmdline], banks: [], recordMeasurements: false });
    if (setup.policyText !== null) {
      const load = this.emu.loadPolicy(setup.policyText);
      if (!load.ok)
        throw new ImakitError(
          'E_POLICY_SYNTAX',
          `the policy does not load on ${profile.name}: ${load.diagnostics[0]?.message ?? ''}`,
        );
    }
    const notes: KeyNote[] = [];
    for (const k of setup.keys) {
      for (const pub of loadPublicKeys(k.data)) {
        const r = this.emu.addKey(profile.imaKeyring, pub, pub.cert?.der ?? k.data);
        notes.push(
          r.ok
            ? { source: k.source, alg: pub.alg, loaded: true }
            : { source: k.source, alg: pub.alg, loaded: false, error: r.error ?? 'refused' },
        );
      }
    }
    this.keys = notes;
    if (setup.evmHmacKey !== null) this.emu.loadEvmHmacKey(setup.evmHmacKey);
    this.evmNames = setup.evmHmacKey !== null ? [...this.emu.evm.config.all, 'security.evm'] : null;
    const uid = setup.uid;
    this.task = { uid, gid: uid, comm: 'preflight' };
    this.subject = this.emu.subject(this.task);
    this.policy = compilePolicy(this.emu.rules, { defaultPcr: profile.pcrIdx });
  }

  /** Judge one path (`rel` is what the report shows). Never throws for the file's own I/O errors. */
  judge(abs: string, rel: string): FileJudgement {
    const s = this.setup;
    let st;
    let ima: Uint8Array | null;
    let xattrs: Map<string, Uint8Array>;
    let generation = 0;
    try {
      st = lstatSync(abs);
      if (!st.isFile()) return { kind: 'skipped' };
      if (this.evmNames !== null) {
        // EVM covers the protected xattrs and the inode's generation (formats.md §4.3)
        xattrs = readXattrSet(abs, this.evmNames);
        ima = xattrs.get('security.ima') ?? null;
        generation = readGeneration(abs)?.generation ?? 0;
      } else {
        ima = getXattr(abs, 'security.ima');
        xattrs = ima ? new Map([['security.ima', ima]]) : new Map();
      }
    } catch (err) {
      return unreadable(rel, abs, err);
    }
    const ops = s.opsGiven ? s.ops : s.ops.filter((o) => o !== 'exec' || (st.mode & 0o111) !== 0);
    const algo = this.digestNeeded(ima, st.uid, st.gid, ops);
    let digest: Uint8Array | null = null;
    if (algo !== null) {
      try {
        digest = hashFile(abs, algo, st.size, this.buffer);
      } catch (err) {
        return unreadable(rel, abs, err);
      }
    }
    const results: PreflightResult[] = [];
    let fixWrite = false;
    for (const op of ops) {
      const inode = this.emu.addFile({
        path: rel,
        fs: s.fs,
        size: st.size,
        uid: st.uid,
        gid: st.gid,
        mode: st.mode,
        ino: st.ino,
        generation,
        digests: new Map(digest !== null && algo !== null ? [[algo, digest]] : []),
        xattrs: new Map(xattrs),
        unknownDigests: true,
      });
      let hooks: HookOutcome[];
      let ok: boolean;
      if (op === 'read') ({ ok, hooks } = this.emu.readFile(rel, this.task, s.fs));
      else if (op === 'mmap') ({ ok, hooks } = this.emu.mmapExec(rel, this.task, s.fs));
      else ({ ok, hooks } = this.emu.exec(rel, this.task, s.fs));
      this.emu.forgetFile(rel, s.fs);
      const rec = hooks.flatMap((h) => h.audit).find((a) => a.type === 1800);
      const after = inode.xattrs.get('security.ima');
      if (s.appraise === 'fix' && !sameBytes(after ?? null, ima)) fixWrite = true;
      results.push({
        path: rel,
        op,
        decision: ok ? 'allowed' : 'denied',
        auditOp: rec?.fields.op ?? null,
        cause: rec?.fields.cause ?? null,
      });
    }
    return { kind: 'judged', results, hashed: digest !== null, fixWrite };
  }

  /**
   * The algorithm to hash with, or null when no decision depends on the digest: no hash or
   * signature label, no appraise rule for any op, or an algorithm the kernel cannot allocate
   * (collect_data fails before any digest is compared).
   */
  private digestNeeded(
    ima: Uint8Array | null,
    uid: number,
    gid: number,
    ops: readonly string[],
  ): string | null {
    if (!ima || ima.length < 2) return null;
    const t = ima[0];
    if (t !== 0x01 && t !== 0x03 && t !== 0x04) return null;
    const fs = this.setup.fs;
    const object = { uid, gid, fsmagic: fs.magic, fsname: fs.name, fsuuid: fs.uuid };
    const subject = this.subject;
    const appraised = ops.some((op) =>
      (OP_HOOKS[op] ?? []).some(
        ([func, mask]) =>
          this.policy.match({ func, mask, subject, object }, IMA.APPRAISE).action & IMA.APPRAISE,
      ),
    );
    if (!appraised) return null;
    const profile = this.emu.profile;
    const algo = imaGetHashAlgo(ima, this.emu.settings.hash, profile.policy.hashAlgoLast);
    return this.emu.hashAvailable(algo) ? algo : null;
  }
}

function unreadable(rel: string, abs: string, err: unknown): FileJudgement {
  const ie = err instanceof ImakitError ? err : fromSystemError(err, 'E_IO_READ', abs);
  return { kind: 'unreadable', path: rel, code: ie.code, message: ie.message };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(a, b) === 0;
}

/**
 * Hash a file: open without following symlinks (O_NONBLOCK: a FIFO swapped in after the walk must
 * not hang us), read into the judge's reused buffer, close.
 */
function hashFile(path: string, algo: string, size: number, buffer: Buffer): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const h = createHasher(algo);
    let n: number;
    let total = 0;
    while ((n = readSync(fd, buffer, 0, buffer.length, null)) > 0) {
      h.update(buffer.subarray(0, n));
      total += n;
      // a short read that reaches lstat's size is the end: skip the read(2) that would return 0
      if (n < buffer.length && total >= size) break;
    }
    return h.digest();
  } finally {
    closeSync(fd);
  }
}
