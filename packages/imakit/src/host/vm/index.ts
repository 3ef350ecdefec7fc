/**
 * The real-kernel harness (real-kernel.md): boot Debian's kernel with IMA/EVM under QEMU and
 * swtpm, run a workload on a prepared ext4 disk, and bring back what the kernel produced.
 */
export type {
  Access,
  AccessOp,
  AccessResult,
  AuditRecord,
  EvmKeySpec,
  FileState,
  Firmware,
  PcrBank,
  VmResult,
  VmRunInfo,
  VmRunOptions,
  VmSpec,
} from './types.ts';
export {
  runVm,
  defaultKernelDir,
  openKernelCache,
  kernelCmdline,
  detectCrash,
  consoleTail,
  DEFAULT_TIMEOUT_MS,
} from './run.ts';
export { buildDataImage, debugfs, DEFAULT_DATA_UUID } from './disk-image.ts';
export { parseAuditLine, auditRecords, auditByAccess } from './audit.ts';
export { parsePcrFile, parseGetfattr, parseFileStates } from './artifacts.ts';
export { MODULE_CHAIN, OPTIONAL_MODULES } from './initramfs.ts';
export { BASE_CMDLINE } from './qemu.ts';
