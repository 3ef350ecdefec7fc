/**
 * imakit/host: the real machine: files, xattrs, keyrings, securityfs, TPM sysfs, worker pools,
 * the QEMU harness (`import { hashFileSync, labelTree } from 'imakit/host'`).
 *
 * The public API, listed by name and grouped by family; each export's own TSDoc is at its
 * declaration. Worker entry modules are never exported (importing one must not act on a caller's
 * thread, host/workers/worker-protocol.ts): test/unit/exports.test.ts pins this list.
 */

/** Files on this machine: hashing, extended attributes, inode metadata, filesystem UUIDs, tree walks. */
export { hashFileSync, FILE_HASH_BUFFER_SIZE } from './fs/file-hash.ts';
export type { HashFileOptions, FileDigests } from './fs/file-hash.ts';
export { splitDev, uuidFromSuperblock, readDeviceUuid, readFsUuid, readFsUuidOfDev } from './fs/fs-uuid.ts';
export type { FsUuidResult, FsUuidOptions } from './fs/fs-uuid.ts';
export {
  hasIoctlAddon,
  readGeneration,
  readGenerationOfOpenFile,
  readOpenInodeMeta,
  readInodeMeta,
  toInodeMeta,
} from './fs/inode.ts';
export type { GenerationSource, HostInodeMeta, ReadInodeMetaOptions } from './fs/inode.ts';
export { requireRegularFile } from './fs/regular-file.ts';
export { walkTree, statType, globToMatcher } from './fs/walk.ts';
export type { EntryType, WalkEntry, WalkOptions } from './fs/walk.ts';
export {
  hasXattrSupport,
  getXattr,
  setXattr,
  removeXattr,
  listXattrs,
  readXattrSet,
  getXattrAsync,
  setXattrAsync,
  removeXattrAsync,
  listXattrsAsync,
  fdPath,
  fgetXattr,
  fsetXattr,
  fremoveXattr,
  flistXattrs,
} from './fs/xattr.ts';

/** Labelling and verifying real files: security.ima and security.evm, single files and trees. */
export {
  evmFileInput,
  evmValueFromInput,
  verifyEvmFile,
  readEvmHmacKey,
  evmLabelFile,
} from './label/evm-file.ts';
export type {
  EvmFileOptions,
  EvmValueRequest,
  EvmFileVerdict,
  VerifyEvmFileOptions,
  EvmHmacKeySource,
  EvmLabelRequest,
  EvmLabelResult,
} from './label/evm-file.ts';
export {
  fileVerdict,
  errorVerdict,
  readParsedLabel,
  isFileVerdict,
  signatureFileVerdict,
} from './label/file-verdict.ts';
export type { FileVerdict } from './label/file-verdict.ts';
export {
  digestFile,
  verityDigestFile,
  imaValueFromDigest,
  computeImaValue,
  labelImaFile,
  imaLabelIsCurrent,
  signatureIsCurrent,
  loadSigningKeyFile,
  loadVerifyKeyFile,
  verifyImaFile,
} from './label/label-file.ts';
export type {
  ImaValueRequest,
  ImaValue,
  LabelImaFileOptions,
  LabelImaFileResult,
  ImaLabelKind,
  ImaFileVerdict,
  VerifyImaFileOptions,
} from './label/label-file.ts';
export { labelTree } from './label/label-tree.ts';
export type { LabelEvmOptions, LabelTreeOptions, LabelFailure, LabelTreeReport } from './label/label-tree.ts';

/** Key files and kernel keyrings. */
export {
  ensureKeyDir,
  writeSecretFile,
  writePublicFile,
  readKeyFile,
  SECRET_MODE,
  PUBLIC_MODE,
  KEY_DIR_MODE,
} from './keys/key-files.ts';
export type { WriteKeyFileOptions } from './keys/key-files.ts';
export {
  createCaFiles,
  createSigningKeyFiles,
  convertKeyFile,
  importCertificateFile,
  writeMasterKeyFile,
  createEvmKeyFiles,
  decryptEvmKeyFile,
} from './keys/key-issue.ts';
export type { IssuedKeyFiles, IssueOptions, ImportedCertificate } from './keys/key-issue.ts';
export {
  resolveKeyring,
  addCertificate,
  addUserKey,
  addEncryptedKey,
  pipeKey,
  searchKey,
  unlinkKey,
  newKeyring,
  keyringsUsable,
} from './keys/keyctl.ts';
export type { KeyctlResult, KeyctlRunner, KeyctlContext } from './keys/keyctl.ts';

