/**
 * EVM in the emulator's flows (security/integrity/evm/evm_main.c, ima_appraise.c): the cached EVM
 * verdict IMA asks for, fix-mode and post-setxattr HMAC updates, and the metadata operations
 * (chmod/chown via notify_change, setxattr, removexattr) with EVM's gate and IMA's re-appraisal.
 * Functions over the boot's {@link EmulatorCore}; no state of their own.
 */
import { findHashAlgo } from '../core/hash/hash-algo.ts';
import { IMA } from '../core/policy/index.ts';
import { AUDIT_TYPE } from './audit.ts';
import { fixXattrValue, imaGetHashAlgo, XT } from './appraise.ts';
import { evmKeyLoaded, evmUpdate, evmVerify } from './evm.ts';
import type { FsInfo, Iint, Inode, IntegrityStatus } from './inode-state.ts';
import { EACCES, type Task } from './emulator-types.ts';
import type { EmulatorCore } from './emulator-core.ts';

export function evmStatus(
  k: EmulatorCore,
  iint: Iint,
  inode: Inode,
  override?: { name: string; value: Uint8Array },
): IntegrityStatus {
  if (iint.evmStatus === 'pass' || iint.evmStatus === 'pass_immutable') return iint.evmStatus;
  const v = evmVerify(k.evm, inode, override);
  if (v.convertToHmac) evmUpdate(k.evm, inode);
  iint.evmStatus = v.status;
  return v.status;
}

/** ima_fix_xattr(): write a fresh hash (the collected algorithm), then EVM's post-setxattr. */
export function fixXattr(k: EmulatorCore, inode: Inode, iint: Iint): boolean {
  if (!iint.imaHash) return false;
  inode.xattrs.set('security.ima', fixXattrValue(iint.imaHash.algo, iint.imaHash.digest));
  evmPostSetxattr(k, inode, 'security.ima');
  return true;
}

export function evmPostSetxattr(k: EmulatorCore, inode: Inode, name: string): void {
  if (!k.evm.config.enabled.includes(name) && name !== 'security.evm') return;
  if (inode.iint) inode.iint.evmStatus = 'unknown';
  if (name !== 'security.evm') evmUpdate(k.evm, inode);
}

/** chmod/chown (notify_change): EVM may refuse; afterwards IMA re-appraises and EVM re-HMACs. */
export function setattr(
  k: EmulatorCore,
  path: string,
  attr: { mode?: number; uid?: number; gid?: number },
  task: Task,
  fs?: FsInfo,
): { ok: boolean; errno?: number } {
  const inode = k.inode(path, fs);
  if (!inode) return { ok: false, errno: -2 };
  const gate = evmMetadataGate(k, inode, task, 'attr', attr);
  if (gate !== 0) return { ok: false, errno: gate };
  if (attr.mode !== undefined) inode.mode = (inode.mode & 0o170000) | (attr.mode & 0o7777);
  if (attr.uid !== undefined) inode.uid = attr.uid;
  if (attr.gid !== undefined) inode.gid = attr.gid;
  // ima_inode_post_setattr()
  if (k.requestedFlags() & IMA.APPRAISE && inode.iint) {
    inode.iint.changeAttr = true;
    const m = k.compiled.match(
      {
        func: 'POST_SETATTR',
        mask: 0,
        subject: k.subject(task),
        // ima_must_appraise(POST_SETATTR) matches the inode like any hook, LSM labels included
        object: k.objectOf(inode),
      },
      IMA.APPRAISE,
    );
    if (!(m.action & IMA.APPRAISE)) inode.iint.updateXattr = false;
  }
  // evm_inode_post_setattr()
  if (inode.iint) inode.iint.evmStatus = 'unknown';
  if (k.evm.hmacKey) evmUpdate(k.evm, inode);
  return { ok: true };
}

export function evmMetadataGate(
  k: EmulatorCore,
  inode: Inode,
  task: Task,
  what: 'attr' | 'xattr',
  change: unknown,
): number {
  if (k.evm.allowMetadataWrites || !evmKeyLoaded(k.evm) || k.evm.fixMode) return 0;
  const v = evmVerify(k.evm, inode).status;
  if (v === 'pass' || v === 'no_xattrs' || v === 'fail_immutable') return 0;
  if (v === 'pass_immutable' && what === 'attr') {
    const c = change as { mode?: number; uid?: number; gid?: number };
    const same =
      (c.mode === undefined || (inode.mode & 0o7777) === (c.mode & 0o7777)) &&
      (c.uid === undefined || c.uid === inode.uid) &&
      (c.gid === undefined || c.gid === inode.gid);
    if (same) return 0;
  }
  k.pushAudit(
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
export function setxattr(
  k: EmulatorCore,
  path: string,
  name: string,
  value: Uint8Array,
  task: Task,
  fs?: FsInfo,
): { ok: boolean; errno?: number } {
  const inode = k.inode(path, fs);
  if (!inode) return { ok: false, errno: -2 };
  if (!inode.fs.xattrs) return { ok: false, errno: -95 };
  if (name.startsWith('security.') && (task.euid ?? task.uid) !== 0) return { ok: false, errno: -1 };
  let digsig = false;
  if (name === 'security.ima') {
    if (value.length === 0 || (value[0] ?? 0) >= XT.LAST) return { ok: false, errno: -22 };
    const algo = imaGetHashAlgo(value, k.imaHash, k.profile.policy.hashAlgoLast);
    const allowed = k.compiled.setxattrAlgos;
    const id = findHashAlgo(algo)?.id ?? -1;
    let errmsg: string | null = null;
    if (allowed) {
      if (!(allowed & (1 << id))) errmsg = 'denied-hash-algorithm';
    } else if (algo !== k.imaHash && !k.hashAvailable(algo)) errmsg = 'unavailable-hash-algorithm';
    if (errmsg) {
      k.pushAudit(
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
  const isProtected = k.evm.config.enabled.includes(name) || name === 'security.evm';
  if (isProtected) {
    const gate = evmMetadataGate(k, inode, task, 'xattr', null);
    if (gate !== 0) return { ok: false, errno: gate };
  }
  inode.xattrs.set(name, Uint8Array.from(value));
  if (name === 'security.ima' || name === 'security.evm') resetAppraiseFlags(k, inode, digsig);
  if (isProtected) evmPostSetxattr(k, inode, name);
  return { ok: true };
}

/** removexattr(2). */
export function removexattr(
  k: EmulatorCore,
  path: string,
  name: string,
  task: Task,
  fs?: FsInfo,
): { ok: boolean; errno?: number } {
  const inode = k.inode(path, fs);
  if (!inode) return { ok: false, errno: -2 };
  if (!inode.xattrs.has(name)) return { ok: false, errno: -61 };
  const isProtected = k.evm.config.enabled.includes(name) || name === 'security.evm';
  if (isProtected) {
    const gate = evmMetadataGate(k, inode, task, 'xattr', null);
    if (gate !== 0) return { ok: false, errno: gate };
  }
  inode.xattrs.delete(name);
  if (name === 'security.ima' || name === 'security.evm') resetAppraiseFlags(k, inode, false);
  if (isProtected) evmPostSetxattr(k, inode, name);
  return { ok: true };
}

export function resetAppraiseFlags(k: EmulatorCore, inode: Inode, digsig: boolean): void {
  if (!(k.requestedFlags() & IMA.APPRAISE) || !inode.iint) return;
  inode.iint.measuredPcrs = 0n;
  inode.iint.changeXattr = true;
  inode.iint.digsig = digsig;
}
