/**
 * A deterministic model of the kernel's IMA and EVM (security/integrity/ima/ima_main.c
 * process_measurement(), ima_appraise.c, ima_api.c, evm_main.c) over abstract files and accesses.
 *
 * One `Emulator` is one boot: the profile and command line fix the build and boot facts, then
 * policy loads, keys, files and accesses drive it. Everything observable is recorded: the
 * measurement list and PCRs, audit records, per-access decisions with the kernel's op and cause,
 * and the xattrs the kernel wrote. Kernel quirks come from the profile (style.md practice 7).
 */
import { ImakitError } from '../errors.ts';
import { findHashAlgo, hash, isHashSupported, resolveHashAlgo } from '../core/hash-algo.ts';
import { lookupTemplate, parseTemplateFmt, type TemplateDescriptor } from '../core/ima-list/templates.ts';
import { Keyring } from '../core/ima-signature.ts';
import { kernelBootAggregates } from '../core/boot-aggregate.ts';
import type { PublicKey } from '../core/keys.ts';
import { resolveEvmConfig } from '../core/evm-config.ts';
import {
  F,
  compilePolicy,
  parsePolicy,
  resolveBootParams,
  IMA,
  APPRAISE_SUBMASK,
  DO_MASK,
  type BootSettings,
  type CompiledPolicy,
  type Diagnostic,
  type Func,
  type MatchResult,
  type PolicyRule,
} from '../core/policy/index.ts';
import { bootDefaults, type KernelProfile } from './profiles.ts';
import { AUDIT_TYPE, auditRecord, type AuditArgs, type AuditTask, type EmuAuditRecord } from './audit.ts';
import { imaGetHashAlgo, fixXattrValue, xattrVerify, XT } from './appraise.ts';
import { evmKeyLoaded, evmUpdate, evmVerify, type EvmState } from './evm.ts';
import { buildTemplateData, MeasurementStore, type Bank, type EventData } from './measure.ts';
import {
  APPRAISED_SUBMASK,
  DONE_MASK,
  IINT,
  absoluteName,
  newIint,
  type FsInfo,
  type Iint,
  type Inode,
  type IntegrityStatus,
} from './inode-state.ts';

const EACCES = -13;
const MAY_EXEC = 1;
const MAY_WRITE = 2;
const MAY_READ = 4;
const MAY_APPEND = 8;

/** The process doing an access. */
export interface Task {
  readonly uid: number;
  readonly euid?: number;
  readonly gid?: number;
  readonly egid?: number;
  readonly comm?: string;
  readonly pid?: number;
  /** LSM subject label parts */
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
}

/** Options of one emulated boot. */
export interface EmulatorOptions {
  readonly profile: KernelProfile;
  /** kernel command line (the IMA/EVM parameters matter) */
  readonly cmdline?: string | readonly string[];
  /** TPM PCR banks, default sha1 + sha256; [] = no TPM */
  readonly banks?: readonly string[];
  /**
   * the TPM-dependent boot_aggregate: its algorithm (the chosen bank) and digest; default: computed
   * from `initialPcrs` like the kernel (zeros without a TPM or without values for the chosen bank)
   */
  readonly bootAggregate?: { readonly algo: string; readonly digest: Uint8Array } | null;
  /** PCR values before IMA (firmware PCRs 0-9), by bank */
  readonly initialPcrs?: ReadonlyMap<string, readonly Uint8Array[]>;
  /** hash modules insmod'ed after IMA init (e.g. sha512_generic) */
  readonly modules?: readonly string[];
  /** the platform reports secure boot */
  readonly secureBoot?: boolean;
  /** UTS release for the kernel_version critical-data event */
  readonly kernelRelease?: string;
  /** certificates in .builtin_trusted_keys (measured by KEY_CHECK rules once a policy loads) */
  readonly builtinTrustedKeys?: readonly Uint8Array[];
  /** build measurement-list entries (false: decisions only, for fast preflight) */
  readonly recordMeasurements?: boolean;
  /**
   * Where file digests come from when a file has no content (e.g. digests recorded by a real kernel
   * for each version of a file): called with the inode (its `version` counts writes) and algorithm.
   */
  readonly digestSource?: (inode: Inode, algo: string) => Uint8Array | undefined;
  /** i_generation of files the workload creates (the kernel picks a random one; default: derived from the path) */
  readonly newInodeGeneration?: (path: string) => number;
}

/** What one hook call decided (process_measurement). */
export interface HookOutcome {
  readonly func: Func;
  readonly mask: number;
  /** 0 or -EACCES */
  readonly rc: number;
  /** audit records it produced */
  readonly audit: readonly EmuAuditRecord[];
  /** index of the policy rule that decided each action type, -1 if none */
  readonly decidedBy: MatchResult['decidedBy'];
}

/** An open file. */
export interface OpenFile {
  readonly fd: number;
  readonly inode: Inode;
  readonly read: boolean;
  readonly write: boolean;
  readonly created: boolean;
  readonly task: Task;
}

/** Result of an open. */
export type OpenResult =
  | { readonly ok: true; readonly file: OpenFile; readonly hooks: HookOutcome[] }
  | { readonly ok: false; readonly errno: number; readonly hooks: HookOutcome[] };

/** A file to put on an emulated filesystem. */
export interface FileSpec {
  readonly path: string;
  readonly fs?: FsInfo;
  readonly content?: Uint8Array;
  /** digests by algorithm name when the content is not given (preflight hashes on the host) */
  readonly digests?: ReadonlyMap<string, Uint8Array>;
  readonly size?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mode?: number;
  readonly ino?: number;
  readonly generation?: number;
  readonly xattrs?: ReadonlyMap<string, Uint8Array>;
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
  /** exec behaviour when `content` is not given: a `#!` script (re-read by its interpreter) or an ELF */
  readonly exe?: 'script' | 'elf';
  /**
   * Decisions only: a digest that is neither given nor computable from content is not needed for
   * the decision (no hash xattr to compare), so collecting it yields zeros instead of failing.
   */
  readonly unknownDigests?: boolean;
}

/** The default data filesystem: ext4 on the harness's DATA disk. */
export function ext4Fs(uuid: string | null = null, dev = 'vdb', mountpoint = '/data'): FsInfo {
  return Object.freeze({
    name: 'ext4',
    magic: 0xef53,
    uuid,
    dev,
    mountpoint,
    xattrs: true,
    unverifiableSignatures: false,
    untrustedMounter: false,
  });
}

