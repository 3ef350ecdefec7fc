/**
 * `imakit vm run`'s inputs checked before anything boots: the workload file (documented with a
 * tested example in docs/vm-workload.md) and a policy that would lock the guest out of its own
 * shell (issue 10 item 10).
 */
import { ImakitError, withPath } from '../../errors.ts';
import { WORKLOAD_OPS } from '../../kernel/workload.ts';
import { compilePolicy, IMA } from '../../core/policy/match.ts';
import { parsePolicy } from '../../core/policy/index.ts';
import { FS_MAGIC } from '../../core/policy/builtin.ts';
import { checkAccess } from '../../host/vm/guest-script.ts';
import type { Access } from '../../host/vm/index.ts';

const FIELDS: Readonly<Record<string, 'string' | 'number'>> = Object.freeze({
  op: 'string',
  path: 'string',
  uid: 'number',
  content: 'string',
  mode: 'string',
  owner: 'string',
  name: 'string',
  value: 'string',
  label: 'string',
});

/**
 * Parse and check a workload: a JSON array of accesses, or `{ "workload": [...] }`. Every access
 * has a known `op` and a relative `path`; unknown keys and wrong types are refused (a typo would
 * otherwise be silently ignored in the guest), and the op's own fields are checked as the guest
 * script would.
 * @throws ImakitError E_SCENARIO naming the file and the access index
 */
export function parseWorkload(text: string, path: string): Access[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ImakitError('E_SCENARIO', `workload is not JSON: ${(e as Error).message}`, { path });
  }
  const list = Array.isArray(v) ? v : (v as { workload?: unknown } | null)?.workload;
  if (!Array.isArray(list))
    throw new ImakitError('E_SCENARIO', 'workload must be an array of accesses (or {"workload": [...]})', {
      path,
    });
  list.forEach((a: unknown, i) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      throw new ImakitError('E_SCENARIO', `access ${i} must be an object`, { path, entry: i });
    const o = a as Record<string, unknown>;
    for (const [k, val] of Object.entries(o)) {
      const t = FIELDS[k];
      if (t === undefined)
        throw new ImakitError(
          'E_SCENARIO',
          `access ${i}: unknown key "${k}" (keys: ${Object.keys(FIELDS).join(', ')})`,
          {
            path,
            entry: i,
            field: k,
          },
        );
      if (typeof val !== t)
        throw new ImakitError('E_SCENARIO', `access ${i}: "${k}" must be a ${t}`, {
          path,
          entry: i,
          field: k,
        });
    }
    if (typeof o.op !== 'string' || typeof o.path !== 'string')
      throw new ImakitError('E_SCENARIO', `access ${i} needs string "op" and "path"`, { path, entry: i });
    if (!(WORKLOAD_OPS as readonly string[]).includes(o.op))
      throw new ImakitError(
        'E_SCENARIO',
        `access ${i}: unknown op "${o.op}" (ops: ${WORKLOAD_OPS.join(', ')})`,
        {
          path,
          entry: i,
          field: 'op',
        },
      );
    try {
      withPath(path, () => checkAccess(o as unknown as Access, i));
    } catch (e) {
      if (e instanceof ImakitError)
        throw new ImakitError('E_SCENARIO', e.detail, { ...e.context, entry: i }, { cause: e });
      throw e;
    }
  });
  return list as Access[];
}

/**
 * Warnings for a custom policy that appraises what the guest's own shell runs: the init script
 * execs busybox applets from the initramfs (rootfs: tmpfs, or ramfs), which carry no
 * security.ima, so an `appraise func=BPRM_CHECK` (or MMAP_CHECK) rule that matches them denies the
 * guest's commands and the run fails with nothing to show. Decided with the policy matcher on an
 * exec of a root-owned file on each of those filesystems, as the kernel would.
 */
export function guestExecWarnings(policyText: string): string[] {
  const parsed = parsePolicy(policyText);
  if (parsed.rules.length === 0) return [];
  const cp = compilePolicy(parsed.rules, { inactive: parsed.inactive });
  const subject = { uid: 0, euid: 0, gid: 0, egid: 0 };
  const out: string[] = [];
  for (const [fsname, fsmagic] of [
    ['tmpfs', FS_MAGIC.tmpfs],
    ['ramfs', FS_MAGIC.ramfs],
  ] as const)
    for (const func of ['BPRM_CHECK', 'MMAP_CHECK'] as const) {
      const r = cp.match({
        func,
        mask: 1, // MAY_EXEC
        subject,
        object: { uid: 0, gid: 0, fsmagic, fsname, fsuuid: null },
      });
      if ((r.action & IMA.APPRAISE) === 0) continue;
      const rule = parsed.rules[r.decidedBy.appraise];
      out.push(
        `the policy appraises ${func === 'BPRM_CHECK' ? 'exec' : 'mmap(PROT_EXEC)'} of files on ${fsname}` +
          `${rule ? ` (line ${rule.line}: ${rule.text})` : ''}: the guest's own /bin/busybox (initramfs, unlabelled) ` +
          `will be denied and the run will fail. Restrict the rule to the data disk with fsuuid=<the --fs-uuid> ` +
          `or put "dont_appraise fsmagic=0x${FS_MAGIC.tmpfs.toString(16)}" and "dont_appraise fsmagic=0x${FS_MAGIC.ramfs.toString(16)}" before it`,
      );
      return out; // one is enough: the fix is the same
    }
  return out;
}
