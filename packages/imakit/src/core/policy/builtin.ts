/**
 * The kernel's built-in policies (security/integrity/ima/ima_policy.c, formats.md §5.6), as the rule
 * text the kernel's C tables are equivalent to, in the kernel's order. `ima_init_policy()` composes
 * them at boot; see boot-params.ts.
 */
import { ImakitError } from '../../errors.ts';
import { MAINLINE_POLICY_FEATURES, type PolicyFeatures, type PolicyRule } from './ast.ts';
import { parsePolicy } from './parse.ts';

/** Built-in policy names accepted by `imakit policy builtin NAME`. */
export const BUILTIN_NAMES = Object.freeze([
  'tcb',
  'ima_tcb',
  'appraise_tcb',
  'ima_appraise_tcb',
  'secure_boot',
  'critical_data',
  'fail_securely',
] as const);
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

/** Filesystem magics (include/uapi/linux/magic.h). */
export const FS_MAGIC = Object.freeze({
  proc: 0x9fa0,
  sysfs: 0x62656572,
  debugfs: 0x64626720,
  tmpfs: 0x01021994,
  ramfs: 0x858458f6,
  devpts: 0x1cd1,
  binfmt_misc: 0x42494e4d,
  securityfs: 0x73636673,
  selinuxfs: 0xf97cff8c,
  smackfs: 0x43415d53,
  cgroup: 0x27e0eb,
  cgroup2: 0x63677270,
  nsfs: 0x6e736673,
  efivarfs: 0xde5e81e4,
  ext4: 0xef53,
  xfs: 0x58465342,
  btrfs: 0x9123683e,
  overlayfs: 0x794c7630,
  fuse: 0x65735546,
});

const hex = (n: number): string => '0x' + n.toString(16);

/** dont_measure_rules[] (tmpfs only for FILE_CHECK). */
export const DONT_MEASURE_RULES: readonly string[] = Object.freeze([
  `dont_measure fsmagic=${hex(FS_MAGIC.proc)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.sysfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.debugfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.tmpfs)} func=FILE_CHECK`,
  `dont_measure fsmagic=${hex(FS_MAGIC.devpts)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.binfmt_misc)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.securityfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.selinuxfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.smackfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.cgroup)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.cgroup2)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.nsfs)}`,
  `dont_measure fsmagic=${hex(FS_MAGIC.efivarfs)}`,
]);

/** original_measurement_rules[] (`ima_tcb`). */
export const ORIGINAL_MEASUREMENT_RULES: readonly string[] = Object.freeze([
  'measure func=MMAP_CHECK mask=MAY_EXEC',
  'measure func=BPRM_CHECK mask=MAY_EXEC',
  'measure func=FILE_CHECK mask=MAY_READ uid=0',
  'measure func=MODULE_CHECK',
  'measure func=FIRMWARE_CHECK',
]);

/** default_measurement_rules[] (`tcb`). */
export const DEFAULT_MEASUREMENT_RULES: readonly string[] = Object.freeze([
  'measure func=MMAP_CHECK mask=MAY_EXEC',
  'measure func=BPRM_CHECK mask=MAY_EXEC',
  'measure func=FILE_CHECK mask=^MAY_READ euid=0',
  'measure func=FILE_CHECK mask=^MAY_READ uid=0',
  'measure func=MODULE_CHECK',
  'measure func=FIRMWARE_CHECK',
  'measure func=POLICY_CHECK',
]);

/** secure_boot_rules[]. */
export const SECURE_BOOT_RULES: readonly string[] = Object.freeze([
  'appraise func=MODULE_CHECK appraise_type=imasig',
  'appraise func=FIRMWARE_CHECK appraise_type=imasig',
  'appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig',
  'appraise func=POLICY_CHECK appraise_type=imasig',
]);