/** A deterministic model of one boot of a kernel with IMA and EVM. */
export class Emulator {
  readonly profile: KernelProfile;
  readonly settings: BootSettings;
  readonly store: MeasurementStore;
  readonly audit: EmuAuditRecord[] = [];
  /** `ima: …` / `evm: …` kernel messages */
  readonly messages: string[] = [];
  /** set when the emulated kernel oopsed (a profile quirk); every later operation fails */
  oops: string | null = null;
  readonly evm: EvmState;
  private readonly inodes = new Map<string, Inode>();
  private readonly open = new Map<number, OpenFile>();
  private readonly keyrings = new Map<string, PublicKey[]>();
  private readonly queuedKeys: Array<{ keyring: string; der: Uint8Array }> = [];
  private readonly loadedModules = new Set<string>();
  private policyRules: PolicyRule[];
  private policyInactive = new Set<number>();
  private compiled: CompiledPolicy;
  private customLoaded = false;
  private policyWritable = true;
  private nextFd = 3;
  private nextIno = 12;
  private serial = 100;
  private readonly record: boolean;
  private readonly digestSource: EmulatorOptions['digestSource'];
  private readonly newInodeGeneration: EmulatorOptions['newInodeGeneration'];
  private readonly template: TemplateDescriptor;
  private readonly imaHash: string;
  private readonly pcrIdx: number;

  constructor(opts: EmulatorOptions) {
    this.profile = opts.profile;
    this.record = opts.recordMeasurements !== false;
    this.digestSource = opts.digestSource;
    this.newInodeGeneration = opts.newInodeGeneration;
    this.settings = resolveBootParams(opts.cmdline ?? [], bootDefaults(opts.profile), {
      secureBoot: opts.secureBoot === true,
    });
    this.messages.push(...this.settings.messages);
    this.imaHash = this.settings.hash;
    this.pcrIdx = opts.profile.pcrIdx;
    const t = this.settings.template;
    const desc = t.name === '' ? parseTemplateFmt(t.fmt) : lookupTemplate(t.name);
    if (!desc) throw new ImakitError('E_SCENARIO', `template ${t.name || t.fmt} is not known`);
    this.template = t.name === '' ? { ...desc, name: t.fmt } : desc;
    const banks: Bank[] = (opts.banks ?? ['sha1', 'sha256']).map((name) => {
      const a = resolveHashAlgo(name);
      const allocated = opts.profile.builtinHashes.has(a.name);
      if (!allocated) this.messages.push(`ima: Can not allocate ${a.name} (reason: -2)`);
      return { name: a.name, size: a.size, allocated, mapped: true };
    });
    this.store = new MeasurementStore(
      banks,
      this.imaHash,
      !opts.profile.disableHtable,
      opts.profile.perBankTemplateDigests,
      opts.initialPcrs,
    );
    for (const m of opts.modules ?? []) this.loadModule(m);
    this.messages.push(`ima: Allocated hash algorithm: ${this.imaHash}`);
    this.evm = {
      hmacKey: null,
      x509: false,
      allowMetadataWrites: false,
      fixMode: this.settings.evmFix,
      config: resolveEvmConfig(opts.profile.evmPreset),
      keyring: null,
    };
    this.policyRules = [...this.settings.bootRules];
    this.compiled = this.compile();
    // ima_init(): boot_aggregate first, then (critical_data) kernel_version
    const agg = opts.bootAggregate ?? this.defaultAggregate(banks, opts.initialPcrs);
    this.measureEvent(
      {
        name: 'boot_aggregate',
        digest: agg,
        xattr: null,
        file: null,
        buf: null,
        violation: false,
        verity: false,
      },
      this.template,
      this.pcrIdx,
    );
    for (const der of opts.builtinTrustedKeys ?? [])
      this.queuedKeys.push({ keyring: '.builtin_trusted_keys', der });
    if (this.settings.policyNames.criticalData)
      this.bufferMeasurement(
        'CRITICAL_DATA',
        'kernel_version',
        new TextEncoder().encode(opts.kernelRelease ?? '6.1.0-56-amd64'),
        'kernel_info',
        { uid: 0 },
      );
  }

  private defaultAggregate(
    banks: readonly Bank[],
    initial: EmulatorOptions['initialPcrs'],
  ): { algo: string; digest: Uint8Array } {
    // bank choice of ima_calc_boot_aggregate(): ima_hash bank > sha256 > sha1; no TPM: zeros
    const pick =
      banks.find((b) => b.name === this.imaHash) ??
      banks.find((b) => b.name === 'sha256') ??
      banks.find((b) => b.name === 'sha1');
    const algo = pick?.name ?? 'sha1';
    const values = pick ? initial?.get(pick.name) : undefined;
    if (!pick || !values) return { algo, digest: new Uint8Array(resolveHashAlgo(algo).size) };
    // ima_calc_boot_aggregate_tfm(): PCRs 0-7, plus 8-9 for banks other than SHA-1 (formats.md §2)
    const pcrs = new Map(values.slice(0, 10).map((v, i) => [i, v] as const));
    const v = kernelBootAggregates(new Map([[algo, pcrs]]), [algo])[0];
    return { algo, digest: v ? v.digest : new Uint8Array(resolveHashAlgo(algo).size) };
  }

  private compile(): CompiledPolicy {
    return compilePolicy(this.policyRules, {
      inactive: this.policyInactive,
      failSecurely: this.settings.policyNames.failSecurely,
      defaultPcr: this.pcrIdx,
    });
  }

  /** The active policy rules in order. */
  get rules(): readonly PolicyRule[] {
    return this.policyRules;
  }

  /** insmod a hash module after IMA init: later file hashing can use its algorithms. */
  loadModule(name: string): void {
    const algos = this.profile.hashModules[name];
    if (!algos)
      throw new ImakitError('E_SCENARIO', `profile ${this.profile.name} has no hash module '${name}'`, {
        token: name,
      });
    for (const a of algos) this.loadedModules.add(a);
  }

  /** crypto_alloc_shash() succeeds for this algorithm now. */
  hashAvailable(algo: string): boolean {
    return this.profile.builtinHashes.has(algo) || this.loadedModules.has(algo);
  }

