/**
 * Emulator scenarios: a documented JSON description of one boot (the same inputs the real-kernel
 * harness takes, src/host/vm/types.ts `VmSpec`) validated with messages that name the bad field, and
 * the run that produces the same artifacts the harness brings back, so both can be compared file by
 * file.
 *
 * ```jsonc
 * {
 *   "profile": "debian-6.1",                 // kernel profile (default: mainline)
 *   "append": ["ima_policy=tcb", "ima_hash=sha256", "ima_template=ima-ng"],  // kernel parameters
 *   "banks": ["sha1", "sha256"],             // TPM PCR banks
 *   "bootAggregate": { "algo": "sha256", "digest": "<hex>" },  // TPM-dependent, default zeros
 *   "pcrs": { "sha256": ["<hex>", … 24] },   // PCR values before IMA (firmware PCRs)
 *   "modules": ["sha512_generic"],           // hash modules loaded after IMA init
 *   "policy": "measure func=FILE_CHECK\n…",  // written once after the keys
 *   "imaCerts": ["ima.der"], "evmCerts": [], // certificates (paths relative to the scenario file)
 *   "evmKey": "<hex>",                       // EVM HMAC key (plain), enables EVM
 *   "evmX509": false,                        // enable EVM signature verification without an HMAC key
 *   "fsUuid": "<uuid>", "mountpoint": "/data", "dev": "vdb",
 *   "files": [{ "path": "a.txt", "content": "text" | "contentHex": "…" | "contentFile": "…",
 *               "digests": { "sha256": "<hex>" }, "uid": 0, "gid": 0, "mode": "0644",
 *               "ino": 12, "generation": 0, "xattrs": { "security.ima": "<hex>" },
 *               "exe": "script" | "elf" }],
 *   "workload": [{ "op": "read", "path": "a.txt", "uid": 0, "label": "…" }]   // harness ops
 * }
 * ```
 */
import { ImakitError } from '../errors.ts';
import { fromHex, toHex } from '../core/bytes/bytes.ts';
import type { PublicKey } from '../core/keys/keys.ts';
import { Emulator, ext4Fs } from './emulator.ts';
import { getProfile } from './profiles.ts';
import { runAccess, WORKLOAD_OPS, type WorkloadAccess, type WorkloadResult } from './workload.ts';

/** A scenario file entry. */
export interface ScenarioFile {
  readonly path: string;
  readonly content?: Uint8Array;
  readonly digests?: ReadonlyMap<string, Uint8Array>;
  readonly uid?: number;
  readonly gid?: number;
  readonly mode?: number;
  readonly ino?: number;
  readonly generation?: number;
  readonly xattrs?: ReadonlyMap<string, Uint8Array>;
  readonly exe?: 'script' | 'elf';
}

/** A validated scenario. Certificates are already loaded by the caller (I/O stays out of src/kernel). */
export interface Scenario {
  readonly profile: string;
  readonly append: readonly string[];
  readonly banks: readonly string[];
  readonly bootAggregate?: { readonly algo: string; readonly digest: Uint8Array };
  readonly pcrs?: ReadonlyMap<string, readonly Uint8Array[]>;
  readonly modules: readonly string[];
  readonly policy?: string;
  readonly imaCerts: readonly string[];
  readonly evmCerts: readonly string[];
  readonly evmKey?: Uint8Array;
  readonly evmX509: boolean;
  readonly fsUuid: string | null;
  readonly mountpoint: string;
  readonly dev: string;
  readonly files: readonly (ScenarioFile & { readonly contentFile?: string })[];
  readonly tree?: string;
  readonly workload: readonly WorkloadAccess[];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const bad = (field: string, why: string): never => {
  // the context's field is printed first: `field files[0].mode: expected …`
  throw new ImakitError('E_SCENARIO', why, { field });
};

function obj(v: Json | undefined, field: string, allowed: readonly string[]): Record<string, Json> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad(field, 'expected an object');
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) bad(`${field}.${k}`, `unknown field (known: ${allowed.join(', ')})`);
  return v;
}
function str(v: Json | undefined, field: string): string {
  return typeof v === 'string' ? v : bad(field, `expected a string, got ${JSON.stringify(v)}`);
}
function int(v: Json | undefined, field: string, max = 0xffffffff): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
    ? v
    : bad(field, `expected an integer 0..${max}, got ${JSON.stringify(v)}`);
}
function strList(v: Json | undefined, field: string): string[] {
  if (!Array.isArray(v)) return bad(field, 'expected an array of strings');
  return v.map((x, i) => str(x, `${field}[${i}]`));
}
function hexBytes(v: Json | undefined, field: string): Uint8Array {
  const s = str(v, field);
  try {
    return fromHex(s.replace(/^0x/, ''), field);
  } catch {
    return bad(field, 'expected hexadecimal bytes');
  }
}
function mode(v: Json | undefined, field: string): number {
  if (typeof v === 'string') {
    if (!/^[0-7]{3,7}$/.test(v)) bad(field, `expected an octal mode like "0644", got ${JSON.stringify(v)}`);
    const m = Number.parseInt(v, 8);
    return m & 0o170000 ? m : 0o100000 | m;
  }
  const m = int(v, field, 0xffff);
  return m & 0o170000 ? m : 0o100000 | m;
}

