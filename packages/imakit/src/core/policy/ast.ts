/**
 * The IMA policy AST and the kernel facts the policy language depends on (formats.md §5).
 *
 * A parsed rule mirrors the kernel's `struct ima_rule_entry` (security/integrity/ima/ima_policy.c):
 * the action, the condition flags (IMA_FUNC, IMA_MASK, IMA_INMASK, ...), the non-action flags
 * (IMA_DIGSIG_REQUIRED, ...) and the values, plus the source span of every token so diagnostics and
 * `policy explain` can point at the text.
 */

/** Rule actions (`enum` values in ima.h; dont_X = X << 1). There is no `dont_audit` (pitfall 28). */
export const ACTIONS = Object.freeze({
  measure: 0x1,
  dont_measure: 0x2,
  appraise: 0x4,
  dont_appraise: 0x8,
  audit: 0x40,
  hash: 0x100,
  dont_hash: 0x200,
});
export type Action = keyof typeof ACTIONS;
/** The four action types a match closes (both X and dont_X are "type X", §5.5). */
export type ActionType = 'measure' | 'appraise' | 'audit' | 'hash';
/** The action type of an action keyword. */
export function actionType(a: Action): ActionType {
  return a === 'dont_measure'
    ? 'measure'
    : a === 'dont_appraise'
      ? 'appraise'
      : a === 'dont_hash'
        ? 'hash'
        : (a as ActionType);
}

/** Hooks (`enum ima_hooks`, formats.md §5.3), in enum order. */
export const FUNCS = Object.freeze([
  'NONE',
  'FILE_CHECK',
  'MMAP_CHECK',
  'MMAP_CHECK_REQPROT',
  'BPRM_CHECK',
  'CREDS_CHECK',
  'POST_SETATTR',
  'MODULE_CHECK',
  'FIRMWARE_CHECK',
  'KEXEC_KERNEL_CHECK',
  'KEXEC_INITRAMFS_CHECK',
  'POLICY_CHECK',
  'KEXEC_CMDLINE',
  'KEY_CHECK',
  'CRITICAL_DATA',
  'SETXATTR_CHECK',
] as const);
export type Func = (typeof FUNCS)[number];
/** Spellings accepted after `func=` that are not enum names (backwards compatibility). */
export const FUNC_ALIASES: Readonly<Record<string, Func>> = Object.freeze({
  PATH_CHECK: 'FILE_CHECK',
  FILE_MMAP: 'MMAP_CHECK',
});

/** MAY_* bits (include/linux/fs.h) used by `mask=`. */
export const MAY = Object.freeze({ MAY_EXEC: 0x1, MAY_WRITE: 0x2, MAY_READ: 0x4, MAY_APPEND: 0x8 });
export type MayName = keyof typeof MAY;

/** Condition flag bits of `struct ima_rule_entry.flags` (ima.h / ima_policy.c). */
export const F = Object.freeze({
  FUNC: 0x0001,
  MASK: 0x0002,
  FSMAGIC: 0x0004,
  UID: 0x0008,
  FOWNER: 0x0010,
  FSUUID: 0x0020,
  INMASK: 0x0040,
  EUID: 0x0080,
  PCR: 0x0100,
  FSNAME: 0x0200,
  KEYRINGS: 0x0400,
  LABEL: 0x0800,
  VALIDATE_ALGOS: 0x1000,
  GID: 0x2000,
  EGID: 0x4000,
  FGROUP: 0x8000,
  // IMA_NONACTION_FLAGS (0xff000000, integrity.h): these leak into the match result of ANY matching
  // rule (§5.5) and are cached in the inode's iint. 0x80000000 is negative as a JS int32: test with `&`.
  DIGSIG_REQUIRED: 0x01000000,
  PERMIT_DIRECTIO: 0x02000000,
  NEW_FILE: 0x04000000,
  FAIL_UNVERIFIABLE_SIGS: 0x10000000,
  MODSIG_ALLOWED: 0x20000000,
  CHECK_BLACKLIST: 0x40000000,
  VERITY_REQUIRED: 0x80000000 | 0,
});
/** IMA_NONACTION_FLAGS */
export const NONACTION_FLAGS = 0xff000000 | 0;

/** Comparison of uid/gid/fowner/fgroup conditions. */
export type IdOp = '=' | '<' | '>';
/** An id condition; `effective` marks euid/egid. */
export interface IdCond {
  readonly op: IdOp;
  readonly value: number;
  readonly effective: boolean;
}

/** LSM condition keywords in the kernel's order (`enum lsm_rule_types`: objects first). */
export const LSM_KEYS = Object.freeze([
  'obj_user',
  'obj_role',
  'obj_type',
  'subj_user',
  'subj_role',
  'subj_type',
] as const);
export type LsmKey = (typeof LSM_KEYS)[number];

/** Where a token sits in the policy text (1-based line and column, UTF-16 columns). */
export interface Span {
  readonly line: number;
  readonly col: number;
  readonly endCol: number;
}

