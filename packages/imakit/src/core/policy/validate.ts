/**
 * The semantic pass: ima_validate_rule() of security/integrity/ima/ima_policy.c (formats.md §5.4).
 * Checks, for a rule whose tokens all parsed, that the action and the hook accept every condition
 * and option present, and that flag combinations are coherent.
 */
import { F, type Diagnostic, type Func, type PolicyFeatures, type PolicyRule } from './ast.ts';

/** Why a rule is invalid: a code, the keyword to point at, and the reason. */
export interface RuleProblem {
  readonly code: Diagnostic['code'];
  /** the keyword (span key) the problem is about, or undefined for the rule as a whole */
  readonly keyword?: string;
  readonly message: string;
}

const FILE_HOOK_FLAGS =
  F.FUNC |
  F.MASK |
  F.FSMAGIC |
  F.UID |
  F.FOWNER |
  F.FSUUID |
  F.INMASK |
  F.EUID |
  F.PCR |
  F.FSNAME |
  F.GID |
  F.EGID |
  F.FGROUP |
  F.DIGSIG_REQUIRED |
  F.PERMIT_DIRECTIO |
  F.VALIDATE_ALGOS |
  F.CHECK_BLACKLIST |
  F.VERITY_REQUIRED;
const KERNEL_FILE_HOOK_FLAGS = (FILE_HOOK_FLAGS & ~F.VERITY_REQUIRED) | F.MODSIG_ALLOWED;
const CMDLINE_FLAGS =
  F.FUNC | F.FSMAGIC | F.UID | F.FOWNER | F.FSUUID | F.EUID | F.PCR | F.FSNAME | F.GID | F.EGID | F.FGROUP;
const KEY_FLAGS = F.FUNC | F.UID | F.GID | F.PCR | F.KEYRINGS;
const CRITICAL_FLAGS = F.FUNC | F.UID | F.GID | F.PCR | F.LABEL;
const SETXATTR_FLAGS = F.FUNC | F.VALIDATE_ALGOS;

/** Flag bit -> the keyword that sets it (for pointing at the offending token). */
const FLAG_KEYWORD: ReadonlyArray<readonly [number, string]> = [
  [F.MASK, 'mask'],
  [F.INMASK, 'mask'],
  [F.FSMAGIC, 'fsmagic'],
  [F.UID, 'uid'],
  [F.EUID, 'euid'],
  [F.GID, 'gid'],
  [F.EGID, 'egid'],
  [F.FOWNER, 'fowner'],
  [F.FGROUP, 'fgroup'],
  [F.FSUUID, 'fsuuid'],
  [F.FSNAME, 'fsname'],
  [F.PCR, 'pcr'],
  [F.KEYRINGS, 'keyrings'],
  [F.LABEL, 'label'],
  [F.VALIDATE_ALGOS, 'appraise_algos'],
  [F.DIGSIG_REQUIRED, 'appraise_type'],
  [F.MODSIG_ALLOWED, 'appraise_type'],
  [F.CHECK_BLACKLIST, 'appraise_type'],
  [F.VERITY_REQUIRED, 'digest_type'],
  [F.PERMIT_DIRECTIO, 'permit_directio'],
];

function keywordOf(bits: number, rule: PolicyRule): string {
  for (const [bit, kw] of FLAG_KEYWORD) {
    if (!(bits & bit)) continue;
    // euid/egid share the uid/gid slot; point at whichever spelling is in the rule
    if (kw === 'uid' && rule.spans.uid === undefined && rule.spans.euid !== undefined) return 'euid';
    if (
      kw === 'appraise_type' &&
      rule.spans.appraise_type === undefined &&
      rule.spans.appraise_flag !== undefined
    )
      return 'appraise_flag';
    return kw;
  }
  return 'func';
}

function disallowed(rule: PolicyRule, allowed: number, what: string): RuleProblem | null {
  const extra = rule.flags & ~allowed;
  if (!extra) return null;
  const kw = keywordOf(extra, rule);
  return { code: 'E_POLICY_COMBINATION', keyword: kw, message: `${kw}= is not allowed ${what}` };
}

function hasLsm(rule: PolicyRule): string | undefined {
  return Object.keys(rule.lsm)[0];
}

/**
 * ima_validate_rule(): null if the rule is valid, else the first reason the kernel refuses it.
 *
 * @param rule a rule whose tokens parsed
 * @param features kernel facts (modsig, blacklist semantics)
 */
