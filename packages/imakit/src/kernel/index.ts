/**
 * imakit/kernel: kernel profiles and the IMA/EVM emulator, deterministic and without I/O
 * (`import { Emulator, getProfile } from 'imakit/kernel'`).
 *
 * The public API, listed by name and grouped by family; each export's own TSDoc is at its
 * declaration. The emulator's hook internals (evm-flow, process-measurement, inode-state
 * bookkeeping, EmulatorCore) are not exported: test/unit/exports.test.ts pins this list.
 */

/** The emulator: a deterministic model of the kernel's IMA and EVM hooks over abstract files. */
export { ext4Fs, EACCES, MAY_EXEC, MAY_WRITE, MAY_READ, MAY_APPEND } from './emulator-types.ts';
export type { Task, EmulatorOptions, HookOutcome, OpenFile, OpenResult, FileSpec } from './emulator-types.ts';
export { Emulator } from './emulator.ts';

/** Kernel profiles: the behaviour of the kernel versions the emulator models. */
export {
  getProfile,
  bootDefaults,
  DEBIAN_6_1,
  MAINLINE,
  LTS_5_10,
  LTS_6_6,
  PROFILES,
  DEFAULT_PROFILE,
} from './profiles.ts';
export type { SignatureSupport, KernelProfile } from './profiles.ts';

/** Scenarios and workloads: run a described sequence of accesses and collect what the kernel would produce. */
export { parseScenario, runScenario } from './scenario.ts';
export type { ScenarioFile, Scenario, ScenarioResult, ScenarioKeys } from './scenario.ts';
export { decodeSetfattrValue, runAccess, WORKLOAD_OPS, OP_HOOKS } from './workload.ts';
export type { WorkloadOp, WorkloadAccess, WorkloadResult } from './workload.ts';

/** Appraisal and EVM verdicts, measurement-list entries and audit records as the emulator produces them. */
export { imaGetHashAlgo, xattrVerify, fixXattrValue, XT } from './appraise.ts';
export type { AppraiseFlags, VerifyCaps, XattrVerdict } from './appraise.ts';
export { auditRecord, AUDIT_TYPE } from './audit.ts';
export type { EmuAuditRecord, AuditTask, AuditArgs } from './audit.ts';
export { evmKeyLoaded, protectedPresent, computeHmacXattr, evmVerify, evmUpdate } from './evm.ts';
export type { EvmState, EvmVerdict } from './evm.ts';
export type { IntegrityStatus, FsInfo, HookStatus, Iint, Inode } from './inode-state.ts';
export { buildTemplateData, MeasurementStore } from './measure.ts';
export type { EventData, Bank, EmuEntry } from './measure.ts';