/** One parsed rule (`struct ima_rule_entry`). */
export interface PolicyRule {
  readonly action: Action;
  /** condition and non-action flag bits (F) */
  readonly flags: number;
  readonly func: Func;
  /** MAY_* bit of `mask=`; exact when flags has MASK, "contains" when INMASK */
  readonly mask: number;
  readonly fsmagic: number;
  readonly fsname?: string;
  /** lowercase dashed UUID */
  readonly fsuuid?: string;
  readonly uid?: IdCond;
  readonly gid?: IdCond;
  readonly fowner?: IdCond;
  readonly fgroup?: IdCond;
  readonly lsm: Readonly<Partial<Record<LsmKey, string>>>;
  readonly keyrings?: readonly string[];
  readonly labels?: readonly string[];
  readonly pcr?: number;
  readonly template?: string;
  /** `appraise_algos=` as a bitmask over kernel hash ids (bit = §0.1 id) */
  readonly allowedAlgos: number;
  /** the source line (1-based) and the text of the rule */
  readonly line: number;
  readonly text: string;
  /** spans of each keyword present, for explain/diagnostics */
  readonly spans: Readonly<Record<string, Span>>;
  /** where this rule came from: a built-in policy name, 'arch', or 'custom' */
  readonly origin: string;
}

/** A problem found in a policy, with where it is (style.md practice 13). */
export interface Diagnostic {
  readonly code:
    | 'E_POLICY_SYNTAX'
    | 'E_POLICY_UNKNOWN_KEYWORD'
    | 'E_POLICY_DUPLICATE'
    | 'E_POLICY_VALUE'
    | 'E_POLICY_ORDER'
    | 'E_POLICY_COMBINATION';
  /** 'error' invalidates the whole write; 'notice' is what the kernel only logs */
  readonly severity: 'error' | 'notice';
  readonly line: number;
  readonly col: number;
  readonly token: string;
  readonly message: string;
}

/**
 * The facts of a kernel build that change what the policy parser accepts (from the kernel profile;
 * core cannot import `src/kernel`, so the profile hands these over).
 */
export interface PolicyFeatures {
  /** hooks the kernel knows (MMAP_CHECK_REQPROT only since ~6.4; KEY_CHECK needs MEASURE_ASYMMETRIC_KEYS) */
  readonly funcs: ReadonlySet<Func>;
  /** CONFIG_IMA_APPRAISE_MODSIG: `appraise_type=imasig|modsig` */
  readonly modsig: boolean;
  /** `appraise_flag=`: 'ignored' (mainline 2023+) or 'blacklist' (older: needs modsig and "blacklist", else EINVAL) */
  readonly appraiseFlag: 'ignored' | 'blacklist';
  /** `appraise_type=imasig` also sets IMA_CHECK_BLACKLIST (mainline 2023+) */
  readonly imasigImpliesBlacklist: boolean;
  /** `appraise_algos=` and SETXATTR_CHECK (~5.15) */
  readonly appraiseAlgos: boolean;
  /** `digest_type=verity` / `appraise_type=sigv3` (5.19) */
  readonly verity: boolean;
  /** a token starting with `#` ends the rule (2025 patch "ignore suffixed comment") */
  readonly trailingComments: boolean;
  /** template names `template=` accepts */
  readonly templates: ReadonlySet<string>;
  /** hash names crypto_has_alg() finds when the policy is written (appraise_algos=) */
  readonly availableHashes: ReadonlySet<string>;
  /** HASH_ALGO__LAST of this kernel (names with ids >= this are unknown) */
  readonly hashAlgoLast: number;
  /** CONFIG_IMA_LSM_RULES */
  readonly lsmRules: boolean;
  /** bits in measured_pcrs (unsigned long): pcr= must be below this */
  readonly pcrLimit: number;
}

/** Template names defined by current mainline (ima_template.c builtin_templates[]). */
export const MAINLINE_TEMPLATES: ReadonlySet<string> = Object.freeze(
  new Set(['ima', 'ima-ng', 'ima-ngv2', 'ima-sig', 'ima-sigv2', 'ima-buf', 'ima-modsig', 'evm-sig']),
);

/** Policy features of a current mainline kernel with a typical distribution config. */
export const MAINLINE_POLICY_FEATURES: PolicyFeatures = Object.freeze({
  funcs: Object.freeze(new Set<Func>(FUNCS.filter((f) => f !== 'NONE' && f !== 'POST_SETATTR'))),
  modsig: true,
  appraiseFlag: 'ignored',
  imasigImpliesBlacklist: true,
  appraiseAlgos: true,
  verity: true,
  trailingComments: true,
  templates: MAINLINE_TEMPLATES,
  availableHashes: Object.freeze(
    new Set([
      'md5',
      'sha1',
      'rmd160',
      'sha256',
      'sha384',
      'sha512',
      'sha224',
      'wp256',
      'wp384',
      'wp512',
      'sm3',
      'streebog256',
      'streebog512',
      'sha3-256',
      'sha3-384',
      'sha3-512',
    ]),
  ),
  hashAlgoLast: 23,
  lsmRules: true,
  pcrLimit: 64,
});
