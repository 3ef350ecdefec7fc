/**
 * Kernel profiles: the facts that change IMA/EVM behaviour between kernel builds, as data
 * (style.md practice 7). The emulator and the policy parser read them; nothing is special-cased by
 * kernel name elsewhere.
 *
 * `debian-6.1` is Debian 12's linux-image-6.1.0-56-amd64 (real-kernel.md §2.1, proven by the
 * real-kernel suite); `mainline` a current upstream kernel with a typical distribution config;
 * the others are declared from kernel source history (formats.md §0.3).
 */
import { ImakitError } from '../errors.ts';
import {
  FUNCS,
  MAINLINE_POLICY_FEATURES,
  MAINLINE_TEMPLATES,
  type BootDefaults,
  type BuiltinConfig,
  type Func,
  type PolicyFeatures,
} from '../core/policy/index.ts';
import type { EvmPresetName } from '../core/evm/evm-config.ts';

/** Public-key algorithms the kernel can verify IMA/EVM signatures with. */
export interface SignatureSupport {
  readonly rsa: boolean;
  /** CONFIG_CRYPTO_ECDSA (>= 5.13): otherwise ECDSA certificates cannot even be added to a keyring */
  readonly ecdsa: boolean;
  /** CONFIG_CRYPTO_SM2 (5.10 .. 6.10) */
  readonly sm2: boolean;
  /** v1 ("digsig", --rsa) signatures verify (real-kernel.md §7: they fail on Debian 6.1) */
  readonly v1: boolean;
}

/** Everything that differs between kernels. */
export interface KernelProfile {
  readonly name: string;
  readonly description: string;
  /** what the policy parser accepts */
  readonly policy: PolicyFeatures;
  /** defaults of boot-parameter handling (CONFIG_IMA_DEFAULT_HASH, _TEMPLATE, built-in rules, arch rules) */
  readonly boot: Omit<BootDefaults, 'features'>;
  /** CONFIG_IMA_MEASURE_PCR_IDX */
  readonly pcrIdx: number;
  /** hash algorithms built into the kernel: available at IMA init (PCR banks, ima_hash) and always */
  readonly builtinHashes: ReadonlySet<string>;
  /** loadable hash modules and the algorithms each provides (usable after insmod, never at IMA init) */
  readonly hashModules: Readonly<Record<string, readonly string[]>>;
  readonly signatures: SignatureSupport;
  /** keyrings IMA / EVM verify against: `.ima`/`.evm` with CONFIG_INTEGRITY_TRUSTED_KEYRING, else `_ima`/`_evm` */
  readonly imaKeyring: string;
  readonly evmKeyring: string;
  /** the EVM protected xattr list and fs-UUID option (src/core/evm-config.ts preset) */
  readonly evmPreset: EvmPresetName;
  /** CONFIG_IMA_READ_POLICY: the policy can be read back */
  readonly readPolicy: boolean;
  /** CONFIG_IMA_WRITE_POLICY: more than one policy write per boot */
  readonly writePolicy: boolean;
  /** per-bank `*_runtime_measurements_<alg>` files (~6.10) */
  readonly perBankLists: boolean;
  /** >= 5.1: each TPM bank gets its own template digest (else zero-padded SHA-1 everywhere) */
  readonly perBankTemplateDigests: boolean;
  /**
   * Violation `d-ng` digests: 'full' = zeros of the ima_hash size (late-2020+), 'sha1-20' = 20
   * zeros after the ima_hash prefix (older), formats.md §1.6.
   */
  readonly violationDigest: 'full' | 'sha1-20';
  /** CONFIG_IMA_DISABLE_HTABLE: duplicate entries are not suppressed */
  readonly disableHtable: boolean;
  /** CONFIG_IMA_APPRAISE_MODSIG */
  readonly modsig: boolean;
  /** CONFIG_IMA_QUEUE_EARLY_BOOT_KEYS: keys added before the first policy are measured at load */
  readonly queueEarlyBootKeys: boolean;
  /** the audit `subj=` of an unconfined task under the default LSMs (AppArmor: `unconfined`) */
  readonly auditSubj: string | null;
  /** the BPF LSM's inode_init_security bug: loading the EVM HMAC key then creating a file oopses (real-kernel.md §5.3) */
  readonly evmBpfOops: boolean;
  /** LSMs enabled by default (CONFIG_LSM order) */
  readonly defaultLsm: readonly string[];
}

