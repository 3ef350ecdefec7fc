/**
 * TPM 2.0 constants (TPM 2.0 Library Part 2, "Structures", rev 1.59: §6 constants, §8 attributes),
 * as frozen objects keyed by the spec's name without its prefix (`TPM_ALG.SHA256`), each with a
 * reverse lookup (`tpmAlgName(0x000b) === 'SHA256'`). Only values imakit marshals or reports are
 * listed; an unlisted value is not an error here, codecs decide what they accept.
 */

function reverse<T extends Record<string, number>>(t: T): ReadonlyMap<number, keyof T & string> {
  const m = new Map<number, keyof T & string>();
  for (const [k, v] of Object.entries(t)) if (!m.has(v)) m.set(v, k as keyof T & string);
  return m;
}

/** TPM_ALG_ID (Part 2 §6.3). */
export const TPM_ALG = Object.freeze({
  ERROR: 0x0000,
  RSA: 0x0001,
  TDES: 0x0003,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
});
const TPM_ALG_NAMES = reverse(TPM_ALG);
/** Name of a TPM_ALG_ID (`SHA256`), or `0x....` when unlisted. */
export function tpmAlgName(id: number): string {
  return TPM_ALG_NAMES.get(id) ?? hex(id, 4);
}

/** TPM_ST structure tags (Part 2 §6.9). */
export const TPM_ST = Object.freeze({
  RSP_COMMAND: 0x00c4,
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  AUTH_SECRET: 0x8023,
  HASHCHECK: 0x8024,
  AUTH_SIGNED: 0x8025,
  FU_MANIFEST: 0x8029,
});
const TPM_ST_NAMES = reverse(TPM_ST);
/** Name of a TPM_ST (`ATTEST_QUOTE`), or `0x....`. */
export function tpmStName(tag: number): string {
  return TPM_ST_NAMES.get(tag) ?? hex(tag, 4);
}

/** TPM_GENERATED_VALUE: the magic that starts every TPMS_ATTEST the TPM signs (Part 2 §6.2). */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_CC command codes (Part 2 §6.5.2). */
export const TPM_CC = Object.freeze({
  NV_UndefineSpaceSpecial: 0x011f,
  EvictControl: 0x0120,
  HierarchyControl: 0x0121,
  NV_UndefineSpace: 0x0122,
  ChangeEPS: 0x0124,
  ChangePPS: 0x0125,
  Clear: 0x0126,
  ClearControl: 0x0127,
  ClockSet: 0x0128,
  HierarchyChangeAuth: 0x0129,
  NV_DefineSpace: 0x012a,
  PCR_Allocate: 0x012b,
  PCR_SetAuthPolicy: 0x012c,
  PP_Commands: 0x012d,
  SetPrimaryPolicy: 0x012e,
  FieldUpgradeStart: 0x012f,
  ClockRateAdjust: 0x0130,
  CreatePrimary: 0x0131,
  NV_GlobalWriteLock: 0x0132,
  GetCommandAuditDigest: 0x0133,
  NV_Increment: 0x0134,
  NV_SetBits: 0x0135,
  NV_Extend: 0x0136,
  NV_Write: 0x0137,
  NV_WriteLock: 0x0138,
  DictionaryAttackLockReset: 0x0139,
  DictionaryAttackParameters: 0x013a,
  NV_ChangeAuth: 0x013b,
  PCR_Event: 0x013c,
  PCR_Reset: 0x013d,
  SequenceComplete: 0x013e,
  SetAlgorithmSet: 0x013f,
  SetCommandCodeAuditStatus: 0x0140,
  FieldUpgradeData: 0x0141,
  IncrementalSelfTest: 0x0142,
  SelfTest: 0x0143,
  Startup: 0x0144,
  Shutdown: 0x0145,
  StirRandom: 0x0146,
  ActivateCredential: 0x0147,
  Certify: 0x0148,
  PolicyNV: 0x0149,
  CertifyCreation: 0x014a,
  Duplicate: 0x014b,
  GetTime: 0x014c,
  GetSessionAuditDigest: 0x014d,
  NV_Read: 0x014e,
  NV_ReadLock: 0x014f,
  ObjectChangeAuth: 0x0150,
  PolicySecret: 0x0151,
  Rewrap: 0x0152,
  Create: 0x0153,
  ECDH_ZGen: 0x0154,
  HMAC: 0x0155,
  Import: 0x0156,
  Load: 0x0157,
  Quote: 0x0158,
  RSA_Decrypt: 0x0159,
  HMAC_Start: 0x015b,
  SequenceUpdate: 0x015c,
  Sign: 0x015d,
  Unseal: 0x015e,
  PolicySigned: 0x0160,
  ContextLoad: 0x0161,
  ContextSave: 0x0162,
  ECDH_KeyGen: 0x0163,
  EncryptDecrypt: 0x0164,
  FlushContext: 0x0165,
  LoadExternal: 0x0167,
  MakeCredential: 0x0168,
  NV_ReadPublic: 0x0169,
  PolicyAuthorize: 0x016a,
  PolicyAuthValue: 0x016b,
  PolicyCommandCode: 0x016c,
  PolicyCounterTimer: 0x016d,
  PolicyCpHash: 0x016e,
  PolicyLocality: 0x016f,
  PolicyNameHash: 0x0170,
  PolicyOR: 0x0171,
  PolicyTicket: 0x0172,
  ReadPublic: 0x0173,
  RSA_Encrypt: 0x0174,
  StartAuthSession: 0x0176,
  VerifySignature: 0x0177,
  ECC_Parameters: 0x0178,
  FirmwareRead: 0x0179,
  GetCapability: 0x017a,
  GetRandom: 0x017b,
  GetTestResult: 0x017c,
  Hash: 0x017d,
  PCR_Read: 0x017e,
  PolicyPCR: 0x017f,
  PolicyRestart: 0x0180,
  ReadClock: 0x0181,
  PCR_Extend: 0x0182,
  PCR_SetAuthValue: 0x0183,
  NV_Certify: 0x0184,
  EventSequenceComplete: 0x0185,
  HashSequenceStart: 0x0186,
  PolicyPhysicalPresence: 0x0187,
  PolicyDuplicationSelect: 0x0188,
  PolicyGetDigest: 0x0189,
  TestParms: 0x018a,
  Commit: 0x018b,
  PolicyPassword: 0x018c,
  ZGen_2Phase: 0x018d,
  EC_Ephemeral: 0x018e,
  PolicyNvWritten: 0x018f,
  PolicyTemplate: 0x0190,
  CreateLoaded: 0x0191,
  PolicyAuthorizeNV: 0x0192,
  EncryptDecrypt2: 0x0193,
  AC_GetCapability: 0x0194,
  AC_Send: 0x0195,
  Policy_AC_SendSelect: 0x0196,
  CertifyX509: 0x0197,
  ACT_SetTimeout: 0x0198,
});
const TPM_CC_NAMES = reverse(TPM_CC);
/** Name of a TPM_CC (`Quote`), or `0x....`. */
export function tpmCcName(cc: number): string {
  return TPM_CC_NAMES.get(cc) ?? hex(cc, 8);
}

