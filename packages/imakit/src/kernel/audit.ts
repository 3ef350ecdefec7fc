/**
 * Integrity audit records in the kernel's format (security/integrity/integrity_audit.c,
 * integrity_audit_message()): `pid=… uid=… auid=… ses=… subj=… op=… cause=… comm="…" name="…"
 * dev="…" ino=… res=… errno=…`. Untrusted strings are quoted, or hex-encoded when they hold a
 * space, a quote or a control byte (kernel/audit.c audit_log_untrustedstring).
 */

/** AUDIT_INTEGRITY_DATA, _METADATA, _STATUS, _HASH, _PCR, _RULE, _EVM_XATTR, _POLICY_RULE */
export const AUDIT_TYPE = Object.freeze({
  DATA: 1800,
  METADATA: 1801,
  STATUS: 1802,
  HASH: 1803,
  PCR: 1804,
  RULE: 1805,
  POLICY_RULE: 1807,
});

/** One record, shaped like the harness's (src/host/vm/types.ts AuditRecord). */
export interface EmuAuditRecord {
  readonly type: number;
  readonly fields: Readonly<Record<string, string>>;
  readonly raw: string;
}

/** Who caused a record. */
export interface AuditTask {
  readonly pid: number;
  readonly uid: number;
  readonly comm: string;
  /** LSM context (`subj=`), null when no LSM provides one */
  readonly subj: string | null;
}

function untrusted(s: string): string {
  // audit_string_contains_control(): bytes <= 0x20, 0x22 ("), >= 0x7f force hex
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x22 || c >= 0x7f) return Buffer.from(s, 'latin1').toString('hex').toUpperCase();
  }
  return `"${s}"`;
}

/** What integrity_audit_msg() is called with. */
export interface AuditArgs {
  readonly type: number;
  readonly op: string;
  readonly cause: string;
  readonly name?: string;
  readonly dev?: string;
  readonly ino?: number;
  /** the kernel's `result` (0 = success): res=!result */
  readonly result: number;
}

/**
 * Build one record. `serial` makes the `audit(0.000:N)` stamp deterministic.
 */
export function auditRecord(a: AuditArgs, task: AuditTask, serial: number): EmuAuditRecord {
  const fields: Record<string, string> = {
    pid: String(task.pid),
    uid: String(task.uid),
    auid: '4294967295',
    ses: '4294967295',
  };
  let raw = `type=${a.type} audit(0.000:${serial}): pid=${task.pid} uid=${task.uid} auid=4294967295 ses=4294967295`;
  if (task.subj !== null) {
    fields.subj = task.subj;
    raw += ` subj=${task.subj}`;
  }
  fields.op = a.op;
  fields.cause = a.cause;
  fields.comm = task.comm;
  raw += ` op=${a.op} cause=${a.cause} comm=${untrusted(task.comm)}`;
  if (a.name !== undefined) {
    fields.name = a.name;
    raw += ` name=${untrusted(a.name)}`;
  }
  if (a.dev !== undefined) {
    fields.dev = a.dev;
    fields.ino = String(a.ino ?? 0);
    raw += ` dev=${untrusted(a.dev)} ino=${a.ino ?? 0}`;
  }
  const res = a.result === 0 ? 1 : 0;
  fields.res = String(res);
  fields.errno = '0';
  raw += ` res=${res} errno=0`;
  return Object.freeze({ type: a.type, fields: Object.freeze(fields), raw });
}
