/**
 * The canonical form of a rule: ima_policy_show() of security/integrity/ima/ima_policy.c, i.e. what
 * `cat <securityfs>/ima/policy` prints with CONFIG_IMA_READ_POLICY (formats.md §5.8).
 */
import { HASH_ALGOS } from '../hash/hash-algo.ts';
import { F, LSM_KEYS, MAY, type IdCond, type PolicyRule } from './ast.ts';

/** Options of formatRule. */
export interface FormatOptions {
  /**
   * The kernel prints `appraise_type=sigv3` BEFORE `digest_type=verity`, which the parser then refuses
   * (pitfall 25), so its read-back cannot be written back. `reloadable` swaps the two.
   */
  readonly reloadable?: boolean;
  /** older kernels print `appraise_flag=check_blacklist` for the blacklist flag */
  readonly showBlacklistFlag?: boolean;
}

const MASK_NAMES: ReadonlyArray<readonly [number, string]> = [
  [MAY.MAY_EXEC, 'MAY_EXEC'],
  [MAY.MAY_WRITE, 'MAY_WRITE'],
  [MAY.MAY_READ, 'MAY_READ'],
  [MAY.MAY_APPEND, 'MAY_APPEND'],
];

/** `%d` of a kuid: ids above INT_MAX print negative, as the kernel's format does. */
function idText(c: IdCond): string {
  return String(c.value | 0);
}

/**
 * One rule in the kernel's read-back form, including the trailing space before `\n`.
 *
 * @example
 * formatRule(parsePolicy('measure mask=^MAY_READ func=FILE_CHECK euid=0').rules[0]!)
 * // 'measure func=FILE_CHECK mask=^MAY_READ euid=0 \n'
 */
export function formatRule(rule: PolicyRule, opts: FormatOptions = {}): string {
  let s = rule.action + ' ';
  const put = (x: string): void => {
    s += x + ' ';
  };
  if (rule.flags & F.FUNC) put(`func=${rule.func}`);
  if (rule.flags & (F.MASK | F.INMASK)) {
    const caret = rule.flags & F.INMASK ? '^' : '';
    let m = '';
    for (const [bit, name] of MASK_NAMES) if (rule.mask & bit) m += `mask=${caret}${name}`;
    put(m);
  }
  if (rule.flags & F.FSMAGIC) put(`fsmagic=0x${rule.fsmagic.toString(16)}`);
  if (rule.flags & F.FSNAME) put(`fsname=${rule.fsname ?? ''}`);
  if (rule.flags & F.KEYRINGS) put(`keyrings=${(rule.keyrings ?? []).join('|')}`);
  if (rule.flags & F.LABEL) put(`label=${(rule.labels ?? []).join('|')}`);
  if (rule.flags & F.PCR) put(`pcr=${rule.pcr ?? 0}`);
  if (rule.flags & F.FSUUID) put(`fsuuid=${rule.fsuuid ?? ''}`);
  if (rule.flags & F.UID && rule.uid) put(`uid${rule.uid.op}${idText(rule.uid)}`);
  if (rule.flags & F.EUID && rule.uid) put(`euid${rule.uid.op}${idText(rule.uid)}`);
  if (rule.flags & F.GID && rule.gid) put(`gid${rule.gid.op}${idText(rule.gid)}`);
  if (rule.flags & F.EGID && rule.gid) put(`egid${rule.gid.op}${idText(rule.gid)}`);
  if (rule.flags & F.FOWNER && rule.fowner) put(`fowner${rule.fowner.op}${idText(rule.fowner)}`);
  if (rule.flags & F.FGROUP && rule.fgroup) put(`fgroup${rule.fgroup.op}${idText(rule.fgroup)}`);
  if (rule.flags & F.VALIDATE_ALGOS)
    put(
      `appraise_algos=${HASH_ALGOS.filter((a) => rule.allowedAlgos & (1 << a.id))
        .map((a) => a.name)
        .join(',')}`,
    );
  for (const k of LSM_KEYS) {
    const v = rule.lsm[k];
    if (v !== undefined) put(`${k}=${v}`);
  }
  if (rule.template !== undefined) put(`template=${rule.template}`);
  const verity = (rule.flags & F.VERITY_REQUIRED) !== 0;
  if (verity && opts.reloadable) put('digest_type=verity');
  if (rule.flags & F.DIGSIG_REQUIRED) {
    if (verity) put('appraise_type=sigv3');
    else if (rule.flags & F.MODSIG_ALLOWED) put('appraise_type=imasig|modsig');
    else put('appraise_type=imasig');
  }
  if (opts.showBlacklistFlag && rule.flags & F.CHECK_BLACKLIST) put('appraise_flag=check_blacklist');
  if (verity && !opts.reloadable) put('digest_type=verity');
  if (rule.flags & F.PERMIT_DIRECTIO) put('permit_directio');
  return s + '\n';
}

/**
 * A whole policy in read-back form. Rules whose LSM labels are inactive are not printed (the kernel
 * hides them), so pass their indexes in `hidden`.
 */
export function formatPolicy(
  rules: readonly PolicyRule[],
  opts: FormatOptions & { hidden?: ReadonlySet<number> } = {},
): string {
  let out = '';
  rules.forEach((r, i) => {
    if (!opts.hidden?.has(i)) out += formatRule(r, opts);
  });
  return out;
}
