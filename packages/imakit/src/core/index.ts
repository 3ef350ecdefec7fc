/**
 * imakit/core: pure codecs and algorithms, no I/O (`import { parseImaXattr } from 'imakit/core'`).
 *
 * The public API, listed by name and grouped by family; each export's own TSDoc is at its
 * declaration. Internals (the hand-written SHA and MD4 classes behind list replay and evmctl
 * compatibility, streaming plumbing used only by imakit/host) are not exported: test/unit/exports.test.ts
 * pins this list, so adding or removing a name is a deliberate change.
 */

/** Bytes: hex, concatenation, bounds-checked reading, UUIDs. */
export {
  assertBytes,
  toHex,
  fromHex,
  concatBytes,
  concatByteList,
  bytesEqual,
  isAllZero,
  utf8,
  latin1,
  u32Bytes,
  u16Bytes,
  ByteReader,
} from './bytes/bytes.ts';
export type { Endian } from './bytes/bytes.ts';
export { parseUuid, formatUuid, UUID_SIZE } from './bytes/uuid.ts';

/** Hash algorithms (kernel ids, names, TPM ids) and fs-verity digests. */
export {
  fsverityKernelHashId,
  fsverityDescriptor,
  fsverityDigest,
  FSVERITY_HASH_ALG,
  FSVERITY_DESCRIPTOR_SIZE,
  FSVERITY_MAX_SALT_SIZE,
  FSVERITY_DEFAULT_BLOCK_SIZE,
  FsVerityHasher,
} from './hash/fsverity.ts';
export type { FsVerityAlgo, FsVerityOptions, FsVerityDescriptorFields } from './hash/fsverity.ts';
export {
  hashAlgoById,
  hashAlgoByName,
  findHashAlgo,
  hashAlgoByTpmAlg,
  resolveHashAlgo,
  isHashSupported,
  createHasher,
  hash,
  HASH_ALGOS,
  HASH_ALGO_LAST,
  MAX_DIGEST_SIZE,
} from './hash/hash-algo.ts';
export type { HashAlgo, HashAlgoLike, Hasher } from './hash/hash-algo.ts';

/** Labels: security.ima and security.evm values, signature headers (v1/v2/v3), appended module signatures. */
export { parseEvmXattr, encodeEvmXattr, EVM_HMAC_LEN } from './labels/evm-xattr.ts';
export type { EvmXattr } from './labels/evm-xattr.ts';
export {
  signImaDigest,
  sigv3Digest,
  signVerityDigest,
  verifySignatureValue,
  Keyring,
} from './labels/ima-signature.ts';
export type {
  SignImaDigestOptions,
  SignVerityDigestOptions,
  KeyMatch,
  SigVerdict,
} from './labels/ima-signature.ts';
export { parseImaXattr, encodeImaXattr, imaDigestXattr } from './labels/ima-xattr.ts';
export type { ImaXattr } from './labels/ima-xattr.ts';
export {
  splitModsig,
  encodeModuleSignature,
  appendModsig,
  verifyModsig,
  MODULE_SIG_STRING,
  MODULE_SIGNATURE_SIZE,
  PKEY_ID_PKCS7,
} from './labels/modsig.ts';
export type {
  ModuleSignatureInfo,
  SplitModsig,
  ModsigInput,
  ModsigOptions,
  ModsigVerdict,
} from './labels/modsig.ts';
export {
  parseSignatureV2,
  encodeSignatureV2,
  parseSignatureV1,
  encodeSignatureV1,
  signatureVersionOf,
  XATTR_TYPE,
  SIG_V2_HEADER_LEN,
  SIG_V1_HEADER_LEN,
} from './labels/signature-header.ts';
export type { SignatureV2, SignatureV1 } from './labels/signature-header.ts';