  /**
   * Write a policy to securityfs. Like the kernel, an invalid rule discards the whole write; the first
   * successful write replaces the boot policy (keeping arch/build rules); later writes append, and
   * without CONFIG_IMA_WRITE_POLICY the file is gone after the first write.
   */
  loadPolicy(text: string): { ok: boolean; diagnostics: readonly Diagnostic[]; errno?: number } {
    if (!this.policyWritable) return { ok: false, diagnostics: [], errno: -2 };
    const p = parsePolicy(text, { features: this.profile.policy, defaultPolicyActive: !this.customLoaded });
    if (!p.ok) {
      this.messages.push('ima: policy update failed');
      return { ok: false, diagnostics: p.diagnostics, errno: -22 };
    }
    const base = this.customLoaded ? this.policyRules : [...this.settings.customSeed];
    const inactive = this.customLoaded ? new Set(this.policyInactive) : new Set<number>();
    for (const i of p.inactive) inactive.add(base.length + i);
    this.policyRules = [...base, ...p.rules];
    this.policyInactive = inactive;
    this.compiled = this.compile();
    // one AUDIT_INTEGRITY_POLICY_RULE record per rule: the tokens as written (ima_log_string), res=1
    for (const r of p.rules) this.audit.push(policyRuleRecord(r, this.serial++));
    this.messages.push('ima: policy update completed');
    const first = !this.customLoaded;
    this.customLoaded = true;
    if (!this.profile.writePolicy) this.policyWritable = false;
    if (first && this.profile.queueEarlyBootKeys) {
      for (const k of this.queuedKeys.splice(0)) this.measureKey(k.keyring, k.der);
    }
    return { ok: true, diagnostics: p.diagnostics };
  }

  /**
   * Add a certificate to a keyring (`keyctl padd asymmetric`). Keys the kernel cannot parse for lack
   * of crypto support (ECDSA without CONFIG_CRYPTO_ECDSA, SM2 without CONFIG_CRYPTO_SM2) are refused.
   */
  addKey(keyring: string, key: PublicKey, der: Uint8Array): { ok: boolean; error?: string } {
    const s = this.profile.signatures;
    if ((key.alg === 'ec' && !s.ecdsa) || (key.alg === 'sm2' && !s.sm2) || (key.alg === 'rsa' && !s.rsa))
      return { ok: false, error: 'add_key: No such file or directory' };
    const list = this.keyrings.get(keyring) ?? [];
    list.push(key);
    this.keyrings.set(keyring, list);
    if (keyring === this.profile.evmKeyring) this.evm.keyring = new Keyring(list);
    if (this.customLoaded || !this.profile.queueEarlyBootKeys) this.measureKey(keyring, der);
    else this.queuedKeys.push({ keyring, der });
    return { ok: true };
  }

  private imaKeyring(): Keyring | null {
    const l = this.keyrings.get(this.profile.imaKeyring);
    return l ? new Keyring(l) : null;
  }

  /** Load the EVM HMAC key (`echo 1 > <securityfs>/evm`). */
  loadEvmHmacKey(key: Uint8Array): void {
    this.evm.hmacKey = Uint8Array.from(key);
    this.messages.push('evm: key initialized');
  }

  /** Enable EVM signature verification (`echo 2 > <securityfs>/evm`). */
  enableEvmX509(): void {
    this.evm.x509 = true;
  }

  /** Put a file on an emulated filesystem. */
  addFile(spec: FileSpec): Inode {
    const fs = spec.fs ?? ext4Fs();
    const content = spec.content ? Uint8Array.from(spec.content) : null;
    const inode: Inode = {
      path: spec.path,
      fs,
      ino: spec.ino ?? this.nextIno,
      generation: spec.generation ?? 0,
      uid: spec.uid ?? 0,
      gid: spec.gid ?? 0,
      mode: spec.mode ?? 0o100644,
      content,
      digests: new Map(spec.digests ?? []),
      size: spec.size ?? content?.length ?? 0,
      xattrs: new Map(spec.xattrs ?? []),
      label: spec.label,
      version: 1,
      readers: 0,
      writers: 0,
      iint: null,
      created: false,
      exe: spec.exe,
      unknownDigests: spec.unknownDigests,
    };
    // like ext4, new inodes get numbers after the ones in use
    this.nextIno = Math.max(this.nextIno, inode.ino + 1);
    this.inodes.set(this.key(fs, spec.path), inode);
    return inode;
  }

  private key(fs: FsInfo, path: string): string {
    return `${fs.mountpoint}\0${path}`;
  }

  /** The inode at `path` on `fs` (default: the first filesystem holding it). */
  inode(path: string, fs?: FsInfo): Inode | undefined {
    if (fs) return this.inodes.get(this.key(fs, path));
    for (const i of this.inodes.values()) if (i.path === path) return i;
    return undefined;
  }

  /** Every inode, in creation order. */
  files(): Inode[] {
    return [...this.inodes.values()];
  }

  private task(t: Task): AuditTask {
    return { pid: t.pid ?? 1000, uid: t.uid, comm: t.comm ?? 'sh', subj: this.profile.auditSubj };
  }

  private pushAudit(a: AuditArgs, t: Task, extra?: string): EmuAuditRecord {
    const r = auditRecord(a, this.task(t), this.serial++);
    const rec = extra ? Object.freeze({ ...r, raw: `${r.raw} ${extra}` }) : r;
    this.audit.push(rec);
    return rec;
  }

  // ---------------------------------------------------------------- hashing

  private fileDigest(inode: Inode, algo: string): Uint8Array {
    const known = inode.digests.get(algo);
    if (known) return known;
    const given = inode.content === null ? this.digestSource?.(inode, algo) : undefined;
    if (given) {
      inode.digests.set(algo, given);
      return given;
    }
    if (inode.content === null && inode.unknownDigests) return new Uint8Array(resolveHashAlgo(algo).size);
    if (inode.content === null)
      throw new ImakitError(
        'E_SCENARIO',
        `file ${inode.path}: no content and no ${algo} digest to appraise/measure it`,
        { path: inode.path },
      );
    if (!isHashSupported(algo))
      throw new ImakitError('E_HASH_UNSUPPORTED', `cannot compute ${algo} for ${inode.path}`, {
        path: inode.path,
      });
    const d = hash(algo, inode.content);
    inode.digests.set(algo, d);
    return d;
  }

  // ---------------------------------------------------------------- measurement

