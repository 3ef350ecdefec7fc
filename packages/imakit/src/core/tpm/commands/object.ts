/**
 * Objects (Part 3 §12, §24, §28.5): TPM2_CreatePrimary, TPM2_Create, TPM2_Load, TPM2_ReadPublic and
 * TPM2_EvictControl. Keys are created with an empty userAuth and no sensitive data, no outsideInfo
 * and no creation PCRs; the creation data and ticket are read past and dropped.
 */
import { TPM_CC } from '../constants.ts';
import type { TpmReader, TpmWriter } from '../marshal.ts';
import { readTpm2bPublic, writeTpm2bPublic, type TpmtPublic } from '../public.ts';
import { commandSpec, params, type TpmAuth, type TpmCommandSpec } from './frame.ts';

/** Largest TPM2B_PRIVATE (MAX_DIGEST_BUFFER-ish; libtpms' keys are under 300 bytes). */
export const MAX_TPM2B_PRIVATE = 2048;

/** inSensitive (empty auth, no data) ‖ inPublic ‖ outsideInfo (empty) ‖ creationPCR (none). */
function writeCreateParams(w: TpmWriter, template: TpmtPublic): void {
  w.u16(4).u16(0).u16(0);
  writeTpm2bPublic(w, template);
  w.u16(0).u32(0);
}

/** TPM2B_PUBLIC as it came (bytes kept so files and names are the TPM's exact bytes), and decoded. */
export interface PublicArea {
  /** the whole TPM2B_PUBLIC (u16 size ‖ TPMT_PUBLIC) */
  readonly tpm2b: Uint8Array;
  readonly public: TpmtPublic;
}

function readPublicArea(r: TpmReader): PublicArea {
  const start = r.pos;
  const pub = readTpm2bPublic(r);
  return Object.freeze({ tpm2b: r.bytes.slice(start, r.pos), public: pub });
}

/** TPM2B_CREATION_DATA ‖ TPM2B_DIGEST creationHash ‖ TPMT_TK_CREATION: read past. */
function skipCreation(r: TpmReader): void {
  r.tpm2b('creationData');
  r.tpm2b('creationHash', 64);
  r.u16('creationTicket.tag');
  r.u32('creationTicket.hierarchy');
  r.tpm2b('creationTicket.digest', 64);
}

export interface CreatePrimaryResult {
  readonly handle: number;
  readonly outPublic: PublicArea;
  readonly name: Uint8Array;
}

/** TPM2_CreatePrimary(primaryHandle = hierarchy, template), authorized by the hierarchy's password. */
export function createPrimaryCommand(
  hierarchy: number,
  template: TpmtPublic,
  auth: TpmAuth,
): TpmCommandSpec<CreatePrimaryResult> {
  return commandSpec({
    code: TPM_CC.CreatePrimary,
    handles: [hierarchy],
    auths: [auth],
    params: params((w) => writeCreateParams(w, template)),
    responseHandles: 1,
    parse: (r, h) => {
      const outPublic = readPublicArea(r);
      skipCreation(r);
      return Object.freeze({ handle: h[0]!, outPublic, name: r.tpm2b('name', 66).slice() });
    },
  });
}

export interface CreateResult {
  /** TPM2B_PRIVATE as the TPM returned it (u16 size ‖ blob) */
  readonly outPrivate: Uint8Array;
  readonly outPublic: PublicArea;
}

/** TPM2_Create(parentHandle, template): a key wrapped by the parent, not loaded. */
export function createCommand(
  parent: number,
  template: TpmtPublic,
  auth: TpmAuth,
): TpmCommandSpec<CreateResult> {
  return commandSpec({
    code: TPM_CC.Create,
    handles: [parent],
    auths: [auth],
    params: params((w) => writeCreateParams(w, template)),
    responseHandles: 0,
    parse: (r) => {
      const start = r.pos;
      r.tpm2b('outPrivate', MAX_TPM2B_PRIVATE);
      const outPrivate = r.bytes.slice(start, r.pos);
      const outPublic = readPublicArea(r);
      skipCreation(r);
      return Object.freeze({ outPrivate, outPublic });
    },
  });
}

export interface LoadResult {
  readonly handle: number;
  readonly name: Uint8Array;
}

/**
 * TPM2_Load(parentHandle, inPrivate, inPublic). `inPrivate` and `inPublic` are the whole TPM2B
 * structures (as `ak.priv` / `ak.pub` hold them).
 */
export function loadCommand(
  parent: number,
  inPrivate: Uint8Array,
  inPublic: Uint8Array,
  auth: TpmAuth,
): TpmCommandSpec<LoadResult> {
  return commandSpec({
    code: TPM_CC.Load,
    handles: [parent],
    auths: [auth],
    params: params((w) => w.bytes(inPrivate).bytes(inPublic)),
    responseHandles: 1,
    parse: (r, h) => Object.freeze({ handle: h[0]!, name: r.tpm2b('name', 66).slice() }),
  });
}

export interface ReadPublicResult {
  readonly outPublic: PublicArea;
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
}

/** TPM2_ReadPublic(objectHandle). */
export function readPublicCommand(handle: number): TpmCommandSpec<ReadPublicResult> {
  return commandSpec({
    code: TPM_CC.ReadPublic,
    handles: [handle],
    auths: [],
    params: new Uint8Array(0),
    responseHandles: 0,
    parse: (r) =>
      Object.freeze({
        outPublic: readPublicArea(r),
        name: r.tpm2b('name', 66).slice(),
        qualifiedName: r.tpm2b('qualifiedName', 66).slice(),
      }),
  });
}

/**
 * TPM2_EvictControl(auth = TPM_RH_OWNER, objectHandle, persistentHandle): persist a loaded object at
 * `persistentHandle` (0x81000000-0x81ffffff), or evict the persistent `objectHandle` when both are it.
 */
export function evictControlCommand(
  authHierarchy: number,
  objectHandle: number,
  persistentHandle: number,
  auth: TpmAuth,
): TpmCommandSpec<void> {
  return commandSpec({
    code: TPM_CC.EvictControl,
    handles: [authHierarchy, objectHandle],
    auths: [auth],
    params: params((w) => w.u32(persistentHandle >>> 0)),
    responseHandles: 0,
    parse: () => undefined,
  });
}
