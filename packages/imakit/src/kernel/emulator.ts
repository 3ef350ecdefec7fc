/**
 * A deterministic model of the kernel's IMA and EVM (security/integrity/ima/ima_main.c
 * process_measurement(), ima_appraise.c, ima_api.c, evm_main.c) over abstract files and accesses.
 *
 * One `Emulator` is one boot: the profile and command line fix the build and boot facts, then
 * policy loads, keys, files and accesses drive it. Everything observable is recorded: the
 * measurement list and PCRs, audit records, per-access decisions with the kernel's op and cause,
 * and the xattrs the kernel wrote. Kernel quirks come from the profile (style.md practice 7).
 *
 * Split by concern: emulator-core.ts (boot, policy, keys, inodes, hashing, measurement recording),
 * process-measurement.ts (the hook and appraisal), evm-flow.ts (metadata and EVM), and here the
 * open/close state machine (ima_file_check, ima_file_free, exec, mmap) and the public class.
 */
import { hash } from '../core/hash/hash-algo.ts';
import type { Func } from '../core/policy/index.ts';
import type { FsInfo, Iint, Inode } from './inode-state.ts';
import { IINT, DONE_MASK } from './inode-state.ts';
import { EmulatorCore } from './emulator-core.ts';
import { processMeasurement } from './process-measurement.ts';
import { fixXattr, removexattr, setattr, setxattr } from './evm-flow.ts';
import {
  MAY_APPEND,
  MAY_EXEC,
  MAY_READ,
  MAY_WRITE,
  type HookOutcome,
  type OpenFile,
  type OpenResult,
  type Task,
} from './emulator-types.ts';

export {
  ext4Fs,
  type EmulatorOptions,
  type FileSpec,
  type HookOutcome,
  type OpenFile,
  type OpenResult,
  type Task,
} from './emulator-types.ts';

/** A deterministic model of one boot of a kernel with IMA and EVM. */
export class Emulator extends EmulatorCore {
  private readonly open = new Map<number, OpenFile>();

  /** process_measurement(): one hook call on an open file (or an exec/mmap of it). */
  processMeasurement(file: OpenFile, mask: number, hook: Func, task: Task): HookOutcome {
    return processMeasurement(this, file, mask, hook, task);
  }

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
    fixXattr(this, inode, iint);
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
    return setattr(this, path, attr, task, fs);
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
    return setxattr(this, path, name, value, task, fs);
  }

  /** removexattr(2). */
  removexattr(path: string, name: string, task: Task, fs?: FsInfo): { ok: boolean; errno?: number } {
    return removexattr(this, path, name, task, fs);
  }
}
