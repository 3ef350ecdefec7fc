/**
 * The IMA hook (security/integrity/ima/ima_main.c process_measurement()) and appraisal
 * (ima_appraise.c ima_appraise_measurement()): policy match, iint cache and re-measurement rules,
 * ToMToU / open-writers violations, collect, measure, appraise (EVM first), audit, appraise_algos.
 * Functions over the boot's {@link EmulatorCore}; no state of their own.
 */
import { findHashAlgo } from '../core/hash/hash-algo.ts';
import { F, IMA, APPRAISE_SUBMASK, DO_MASK, type Func, type MatchResult } from '../core/policy/index.ts';
import { AUDIT_TYPE } from './audit.ts';
import { imaGetHashAlgo, xattrVerify, XT } from './appraise.ts';
import { evmKeyLoaded } from './evm.ts';
import {
  APPRAISED_SUBMASK,
  DONE_MASK,
  IINT,
  absoluteName,
  newIint,
  type Iint,
  type IntegrityStatus,
} from './inode-state.ts';
import { EACCES, MAY_WRITE, type HookOutcome, type OpenFile, type Task } from './emulator-types.ts';
import type { EmulatorCore } from './emulator-core.ts';
import { evmStatus, fixXattr } from './evm-flow.ts';

/**
 * process_measurement(): one hook call on an open file (or an exec/mmap of it).
 */
export function processMeasurement(
  k: EmulatorCore,
  file: OpenFile,
  mask: number,
  hook: Func,
  task: Task,
): HookOutcome {
  let func = hook;
  const inode = file.inode;
  const start = k.audit.length;
  const done = (rc: number, decidedBy: MatchResult['decidedBy']): HookOutcome => ({
    func: hook,
    mask,
    rc,
    audit: k.audit.slice(start),
    decidedBy,
  });
  const none = { measure: -1, appraise: -1, audit: -1, hash: -1 };
  const policyFlag = k.requestedFlags();
  if (!policyFlag || (inode.mode & 0o170000) !== 0o100000) return done(0, none);
  const m = k.compiled.match(
    {
      func,
      mask,
      subject: k.subject(task),
      object: k.objectOf(inode),
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
  if (violationCheck) rdwrViolationCheck(k, file, iint, (action & IMA.MEASURE) !== 0, name);
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
      if (r && k.settings.appraise === 'enforce') return done(EACCES, m.decidedBy);
      if (file.write) iint.updateXattr = true;
    }
    return done(0, m.decidedBy);
  };
  if (!action) {
    if (mustAppraise) rc = statusRc(cacheStatus(iint, func));
    return finish(rc);
  }
  const tmpl = k.templateFor(m.template);
  if (action & APPRAISE_SUBMASK || !tmpl.legacy)
    xattr = inode.fs.xattrs ? (inode.xattrs.get('security.ima') ?? null) : null;
  const algo = imaGetHashAlgo(xattr, k.imaHash, k.profile.policy.hashAlgoLast);
  // ima_collect_measurement(): an algorithm the kernel cannot allocate fails the whole access
  if (!k.hashAvailable(algo)) {
    k.messages.push(`ima: Can not allocate ${algo} (reason: -2)`);
    k.pushAudit(
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
  const digest = k.fileDigest(inode, algo);
  iint.imaHash = { algo, digest };
  iint.version = inode.version;
  iint.flags |= IINT.COLLECTED;
  if (action & IMA.MEASURE) {
    if (!((iint.measuredPcrs >> BigInt(pcr)) & 1n)) {
      const verity = (iint.flags & F.VERITY_REQUIRED) !== 0;
      k.measureEvent(
        { name, digest: iint.imaHash, xattr, file: inode, buf: null, violation: false, verity },
        tmpl,
        pcr,
      );
      iint.flags |= IINT.MEASURED;
      iint.measuredPcrs |= 1n << BigInt(pcr);
    }
  }
  if (action & APPRAISE_SUBMASK) {
    const st = appraiseMeasurement(k, func, iint, file, name, xattr, task);
    rc = statusRc(st);
  }
  if (action & IMA.AUDIT && !(iint.flags & IINT.AUDITED)) {
    k.pushAudit(
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
      k.pushAudit(
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

export function rdwrViolationCheck(
  k: EmulatorCore,
  file: OpenFile,
  iint: Iint | null,
  mustMeasure: boolean,
  name: string,
): void {
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
  if (tomtou) violation(k, file, 'ToMToU', name);
  if (writers) violation(k, file, 'open_writers', name);
}

export function violation(
  k: EmulatorCore,
  file: OpenFile,
  cause: 'ToMToU' | 'open_writers',
  name: string,
): void {
  // ima_add_violation(): default template (NULL desc), CONFIG_IMA_MEASURE_PCR_IDX, never de-duplicated
  k.measureEvent(
    { name, digest: null, xattr: null, file: file.inode, buf: null, violation: true, verity: false },
    k.template,
    k.pcrIdx,
  );
  if (!k.record) k.store.violations++;
  k.pushAudit(
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

/** ima_appraise_measurement(): returns the integrity status and records audit, fix and cache. */
export function appraiseMeasurement(
  k: EmulatorCore,
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
    const ev = evmKeyLoaded(k.evm)
      ? evmStatus(k, iint, inode, { name: 'security.ima', value: xattr })
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
      k.imaKeyring(),
      {
        ecdsa: k.profile.signatures.ecdsa,
        sm2: k.profile.signatures.sm2,
        v1: k.profile.signatures.v1,
        hashAlgoLast: k.profile.policy.hashAlgoLast,
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
    k.pushAudit(
      { type: AUDIT_TYPE.DATA, op, cause, name, dev: inode.fs.dev, ino: inode.ino, result: rc || -1 },
      task,
    );
  } else if (status !== 'pass') {
    // fix mode, but never replace a file signature
    if (k.settings.appraise === 'fix' && (xattr === null || xattr[0] !== XT.DIGSIG)) {
      if (fixXattr(k, inode, iint)) status = 'pass';
    }
    if (inode.size === 0 && iint.flags & IINT.NEW_FILE && iint.digsig) status = 'pass';
    k.pushAudit(
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