/** Keys and certificates: loading, generation, key ids, X.509 and PKCS#7 parsing and building, SM2, raw digest signing. */
export {
  normalizeCurve,
  generateKeyPair,
  keyPairFromPrivate,
  exportPrivateKeyPem,
  exportPrivateKeyDer,
  exportPublicKeyPem,
} from './keys/key-gen.ts';
export type { GenKeyAlg, GenCurve, KeySpec, KeyPairInfo } from './keys/key-gen.ts';
export { kernelKeyProfile, describeKey, KEY_PROFILES, ACCEPTANCE_SURVEY } from './keys/key-info.ts';
export type { KernelKeyProfile, Acceptance, KeyInfo } from './keys/key-info.ts';
export {
  keyIdFromSubjectPublicKey,
  keyIdOfCertificate,
  formatKeyId,
  formatKeyIdEvmctl,
  parseKeyId,
  rsaKeyBlobV1,
  keyIdV1,
  formatKeyIdV1,
} from './keys/keyid.ts';
export {
  loadPrivateKey,
  loadPublicKey,
  loadPublicKeys,
  publicFromCertificate,
  publicFromSpki,
  containsPrivateKey,
} from './keys/keys.ts';
export type { KeyAlgorithm, PublicKey, PrivateKey, LoadPrivateKeyOptions } from './keys/keys.ts';
export { parsePkcs7, isDataContent, PKCS7_MAX_SIZE } from './keys/pkcs7.ts';
export type { Pkcs7SigScheme, Pkcs7SignerId, Pkcs7SignedAttrs, Pkcs7Signer, Pkcs7 } from './keys/pkcs7.ts';
export { digestInfo, signDigest, verifyDigest, DIGEST_INFO_PREFIX } from './keys/sign-digest.ts';
export {
  sm2PublicFromPrivate,
  sm2SignDigest,
  sm2VerifyDigest,
  sm2ZDigest,
  sm2SignMessage,
  sm2VerifyMessage,
  SM2_CURVE_OID,
  SM2_SM3_SIG_OID,
  SM2_DEFAULT_ID,
  sm2Point,
  SM2_CURVE_PARAMS,
} from './keys/sm2.ts';
export { parseDn, skidMethod1, buildCertificate, SIG_OID } from './keys/x509-build.ts';
export type { DnSpec, CertificateOptions, BuiltCertificate } from './keys/x509-build.ts';
export {
  parseCertificate,
  describeSpki,
  parseSpki,
  readDerTlv,
  pemDecode,
  pemEncode,
  looksLikePem,
  OID,
} from './keys/x509.ts';
export type { KeyAlg, CurveName, KeyUsageBits, Certificate, Tlv, PemBlock } from './keys/x509.ts';

/** EVM: the HMAC/signature input over inode metadata, kernel configuration presets, encrypted-key blobs. */
export { resolveEvmConfig, EVM_XATTRS, XATTR_NAME_IMA, EVM_PRESETS } from './evm/evm-config.ts';
export type {
  EvmKconfig,
  EvmXattrEntry,
  EvmConfig,
  EvmPreset,
  EvmPresetName,
  EvmConfigOptions,
} from './evm/evm-config.ts';
export { hMisc, evmInput, evmHmac, evmDigest, EVM_HMAC_KEY_BUFFER, EVM_HMAC_SIZE } from './evm/evm-input.ts';
export type { InodeMeta, EvmInputKind, EvmInputArgs } from './evm/evm-input.ts';
export {
  deriveEncryptedKeyKey,
  encryptedKeyMacInput,
  createEvmKeyBlob,
  newEvmKeyBlob,
  encodeEncryptedKeyPayload,
  parseEncryptedKeyPayload,
  decryptEvmKeyBlob,
  canonicalEncryptedKeyText,
  ENCRYPTED_KEY_IV_SIZE,
  ENCRYPTED_KEY_MAC_SIZE,
  ENCRYPTED_KEY_MIN_LEN,
  ENCRYPTED_KEY_MAX_LEN,
  EVM_MAX_KEY_LEN,
} from './evm/evm-key-blob.ts';
export type { EncryptedKeyFormat, EncryptedKeyPayload, EvmKeyBlob } from './evm/evm-key-blob.ts';