const set = <T>(xs: readonly T[]): ReadonlySet<T> => Object.freeze(new Set(xs));

const NO_BUILD_RULES: BuiltinConfig = Object.freeze({
  writePolicy: false,
  appraiseSignedInit: false,
  requireSigs: Object.freeze([]),
});

const DEB_FUNCS = set<Func>(
  FUNCS.filter((f) => f !== 'NONE' && f !== 'POST_SETATTR' && f !== 'MMAP_CHECK_REQPROT'),
);

/** Debian 12 `linux-image-6.1.0-56-amd64` (real-kernel.md §2.1). */
export const DEBIAN_6_1: KernelProfile = Object.freeze({
  name: 'debian-6.1',
  description:
    'Debian 12 kernel 6.1.0-56-amd64 (6.1.192): sha1/sha256 built in, no ECDSA/SM2, _ima/_evm keyrings, policy writable once, no read-back',
  policy: Object.freeze({
    funcs: DEB_FUNCS,
    modsig: false, // CONFIG_IMA_APPRAISE_MODSIG not set
    appraiseFlag: 'blacklist', // 6.1: appraise_flag needs modsig, imasig does not imply it
    imasigImpliesBlacklist: false,
    appraiseAlgos: true,
    verity: true,
    trailingComments: false,
    templates: MAINLINE_TEMPLATES,
    // crypto_has_alg() at policy load: only built-in algorithms (no modprobe in the guest)
    availableHashes: set(['sha1', 'sha256', 'sha224', 'md5']),
    hashAlgoLast: 20, // sha3 ids 20..22 came later
    lsmRules: true,
    pcrLimit: 64,
  }),
  boot: Object.freeze({
    defaultHash: 'sha256',
    defaultTemplate: 'ima-sig',
    appraiseBootParam: true,
    builtin: NO_BUILD_RULES,
    // arch/x86/kernel/ima_arch.c with KEXEC_SIG=y and MODULE_SIG=y (only used under secure boot)
    archRules: Object.freeze(['measure func=KEXEC_KERNEL_CHECK', 'measure func=MODULE_CHECK']),
  }),
  pcrIdx: 10,
  builtinHashes: set(['sha1', 'sha256', 'sha224', 'md5']),
  hashModules: Object.freeze({
    sha512_generic: Object.freeze(['sha384', 'sha512']),
    sha3_generic: Object.freeze(['sha3-256', 'sha3-384', 'sha3-512']),
    wp512: Object.freeze(['wp256', 'wp384', 'wp512']),
    streebog_generic: Object.freeze(['streebog256', 'streebog512']),
  }),
  signatures: Object.freeze({ rsa: true, ecdsa: false, sm2: false, v1: false }),
  imaKeyring: '_ima',
  evmKeyring: '_evm',
  evmPreset: 'debian-6.1',
  readPolicy: false,
  writePolicy: false,
  perBankLists: false,
  perBankTemplateDigests: true,
  violationDigest: 'full',
  disableHtable: false,
  modsig: false,
  queueEarlyBootKeys: true,
  auditSubj: 'unconfined',
  evmBpfOops: true,
  defaultLsm: Object.freeze([
    'landlock',
    'lockdown',
    'yama',
    'loadpin',
    'safesetid',
    'integrity',
    'apparmor',
    'selinux',
    'smack',
    'tomoyo',
    'bpf',
  ]),
});

