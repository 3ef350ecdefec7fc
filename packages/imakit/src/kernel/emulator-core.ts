/**
 * One emulated boot's state and the services every flow uses (security/integrity/ima/ima_init.c,
 * ima_policy.c, ima_api.c): boot parameters and the boot_aggregate, policy loads, keyrings and the
 * EVM key, the inode table, file hashing, measurement recording (ima_store_template and
 * process_buffer_measurement for KEY_CHECK / CRITICAL_DATA) and audit records.
 *
 * The flows live beside it: process-measurement.ts (the IMA hook and appraisal), evm-flow.ts
 * (metadata changes, EVM verdicts and fixes) and emulator.ts (the open/close state machine and
 * the public `Emulator`). Members without `private` are shared with those modules; callers outside
 * src/kernel use the `Emulator` methods.
 */
import { ImakitError } from '../errors.ts';
import { hash, isHashSupported, resolveHashAlgo } from '../core/hash/hash-algo.ts';
import { lookupTemplate, parseTemplateFmt, type TemplateDescriptor } from '../core/ima-list/templates.ts';
import { Keyring } from '../core/labels/ima-signature.ts';
import { kernelBootAggregates } from '../core/tcg/boot-aggregate.ts';
import type { PublicKey } from '../core/keys/keys.ts';
import { resolveEvmConfig } from '../core/evm/evm-config.ts';
import {
  compilePolicy,
  parsePolicy,
  resolveBootParams,
  IMA,
  type BootSettings,
  type CompiledPolicy,
  type Diagnostic,
  type Func,
  type PolicyRule,
} from '../core/policy/index.ts';
import { bootDefaults, type KernelProfile } from './profiles.ts';
import { AUDIT_TYPE, auditRecord, type AuditArgs, type AuditTask, type EmuAuditRecord } from './audit.ts';
import type { EvmState } from './evm.ts';
import { buildTemplateData, MeasurementStore, type Bank, type EventData } from './measure.ts';
import type { FsInfo, Inode } from './inode-state.ts';
import { ext4Fs, type EmulatorOptions, type FileSpec, type Task } from './emulator-types.ts';

/** The state of one emulated boot and the services its flows share. */
export class EmulatorCore {
  readonly profile: KernelProfile;
  readonly settings: BootSettings;
  readonly store: MeasurementStore;
  readonly audit: EmuAuditRecord[] = [];
  /** `ima: …` / `evm: …` kernel messages */
  readonly messages: string[] = [];
  /** set when the emulated kernel oopsed (a profile quirk); every later operation fails */
  oops: string | null = null;
  readonly evm: EvmState;
  readonly inodes = new Map<string, Inode>();
  readonly keyrings = new Map<string, PublicKey[]>();
  readonly queuedKeys: Array<{ keyring: string; der: Uint8Array }> = [];
  readonly loadedModules = new Set<string>();
  policyRules: PolicyRule[];
  policyInactive = new Set<number>();
  compiled: CompiledPolicy;
  customLoaded = false;
  policyWritable = true;
  nextFd = 3;
  nextIno = 12;
  serial = 100;
  readonly record: boolean;
  readonly digestSource: EmulatorOptions['digestSource'];
  readonly newInodeGeneration: EmulatorOptions['newInodeGeneration'];
  readonly template: TemplateDescriptor;
  readonly imaHash: string;
  readonly pcrIdx: number;

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

  defaultAggregate(
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

  compile(): CompiledPolicy {
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

  imaKeyring(): Keyring | null {
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

  key(fs: FsInfo, path: string): string {
    return `${fs.mountpoint}\0${path}`;
  }

  /** The inode at `path` on `fs` (default: the first filesystem holding it). */
  inode(path: string, fs?: FsInfo): Inode | undefined {
    if (fs) return this.inodes.get(this.key(fs, path));
    for (const i of this.inodes.values()) if (i.path === path) return i;
    return undefined;
  }

  /**
   * Drop an inode that nothing holds open (its iint goes with it, as on the kernel's last iput):
   * callers judging many independent files (preflight) keep the table, and memory, flat.
   * @returns false when there is no such inode or it is open
   */
  forgetFile(path: string, fs: FsInfo): boolean {
    const k = this.key(fs, path);
    const inode = this.inodes.get(k);
    if (!inode || inode.readers > 0 || inode.writers > 0) return false;
    return this.inodes.delete(k);
  }

  /** Every inode, in creation order. */
  files(): Inode[] {
    return [...this.inodes.values()];
  }

  task(t: Task): AuditTask {
    return { pid: t.pid ?? 1000, uid: t.uid, comm: t.comm ?? 'sh', subj: this.profile.auditSubj };
  }

  pushAudit(a: AuditArgs, t: Task, extra?: string): EmuAuditRecord {
    const r = auditRecord(a, this.task(t), this.serial++);
    const rec = extra ? Object.freeze({ ...r, raw: `${r.raw} ${extra}` }) : r;
    this.audit.push(rec);
    return rec;
  }

  fileDigest(inode: Inode, algo: string): Uint8Array {
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

  measureEvent(
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

  templateFor(name: string | undefined): TemplateDescriptor {
    if (name === undefined) return this.template;
    const t = lookupTemplate(name);
    if (!t) throw new ImakitError('E_INTERNAL', `template ${name} vanished`);
    return t;
  }

  measureKey(keyring: string, der: Uint8Array): void {
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

  /** The object side of a policy match (ima_match_rules): owner, group, filesystem, LSM label. */
  objectOf(inode: Inode): {
    uid: number;
    gid: number;
    fsmagic: number;
    fsname: string;
    fsuuid: string | null;
    label?: Inode['label'];
  } {
    return {
      uid: inode.uid,
      gid: inode.gid,
      fsmagic: inode.fs.magic,
      fsname: inode.fs.name,
      fsuuid: inode.fs.uuid,
      label: inode.label,
    };
  }

  subject(t: Task): {
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

  requestedFlags(): number {
    let f = this.compiled.policyFlag & (IMA.MEASURE | IMA.APPRAISE | IMA.AUDIT | IMA.HASH);
    if (this.settings.appraise === 'off') f &= ~IMA.APPRAISE;
    return f;
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