const TOP = [
  '$schema',
  'description',
  'profile',
  'append',
  'cmdline',
  'banks',
  'bootAggregate',
  'pcrs',
  'modules',
  'policy',
  'imaCerts',
  'evmCerts',
  'evmKey',
  'evmX509',
  'fsUuid',
  'mountpoint',
  'dev',
  'files',
  'tree',
  'workload',
];
const FILE_FIELDS = [
  'path',
  'content',
  'contentHex',
  'contentFile',
  'digests',
  'uid',
  'gid',
  'mode',
  'ino',
  'generation',
  'xattrs',
  'exe',
];
const ACCESS_FIELDS = ['op', 'path', 'uid', 'content', 'mode', 'owner', 'name', 'value', 'label'];

/**
 * Validate a parsed scenario.
 * @throws ImakitError E_SCENARIO naming the field (`files[2].mode: expected an octal mode …`)
 */
export function parseScenario(json: unknown): Scenario {
  const o = obj(json as Json, 'scenario', TOP);
  const profile = o.profile === undefined ? 'mainline' : str(o.profile, 'profile');
  try {
    getProfile(profile);
  } catch {
    bad('profile', `unknown kernel profile '${profile}'`);
  }
  const append =
    o.append !== undefined
      ? strList(o.append, 'append')
      : o.cmdline !== undefined
        ? str(o.cmdline, 'cmdline')
            .split(/\s+/)
            .filter((x) => x)
        : [];
  const banks = o.banks !== undefined ? strList(o.banks, 'banks') : ['sha1', 'sha256'];
  banks.forEach((b, i) => {
    if (!['sha1', 'sha256', 'sha384', 'sha512', 'sm3', 'sha3-256', 'sha3-384', 'sha3-512'].includes(b))
      bad(`banks[${i}]`, `not a PCR bank algorithm: ${b}`);
  });
  let bootAggregate: Scenario['bootAggregate'];
  if (o.bootAggregate !== undefined) {
    const b = obj(o.bootAggregate, 'bootAggregate', ['algo', 'digest']);
    bootAggregate = {
      algo: str(b.algo, 'bootAggregate.algo'),
      digest: hexBytes(b.digest, 'bootAggregate.digest'),
    };
  }
  let pcrs: Map<string, Uint8Array[]> | undefined;
  if (o.pcrs !== undefined) {
    const p = obj(o.pcrs, 'pcrs', banks);
    pcrs = new Map(
      Object.entries(p).map(([bank, vals]) => {
        if (!Array.isArray(vals) || vals.length > 24) bad(`pcrs.${bank}`, 'expected up to 24 hex values');
        return [bank, (vals as Json[]).map((v, i) => hexBytes(v, `pcrs.${bank}[${i}]`))];
      }),
    );
  }
  const files = (
    o.files === undefined ? [] : Array.isArray(o.files) ? o.files : bad('files', 'expected an array')
  ).map((fj, i) => {
    const field = `files[${i}]`;
    const f = obj(fj, field, FILE_FIELDS);
    const path = str(f.path, `${field}.path`);
    if (path === '' || path.startsWith('/') || path.split('/').includes('..'))
      bad(`${field}.path`, 'must be relative to the filesystem root, without ..');
    const sources = ['content', 'contentHex', 'contentFile'].filter((k) => f[k] !== undefined);
    if (sources.length > 1) bad(field, `give only one of ${sources.join(', ')}`);
    const content =
      f.content !== undefined
        ? new TextEncoder().encode(str(f.content, `${field}.content`))
        : f.contentHex !== undefined
          ? hexBytes(f.contentHex, `${field}.contentHex`)
          : undefined;
    const digests =
      f.digests !== undefined
        ? new Map(
            Object.entries(obj(f.digests, `${field}.digests`, Object.keys(f.digests as object))).map(
              ([k, v]) => [k, hexBytes(v, `${field}.digests.${k}`)],
            ),
          )
        : undefined;
    if (sources.length === 0 && digests === undefined)
      bad(field, 'needs content, contentHex, contentFile or digests');
    const xattrs =
      f.xattrs !== undefined
        ? new Map(
            Object.entries(obj(f.xattrs, `${field}.xattrs`, Object.keys(f.xattrs as object))).map(
              ([k, v]) => [k, hexBytes(v, `${field}.xattrs.${k}`)],
            ),
          )
        : undefined;
    const exe: 'script' | 'elf' | undefined =
      f.exe === undefined
        ? undefined
        : f.exe === 'script' || f.exe === 'elf'
          ? f.exe
          : bad(`${field}.exe`, 'expected "script" or "elf"');
    return {
      path,
      content,
      contentFile: f.contentFile !== undefined ? str(f.contentFile, `${field}.contentFile`) : undefined,
      digests,
      uid: f.uid !== undefined ? int(f.uid, `${field}.uid`) : undefined,
      gid: f.gid !== undefined ? int(f.gid, `${field}.gid`) : undefined,
      mode: f.mode !== undefined ? mode(f.mode, `${field}.mode`) : undefined,
      ino: f.ino !== undefined ? int(f.ino, `${field}.ino`) : undefined,
      generation: f.generation !== undefined ? int(f.generation, `${field}.generation`) : undefined,
      xattrs,
      exe,
    };
  });
  const workload = (
    o.workload === undefined
      ? []
      : Array.isArray(o.workload)
        ? o.workload
        : bad('workload', 'expected an array')
  ).map((aj, i) => {
    const field = `workload[${i}]`;
    const a = obj(aj, field, ACCESS_FIELDS);
    const op = str(a.op, `${field}.op`);
    if (!(WORKLOAD_OPS as readonly string[]).includes(op))
      bad(`${field}.op`, `unknown op '${op}' (${WORKLOAD_OPS.join(', ')})`);
    const acc: WorkloadAccess = {
      op: op as WorkloadAccess['op'],
      path: str(a.path, `${field}.path`),
      ...(a.uid !== undefined ? { uid: int(a.uid, `${field}.uid`) } : {}),
      ...(a.content !== undefined ? { content: str(a.content, `${field}.content`) } : {}),
      ...(a.mode !== undefined ? { mode: str(a.mode, `${field}.mode`) } : {}),
      ...(a.owner !== undefined ? { owner: str(a.owner, `${field}.owner`) } : {}),
      ...(a.name !== undefined ? { name: str(a.name, `${field}.name`) } : {}),
      ...(a.value !== undefined ? { value: str(a.value, `${field}.value`) } : {}),
      ...(a.label !== undefined ? { label: str(a.label, `${field}.label`) } : {}),
    };
    if (op === 'chmod' && !/^[0-7]{3,4}$/.test(acc.mode ?? ''))
      bad(`${field}.mode`, 'chmod needs an octal mode');
    if (op === 'chown' && !/^\d+:\d+$/.test(acc.owner ?? '')) bad(`${field}.owner`, 'chown needs uid:gid');
    if ((op === 'setxattr' || op === 'rmxattr') && acc.name === undefined)
      bad(`${field}.name`, `${op} needs an xattr name`);
    return acc;
  });
  const fsUuid = o.fsUuid !== undefined ? str(o.fsUuid, 'fsUuid').toLowerCase() : null;
  if (fsUuid !== null && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(fsUuid))
    bad('fsUuid', 'expected a dashed UUID');
  return Object.freeze({
    profile,
    append,
    banks,
    bootAggregate,
    pcrs,
    modules: o.modules !== undefined ? strList(o.modules, 'modules') : [],
    policy: o.policy !== undefined && o.policy !== null ? str(o.policy, 'policy') : undefined,
    imaCerts: o.imaCerts !== undefined ? strList(o.imaCerts, 'imaCerts') : [],
    evmCerts: o.evmCerts !== undefined ? strList(o.evmCerts, 'evmCerts') : [],
    evmKey: o.evmKey !== undefined ? hexBytes(o.evmKey, 'evmKey') : undefined,
    evmX509:
      o.evmX509 === undefined
        ? false
        : typeof o.evmX509 === 'boolean'
          ? o.evmX509
          : bad('evmX509', 'expected a boolean'),
    fsUuid,
    mountpoint: o.mountpoint !== undefined ? str(o.mountpoint, 'mountpoint') : '/data',
    dev: o.dev !== undefined ? str(o.dev, 'dev') : 'vdb',
    files,
    tree: o.tree !== undefined ? str(o.tree, 'tree') : undefined,
    workload,
  });
}