/** A current mainline kernel with a typical distribution config. */
export const MAINLINE: KernelProfile = Object.freeze({
  name: 'mainline',
  description:
    'current mainline: ECDSA yes, SM2 no (removed in 6.11), .ima/.evm trusted keyrings, read/write policy, per-bank lists',
  policy: MAINLINE_POLICY_FEATURES,
  boot: Object.freeze({
    defaultHash: 'sha256',
    defaultTemplate: 'ima-ng',
    appraiseBootParam: true,
    builtin: Object.freeze({ writePolicy: true, appraiseSignedInit: false, requireSigs: Object.freeze([]) }),
    archRules: Object.freeze(['measure func=KEXEC_KERNEL_CHECK', 'measure func=MODULE_CHECK']),
  }),
  pcrIdx: 10,
  builtinHashes: set([
    'md5',
    'sha1',
    'sha224',
    'sha256',
    'sha384',
    'sha512',
    'sha3-256',
    'sha3-384',
    'sha3-512',
  ]),
  hashModules: Object.freeze({
    wp512: Object.freeze(['wp256', 'wp384', 'wp512']),
    streebog_generic: Object.freeze(['streebog256', 'streebog512']),
    sm3_generic: Object.freeze(['sm3']),
  }),
  signatures: Object.freeze({ rsa: true, ecdsa: true, sm2: false, v1: false }),
  imaKeyring: '.ima',
  evmKeyring: '.evm',
  evmPreset: 'debian-6.1',
  readPolicy: true,
  writePolicy: true,
  perBankLists: true,
  perBankTemplateDigests: true,
  violationDigest: 'full',
  disableHtable: false,
  modsig: true,
  queueEarlyBootKeys: true,
  auditSubj: 'unconfined',
  evmBpfOops: false,
  defaultLsm: Object.freeze(['lockdown', 'capability', 'landlock', 'yama', 'integrity', 'apparmor', 'bpf']),
});

/** 5.10 LTS (declared from source): SM2 verification yes, no ECDSA (5.13), no SETXATTR_CHECK/appraise_algos/verity. */
export const LTS_5_10: KernelProfile = Object.freeze({
  ...MAINLINE,
  name: 'lts-5.10',
  description:
    'kernel 5.10 (declared from source): SM2 yes, ECDSA no, no appraise_algos/SETXATTR_CHECK/digest_type, 20-zero violation digests before the late-2020 fix are NOT assumed',
  policy: Object.freeze({
    ...MAINLINE_POLICY_FEATURES,
    funcs: set<Func>(
      FUNCS.filter((f) => !['NONE', 'POST_SETATTR', 'MMAP_CHECK_REQPROT', 'SETXATTR_CHECK'].includes(f)),
    ),
    appraiseFlag: 'blacklist',
    imasigImpliesBlacklist: false,
    appraiseAlgos: false,
    verity: false,
    trailingComments: false,
    templates: set(['ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig', 'evm-sig']),
    hashAlgoLast: 20,
  }),
  signatures: Object.freeze({ rsa: true, ecdsa: false, sm2: true, v1: false }),
  readPolicy: true,
  writePolicy: false,
  perBankLists: false,
  builtinHashes: set(['md5', 'sha1', 'sha256', 'sha384', 'sha512', 'sm3']),
});

/** 6.6 LTS (declared from source): ECDSA and SM2 both verifiable, MMAP_CHECK_REQPROT, no per-bank files. */
export const LTS_6_6: KernelProfile = Object.freeze({
  ...MAINLINE,
  name: 'lts-6.6',
  description:
    'kernel 6.6 (declared from source): ECDSA and SM2, MMAP_CHECK_REQPROT, sha3 ids, no per-bank list files',
  policy: Object.freeze({ ...MAINLINE_POLICY_FEATURES, trailingComments: false }),
  signatures: Object.freeze({ rsa: true, ecdsa: true, sm2: true, v1: false }),
  perBankLists: false,
});

/** Every known profile by name. */
export const PROFILES: Readonly<Record<string, KernelProfile>> = Object.freeze({
  'debian-6.1': DEBIAN_6_1,
  mainline: MAINLINE,
  'lts-5.10': LTS_5_10,
  'lts-6.6': LTS_6_6,
});

/** The default profile (a current mainline kernel). */
export const DEFAULT_PROFILE = 'mainline';

/**
 * A profile by name.
 * @throws ImakitError E_PROFILE_UNKNOWN
 */
export function getProfile(name: string = DEFAULT_PROFILE): KernelProfile {
  const p = Object.hasOwn(PROFILES, name) ? PROFILES[name] : undefined;
  if (!p)
    throw new ImakitError(
      'E_PROFILE_UNKNOWN',
      `unknown kernel profile '${name}' (known: ${Object.keys(PROFILES).join(', ')})`,
      { token: name },
    );
  return p;
}

/** Boot defaults with the profile's policy features (for resolveBootParams). */
export function bootDefaults(p: KernelProfile): BootDefaults {
  return { ...p.boot, features: p.policy };
}
