/**
 * The EVM protected xattr list (formats.md §4.2) as data, and the kernel configurations that decide
 * which of its names an HMAC or signature covers.
 *
 * The kernel keeps ONE ordered list (`evm_config_default_xattrnames[]`, security/integrity/evm/
 * evm_main.c). Each entry is `enabled` when its Kconfig option is set. HMACs and 0x03 signatures
 * use the enabled entries only; 0x05 portable signatures use EVERY entry regardless of config, so a
 * portable signature does not depend on the verifier's kernel (pitfall 21). Runtime additions
 * through `<securityfs>/integrity/evm/evm_xattrs` (CONFIG_EVM_ADD_XATTRS) are appended, enabled.
 *
 * A signer must use the verifier's configuration (pitfall 24): evmctl assumes a kernel with
 * SELinux, Smack, AppArmor and IMA appraisal, which e.g. Debian's kernel is not (no Smack).
 */
import { ImakitError } from '../../errors.ts';

/** Kconfig switches that include a protected xattr (formats.md §4.2). */
export type EvmKconfig =
  'SECURITY_SELINUX' | 'SECURITY_SMACK' | 'EVM_EXTRA_SMACK_XATTRS' | 'SECURITY_APPARMOR' | 'IMA_APPRAISE';

/** One entry of the kernel's protected list. */
export interface EvmXattrEntry {
  readonly name: string;
  /** the Kconfig option that enables it; null = always enabled (security.capability) */
  readonly kconfig: EvmKconfig | null;
}

/** The kernel's list, in the kernel's (hashing) order. */
export const EVM_XATTRS: readonly EvmXattrEntry[] = Object.freeze(
  (
    [
      ['security.selinux', 'SECURITY_SELINUX'],
      ['security.SMACK64', 'SECURITY_SMACK'],
      ['security.SMACK64EXEC', 'EVM_EXTRA_SMACK_XATTRS'],
      ['security.SMACK64TRANSMUTE', 'EVM_EXTRA_SMACK_XATTRS'],
      ['security.SMACK64MMAP', 'EVM_EXTRA_SMACK_XATTRS'],
      ['security.apparmor', 'SECURITY_APPARMOR'],
      ['security.ima', 'IMA_APPRAISE'],
      ['security.capability', null],
    ] as const
  ).map(([name, kconfig]) => Object.freeze({ name, kconfig })),
);

/** The xattr whose presence portable signatures require (evm_crypto.c: -EPERM without it). */
export const XATTR_NAME_IMA = 'security.ima';

/** A resolved, frozen EVM configuration: what the verifying kernel hashes. */
export interface EvmConfig {
  /** preset this came from, for reports */
  readonly preset: string;
  /** names used for HMACs and 0x03 signatures, in hashing order */
  readonly enabled: readonly string[];
  /** every listed name (enabled or not, plus runtime additions), used for portable 0x05 (pitfall 21) */
  readonly all: readonly string[];
  /** CONFIG_EVM_ATTR_FSUUID: the fs UUID is appended for HMACs and 0x03 signatures */
  readonly fsUuid: boolean;
  /** `h_misc` layout: 64 = 24 bytes (64-bit kernel), 32 = 20 bytes (pitfall 20) */
  readonly layout: 64 | 32;
}

/** Description of a kernel build: which Kconfig switches are on. */
export interface EvmPreset {
  readonly description: string;
  readonly kconfig: Readonly<Record<EvmKconfig, boolean>>;
  readonly fsUuid: boolean;
  readonly layout: 64 | 32;
}

const preset = (
  description: string,
  on: readonly EvmKconfig[],
  fsUuid = true,
  layout: 64 | 32 = 64,
): EvmPreset =>
  Object.freeze({
    description,
    kconfig: Object.freeze({
      SECURITY_SELINUX: on.includes('SECURITY_SELINUX'),
      SECURITY_SMACK: on.includes('SECURITY_SMACK'),
      EVM_EXTRA_SMACK_XATTRS: on.includes('EVM_EXTRA_SMACK_XATTRS'),
      SECURITY_APPARMOR: on.includes('SECURITY_APPARMOR'),
      IMA_APPRAISE: on.includes('IMA_APPRAISE'),
    }),
    fsUuid,
    layout,
  });