/** Permanent handles TPM_RH_* and the password session TPM_RS_PW (Part 2 §7.4). */
export const TPM_RH = Object.freeze({
  SRK: 0x40000000,
  OWNER: 0x40000001,
  REVOKE: 0x40000002,
  TRANSPORT: 0x40000003,
  OPERATOR: 0x40000004,
  ADMIN: 0x40000005,
  EK: 0x40000006,
  NULL: 0x40000007,
  UNASSIGNED: 0x40000008,
  /** TPM_RS_PW: the password authorization session */
  RS_PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
  PLATFORM_NV: 0x4000000d,
});
/** TPM_RS_PW, the password session handle. */
export const TPM_RS_PW = TPM_RH.RS_PW;
const TPM_RH_NAMES = reverse(TPM_RH);
/** Name of a permanent handle (`OWNER`), or `0x....`. */
export function tpmRhName(h: number): string {
  return TPM_RH_NAMES.get(h) ?? hex(h, 8);
}

/** TPM_HT: the handle type in a handle's top byte (Part 2 §7.2). */
export const TPM_HT = Object.freeze({
  PCR: 0x00,
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
});

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = Object.freeze({
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  /** sign / encrypt */
  sign: 1 << 18,
  x509sign: 1 << 19,
});
/** The names of the TPMA_OBJECT bits set in `attrs`, in bit order (unknown bits as `bitN`). */
export function tpmaObjectNames(attrs: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const m = (1 << bit) >>> 0;
    if ((attrs >>> 0) & m) {
      const name = Object.entries(TPMA_OBJECT).find(([, v]) => v >>> 0 === m)?.[0];
      out.push(name ?? `bit${bit}`);
    }
  }
  return out;
}

/** TPMA_SESSION bits (Part 2 §8.4). */
export const TPMA_SESSION = Object.freeze({
  continueSession: 0x01,
  auditExclusive: 0x02,
  auditReset: 0x04,
  decrypt: 0x20,
  encrypt: 0x40,
  audit: 0x80,
});

/** TPM_SU startup/shutdown types (Part 2 §6.13). */
export const TPM_SU = Object.freeze({ CLEAR: 0x0000, STATE: 0x0001 });
/** TPM_SE session types (Part 2 §6.14). */
export const TPM_SE = Object.freeze({ HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 });

