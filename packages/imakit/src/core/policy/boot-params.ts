/**
 * How the kernel command line shapes IMA/EVM at boot (formats.md §5.6, §5.7, §1.5): `ima_policy=`
 * (repeatable, `|`/space separated), legacy `ima_tcb` / `ima_appraise_tcb`, `ima_appraise=`,
 * `ima_hash=`, `ima_template=`, `ima_template_fmt=`, `ima_canonical_fmt`, `integrity_audit=`, `evm=`
 * and `lsm=`, applied in command-line order exactly like the kernel's __setup handlers
 * (ima_policy.c policy_setup, ima_main.c hash_setup, ima_template.c ima_template_setup /
 * ima_template_fmt_setup, ima_appraise.c default_appraise_setup, evm_main.c evm_set_fixmode), then
 * ima_init_policy() composing the boot rule list.
 */
import { findHashAlgo } from '../hash/hash-algo.ts';
import { FIELD_IDS, MAX_TEMPLATE_FIELDS, NAMED_TEMPLATES } from '../ima-list/templates.ts';
import type { PolicyFeatures, PolicyRule } from './ast.ts';
import {
  CRITICAL_DATA_RULES,
  DEFAULT_MEASUREMENT_RULES,
  DONT_MEASURE_RULES,
  ORIGINAL_MEASUREMENT_RULES,
  SECURE_BOOT_RULES,
  appraiseTcbRules,
  buildAppraiseRules,
  parseBuiltinRules,
  type BuiltinConfig,
} from './builtin.ts';

/** Built-in template formats (ima_template.c builtin_templates[]), from the list codec's table. */
export const TEMPLATE_FORMATS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(NAMED_TEMPLATES.map((t) => [t.name, t.fmt])),
);
/** Template field ids (ima_template.c supported_fields[]). */
export const TEMPLATE_FIELDS: ReadonlySet<string> = Object.freeze(new Set<string>(FIELD_IDS));

/** Appraisal mode (`ima_appraise=`). */
export type AppraiseMode = 'enforce' | 'fix' | 'log' | 'off';

/** The kernel build facts boot-parameter handling depends on. */
export interface BootDefaults {
  /** CONFIG_IMA_DEFAULT_HASH */
  readonly defaultHash: string;
  /** CONFIG_IMA_DEFAULT_TEMPLATE */
  readonly defaultTemplate: string;
  /** CONFIG_IMA_APPRAISE (+ _BOOTPARAM): without it ima_appraise= is ignored and appraisal is off */
  readonly appraiseBootParam: boolean;
  readonly builtin: BuiltinConfig;
  /** arch policy rules when the platform is in secure boot (arch/x86/kernel/ima_arch.c) */
  readonly archRules: readonly string[];
  readonly features: PolicyFeatures;
}

/** The template in use: a named one, or a custom format (empty name, the list shows the format). */
export interface TemplateChoice {
  readonly name: string;
  readonly fmt: string;
}

/** What the command line resolved to. */
export interface BootSettings {
  readonly policyNames: {
    readonly tcb: 'tcb' | 'ima_tcb' | null;
    readonly appraiseTcb: boolean;
    readonly secureBoot: boolean;
    readonly criticalData: boolean;
    readonly failSecurely: boolean;
  };
  readonly appraise: AppraiseMode;
  /** ima_hash algorithm name */
  readonly hash: string;
  readonly template: TemplateChoice;
  readonly canonicalFmt: boolean;
  readonly integrityAudit: boolean;
  readonly evmFix: boolean;
  /** `lsm=` list, or null for the build default */
  readonly lsm: readonly string[] | null;
  readonly secureBootPlatform: boolean;
  /** the boot (default) policy rules in order */
  readonly bootRules: readonly PolicyRule[];
  /** rules pre-seeded into the custom policy (arch and build-time rules, formats.md §5.1) */
  readonly customSeed: readonly PolicyRule[];
  /** what the kernel would print with pr_err/pr_info about the parameters */
  readonly messages: readonly string[];
}