/** IMA measurement lists: binary and ASCII codecs, templates and fields, replay against PCRs, verification, checkpoints, diffs, diagnosis. */
export {
  parseAsciiLine,
  parseAsciiList,
  renderAsciiEntry,
  renderAsciiList,
  asciiToEntries,
  crossCheckAsciiBinary,
} from './ima-list/ascii.ts';
export type { AsciiEntry, FormDifference } from './ima-list/ascii.ts';
export {
  newCursor,
  scanEntry,
  cursorToEntry,
  cursorTemplateName,
  detectListFormat,
  iterateBinaryList,
  parseBinaryList,
  streamBinaryList,
  encodeBinaryList,
  MAX_TEMPLATE_DATA_LEN,
  MAX_TEMPLATE_NAME_LEN,
  MAX_PCR,
  DEFAULT_FORMAT,
  ChunkScanner,
} from './ima-list/binary.ts';
export type { ListFormat, EntryCursor, UntrustedEntry, FormatDetection } from './ima-list/binary.ts';
export { convertListByteOrder } from './ima-list/byte-order.ts';
export type { ByteOrderConversion } from './ima-list/byte-order.ts';
export {
  emptyCheckpoint,
  checkpointFromVerdict,
  resumeMeasurementList,
  checkpointToJson,
  parseCheckpoint,
  CHECKPOINT_VERSION,
  ListResumer,
} from './ima-list/checkpoint.ts';
export type {
  ListCheckpoint,
  ListRestart,
  FeedResult,
  ResumeVerdict,
  ResumeOptions,
} from './ima-list/checkpoint.ts';
export { diagnose } from './ima-list/diagnose.ts';
export type { Diagnosis, ListFacts } from './ima-list/diagnose.ts';
export { entryHash, cursorStart, fingerprintCursor, BoundaryTracker } from './ima-list/entry-fingerprint.ts';
export type { EntryFingerprint } from './ima-list/entry-fingerprint.ts';
export type { FastHash, FastHashProvider } from './ima-list/fast-hash.ts';
export {
  splitTemplateData,
  joinTemplateData,
  decodeField,
  renderField,
  parseFieldText,
  decodeTemplateFields,
  LEGACY_DIGEST_SIZE,
  LEGACY_NAME_MAX,
} from './ima-list/fields.ts';
export type { DecodedField } from './ima-list/fields.ts';
export { diffLists, MAX_LIST_DIFFERENCES } from './ima-list/list-diff.ts';
export type { ListDiff } from './ima-list/list-diff.ts';
export { looksAscii, decodeList, convertList } from './ima-list/list-form.ts';
export type { DecodedList, LoadedList, DecodeListHints, ConvertedList } from './ima-list/list-form.ts';
export { evmSigInput, verifyListSignatures, measuredKeys, keyringWith } from './ima-list/list-signatures.ts';
export type { EntrySignature, ListSignatureOptions, MeasuredKey } from './ima-list/list-signatures.ts';
export { BANK_MODES, isPaddedMode, REPLAY_QUIRKS } from './ima-list/quirks.ts';
export type { BankMode, ReplayQuirk } from './ima-list/quirks.ts';
export { bankPassed, ListReplayer } from './ima-list/replay.ts';
export type {
  ViolationMode,
  DigestMismatch,
  PcrOutcome,
  BankOutcome,
  ReplayState,
  ReplayOptions,
  RemoteReplayResult,
  RemoteReplay,
  DeferredValues,
  BankOffload,
} from './ima-list/replay.ts';
export { templateDigest, LEGACY_NAME_BUF, BankHasher } from './ima-list/template-digest.ts';
export {
  parseTemplateFmt,
  lookupTemplate,
  FIELD_IDS,
  FIELD_FORMAT,
  MAX_TEMPLATE_FIELDS,
  NAMED_TEMPLATES,
} from './ima-list/templates.ts';
export type { FieldId, FieldFormat, TemplateDescriptor } from './ima-list/templates.ts';
export { verifyMeasurementList, bytesSource } from './ima-list/verify.ts';
export type { ListSource, VerifyListOptions, ListVerdict } from './ima-list/verify.ts';

