/**
 * The real-kernel harness's workload operations (src/host/vm/types.ts `AccessOp`, run by the guest
 * script as shell commands) replayed on the emulator with the same system-call sequence, so that an
 * emulated run and a real-kernel run of one spec can be compared access by access.
 */
import type { Emulator, HookOutcome, Task } from './emulator.ts';
import type { FsInfo } from './inode-state.ts';
import type { EmuAuditRecord } from './audit.ts';
import type { Func } from '../core/policy/index.ts';

/** The workload ops (same names and meaning as the harness). */
export const WORKLOAD_OPS = Object.freeze([
  'exec',
  'read',
  'mmap-exec',
  'write-then-read',
  'open-writers',
  'tomtou',
  'write',
  'create',
  'chmod',
  'chown',
  'setxattr',
  'rmxattr',
] as const);
export type WorkloadOp = (typeof WORKLOAD_OPS)[number];

/** One access of a workload (the harness's `Access`, src/host/vm/types.ts, is this type). */
export interface WorkloadAccess {
  readonly op: WorkloadOp;
  /** path relative to the data disk root (no leading slash, no `..`) */
  readonly path: string;
  /** uid doing the access: 0 (root) or 1000 (user); default 0 */
  readonly uid?: number;
  /** for write, create, write-then-read, open-writers, tomtou: text written */
  readonly content?: string;
  /** for chmod: octal mode text */
  readonly mode?: string;
  /** for chown: `uid:gid` */
  readonly owner?: string;
  /** for setxattr / rmxattr: the xattr name */
  readonly name?: string;
  /** for setxattr: value in setfattr syntax (`0x…` hex or `"text"`) */
  readonly value?: string;
  /** free label carried into the result (e.g. `good-hash/read`) */
  readonly label?: string;
}

/** The outcome of one access (mirrors the harness's `AccessResult`). */
export interface WorkloadResult {
  readonly index: number;
  readonly op: WorkloadOp;
  readonly path: string;
  readonly uid: number;
  readonly label?: string;
  readonly outcome: 'allowed' | 'denied' | 'error';
  /** the shell's exit status: 0, 1 for a failed command, 126 for a denied exec */
  readonly status: number;
  readonly audit: readonly EmuAuditRecord[];
  /** every hook call, for explanations */
  readonly hooks: readonly HookOutcome[];
}

/** The access an op stands for: the hooks the kernel calls, with their MAY_* masks. */
export const OP_HOOKS: Readonly<Record<string, ReadonlyArray<readonly [Func, number]>>> = Object.freeze({
  read: [['FILE_CHECK', 4]],
  write: [['FILE_CHECK', 2]],
  exec: [
    ['FILE_CHECK', 1],
    ['BPRM_CHECK', 1],
    ['CREDS_CHECK', 1],
  ],
  mmap: [['MMAP_CHECK', 1]],
  module: [['MODULE_CHECK', 4]],
  firmware: [['FIRMWARE_CHECK', 4]],
});

const DEFAULT_CONTENT = 'imakit was here\n';

/** Decode a setfattr value (`0x…` hex, `0s…` base64, or text optionally in double quotes). */
export function decodeSetfattrValue(v: string): Uint8Array {
  if (/^0x[0-9a-fA-F]*$/.test(v)) return Uint8Array.from(Buffer.from(v.slice(2), 'hex'));
  if (v.startsWith('0s')) return Uint8Array.from(Buffer.from(v.slice(2), 'base64'));
  const t = v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
  return new TextEncoder().encode(t);
}

/**
 * Run one access the way the guest shell does it.
 */
export function runAccess(emu: Emulator, a: WorkloadAccess, index: number, fs?: FsInfo): WorkloadResult {
  const uid = a.uid ?? 0;
  const task = (comm: string): Task => ({ uid, gid: uid, comm, pid: 2000 + index });
  const start = emu.audit.length;
  const hooks: HookOutcome[] = [];
  const content = new TextEncoder().encode(a.content ?? DEFAULT_CONTENT);
  let ok = true;
  let status = 0;
  const append = (comm: string): boolean => {
    const o = emu.openFile(a.path, { mode: 'w', append: true, create: true, fs }, task(comm));
    hooks.push(...o.hooks);
    if (!o.ok) return false;
    emu.write(o.file, content);
    emu.close(o.file);
    return true;
  };
  const read = (comm: string): boolean => {
    const r = emu.readFile(a.path, task(comm), fs);
    hooks.push(...r.hooks);
    return r.ok;
  };
  switch (a.op) {
    case 'exec': {
      const r = emu.exec(a.path, task('sh'), fs);
      hooks.push(...r.hooks);
      ok = r.ok;
      if (!ok) status = 126;
      break;
    }
    case 'read':
      ok = read('cat');
      break;
    case 'mmap-exec': {
      const r = emu.mmapExec(a.path, task('ld-linux-x86-64'), fs);
      hooks.push(...r.hooks);
      ok = r.ok;
      break;
    }
    case 'write':
      ok = append('sh');
      break;
    case 'create': {
      const o = emu.openFile(a.path, { mode: 'w', create: true, fs }, task('sh'));
      hooks.push(...o.hooks);
      ok = o.ok;
      if (o.ok) {
        emu.write(o.file, content);
        emu.close(o.file);
      }
      break;
    }
    case 'write-then-read':
      ok = append('sh') && read('cat');
      break;
    case 'open-writers': {
      // exec 3>>"$P"; cat "$P"; exec 3>&-
      const w = emu.openFile(a.path, { mode: 'w', append: true, create: true, fs }, task('sh'));
      hooks.push(...w.hooks);
      if (!w.ok) {
        ok = false;
        break;
      }
      ok = read('cat');
      emu.close(w.file);
      break;
    }
    case 'tomtou': {
      // exec 3<"$P"; printf >>"$P"; exec 3<&-
      const r = emu.openFile(a.path, { mode: 'r', fs }, task('sh'));
      hooks.push(...r.hooks);
      if (!r.ok) {
        ok = false;
        break;
      }
      ok = append('sh');
      emu.close(r.file);
      break;
    }
    case 'chmod':
      ok = emu.setattr(a.path, { mode: Number.parseInt(a.mode ?? '644', 8) }, task('chmod'), fs).ok;
      break;
    case 'chown': {
      const [u, g] = (a.owner ?? '0:0').split(':').map(Number);
      ok = emu.setattr(a.path, { uid: u, gid: g }, task('chown'), fs).ok;
      break;
    }
    case 'setxattr':
      ok = emu.setxattr(a.path, a.name ?? '', decodeSetfattrValue(a.value ?? ''), task('setfattr'), fs).ok;
      break;
    case 'rmxattr':
      ok = emu.removexattr(a.path, a.name ?? '', task('setfattr'), fs).ok;
      break;
  }
  if (!ok && status === 0) status = 1;
  const denied = hooks.some((h) => h.rc !== 0);
  return Object.freeze({
    index,
    op: a.op,
    path: a.path,
    uid,
    label: a.label,
    outcome: ok ? 'allowed' : denied ? 'denied' : 'error',
    status,
    audit: emu.audit.slice(start),
    hooks,
  });
}