  private measureEvent(
    ev: Omit<EventData, 'imaHash' | 'evmNames' | 'violationDigest' | 'sha1Digest'>,
    tmpl: TemplateDescriptor,
    pcr: number,
  ): 'added' | 'exists' | 'skipped' {
    if (!this.record) return 'skipped';
    const file = ev.file;
    const full: EventData = {
      ...ev,
      imaHash: this.imaHash,
      evmNames: this.evm.config.all,
      violationDigest: this.profile.violationDigest,
      sha1Digest: file ? () => this.fileDigest(file, 'sha1') : undefined,
    };
    const data = buildTemplateData(tmpl, full, 'le');
    return this.store.add(pcr, tmpl.name, data, tmpl.legacy, ev.violation);
  }

  private templateFor(name: string | undefined): TemplateDescriptor {
    if (name === undefined) return this.template;
    const t = lookupTemplate(name);
    if (!t) throw new ImakitError('E_INTERNAL', `template ${name} vanished`);
    return t;
  }

  private measureKey(keyring: string, der: Uint8Array): void {
    this.bufferMeasurement('KEY_CHECK', keyring, der, keyring, { uid: 0 });
  }

  /** process_buffer_measurement() for KEY_CHECK / CRITICAL_DATA / KEXEC_CMDLINE. */
  bufferMeasurement(func: Func, eventName: string, buf: Uint8Array, funcData: string, task: Task): boolean {
    const m = this.compiled.match(
      { func, mask: 0, subject: this.subject(task), funcData },
      this.compiled.policyFlag & IMA.MEASURE,
    );
    if (!(m.action & IMA.MEASURE)) return false;
    const tmpl = m.template !== undefined ? this.templateFor(m.template) : this.templateFor('ima-buf');
    const digest = { algo: this.imaHash, digest: hash(this.imaHash, buf) };
    this.measureEvent(
      { name: eventName, digest, xattr: null, file: null, buf, violation: false, verity: false },
      tmpl,
      m.pcr,
    );
    return true;
  }

  private subject(t: Task): {
    uid: number;
    euid: number;
    gid: number;
    egid: number;
    capSetuid: boolean;
    capSetgid: boolean;
    label?: Task['label'];
  } {
    const euid = t.euid ?? t.uid;
    return {
      uid: t.uid,
      euid,
      gid: t.gid ?? t.uid,
      egid: t.egid ?? t.gid ?? t.uid,
      capSetuid: euid === 0,
      capSetgid: euid === 0,
      label: t.label,
    };
  }

  private violation(file: OpenFile, cause: 'ToMToU' | 'open_writers', name: string): void {
    // ima_add_violation(): default template (NULL desc), CONFIG_IMA_MEASURE_PCR_IDX, never de-duplicated
    this.measureEvent(
      { name, digest: null, xattr: null, file: file.inode, buf: null, violation: true, verity: false },
      this.template,
      this.pcrIdx,
    );
    if (!this.record) this.store.violations++;
    this.pushAudit(
      {
        type: AUDIT_TYPE.PCR,
        op: 'invalid_pcr',
        cause,
        name,
        dev: file.inode.fs.dev,
        ino: file.inode.ino,
        result: 0,
      },
      file.task,
    );
  }

  // ---------------------------------------------------------------- process_measurement

