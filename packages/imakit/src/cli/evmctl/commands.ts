/**
 * The evmctl command table. One line per command file; others add theirs at the end.
 * Loaded lazily so `imakit evmctl ima_hash` does not load key or TPM code.
 */
import type { EvmctlCommandLoader } from './command.ts';

export const EVMCTL_COMMANDS: Readonly<Record<string, EvmctlCommandLoader>> = Object.freeze({
  ima_hash: () => import('./cmd-ima-hash.ts').then((m) => m.command),
  ima_sign: () => import('./cmd-ima-sign.ts').then((m) => m.command),
  ima_verify: () => import('./cmd-ima-verify.ts').then((m) => m.command),
  ima_setxattr: () => import('./cmd-ima-setxattr.ts').then((m) => m.command),
  ima_fix: () => import('./cmd-ima-fix.ts').then((m) => m.command),
  ima_clear: () => import('./cmd-ima-clear.ts').then((m) => m.command),
  sign: () => import('./cmd-sign.ts').then((m) => m.command),
  verify: () => import('./cmd-verify.ts').then((m) => m.command),
  hmac: () => import('./cmd-hmac.ts').then((m) => m.command),
  sign_hash: () => import('./cmd-sign-hash.ts').then((m) => m.command),
  convert: () => import('./cmd-convert.ts').then((m) => m.command),
  ima_measurement: () => import('./cmd-ima-measurement.ts').then((m) => m.command),
  ima_boot_aggregate: () => import('./cmd-ima-boot-aggregate.ts').then((m) => m.command),
  // H5: ima_measurement, ima_boot_aggregate; H7: import — add one line each below
  import: () => import('./cmd-import.ts').then((m) => m.command),
});