/** TCG: PCR value files, the TPM event log (parse, encode, replay) and boot_aggregate. */
export {
  computeBootAggregates,
  kernelBootAggregates,
  checkBootAggregate,
  findBootAggregateClaims,
} from './tcg/boot-aggregate.ts';
export type { BootAggregateValue, BootAggregateClaim, BootAggregateVerdict } from './tcg/boot-aggregate.ts';
export {
  parseEventLog,
  encodeEventLog,
  encodeAgileEvent,
  encodeSpecIdHeader,
  MAX_EVENT_DATA,
  MAX_EVENT_DIGESTS,
} from './tcg/event-log.ts';
export type { SpecAlgorithm, TcgEvent, TcgEventLog } from './tcg/event-log.ts';
export {
  eventTypeName,
  digestCoversData,
  formatGuid,
  decodeEventData,
  EVENT_TYPES,
  EV_NO_ACTION,
  EV_SEPARATOR,
  EV_POST_CODE,
  EV_S_CRTM_VERSION,
} from './tcg/event-types.ts';
export type { EventData } from './tcg/event-types.ts';
export {
  parseEvmctlPcrs,
  parseTpm2Pcrread,
  parsePcrJson,
  parsePcrText,
  renderPcrJson,
  renderEvmctlPcrs,
  mergePcrValues,
  PCR_COUNT,
} from './tcg/pcr-values.ts';
export type { PcrValues } from './tcg/pcr-values.ts';
export { replayEventLog, compareEventLogPcrs } from './tcg/replay.ts';
export {
  BOOT_REFERENCE_FORMS,
  bootReferenceForm,
  compareBootReference,
  decodeBootReference,
  MAX_BOOT_REFERENCE_BYTES,
} from './tcg/boot-reference.ts';
export type {
  BootActual,
  BootMismatch,
  BootReference,
  BootReferenceForm,
  BootReferenceResult,
  MbRefstate,
} from './tcg/boot-reference.ts';
export type { EventLogReplay } from './tcg/replay.ts';

/** The IMA policy language: scanner, parser with diagnostics, validation, read-back form, built-in policies, boot parameters, matching. */
export {
  actionType,
  ACTIONS,
  FUNCS,
  FUNC_ALIASES,
  MAY,
  F,
  NONACTION_FLAGS,
  LSM_KEYS,
  MAINLINE_TEMPLATES,
  MAINLINE_POLICY_FEATURES,
} from './policy/ast.ts';
export type {
  Action,
  ActionType,
  Func,
  MayName,
  IdOp,
  IdCond,
  LsmKey,
  Span,
  PolicyRule,
  Diagnostic,
  PolicyFeatures,
} from './policy/ast.ts';
export { splitCmdline, resolveBootParams, TEMPLATE_FORMATS, TEMPLATE_FIELDS } from './policy/boot-params.ts';
export type { AppraiseMode, BootDefaults, TemplateChoice, BootSettings } from './policy/boot-params.ts';
export {
  appraiseTcbRules,
  buildAppraiseRules,
  parseBuiltinRules,
  builtinPolicyText,
  BUILTIN_NAMES,
  FS_MAGIC,
  DONT_MEASURE_RULES,
  ORIGINAL_MEASUREMENT_RULES,
  DEFAULT_MEASUREMENT_RULES,
  SECURE_BOOT_RULES,
  CRITICAL_DATA_RULES,
  DEFAULT_BUILTIN_CONFIG,
} from './policy/builtin.ts';
export type { BuiltinName, BuiltinConfig } from './policy/builtin.ts';
export { formatRule, formatPolicy } from './policy/format.ts';
export type { FormatOptions } from './policy/format.ts';
export { subactionFor, compilePolicy, explainRule, IMA, APPRAISE_SUBMASK, DO_MASK } from './policy/match.ts';
export type {
  MatchSubject,
  MatchObject,
  MatchRequest,
  MatchResult,
  CompileOptions,
  CompiledPolicy,
} from './policy/match.ts';
export { parsePolicy } from './policy/parse.ts';
export type { ParseOptions, ParsedPolicy } from './policy/parse.ts';
export { tokenizePolicy } from './policy/tokenize.ts';
export type { Token, RuleLine } from './policy/tokenize.ts';
export { validateRule } from './policy/validate.ts';
export type { RuleProblem } from './policy/validate.ts';

/**
 * TPM 2.0: TPMS_ATTEST, TPMT_PUBLIC, PCR selections and strict quote verification (the fleet verifier's quote step),
 * MakeCredential and tpm2-tools' credential file, EK certificate chains.
 */