  /**
   * process_measurement(): one hook call on an open file (or an exec/mmap of it).
   */
  processMeasurement(file: OpenFile, mask: number, hook: Func, task: Task): HookOutcome {
    let func = hook;
    const inode = file.inode;
    const start = this.audit.length;
    const done = (rc: number, decidedBy: MatchResult['decidedBy']): HookOutcome => ({
      func: hook,
      mask,
      rc,
      audit: this.audit.slice(start),
      decidedBy,
    });
    const none = { measure: -1, appraise: -1, audit: -1, hash: -1 };
    const policyFlag = this.requestedFlags();
    if (!policyFlag || (inode.mode & 0o170000) !== 0o100000) return done(0, none);
    const m = this.compiled.match(
      {
        func,
        mask,
        subject: this.subject(task),
        object: {
          uid: inode.uid,
          gid: inode.gid,
          fsmagic: inode.fs.magic,
          fsname: inode.fs.name,
          fsuuid: inode.fs.uuid,
          label: inode.label,
        },
      },
      policyFlag,
    );
    let action = m.action;
    const violationCheck =
      (func === 'FILE_CHECK' || func === 'MMAP_CHECK' || func === 'MMAP_CHECK_REQPROT') &&
      (policyFlag & IMA.MEASURE) !== 0;
    if (!action && !violationCheck) return done(0, m.decidedBy);
    const mustAppraise = (action & IMA.APPRAISE) !== 0;
    if (action & IMA.FILE_APPRAISE) func = 'FILE_CHECK';
    let iint = inode.iint;
    if (action && !iint) iint = inode.iint = newIint();
    const name = absoluteName(inode);
    if (violationCheck) this.rdwrViolationCheck(file, iint, (action & IMA.MEASURE) !== 0, name);
    if (!action || !iint) return done(0, m.decidedBy);

    if (iint.changeAttr) {
      iint.changeAttr = false;
      iint.flags &= ~(
        IINT.APPRAISE |
        IINT.APPRAISED |
        APPRAISE_SUBMASK |
        APPRAISED_SUBMASK |
        (F.DIGSIG_REQUIRED |
          F.PERMIT_DIRECTIO |
          F.NEW_FILE |
          F.FAIL_UNVERIFIABLE_SIGS |
          F.MODSIG_ALLOWED |
          F.CHECK_BLACKLIST |
          F.VERITY_REQUIRED)
      );
    }
    if (
      iint.changeXattr ||
      (inode.fs.unverifiableSignatures && !inode.fs.untrustedMounter && !(action & F.FAIL_UNVERIFIABLE_SIGS))
    ) {
      iint.changeXattr = false;
      iint.flags &= ~DONE_MASK;
      iint.measuredPcrs = 0n;
    }
    iint.flags |= action;
    action &= DO_MASK;
    action &= ~((iint.flags & (DONE_MASK ^ IINT.MEASURED)) >> 1);
    const pcr = m.pcr;
    if (action & IMA.MEASURE && (iint.measuredPcrs >> BigInt(pcr)) & 1n) action ^= IMA.MEASURE;

    let rc = 0;
    let xattr: Uint8Array | null = null;
    if (action & IMA.HASH && !iint.digsig) {
      const x = inode.xattrs.get('security.ima') ?? null;
      if (x && x.length > 2 && x[0] === XT.DIGSIG) iint.digsig = true;
      iint.flags |= IINT.HASHED;
      action ^= IMA.HASH;
      iint.updateXattr = true;
    }
    const finish = (r: number): HookOutcome => {
      if (mask & MAY_WRITE && iint.digsig && !(iint.flags & IINT.NEW_FILE)) r = EACCES;
      if (mustAppraise) {
        if (r && this.settings.appraise === 'enforce') return done(EACCES, m.decidedBy);
        if (file.write) iint.updateXattr = true;
      }
      return done(0, m.decidedBy);
    };
    if (!action) {
      if (mustAppraise) rc = statusRc(cacheStatus(iint, func));
      return finish(rc);
    }
    const tmpl = this.templateFor(m.template);
    if (action & APPRAISE_SUBMASK || !tmpl.legacy)
      xattr = inode.fs.xattrs ? (inode.xattrs.get('security.ima') ?? null) : null;
    const algo = imaGetHashAlgo(xattr, this.imaHash, this.profile.policy.hashAlgoLast);
    // ima_collect_measurement(): an algorithm the kernel cannot allocate fails the whole access
    if (!this.hashAvailable(algo)) {
      this.messages.push(`ima: Can not allocate ${algo} (reason: -2)`);
      this.pushAudit(
        {
          type: AUDIT_TYPE.DATA,
          op: 'collect_data',
          cause: 'failed',
          // ima_collect_measurement() audits the dentry name, not the path (seen on the real kernel)
          name: inode.path.split('/').pop() ?? inode.path,
          dev: inode.fs.dev,
          ino: inode.ino,
          result: -2,
        },
        task,
      );
      return finish(-2);
    }
    const digest = this.fileDigest(inode, algo);
    iint.imaHash = { algo, digest };
    iint.version = inode.version;
    iint.flags |= IINT.COLLECTED;
    if (action & IMA.MEASURE) {
      if (!((iint.measuredPcrs >> BigInt(pcr)) & 1n)) {
        const verity = (iint.flags & F.VERITY_REQUIRED) !== 0;
        this.measureEvent(
          { name, digest: iint.imaHash, xattr, file: inode, buf: null, violation: false, verity },
          tmpl,
          pcr,
        );
        iint.flags |= IINT.MEASURED;
        iint.measuredPcrs |= 1n << BigInt(pcr);
      }
    }
    if (action & APPRAISE_SUBMASK) {
      const st = this.appraiseMeasurement(func, iint, file, name, xattr, task);
      rc = statusRc(st);
    }
    if (action & IMA.AUDIT && !(iint.flags & IINT.AUDITED)) {
      this.pushAudit(
        {
          type: AUDIT_TYPE.RULE,
          op: 'audit',
          cause: 'measured',
          name,
          dev: inode.fs.dev,
          ino: inode.ino,
          result: 0,
        },
        task,
        `hash="${algo}:${Buffer.from(digest).toString('hex')}"`,
      );
      iint.flags |= IINT.AUDITED;
    }
    if (rc === 0 && mustAppraise && m.allowedAlgos !== 0) {
      const a = findHashAlgo(algo);
      if (!a || !(m.allowedAlgos & (1 << a.id))) {
        rc = EACCES;
        this.pushAudit(
          {
            type: AUDIT_TYPE.DATA,
            op: 'collect_data',
            cause: 'denied-hash-algorithm',
            name,
            dev: inode.fs.dev,
            ino: inode.ino,
            result: rc,
          },
          task,
        );
      }
    }
    return finish(rc);
  }

  private requestedFlags(): number {
    let f = this.compiled.policyFlag & (IMA.MEASURE | IMA.APPRAISE | IMA.AUDIT | IMA.HASH);
    if (this.settings.appraise === 'off') f &= ~IMA.APPRAISE;
    return f;
  }

  private rdwrViolationCheck(file: OpenFile, iint: Iint | null, mustMeasure: boolean, name: string): void {
    const inode = file.inode;
    let tomtou = false;
    let writers = false;
    if (file.write) {
      const ii = iint ?? inode.iint;
      if (inode.readers > 0 && ii && ii.mustMeasure) tomtou = true;
    } else {
      if (mustMeasure && iint) iint.mustMeasure = true;
      if (inode.writers > 0 && mustMeasure) writers = true;
    }
    if (tomtou) this.violation(file, 'ToMToU', name);
    if (writers) this.violation(file, 'open_writers', name);
  }