/** Kernel build options that shape the built-in rules. */
export interface BuiltinConfig {
  /** CONFIG_IMA_WRITE_POLICY: appraise_tcb signs POLICY_CHECK */
  readonly writePolicy: boolean;
  /** CONFIG_IMA_APPRAISE_SIGNED_INIT: `appraise fowner=0` requires a signature */
  readonly appraiseSignedInit: boolean;
  /** CONFIG_IMA_APPRAISE_REQUIRE_{MODULE,FIRMWARE,KEXEC,POLICY}_SIGS, in that order */
  readonly requireSigs: readonly (
    'MODULE_CHECK' | 'FIRMWARE_CHECK' | 'KEXEC_KERNEL_CHECK' | 'POLICY_CHECK'
  )[];
}

/** default_appraise_rules[] (`appraise_tcb`). */
export function appraiseTcbRules(cfg: Pick<BuiltinConfig, 'writePolicy' | 'appraiseSignedInit'>): string[] {
  const m = FS_MAGIC;
  const r = [
    m.proc,
    m.sysfs,
    m.debugfs,
    m.tmpfs,
    m.ramfs,
    m.devpts,
    m.binfmt_misc,
    m.securityfs,
    m.selinuxfs,
    m.smackfs,
    m.nsfs,
    m.efivarfs,
    m.cgroup,
    m.cgroup2,
  ].map((x) => `dont_appraise fsmagic=${hex(x)}`);
  if (cfg.writePolicy) r.push('appraise func=POLICY_CHECK appraise_type=imasig');
  r.push(cfg.appraiseSignedInit ? 'appraise fowner=0 appraise_type=imasig' : 'appraise fowner=0');
  return r;
}

/** build_appraise_rules[]. */
export function buildAppraiseRules(cfg: Pick<BuiltinConfig, 'requireSigs'>): string[] {
  return cfg.requireSigs.map((f) => `appraise func=${f} appraise_type=imasig`);
}

/** critical_data_rules[]. */
export const CRITICAL_DATA_RULES: readonly string[] = Object.freeze(['measure func=CRITICAL_DATA']);

/** Parse built-in rule text (C-table rules: no blacklist flag from imasig). */
export function parseBuiltinRules(
  lines: readonly string[],
  origin: string,
  features: PolicyFeatures = MAINLINE_POLICY_FEATURES,
): PolicyRule[] {
  const p = parsePolicy(lines.join('\n'), { features, origin, builtin: true, defaultPolicyActive: true });
  if (!p.ok)
    throw new ImakitError(
      'E_INTERNAL',
      `built-in policy ${origin} does not parse: ${p.diagnostics[0]?.message ?? ''}`,
    );
  return [...p.rules];
}

/**
 * The rules a built-in policy NAME contributes on its own, in order (what `ima_policy=NAME` alone
 * loads, minus arch and build-time rules). `fail_securely` adds no rules (it is a flag).
 * @throws ImakitError E_POLICY_BUILTIN for an unknown name
 */
export function builtinPolicyText(name: string, cfg: BuiltinConfig = DEFAULT_BUILTIN_CONFIG): string[] {
  switch (name) {
    case 'tcb':
      return [...DONT_MEASURE_RULES, ...DEFAULT_MEASUREMENT_RULES];
    case 'ima_tcb':
      return [...DONT_MEASURE_RULES, ...ORIGINAL_MEASUREMENT_RULES];
    case 'appraise_tcb':
    case 'ima_appraise_tcb':
      return appraiseTcbRules(cfg);
    case 'secure_boot':
      return [...SECURE_BOOT_RULES];
    case 'critical_data':
      return [...CRITICAL_DATA_RULES];
    case 'fail_securely':
      return [];
    default:
      throw new ImakitError(
        'E_POLICY_BUILTIN',
        `unknown built-in policy '${name}' (${BUILTIN_NAMES.join(', ')})`,
        { token: name },
      );
  }
}

/** A typical distribution build: no write-policy, no signed init, no build-time rules. */
export const DEFAULT_BUILTIN_CONFIG: BuiltinConfig = Object.freeze({
  writePolicy: false,
  appraiseSignedInit: false,
  requireSigs: Object.freeze([]),
});
