/**
 * Kernel audit records in the guest's kernel log (real-kernel.md §4.1, §7). Without auditd the
 * kernel prints them (`audit: type=1800 audit(…): … op=appraise_data cause=invalid-hash …`), and
 * the guest surrounds every access with a marker line so that records can be attributed to the
 * access that caused them.
 */
import { MARK } from './guest-script.ts';
import type { AuditRecord } from './types.ts';

/** Integrity records (AUDIT_INTEGRITY_DATA … AUDIT_INTEGRITY_POLICY_RULE are 1800-1807). */
export const AUDIT_INTEGRITY_DATA = 1800;
export const AUDIT_INTEGRITY_POLICY_RULE = 1807;

/** A kernel log event the harness cares about. */
export type LogEvent =
  { readonly kind: 'audit'; readonly record: AuditRecord } | { readonly kind: 'mark'; readonly text: string };

/**
 * Fields the kernel logs with `audit_log_untrustedstring`: quoted when plain, hex without quotes
 * when the value holds a space, a quote or a control byte (kernel/audit.c `audit_string_contains_control`).
 */
const UNTRUSTED = new Set(['name', 'comm', 'exe', 'cwd', 'path']);

function decodeValue(key: string, raw: string): string {
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) return raw.slice(1, -1);
  if (UNTRUSTED.has(key) && /^(?:[0-9A-F]{2})+$/.test(raw)) return Buffer.from(raw, 'hex').toString('latin1');
  return raw;
}

/** Parse one audit line (the text after the printk timestamp). Null for anything else. */
export function parseAuditLine(line: string): AuditRecord | null {
  const m = /audit: type=(\d+) audit\([^)]*\):\s?(.*)$/.exec(line);
  if (m?.[1] === undefined || m[2] === undefined) return null;
  const fields: Record<string, string> = {};
  for (const f of m[2].matchAll(/([A-Za-z_][A-Za-z0-9_-]*)=("[^"]*"|\S*)/g)) {
    const key = f[1];
    if (key !== undefined && !(key in fields)) fields[key] = decodeValue(key, f[2] ?? '');
  }
  return Object.freeze({ type: Number(m[1]), fields: Object.freeze(fields), raw: line.trim() });
}

/** Audit records and harness markers of a kernel log, in log order. */
export function parseKernelLog(dmesg: string): LogEvent[] {
  const events: LogEvent[] = [];
  for (const line of dmesg.split('\n')) {
    const mi = line.indexOf(`${MARK} `);
    if (mi >= 0) {
      events.push({ kind: 'mark', text: line.slice(mi + MARK.length + 1).trim() });
      continue;
    }
    const r = parseAuditLine(line);
    if (r !== null) events.push({ kind: 'audit', record: r });
  }
  return events;
}

/** Every audit record of the log. */
export function auditRecords(dmesg: string): AuditRecord[] {
  return parseKernelLog(dmesg).flatMap((e) => (e.kind === 'audit' ? [e.record] : []));
}

/**
 * Integrity audit records per access: those between `access i begin` and the next access's
 * begin (or the `collect` marker). kauditd prints asynchronously, so a record may land after
 * `access i end`; the guest sleeps briefly after each access to keep it before the next one.
 */
export function auditByAccess(dmesg: string, count: number): AuditRecord[][] {
  const out: AuditRecord[][] = Array.from({ length: count }, () => []);
  let current = -1;
  for (const e of parseKernelLog(dmesg)) {
    if (e.kind === 'mark') {
      const m = /^access (\d+) begin$/.exec(e.text);
      if (m?.[1] !== undefined) current = Number(m[1]);
      else if (e.text === 'collect' || e.text === 'policy-begin' || e.text === 'finish') current = -1;
      continue;
    }
    if (current >= 0 && current < count && e.record.type >= 1800 && e.record.type <= 1899)
      out[current]?.push(e.record);
  }
  return out;
}

/** Kernel log lines between two markers (e.g. the policy write), timestamps removed. */
export function linesBetweenMarks(dmesg: string, begin: string, end: string): string[] {
  const lines: string[] = [];
  let on = false;
  for (const line of dmesg.split('\n')) {
    if (line.includes(`${MARK} ${begin}`)) {
      on = true;
      continue;
    }
    if (line.includes(`${MARK} ${end}`)) break;
    if (on) lines.push(line.replace(/^\[\s*[\d.]+\]\s?/, ''));
  }
  return lines;
}