  /** ima_appraise_measurement(): returns the integrity status and records audit, fix and cache. */
  private appraiseMeasurement(
    func: Func,
    iint: Iint,
    file: OpenFile,
    name: string,
    xattr: Uint8Array | null,
    task: Task,
  ): IntegrityStatus {
    const inode = file.inode;
    const op = 'appraise_data';
    let cause = 'unknown';
    let status: IntegrityStatus = 'unknown';
    const flags = {
      digsigRequired: (iint.flags & F.DIGSIG_REQUIRED) !== 0,
      verityRequired: (iint.flags & F.VERITY_REQUIRED) !== 0,
      modsigAllowed: false,
    };
    if (!inode.fs.xattrs) return 'unknown';
    let rc = 0;
    out: {
      if (xattr === null || xattr.length === 0) {
        cause = flags.digsigRequired
          ? flags.verityRequired
            ? 'verity-signature-required'
            : 'IMA-signature-required'
          : 'missing-hash';
        status = 'no_label';
        rc = -61;
        if (file.created) iint.flags |= IINT.NEW_FILE;
        if (iint.flags & IINT.NEW_FILE && (!flags.digsigRequired || inode.size === 0)) status = 'pass';
        break out;
      }
      rc = xattr.length;
      const ev = evmKeyLoaded(this.evm)
        ? this.evmStatus(iint, inode, { name: 'security.ima', value: xattr })
        : 'unknown';
      switch (ev) {
        case 'pass':
        case 'pass_immutable':
        case 'unknown':
          break;
        case 'no_xattrs':
        case 'no_label':
          cause = 'missing-HMAC';
          status = ev;
          break out;
        case 'fail_immutable':
          iint.digsig = true;
          cause = 'invalid-fail-immutable';
          status = ev;
          break out;
        case 'fail':
          cause = 'invalid-HMAC';
          status = ev;
          break out;
      }
      const v = xattrVerify(
        xattr,
        iint.imaHash as { algo: string; digest: Uint8Array },
        flags,
        this.imaKeyring(),
        {
          ecdsa: this.profile.signatures.ecdsa,
          sm2: this.profile.signatures.sm2,
          v1: this.profile.signatures.v1,
          hashAlgoLast: this.profile.policy.hashAlgoLast,
        },
        ev,
      );
      if (xattr[0] === XT.DIGSIG || xattr[0] === XT.VERITY_DIGSIG || v.digsig) iint.digsig = true;
      else if (xattr[0] === XT.DIGEST || xattr[0] === XT.DIGEST_NG) iint.digsig = ev === 'pass_immutable';
      status = v.status;
      cause = v.cause || cause;
      rc = v.status === 'pass' ? 0 : -22;
    }
    if (
      inode.fs.unverifiableSignatures &&
      (inode.fs.untrustedMounter || iint.flags & F.FAIL_UNVERIFIABLE_SIGS)
    ) {
      status = 'fail';
      cause = 'unverifiable-signature';
      this.pushAudit(
        { type: AUDIT_TYPE.DATA, op, cause, name, dev: inode.fs.dev, ino: inode.ino, result: rc || -1 },
        task,
      );
    } else if (status !== 'pass') {
      // fix mode, but never replace a file signature
      if (this.settings.appraise === 'fix' && (xattr === null || xattr[0] !== XT.DIGSIG)) {
        if (this.fixXattr(inode, iint)) status = 'pass';
      }
      if (inode.size === 0 && iint.flags & IINT.NEW_FILE && iint.digsig) status = 'pass';
      this.pushAudit(
        { type: AUDIT_TYPE.DATA, op, cause, name, dev: inode.fs.dev, ino: inode.ino, result: rc || -1 },
        task,
      );
    } else {
      // ima_cache_flags(): remember the appraised hook
      iint.flags |= appraisedBit(func) | IINT.APPRAISED;
    }
    setCacheStatus(iint, func, status);
    return status;
  }

  private evmStatus(
    iint: Iint,
    inode: Inode,
    override?: { name: string; value: Uint8Array },
  ): IntegrityStatus {
    if (iint.evmStatus === 'pass' || iint.evmStatus === 'pass_immutable') return iint.evmStatus;
    const v = evmVerify(this.evm, inode, override);
    if (v.convertToHmac) evmUpdate(this.evm, inode);
    iint.evmStatus = v.status;
    return v.status;
  }

  /** ima_fix_xattr(): write a fresh hash (the collected algorithm), then EVM's post-setxattr. */
  private fixXattr(inode: Inode, iint: Iint): boolean {
    if (!iint.imaHash) return false;
    inode.xattrs.set('security.ima', fixXattrValue(iint.imaHash.algo, iint.imaHash.digest));
    this.evmPostSetxattr(inode, 'security.ima');
    return true;
  }

  private evmPostSetxattr(inode: Inode, name: string): void {
    if (!this.evm.config.enabled.includes(name) && name !== 'security.evm') return;
    if (inode.iint) inode.iint.evmStatus = 'unknown';
    if (name !== 'security.evm') evmUpdate(this.evm, inode);
  }

  // ---------------------------------------------------------------- file operations

  /**
   * open(2): `mode` r / w / rw, `append`, `create` (O_CREAT|O_TRUNC on a new file). FILE_CHECK runs
   * with the open's MAY_* mask; a denied open is released at once.
   */
  openFile(
    path: string,
    o: { mode: 'r' | 'w' | 'rw'; append?: boolean; create?: boolean; exec?: boolean; fs?: FsInfo },
    task: Task,
  ): OpenResult {
    if (this.oops !== null) return { ok: false, errno: -5, hooks: [] };
    let inode = this.inode(path, o.fs);
    let created = false;
    if (!inode) {
      if (!o.create) return { ok: false, errno: -2, hooks: [] };
      // real-kernel.md §5.3: with the BPF LSM active, evm_inode_init_security() dereferences the
      // NULL xattr name the BPF hook leaves, once the EVM HMAC key is loaded
      const lsms = this.settings.lsm ?? this.profile.defaultLsm;
      if (this.profile.evmBpfOops && this.evm.hmacKey !== null && lsms.includes('bpf')) {
        this.oops =
          'BUG: kernel NULL pointer dereference in strlen (evm_protected_xattr_common <- evm_inode_init_security)';
        this.messages.push(this.oops, 'Kernel panic - not syncing: Fatal exception');
        return { ok: false, errno: -5, hooks: [] };
      }
      inode = this.addFile({
        path,
        fs: o.fs,
        content: new Uint8Array(0),
        uid: task.euid ?? task.uid,
        gid: task.egid ?? task.gid ?? task.uid,
        generation: this.newInodeGeneration?.(path) ?? this.nextGeneration(path),
      });
      inode.created = true;
      created = true;
    } else if (o.create && o.mode !== 'r' && !o.append) {
      inode.content = new Uint8Array(0);
      inode.digests.clear();
      inode.size = 0;
      inode.version++;
    }
    const read = o.mode !== 'w';
    const write = o.mode !== 'r';
    const file: OpenFile = { fd: this.nextFd++, inode, read, write, created, task };
    if (read) inode.readers++;
    if (write) inode.writers++;
    let mask = o.exec ? MAY_EXEC : (read ? MAY_READ : 0) | (write ? MAY_WRITE : 0);
    if (o.append) mask |= MAY_APPEND;
    const h = this.processMeasurement(file, mask, 'FILE_CHECK', task);
    if (h.rc !== 0) {
      this.release(file);
      return { ok: false, errno: h.rc, hooks: [h] };
    }
    this.open.set(file.fd, file);
    return { ok: true, file, hooks: [h] };
  }

  private nextGeneration(path: string): number {
    // files the kernel creates get random generations; derive a stable one from the path
    const d = hash('sha256', new TextEncoder().encode(path));
    return ((d[0] ?? 0) << 24) | ((d[1] ?? 0) << 16) | ((d[2] ?? 0) << 8) | (d[3] ?? 0);
  }