export function validateRule(rule: PolicyRule, features: PolicyFeatures): RuleProblem | null {
  const a = rule.action;
  if (a !== 'measure' && rule.flags & F.PCR)
    return {
      code: 'E_POLICY_COMBINATION',
      keyword: 'pcr',
      message: `pcr= is only for measure rules, not ${a}`,
    };
  const appraiseOnly = F.DIGSIG_REQUIRED | F.MODSIG_ALLOWED | F.CHECK_BLACKLIST | F.VALIDATE_ALGOS;
  if (a !== 'appraise' && rule.flags & appraiseOnly) {
    const kw = keywordOf(rule.flags & appraiseOnly, rule);
    return {
      code: 'E_POLICY_COMBINATION',
      keyword: kw,
      message: `${kw}= is only for appraise rules, not ${a}`,
    };
  }
  const measureOnly = (f: Func): RuleProblem | null =>
    a === 'measure' || a === 'dont_measure'
      ? null
      : {
          code: 'E_POLICY_COMBINATION',
          keyword: 'action',
          message: `func=${f} only takes measure or dont_measure, not ${a}`,
        };
  const f = rule.func;
  switch (f) {
    case 'NONE':
    case 'FILE_CHECK':
    case 'MMAP_CHECK':
    case 'MMAP_CHECK_REQPROT':
    case 'BPRM_CHECK':
    case 'CREDS_CHECK':
    case 'POST_SETATTR':
    case 'FIRMWARE_CHECK':
    case 'POLICY_CHECK': {
      const p = disallowed(
        rule,
        FILE_HOOK_FLAGS,
        f === 'NONE' ? 'without func=KEY_CHECK/CRITICAL_DATA' : `with func=${f}`,
      );
      if (p) return p;
      break;
    }
    case 'MODULE_CHECK':
    case 'KEXEC_KERNEL_CHECK':
    case 'KEXEC_INITRAMFS_CHECK': {
      const p = disallowed(rule, KERNEL_FILE_HOOK_FLAGS, `with func=${f}`);
      if (p) return p;
      break;
    }
    case 'KEXEC_CMDLINE': {
      const p = measureOnly(f) ?? disallowed(rule, CMDLINE_FLAGS, 'with func=KEXEC_CMDLINE');
      if (p) return p;
      break;
    }
    case 'KEY_CHECK':
    case 'CRITICAL_DATA': {
      const p =
        measureOnly(f) ?? disallowed(rule, f === 'KEY_CHECK' ? KEY_FLAGS : CRITICAL_FLAGS, `with func=${f}`);
      if (p) return p;
      const l = hasLsm(rule);
      if (l !== undefined)
        return {
          code: 'E_POLICY_COMBINATION',
          keyword: l,
          message: `LSM conditions are not allowed with func=${f}`,
        };
      break;
    }
    case 'SETXATTR_CHECK':
      if (a !== 'appraise')
        return {
          code: 'E_POLICY_COMBINATION',
          keyword: 'action',
          message: `func=SETXATTR_CHECK only takes appraise, not ${a}`,
        };
      if (!(rule.flags & F.VALIDATE_ALGOS))
        return {
          code: 'E_POLICY_COMBINATION',
          keyword: 'func',
          message: 'func=SETXATTR_CHECK requires appraise_algos=',
        };
      {
        const p = disallowed(rule, SETXATTR_FLAGS, 'with func=SETXATTR_CHECK (only appraise_algos=)');
        if (p) return p;
      }
      break;
    default:
      return { code: 'E_POLICY_VALUE', keyword: 'func', message: `func=${String(f)} is not valid` };
  }
  // the blacklist flag: older kernels tie it to modsig, newer ones to a required signature
  if (rule.flags & F.CHECK_BLACKLIST) {
    const need = features.appraiseFlag === 'blacklist' ? F.MODSIG_ALLOWED : F.DIGSIG_REQUIRED;
    if (!(rule.flags & need))
      return {
        code: 'E_POLICY_COMBINATION',
        keyword: rule.spans.appraise_flag !== undefined ? 'appraise_flag' : 'appraise_type',
        message:
          features.appraiseFlag === 'blacklist'
            ? 'appraise_flag=check_blacklist needs appraise_type=imasig|modsig'
            : 'the blacklist check needs a signature requirement',
      };
  }
  // fs-verity: security.ima must hold a sigv3 signature, so the appraise rule must require one
  if (a === 'appraise' && rule.flags & F.VERITY_REQUIRED && !(rule.flags & F.DIGSIG_REQUIRED))
    return {
      code: 'E_POLICY_COMBINATION',
      keyword: 'digest_type',
      message: 'appraise with digest_type=verity requires appraise_type=sigv3',
    };
  return null;
}