/** Attestation inputs: measurement-list files (with a worker offload for large lists), securityfs, TPM PCRs in sysfs. */
export {
  readInput,
  readHead,
  readPcrOptions,
  readTpmPcrs,
  writeAtomic,
  fileSize,
  loadListFile,
  liveListPath,
  readEventLogFile,
  lookalike,
} from './attest/attest-input.ts';
export { readFileChunks, LIST_CHUNK } from './attest/list-file.ts';
export {
  workerOffload,
  offloadForFile,
  MAX_IN_FLIGHT,
  OFFLOAD_MIN_BYTES,
} from './attest/list-replay-offload.ts';
export { verifyListFile } from './attest/list-verify.ts';
export type { ByteProgress, ListFileVerifyOptions, ListFileReport } from './attest/list-verify.ts';
export {
  findImaSecurityfs,
  listBinaryLists,
  bankFromListName,
  IMA_SECURITYFS_DIRS,
} from './attest/securityfs.ts';
export { readSysfsPcrs, DEFAULT_TPM_SYSFS } from './attest/tpm-sysfs.ts';
export { verifyListWithQuote, quoteFilesInDir } from './attest/quote-bind.ts';
export type { ListQuoteOptions, ListQuoteReport, QuoteFiles, QuotedPcrBinding } from './attest/quote-bind.ts';

/** The TPM: a client over /dev/tpmrm0, /dev/tpm0, swtpm TCP or a unix socket; vendor CA directories. */
export { TpmClient } from './tpm/client.ts';
export type {
  TpmClientOptions,
  LoadedKey,
  LoadedEk,
  CreatedAk,
  PcrValues as TpmPcrValues,
} from './tpm/client.ts';
export { loadCaDir } from './tpm/ca-dir.ts';
export type { CaCertificate } from './tpm/ca-dir.ts';

/**
 * The host agent (issue 13): its frozen configuration (flags > file > defaults), enrolment with the
 * verifier's registrar, push attestation (challenge, evidence, verdict; backoff), the pull-mode
 * evidence endpoint, and the JSON client `imakit fleet` shares.
 */
export {
  AGENT_DEFAULTS,
  AGENT_KEYS,
  AGENT_PATHS,
  mergeAgentOptions,
  parseAgentConfigFile,
} from './agent/config.ts';
export type { AgentConfig, AgentKey, AgentSettings } from './agent/config.ts';
export { enrol, agentApi, readAgentToken } from './agent/enrol.ts';
export type { EnrolResult } from './agent/enrol.ts';
export {
  attestOnce,
  collectEvidence,
  runPush,
  agentStatus,
  backoffMs,
  verdictPassed,
} from './agent/attest.ts';
export type { AgentStatus, AgentVerdict, AttestOutcome, Challenge, PushEvents } from './agent/attest.ts';
export { readListFrom, quotePcrs, MAX_LIST_BYTES_PER_EVIDENCE } from './agent/evidence.ts';
export type { ListSlice, QuoteEvidence } from './agent/evidence.ts';
export { serveEvidence } from './agent/pull.ts';
export type { PullServer } from './agent/pull.ts';
export { apiClient, ApiError, readCaFile } from './agent/api-client.ts';
export type { ApiClient, ApiClientOptions } from './agent/api-client.ts';

/** Worker pools and native hashers. */
export { HashPool } from './workers/hash-pool.ts';
export type { HashPoolOptions, PoolHashOptions } from './workers/hash-pool.ts';
export { hasNativeHash, nativeHashes } from './workers/native-hash.ts';

/** What this machine offers: native addons, external tools, kernel facilities. */
export { diagnoseHost } from './doctor/doctor.ts';
export type {
  DoctorReport,
  DoctorOptions,
  NativeAddonStatus,
  ToolStatus,
  KernelFacilityStatus,
} from './doctor/doctor.ts';

/** Reference sets on disk: load any form (signature checked when keys are given), write, sign. */
export { loadReferenceSet, writeReferenceSet, encodeReferenceSet, detectRefsKind } from './refs/refs-file.ts';
export type { LoadedRefs, LoadRefsOptions, RefsTrust, RefsFormat, RefsFileKind } from './refs/refs-file.ts';
export { signRefsFile, loadRefsSigner } from './refs/refs-sign.ts';
export type { RefsSignResult } from './refs/refs-sign.ts';

/** The real-kernel harness: Debian's kernel with IMA/EVM under QEMU and swtpm. */
export { parsePcrFile, parseGetfattr, parseFileStates } from './vm/artifacts.ts';
export { parseAuditLine, auditRecords, auditByAccess } from './vm/audit.ts';
export { buildDataImage, debugfs, DEFAULT_DATA_UUID } from './vm/disk-image.ts';
export { MODULE_CHAIN, OPTIONAL_MODULES } from './vm/initramfs.ts';
export { BASE_CMDLINE } from './vm/qemu.ts';
export {
  runVm,
  defaultKernelDir,
  openKernelCache,
  kernelCmdline,
  detectCrash,
  consoleTail,
  DEFAULT_TIMEOUT_MS,
} from './vm/run.ts';
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
} from './vm/types.ts';

// packages and images (issue 12): streaming readers yielding one record per regular file
export { readDeb } from './packages/deb.ts';
export { readDpkgInstalled } from './packages/dpkg.ts';
export { readRpm, readRpmHeaders, readRpmdb } from './packages/rpm.ts';
export { readOciImage } from './packages/oci.ts';
export type { OciReaderOptions, ImageSelection } from './packages/oci.ts';
export { ByteBudget } from './packages/decompress.ts';
export { referencesFromPackages } from './packages/from-packages.ts';
export type { FromPackagesOptions, FromPackagesResult, PackageSourceKind } from './packages/from-packages.ts';
export type { PackageFileRecord } from './packages/file-record.ts';