/** What a run produced: the harness's artifacts (src/host/vm/types.ts VmResult) in emulated form. */
export interface ScenarioResult {
  readonly binaryList: Uint8Array;
  readonly asciiList: string;
  readonly perBank: ReadonlyMap<string, { binary: Uint8Array; ascii: string }>;
  readonly measurementCount: number;
  readonly violations: number;
  /** bank → 24 lowercase hex PCR values */
  readonly pcrs: Readonly<Record<string, readonly string[]>>;
  readonly accesses: readonly WorkloadResult[];
  readonly files: ReadonlyArray<{
    path: string;
    ino: number;
    uid: number;
    gid: number;
    mode: number;
    size: number;
    generation: number;
    xattrs: Record<string, string>;
  }>;
  readonly audit: readonly { type: number; fields: Readonly<Record<string, string>>; raw: string }[];
  /** kernel messages and audit lines, dmesg-like */
  readonly dmesg: string;
  readonly policyLoaded: boolean | null;
  readonly keyErrors: readonly string[];
  /** the emulated kernel oopsed (the harness's boot would end with E_VM_OOPS) */
  readonly oops: string | null;
}

/** Certificates the caller loaded for a scenario. */
export interface ScenarioKeys {
  readonly ima: ReadonlyArray<{ key: PublicKey; der: Uint8Array }>;
  readonly evm: ReadonlyArray<{ key: PublicKey; der: Uint8Array }>;
}