export { decodeTpmsAttest } from './tpm/attest.ts';
export type { ClockInfo, TpmsAttest } from './tpm/attest.ts';
export { parsePcrSelectionText, formatPcrSelection } from './tpm/pcr-selection.ts';
export type { PcrSelection, PcrBankSelection } from './tpm/pcr-selection.ts';
export { decodeTpm2bPublic, isRestrictedSigningKey, tpmPublicName } from './tpm/public.ts';
export type { TpmtPublic } from './tpm/public.ts';
export { verifyQuote, prepareQuoteAk } from './tpm/quote-verify.ts';
export { makeCredential } from './tpm/make-credential.ts';
export type { MakeCredentialOptions } from './tpm/make-credential.ts';
export type { Credential } from './tpm/commands/credential.ts';
export { encodeToolsCredential, decodeToolsCredential } from './tpm/commands/credential.ts';
export { verifyEkCertChain, ekCertMatchesPublic } from './tpm/ek-cert-chain.ts';
export type { EkChainVerdict, ChainFailureCode, ChainFailure, ChainLink } from './tpm/ek-cert-chain.ts';
export type { QuoteAk, QuoteVerdict, QuoteFailureCode, QuoteVerifyInput } from './tpm/quote-verify.ts';

/** Reference sets: the compact binary, imakit JSON and Keylime forms, evaluation of entries, diffs. */
export { RefsEvaluator } from './refs/evaluate.ts';
export type { EntryVerdict, EvaluationState, EvaluationSummary, VerdictReason } from './refs/evaluate.ts';
export { isRefsBinary, decodeRefsBinary, encodeRefsBinary } from './refs/refs-binary.ts';
export { detectRefsKind, type RefsFileKind } from './refs/refs-kind.ts';
export type { DecodeRefsBinaryOptions } from './refs/refs-binary.ts';
export { decodeRefsJson, encodeRefsJson } from './refs/refs-json.ts';
export { readKeylimePolicy, readFlatAllowlist, writeKeylimePolicy } from './refs/keylime-policy.ts';
export { ReferenceSetBuilder } from './refs/reference-set.ts';
export { evaluateEntries } from './refs/evaluate.ts';
export {
  dssePae,
  parseDsseEnvelope,
  encodeDsseEnvelope,
  signDsse,
  verifyDsseEnvelope,
  keylimeEcdsaKeyId,
  keylimeX509KeyId,
  KEYLIME_PAYLOAD_TYPE,
} from './refs/dsse.ts';
export type { DsseEnvelope, DsseSignature, DsseVerdict } from './refs/dsse.ts';
export { signRefsBytes, verifyRefsSignature } from './refs/refs-signature.ts';
export type { RefsSignatureVerdict } from './refs/refs-signature.ts';
export { checkRefsTrust, type RefsTrustVerdict } from './refs/refs-trust.ts';
export { diffReferenceSets } from './refs/refs-diff.ts';
export type { RefsDiff, PackageDiff, PathChange } from './refs/refs-diff.ts';
export type { ReferenceSet, DigestRef, DigestTable } from './refs/reference-set.ts';

// packages and images (issue 12): pure codecs for .deb (ar, tar with binary pax xattrs), RPM headers,
// dpkg's database text and OCI/docker save JSON
export { decodeAr, encodeAr, decodeArHeader, encodeArHeader, isArMagic } from './packages/ar.ts';
export type { ArHeader, ArMember } from './packages/ar.ts';
export {
  decodeTarHeader,
  encodeTarHeader,
  decodePaxRecords,
  encodePaxRecords,
  memberPath,
} from './packages/tar.ts';
export type { TarHeader, TarHeaderInput, TarType } from './packages/tar.ts';
export { walkTar } from './packages/tar-walk.ts';
export type { TarEntry, TarWalkOptions } from './packages/tar-walk.ts';
export { decodeRpmLead, decodeRpmHeader, encodeRpmHeader, rpmEntry, RpmType } from './packages/rpm-header.ts';
export type { RpmEntry, RpmHeader, RpmLead, RpmValue } from './packages/rpm-header.ts';
export { rpmPackageInfo } from './packages/rpm-files.ts';
export type { RpmFile, RpmPackageInfo } from './packages/rpm-files.ts';
export { parseDeb822, parseMd5sums, parseDpkgList, installedPackages } from './packages/dpkg-db.ts';
export type { Deb822, InstalledDeb } from './packages/dpkg-db.ts';
export {
  parseOciIndex,
  parseOciManifest,
  parseDockerSaveManifest,
  parseConfigDiffIds,
  parsePlatform,
  selectPlatform,
  whiteoutOf,
  layerCompression,
} from './packages/oci.ts';
export type { Descriptor, OciManifest, Platform, DockerSaveImage, Whiteout } from './packages/oci.ts';
