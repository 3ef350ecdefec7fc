/**
 * TPM2_GetCapability (Part 3 §30.2) and the TPMS_CAPABILITY_DATA arms imakit reads (Part 2 §10.10):
 * algorithms (TPML_ALG_PROPERTY), handles (TPML_HANDLE), PCR banks (TPML_PCR_SELECTION) and TPM
 * properties (TPML_TAGGED_TPM_PROPERTY). The TPM answers at most what fits its buffer and sets
 * `moreData`; the client asks again from the next property.
 */
import { TPM_CAP, TPM_CC } from '../constants.ts';
import type { TpmReader } from '../marshal.ts';
import { readPcrSelection, type PcrSelection } from '../pcr-selection.ts';
import { commandSpec, params, type TpmCommandSpec } from './frame.ts';

/** Most entries a capability list may hold (bounds a hostile count before any loop). */
export const MAX_CAP_ENTRIES = 1024;

/** One answer to GetCapability. */
export type CapabilityData =
  | {
      readonly capability: 'algs';
      readonly algs: readonly { readonly alg: number; readonly attributes: number }[];
    }
  | { readonly capability: 'handles'; readonly handles: readonly number[] }
  | { readonly capability: 'pcrs'; readonly pcrs: PcrSelection }
  | {
      readonly capability: 'properties';
      readonly properties: readonly { readonly property: number; readonly value: number }[];
    };

export interface CapabilityResult {
  readonly moreData: boolean;
  readonly data: CapabilityData;
}

function count(r: TpmReader, field: string): number {
  const at = r.offset;
  const n = r.u32(field);
  if (n > MAX_CAP_ENTRIES) r.fail('E_CODEC_TOO_LARGE', `${n} entries exceeds ${MAX_CAP_ENTRIES}`, field, at);
  return n;
}

/** Read TPMI_YES_NO moreData ‖ TPMS_CAPABILITY_DATA. */
export function readCapabilityResult(r: TpmReader): CapabilityResult {
  const more = r.u8('moreData');
  if (more > 1) r.fail('E_CODEC_BAD_VALUE', `moreData ${more} is not YES/NO`, 'moreData', r.offset - 1);
  const at = r.offset;
  const cap = r.u32('capability');
  let data: CapabilityData;
  if (cap === TPM_CAP.ALGS) {
    const n = count(r, 'algs.count');
    const algs = [];
    for (let i = 0; i < n; i++)
      algs.push(Object.freeze({ alg: r.u16(`algs[${i}].alg`), attributes: r.u32(`algs[${i}].attributes`) }));
    data = { capability: 'algs', algs: Object.freeze(algs) };
  } else if (cap === TPM_CAP.HANDLES) {
    const n = count(r, 'handles.count');
    const handles = [];
    for (let i = 0; i < n; i++) handles.push(r.u32(`handles[${i}]`));
    data = { capability: 'handles', handles: Object.freeze(handles) };
  } else if (cap === TPM_CAP.PCRS) {
    data = { capability: 'pcrs', pcrs: readPcrSelection(r, 'assignedPCR') };
  } else if (cap === TPM_CAP.TPM_PROPERTIES) {
    const n = count(r, 'tpmProperty.count');
    const properties = [];
    for (let i = 0; i < n; i++)
      properties.push(
        Object.freeze({
          property: r.u32(`tpmProperty[${i}].property`),
          value: r.u32(`tpmProperty[${i}].value`),
        }),
      );
    data = { capability: 'properties', properties: Object.freeze(properties) };
  } else {
    r.fail('E_CODEC_UNKNOWN_TYPE', `capability 0x${cap.toString(16)} is not decoded here`, 'capability', at);
  }
  return Object.freeze({ moreData: more === 1, data: Object.freeze(data) });
}

/** TPM2_GetCapability(capability, property, propertyCount). */
export function getCapabilityCommand(
  capability: number,
  property: number,
  propertyCount: number,
): TpmCommandSpec<CapabilityResult> {
  return commandSpec({
    code: TPM_CC.GetCapability,
    handles: [],
    auths: [],
    params: params((w) => w.u32(capability).u32(property).u32(propertyCount)),
    responseHandles: 0,
    parse: readCapabilityResult,
  });
}