/** Named kernel builds. */
export const EVM_PRESETS = Object.freeze({
  /** evmctl's built-in list (formats.md §4.2): selinux, SMACK64, apparmor, ima, capability; UUID via blkid */
  evmctl: preset('evmctl default list (SELinux, Smack, AppArmor, IMA appraisal)', [
    'SECURITY_SELINUX',
    'SECURITY_SMACK',
    'SECURITY_APPARMOR',
    'IMA_APPRAISE',
  ]),
  /** evmctl `--smack`: the extra Smack xattrs inserted after SMACK64 */
  'evmctl-smack': preset('evmctl --smack (adds SMACK64EXEC/TRANSMUTE/MMAP)', [
    'SECURITY_SELINUX',
    'SECURITY_SMACK',
    'EVM_EXTRA_SMACK_XATTRS',
    'SECURITY_APPARMOR',
    'IMA_APPRAISE',
  ]),
  /** Debian 12 kernel 6.1 (real-kernel.md §2.1): no Smack; EVM_ATTR_FSUUID=y ("HMAC attrs: 0x1") */
  'debian-6.1': preset('Debian 6.1 kernel (SELinux, AppArmor, IMA appraisal; no Smack)', [
    'SECURITY_SELINUX',
    'SECURITY_APPARMOR',
    'IMA_APPRAISE',
  ]),
  /**
   * Every option at its upstream Kconfig default with EVM=y: SELINUX, SMACK, APPARMOR and
   * IMA_APPRAISE all default to n, EVM_ATTR_FSUUID defaults to y. Only security.capability is
   * enabled. Distribution kernels differ: pick or build the preset that matches the verifier.
   */
  'mainline-default': preset('upstream Kconfig defaults (only security.capability)', []),
} satisfies Record<string, EvmPreset>);

/** Names of the built-in presets. */
export type EvmPresetName = keyof typeof EVM_PRESETS;

/** Options for {@link resolveEvmConfig}: a preset, then overrides. */
export interface EvmConfigOptions {
  /** base preset (default `evmctl`) */
  preset?: EvmPresetName;
  /** override individual Kconfig switches */
  kconfig?: Partial<Record<EvmKconfig, boolean>>;
  /** names written to `evm_xattrs` at runtime (CONFIG_EVM_ADD_XATTRS), in write order */
  addXattrs?: readonly string[];
  /** override CONFIG_EVM_ATTR_FSUUID */
  fsUuid?: boolean;
  /** override the `h_misc` layout */
  layout?: 64 | 32;
}

/** Longest xattr name the kernel accepts (XATTR_NAME_MAX). */
const XATTR_NAME_MAX = 255;

/**
 * Resolve a preset name or options into a frozen {@link EvmConfig}.
 *
 * Runtime additions follow `evm_write_xattrs()` (security/integrity/evm/evm_secfs.c): a name must
 * start with `security.`; a name already listed but disabled becomes enabled in place (it keeps its
 * position); a name already enabled is refused by the kernel (-EEXIST) and ignored here.
 *
 * @throws ImakitError E_USAGE for an unknown preset or a runtime name outside `security.*`
 * @example resolveEvmConfig('debian-6.1').enabled // ['security.selinux', 'security.apparmor', 'security.ima', 'security.capability']
 */
export function resolveEvmConfig(presetOrOptions: EvmPresetName | EvmConfigOptions = 'evmctl'): EvmConfig {
  const opts: EvmConfigOptions =
    typeof presetOrOptions === 'string' ? { preset: presetOrOptions } : presetOrOptions;
  const presetName = opts.preset ?? 'evmctl';
  if (!Object.hasOwn(EVM_PRESETS, presetName))
    throw new ImakitError(
      'E_USAGE',
      `unknown EVM preset '${String(presetName)}' (known: ${Object.keys(EVM_PRESETS).join(', ')})`,
      { token: String(presetName) },
    );
  const base: EvmPreset = EVM_PRESETS[presetName];
  const kconfig = { ...base.kconfig, ...(opts.kconfig ?? {}) };
  const entries = EVM_XATTRS.map((e) => ({
    name: e.name,
    enabled: e.kconfig === null ? true : kconfig[e.kconfig],
  }));
  for (const name of opts.addXattrs ?? []) {
    if (typeof name !== 'string' || !name.startsWith('security.') || name.length <= 'security.'.length)
      throw new ImakitError('E_USAGE', `EVM xattr '${String(name)}' must start with 'security.'`, {
        token: String(name),
      });
    if (name.length > XATTR_NAME_MAX || name.includes('\0') || name.includes('\n'))
      throw new ImakitError('E_USAGE', `invalid EVM xattr name '${name}'`, { token: name });
    const existing = entries.find((e) => e.name === name);
    if (existing) existing.enabled = true;
    else entries.push({ name, enabled: true });
  }
  return Object.freeze({
    preset: presetName,
    enabled: Object.freeze(entries.filter((e) => e.enabled).map((e) => e.name)),
    all: Object.freeze(entries.map((e) => e.name)),
    fsUuid: opts.fsUuid ?? base.fsUuid,
    layout: opts.layout ?? base.layout,
  });
}