  /** Append bytes through an open writer (bumps i_version). */
  write(file: OpenFile, data: Uint8Array): void {
    const inode = file.inode;
    // unknown content stays unknown (its digests then come from `digestSource`)
    if (inode.content !== null) {
      const next = new Uint8Array(inode.content.length + data.length);
      next.set(inode.content);
      next.set(data, inode.content.length);
      inode.content = next;
    }
    inode.size += data.length;
    inode.digests.clear();
    inode.version++;
  }

  /** close(2): ima_file_free() → ima_check_last_writer(). */
  close(file: OpenFile): void {
    if (!this.open.delete(file.fd)) return;
    this.release(file);
  }

  private release(file: OpenFile): void {
    const inode = file.inode;
    const iint = inode.iint;
    if (file.write && iint && inode.writers === 1) {
      const update = iint.updateXattr;
      iint.updateXattr = false;
      if (iint.flags & IINT.NEW_FILE || inode.version !== iint.version) {
        iint.flags &= ~(DONE_MASK | IINT.NEW_FILE);
        iint.measuredPcrs = 0n;
        if (update) this.updateXattr(inode, iint);
      }
    }
    if (file.read) inode.readers--;
    if (file.write) inode.writers--;
  }

  /** ima_update_xattr(): keep the hash of an appraised (or `hash`-ruled) file current. */
  private updateXattr(inode: Inode, iint: Iint): void {
    if (iint.digsig) return;
    if (iint.status.file !== 'pass' && !(iint.flags & IINT.HASH)) return;
    if (!this.hashAvailable(this.imaHash)) return;
    const digest = this.fileDigest(inode, this.imaHash);
    iint.imaHash = { algo: this.imaHash, digest };
    this.fixXattr(inode, iint);
  }

  /** execve(2): FILE_CHECK(MAY_EXEC), BPRM_CHECK, CREDS_CHECK, then MMAP_CHECK for an ELF's segments. */
  exec(path: string, task: Task, fs?: FsInfo): { ok: boolean; hooks: HookOutcome[] } {
    const o = this.openFile(path, { mode: 'r', exec: true, fs }, task);
    if (!o.ok) return { ok: false, hooks: o.hooks };
    const hooks = [...o.hooks];
    const funcs: Func[] = ['BPRM_CHECK', 'CREDS_CHECK'];
    const c = o.file.inode.content;
    const kind =
      c !== null
        ? c.length >= 4 && c[0] === 0x7f && c[1] === 0x45 && c[2] === 0x4c && c[3] === 0x46
          ? 'elf'
          : c[0] === 0x23 && c[1] === 0x21
            ? 'script'
            : undefined
        : o.file.inode.exe;
    const elf = kind === 'elf';
    if (elf) funcs.push('MMAP_CHECK');
    let ok = true;
    for (const f of funcs) {
      const h = this.processMeasurement(o.file, MAY_EXEC, f, task);
      hooks.push(h);
      if (h.rc !== 0) {
        ok = false;
        break;
      }
    }
    this.close(o.file);
    if (ok && kind === 'script') {
      // a script: the interpreter opens and reads it (comm = the script's name)
      const r = this.openFile(
        path,
        { mode: 'r', fs },
        { ...task, comm: path.split('/').pop()?.slice(0, 15) ?? 'sh' },
      );
      hooks.push(...r.hooks);
      if (r.ok) this.close(r.file);
      else ok = false;
    }
    return { ok, hooks };
  }

  /** mmap(PROT_EXEC) of a file opened for read (the loader's open + MMAP_CHECK). */
  mmapExec(path: string, task: Task, fs?: FsInfo): { ok: boolean; hooks: HookOutcome[] } {
    const o = this.openFile(path, { mode: 'r', fs }, task);
    if (!o.ok) return { ok: false, hooks: o.hooks };
    const h = this.processMeasurement(o.file, MAY_EXEC, 'MMAP_CHECK', task);
    this.close(o.file);
    return { ok: h.rc === 0, hooks: [...o.hooks, h] };
  }

  /** Read a whole file (open O_RDONLY, read, close). */
  readFile(path: string, task: Task, fs?: FsInfo): { ok: boolean; hooks: HookOutcome[] } {
    const o = this.openFile(path, { mode: 'r', fs }, task);
    if (!o.ok) return { ok: false, hooks: o.hooks };
    this.close(o.file);
    return { ok: true, hooks: o.hooks };
  }

  /** chmod/chown (notify_change): EVM may refuse; afterwards IMA re-appraises and EVM re-HMACs. */
  setattr(
    path: string,
    attr: { mode?: number; uid?: number; gid?: number },
    task: Task,
    fs?: FsInfo,
  ): { ok: boolean; errno?: number } {
    const inode = this.inode(path, fs);
    if (!inode) return { ok: false, errno: -2 };
    const gate = this.evmMetadataGate(inode, task, 'attr', attr);
    if (gate !== 0) return { ok: false, errno: gate };
    if (attr.mode !== undefined) inode.mode = (inode.mode & 0o170000) | (attr.mode & 0o7777);
    if (attr.uid !== undefined) inode.uid = attr.uid;
    if (attr.gid !== undefined) inode.gid = attr.gid;
    // ima_inode_post_setattr()
    if (this.requestedFlags() & IMA.APPRAISE && inode.iint) {
      inode.iint.changeAttr = true;
      const m = this.compiled.match(
        {
          func: 'POST_SETATTR',
          mask: 0,
          subject: this.subject(task),
          object: {
            uid: inode.uid,
            gid: inode.gid,
            fsmagic: inode.fs.magic,
            fsname: inode.fs.name,
            fsuuid: inode.fs.uuid,
          },
        },
        IMA.APPRAISE,
      );
      if (!(m.action & IMA.APPRAISE)) inode.iint.updateXattr = false;
    }
    // evm_inode_post_setattr()
    if (inode.iint) inode.iint.evmStatus = 'unknown';
    if (this.evm.hmacKey) evmUpdate(this.evm, inode);
    return { ok: true };
  }