/** TPM_ECC_CURVE (Part 2 §6.4). */
export const TPM_ECC_CURVE = Object.freeze({
  NONE: 0x0000,
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
  BN_P256: 0x0010,
  BN_P638: 0x0011,
  SM2_P256: 0x0020,
});
const TPM_ECC_CURVE_NAMES = reverse(TPM_ECC_CURVE);
/** Name of a TPM_ECC_CURVE (`NIST_P256`), or `0x....`. */
export function tpmEccCurveName(c: number): string {
  return TPM_ECC_CURVE_NAMES.get(c) ?? hex(c, 4);
}

/** TPM_CAP capability selectors (Part 2 §6.12). */
export const TPM_CAP = Object.freeze({
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  COMMANDS: 0x00000002,
  PP_COMMANDS: 0x00000003,
  AUDIT_COMMANDS: 0x00000004,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
  PCR_PROPERTIES: 0x00000007,
  ECC_CURVES: 0x00000008,
  AUTH_POLICIES: 0x00000009,
  ACT: 0x0000000a,
  VENDOR_PROPERTY: 0x00000100,
});
const TPM_CAP_NAMES = reverse(TPM_CAP);
/** Name of a TPM_CAP (`TPM_PROPERTIES`), or `0x....`. */
export function tpmCapName(c: number): string {
  return TPM_CAP_NAMES.get(c) ?? hex(c, 8);
}

/** TPM_PT properties (Part 2 §6.13): PT_FIXED group at 0x100, PT_VAR group at 0x200. */
export const TPM_PT = Object.freeze({
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  VENDOR_TPM_TYPE: 0x10a,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  HR_TRANSIENT_MIN: 0x10e,
  HR_PERSISTENT_MIN: 0x10f,
  HR_LOADED_MIN: 0x110,
  ACTIVE_SESSIONS_MAX: 0x111,
  PCR_COUNT: 0x112,
  PCR_SELECT_MIN: 0x113,
  CONTEXT_GAP_MAX: 0x114,
  NV_COUNTERS_MAX: 0x116,
  NV_INDEX_MAX: 0x117,
  MEMORY: 0x118,
  CLOCK_UPDATE: 0x119,
  CONTEXT_HASH: 0x11a,
  CONTEXT_SYM: 0x11b,
  CONTEXT_SYM_SIZE: 0x11c,
  ORDERLY_COUNT: 0x11d,
  MAX_COMMAND_SIZE: 0x11e,
  MAX_RESPONSE_SIZE: 0x11f,
  MAX_DIGEST: 0x120,
  MAX_OBJECT_CONTEXT: 0x121,
  MAX_SESSION_CONTEXT: 0x122,
  PS_FAMILY_INDICATOR: 0x123,
  PS_LEVEL: 0x124,
  PS_REVISION: 0x125,
  PS_DAY_OF_YEAR: 0x126,
  PS_YEAR: 0x127,
  SPLIT_MAX: 0x128,
  TOTAL_COMMANDS: 0x129,
  LIBRARY_COMMANDS: 0x12a,
  VENDOR_COMMANDS: 0x12b,
  NV_BUFFER_MAX: 0x12c,
  MODES: 0x12d,
  MAX_CAP_BUFFER: 0x12e,
  PERMANENT: 0x200,
  STARTUP_CLEAR: 0x201,
  HR_NV_INDEX: 0x202,
  HR_LOADED: 0x203,
  HR_LOADED_AVAIL: 0x204,
  HR_ACTIVE: 0x205,
  HR_ACTIVE_AVAIL: 0x206,
  HR_TRANSIENT_AVAIL: 0x207,
  HR_PERSISTENT: 0x208,
  HR_PERSISTENT_AVAIL: 0x209,
  NV_COUNTERS: 0x20a,
  NV_COUNTERS_AVAIL: 0x20b,
  ALGORITHM_SET: 0x20c,
  LOADED_CURVES: 0x20d,
  LOCKOUT_COUNTER: 0x20e,
  MAX_AUTH_FAIL: 0x20f,
  LOCKOUT_INTERVAL: 0x210,
  LOCKOUT_RECOVERY: 0x211,
  NV_WRITE_RECOVERY: 0x212,
  AUDIT_COUNTER_0: 0x213,
  AUDIT_COUNTER_1: 0x214,
});
const TPM_PT_NAMES = reverse(TPM_PT);
/** Name of a TPM_PT (`MANUFACTURER`), or `0x....`. */
export function tpmPtName(p: number): string {
  return TPM_PT_NAMES.get(p) ?? hex(p, 8);
}

function hex(v: number, digits: number): string {
  return `0x${(v >>> 0).toString(16).padStart(digits, '0')}`;
}