/**
 * Run a scenario: boot, keys, EVM key, files, policy, workload (the harness's order: keys and the
 * EVM key before the policy write, then the accesses).
 */
export function runScenario(s: Scenario, files: readonly ScenarioFile[], keys: ScenarioKeys): ScenarioResult {
  const emu = new Emulator({
    profile: getProfile(s.profile),
    cmdline: s.append,
    banks: s.banks,
    bootAggregate: s.bootAggregate ?? null,
    initialPcrs: s.pcrs,
    modules: s.modules,
  });
  const fs = ext4Fs(s.fsUuid, s.dev, s.mountpoint);
  const keyErrors: string[] = [];
  keys.ima.forEach((k, i) => {
    const r = emu.addKey(emu.profile.imaKeyring, k.key, k.der);
    if (!r.ok) keyErrors.push(`imaCerts[${i}]: ${r.error ?? ''}`);
  });
  keys.evm.forEach((k, i) => {
    const r = emu.addKey(emu.profile.evmKeyring, k.key, k.der);
    if (!r.ok) keyErrors.push(`evmCerts[${i}]: ${r.error ?? ''}`);
  });
  if (s.evmKey) emu.loadEvmHmacKey(s.evmKey);
  if (s.evmX509) emu.enableEvmX509();
  for (const f of files) emu.addFile({ ...f, fs });
  let policyLoaded: boolean | null = null;
  if (s.policy !== undefined) policyLoaded = emu.loadPolicy(s.policy).ok;
  const accesses = s.workload.map((a, i) => runAccess(emu, a, i, fs));
  const pcrs: Record<string, string[]> = {};
  for (const [b, regs] of emu.store.pcrs) pcrs[b] = regs.map((r) => toHex(r));
  const perBank = new Map<string, { binary: Uint8Array; ascii: string }>();
  for (const b of s.banks) perBank.set(b, { binary: emu.store.binary(b), ascii: emu.store.ascii(b) });
  const dmesg = [...emu.messages, ...emu.audit.map((a) => `audit: ${a.raw}`)].join('\n') + '\n';
  return {
    binaryList: emu.store.binary('sha1'),
    asciiList: emu.store.ascii('sha1'),
    perBank,
    measurementCount: emu.store.entries.length,
    violations: emu.store.violations,
    pcrs,
    accesses,
    files: emu.files().map((i) => ({
      path: i.path,
      ino: i.ino,
      uid: i.uid,
      gid: i.gid,
      mode: i.mode,
      size: i.size,
      generation: i.generation,
      xattrs: Object.fromEntries([...i.xattrs].map(([k, v]) => [k, toHex(v)])),
    })),
    audit: emu.audit,
    dmesg,
    policyLoaded,
    keyErrors,
    oops: emu.oops,
  };
}