  private evmMetadataGate(inode: Inode, task: Task, what: 'attr' | 'xattr', change: unknown): number {
    if (this.evm.allowMetadataWrites || !evmKeyLoaded(this.evm) || this.evm.fixMode) return 0;
    const v = evmVerify(this.evm, inode).status;
    if (v === 'pass' || v === 'no_xattrs' || v === 'fail_immutable') return 0;
    if (v === 'pass_immutable' && what === 'attr') {
      const c = change as { mode?: number; uid?: number; gid?: number };
      const same =
        (c.mode === undefined || (inode.mode & 0o7777) === (c.mode & 0o7777)) &&
        (c.uid === undefined || c.uid === inode.uid) &&
        (c.gid === undefined || c.gid === inode.gid);
      if (same) return 0;
    }
    this.pushAudit(
      {
        type: AUDIT_TYPE.METADATA,
        op: 'appraise_metadata',
        cause: v,
        name: inode.path.split('/').pop() ?? inode.path,
        dev: inode.fs.dev,
        ino: inode.ino,
        result: -1,
      },
      task,
    );
    return -1;
  }

  /**
   * setxattr(2) from userspace (root): ima_inode_setxattr() (type and algorithm checks), EVM's gate
   * for protected names, then the post-set updates.
   */
  setxattr(
    path: string,
    name: string,
    value: Uint8Array,
    task: Task,
    fs?: FsInfo,
  ): { ok: boolean; errno?: number } {
    const inode = this.inode(path, fs);
    if (!inode) return { ok: false, errno: -2 };
    if (!inode.fs.xattrs) return { ok: false, errno: -95 };
    if (name.startsWith('security.') && (task.euid ?? task.uid) !== 0) return { ok: false, errno: -1 };
    let digsig = false;
    if (name === 'security.ima') {
      if (value.length === 0 || (value[0] ?? 0) >= XT.LAST) return { ok: false, errno: -22 };
      const algo = imaGetHashAlgo(value, this.imaHash, this.profile.policy.hashAlgoLast);
      const allowed = this.compiled.setxattrAlgos;
      const id = findHashAlgo(algo)?.id ?? -1;
      let errmsg: string | null = null;
      if (allowed) {
        if (!(allowed & (1 << id))) errmsg = 'denied-hash-algorithm';
      } else if (algo !== this.imaHash && !this.hashAvailable(algo)) errmsg = 'unavailable-hash-algorithm';
      if (errmsg) {
        this.pushAudit(
          {
            type: AUDIT_TYPE.DATA,
            op: 'set_data',
            cause: errmsg,
            name: `/${inode.path}`,
            dev: inode.fs.dev,
            ino: inode.ino,
            result: EACCES,
          },
          task,
        );
        return { ok: false, errno: EACCES };
      }
      digsig = value[0] === XT.DIGSIG;
    } else if (name === 'security.evm') {
      if (value.length === 0) return { ok: false, errno: -22 };
      if (value[0] !== 0x03 && value[0] !== 0x05) return { ok: false, errno: -1 };
      digsig = value[0] === 0x05;
    }
    const isProtected = this.evm.config.enabled.includes(name) || name === 'security.evm';
    if (isProtected) {
      const gate = this.evmMetadataGate(inode, task, 'xattr', null);
      if (gate !== 0) return { ok: false, errno: gate };
    }
    inode.xattrs.set(name, Uint8Array.from(value));
    if (name === 'security.ima' || name === 'security.evm') this.resetAppraiseFlags(inode, digsig);
    if (isProtected) this.evmPostSetxattr(inode, name);
    return { ok: true };
  }

  /** removexattr(2). */
  removexattr(path: string, name: string, task: Task, fs?: FsInfo): { ok: boolean; errno?: number } {
    const inode = this.inode(path, fs);
    if (!inode) return { ok: false, errno: -2 };
    if (!inode.xattrs.has(name)) return { ok: false, errno: -61 };
    const isProtected = this.evm.config.enabled.includes(name) || name === 'security.evm';
    if (isProtected) {
      const gate = this.evmMetadataGate(inode, task, 'xattr', null);
      if (gate !== 0) return { ok: false, errno: gate };
    }
    inode.xattrs.delete(name);
    if (name === 'security.ima' || name === 'security.evm') this.resetAppraiseFlags(inode, false);
    if (isProtected) this.evmPostSetxattr(inode, name);
    return { ok: true };
  }

  private resetAppraiseFlags(inode: Inode, digsig: boolean): void {
    if (!(this.requestedFlags() & IMA.APPRAISE) || !inode.iint) return;
    inode.iint.measuredPcrs = 0n;
    inode.iint.changeXattr = true;
    inode.iint.digsig = digsig;
  }
}

function policyRuleRecord(r: PolicyRule, serial: number): EmuAuditRecord {
  const tokens: string[] = [];
  for (const t of r.text.split(/[ \t]+/)) {
    if (t === '') continue;
    if (t.startsWith('#')) break;
    tokens.push(t === r.action ? `action=${t}` : t);
  }
  const fields: Record<string, string> = {};
  for (const t of tokens) {
    const m = /^([a-z_]+)[=<>](.*)$/.exec(t);
    if (m) fields[m[1] as string] = m[2] as string;
    else fields[t] = '';
  }
  fields.res = '1';
  return Object.freeze({
    type: AUDIT_TYPE.POLICY_RULE,
    fields: Object.freeze(fields),
    raw: `type=${AUDIT_TYPE.POLICY_RULE} audit(0.000:${serial}): ${tokens.join(' ')} res=1`,
  });
}

function statusRc(s: IntegrityStatus): number {
  return s === 'pass' || s === 'pass_immutable' ? 0 : EACCES;
}

function hookSlot(func: Func): keyof Iint['status'] {
  switch (func) {
    case 'MMAP_CHECK':
    case 'MMAP_CHECK_REQPROT':
      return 'mmap';
    case 'BPRM_CHECK':
      return 'bprm';
    case 'CREDS_CHECK':
      return 'creds';
    case 'FILE_CHECK':
    case 'POST_SETATTR':
      return 'file';
    default:
      return 'read';
  }
}

function appraisedBit(func: Func): number {
  const s = hookSlot(func);
  return s === 'mmap'
    ? IINT.MMAP_APPRAISED
    : s === 'bprm'
      ? IINT.BPRM_APPRAISED
      : s === 'creds'
        ? IINT.CREDS_APPRAISED
        : s === 'file'
          ? IINT.FILE_APPRAISED
          : IINT.READ_APPRAISED;
}

function cacheStatus(iint: Iint, func: Func): IntegrityStatus {
  return iint.status[hookSlot(func)];
}

function setCacheStatus(iint: Iint, func: Func, s: IntegrityStatus): void {
  iint.status[hookSlot(func)] = s;
}