/** Split a command line into parameters (no quoting support beyond plain spaces, like IMA's). */
export function splitCmdline(cmdline: string | readonly string[]): string[] {
  const parts = typeof cmdline === 'string' ? [cmdline] : cmdline;
  return parts.flatMap((p) => p.split(/\s+/)).filter((p) => p !== '');
}

/**
 * Resolve IMA/EVM boot parameters.
 *
 * @param cmdline the kernel command line (string or list of parameters)
 * @param defaults kernel build facts (from the kernel profile)
 * @param opts `secureBoot`: the platform reports secure boot (arch rules, ima_appraise= locked)
 */
export function resolveBootParams(
  cmdline: string | readonly string[],
  defaults: BootDefaults,
  opts: { secureBoot?: boolean } = {},
): BootSettings {
  const messages: string[] = [];
  const sb = opts.secureBoot === true;
  let tcb: 'tcb' | 'ima_tcb' | null = null;
  let appraiseTcb = false;
  let secureBoot = false;
  let criticalData = false;
  let failSecurely = false;
  let appraise: AppraiseMode = defaults.appraiseBootParam ? 'enforce' : 'off';
  // ima_main.c: `int ima_hash_algo = HASH_ALGO_SHA1` until hash_setup() runs; init_ima() then calls
  // hash_setup(CONFIG_IMA_DEFAULT_HASH), which does nothing if a parameter already succeeded.
  let hash = 'sha1';
  let hashDone = false;
  let template: TemplateChoice | null = null;
  let canonicalFmt = false;
  let integrityAudit = false;
  let evmFix = false;
  let lsm: string[] | null = null;

  const hashSetup = (str: string): void => {
    if (hashDone) return;
    const cur = template ?? { name: defaults.defaultTemplate };
    if (cur.name === 'ima') {
      // the `ima` template only carries 20-byte digests: prefix compare, like strncmp(str, "sha1", 4)
      if (str.startsWith('sha1')) hash = 'sha1';
      else if (str.startsWith('md5')) hash = 'md5';
      else {
        messages.push(`ima: invalid hash algorithm "${str}" for template "ima"`);
        return;
      }
      hashDone = true;
      return;
    }
    const a = findHashAlgo(str);
    if (a === undefined || a.name !== str || a.id >= defaults.features.hashAlgoLast) {
      messages.push(`ima: invalid hash algorithm "${str}"`);
      return;
    }
    hash = str;
    hashDone = true;
  };

  for (const param of splitCmdline(cmdline)) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const val = eq < 0 ? '' : param.slice(eq + 1);
    switch (key) {
      case 'ima_policy':
        for (const p of val.split(/[ |\n]/)) {
          if (p === 'tcb') tcb ??= 'tcb';
          else if (p === 'appraise_tcb') appraiseTcb = true;
          else if (p === 'secure_boot') secureBoot = true;
          else if (p === 'critical_data') criticalData = true;
          else if (p === 'fail_securely') failSecurely = true;
          else if (p !== '') messages.push(`ima: policy "${p}" not found`);
        }
        break;
      case 'ima_tcb':
        tcb ??= 'ima_tcb';
        break;
      case 'ima_appraise_tcb':
        appraiseTcb = true;
        break;
      case 'ima_appraise': {
        if (!defaults.appraiseBootParam) break;
        let st: AppraiseMode = appraise;
        if (val.startsWith('off')) st = 'off';
        else if (val.startsWith('log')) st = 'log';
        else if (val.startsWith('fix')) st = 'fix';
        else if (val.startsWith('enforce')) st = 'enforce';
        else messages.push(`ima: invalid "${val}" appraise option`);
        if (sb) {
          if (st !== 'enforce')
            messages.push(`ima: Secure boot enabled: ignoring ima_appraise=${val} option`);
        } else appraise = st;
        break;
      }
      case 'ima_hash':
        hashSetup(val);
        break;
      case 'ima_template': {
        if (template) break;
        const fmt = TEMPLATE_FORMATS[val];
        if (fmt === undefined) {
          messages.push(`ima: template ${val} not found, using ${defaults.defaultTemplate}`);
          break;
        }
        if (val === 'ima' && hash !== 'sha1' && hash !== 'md5') {
          messages.push('ima: template does not support hash alg');
          break;
        }
        template = { name: val, fmt };
        break;
      }
      case 'ima_template_fmt': {
        if (template) break;
        const ids = val.split('|');
        if (
          val === '' ||
          ids.length > MAX_TEMPLATE_FIELDS ||
          ids.some((f) => f.length > 16 || !TEMPLATE_FIELDS.has(f))
        ) {
          messages.push(`ima: format string '${val}' not valid, using template ${defaults.defaultTemplate}`);
          break;
        }
        template = { name: '', fmt: val };
        break;
      }
      case 'ima_canonical_fmt':
        canonicalFmt = true;
        break;
      case 'integrity_audit':
        integrityAudit = val !== '0' && val !== '';
        break;
      case 'evm':
        if (val.startsWith('fix')) evmFix = true;
        else messages.push(`evm: invalid "${val}" mode`);
        break;
      case 'lsm':
        lsm = val.split(',').filter((x) => x !== '');
        break;
      default:
        break;
    }
  }
  if (!hashDone) hashSetup(defaults.defaultHash);
  const tmpl: TemplateChoice = template ?? {
    name: defaults.defaultTemplate,
    fmt: TEMPLATE_FORMATS[defaults.defaultTemplate] ?? 'd-ng|n-ng',
  };

  // ima_init_policy(): the order of the boot rule list (formats.md §5.6)
  const f = defaults.features;
  const bootRules: PolicyRule[] = [];
  const customSeed: PolicyRule[] = [];
  if (tcb) bootRules.push(...parseBuiltinRules(DONT_MEASURE_RULES, tcb, f));
  if (tcb === 'ima_tcb') bootRules.push(...parseBuiltinRules(ORIGINAL_MEASUREMENT_RULES, 'ima_tcb', f));
  if (tcb === 'tcb') bootRules.push(...parseBuiltinRules(DEFAULT_MEASUREMENT_RULES, 'tcb', f));
  if (sb && defaults.archRules.length > 0) {
    // arch rules are parsed from text by the kernel too, so they carry text-parsed flags
    const arch = parseBuiltinRules(defaults.archRules, 'arch', f);
    bootRules.push(...arch);
    customSeed.push(...arch);
  } else messages.push('ima: No architecture policies found');
  if (secureBoot) bootRules.push(...parseBuiltinRules(SECURE_BOOT_RULES, 'secure_boot', f));
  const build = buildAppraiseRules(defaults.builtin);
  if (build.length > 0) {
    const rules = parseBuiltinRules(build, 'build', f);
    if (!secureBoot) bootRules.push(...rules);
    customSeed.push(...rules);
  }
  if (appraiseTcb)
    bootRules.push(...parseBuiltinRules(appraiseTcbRules(defaults.builtin), 'appraise_tcb', f));
  if (criticalData) bootRules.push(...parseBuiltinRules(CRITICAL_DATA_RULES, 'critical_data', f));

  return Object.freeze({
    policyNames: Object.freeze({ tcb, appraiseTcb, secureBoot, criticalData, failSecurely }),
    appraise,
    hash,
    template: Object.freeze(tmpl),
    canonicalFmt,
    integrityAudit,
    evmFix,
    lsm: lsm && Object.freeze(lsm),
    secureBootPlatform: sb,
    bootRules: Object.freeze(bootRules),
    customSeed: Object.freeze(customSeed),
    messages: Object.freeze(messages),
  });
}
