/**
 * TCG PC Client event types and their event data (TCG PC Client Platform Firmware Profile
 * Specification, §10.4.1 "Event Types" and §10.4.x data structures; UEFI variable/image structures
 * from §10.2.4-§10.2.6).
 *
 * Whether the digest covers the event data matters for trust (style.md practice 3, go-attestation
 * `UntrustedParseEventType`): for EV_POST_CODE, EV_EFI_BOOT_SERVICES_* and firmware blobs the
 * digest is of the CODE measured, so the event data (addresses, device paths) is unverified
 * decoration; EV_NO_ACTION is not extended at all.
 */
import { ByteReader, latin1, toHex } from '../bytes/bytes.ts';

const EFI = 0x80000000;
/** Event type codes. */
export const EVENT_TYPES: Readonly<Record<number, string>> = Object.freeze({
  0x0: 'EV_PREBOOT_CERT',
  0x1: 'EV_POST_CODE',
  0x2: 'EV_UNUSED',
  0x3: 'EV_NO_ACTION',
  0x4: 'EV_SEPARATOR',
  0x5: 'EV_ACTION',
  0x6: 'EV_EVENT_TAG',
  0x7: 'EV_S_CRTM_CONTENTS',
  0x8: 'EV_S_CRTM_VERSION',
  0x9: 'EV_CPU_MICROCODE',
  0xa: 'EV_PLATFORM_CONFIG_FLAGS',
  0xb: 'EV_TABLE_OF_DEVICES',
  0xc: 'EV_COMPACT_HASH',
  0xd: 'EV_IPL',
  0xe: 'EV_IPL_PARTITION_DATA',
  0xf: 'EV_NONHOST_CODE',
  0x10: 'EV_NONHOST_CONFIG',
  0x11: 'EV_NONHOST_INFO',
  0x12: 'EV_OMIT_BOOT_DEVICE_EVENTS',
  0x13: 'EV_POST_CODE2',
  [EFI + 0x1]: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
  [EFI + 0x2]: 'EV_EFI_VARIABLE_BOOT',
  [EFI + 0x3]: 'EV_EFI_BOOT_SERVICES_APPLICATION',
  [EFI + 0x4]: 'EV_EFI_BOOT_SERVICES_DRIVER',
  [EFI + 0x5]: 'EV_EFI_RUNTIME_SERVICES_DRIVER',
  [EFI + 0x6]: 'EV_EFI_GPT_EVENT',
  [EFI + 0x7]: 'EV_EFI_ACTION',
  [EFI + 0x8]: 'EV_EFI_PLATFORM_FIRMWARE_BLOB',
  [EFI + 0x9]: 'EV_EFI_HANDOFF_TABLES',
  [EFI + 0xa]: 'EV_EFI_PLATFORM_FIRMWARE_BLOB2',
  [EFI + 0xb]: 'EV_EFI_HANDOFF_TABLES2',
  [EFI + 0xc]: 'EV_EFI_VARIABLE_BOOT2',
  [EFI + 0xd]: 'EV_EFI_GPT_EVENT2',
  [EFI + 0x10]: 'EV_EFI_HCRTM_EVENT',
  [EFI + 0xe0]: 'EV_EFI_VARIABLE_AUTHORITY',
  [EFI + 0xe1]: 'EV_EFI_SPDM_FIRMWARE_BLOB',
  [EFI + 0xe2]: 'EV_EFI_SPDM_FIRMWARE_CONFIG',
});

/** EV_NO_ACTION: not extended (the digest field is zero and meaningless). */
export const EV_NO_ACTION = 0x3;
export const EV_SEPARATOR = 0x4;
export const EV_POST_CODE = 0x1;
export const EV_S_CRTM_VERSION = 0x8;

/** Name of an event type (hex for unknown ones). */
export function eventTypeName(t: number): string {
  return EVENT_TYPES[t] ?? `0x${t.toString(16).padStart(8, '0')}`;
}

/**
 * True when the spec defines the digest as the hash of the event data itself, so the data can be
 * checked against it; false when the digest is of something else (code, an image) and the data is
 * unverified.
 */
export function digestCoversData(t: number): boolean {
  switch (t) {
    case 0x4: // separator
    case 0x5: // action
    case 0x8: // S-CRTM version
    case 0xa: // platform config flags
    case 0xd: // IPL (grub: the command line / file hashed as data)
    case EFI + 0x1: // EFI variable driver config: UEFI_VARIABLE_DATA
    case EFI + 0x6: // GPT
    case EFI + 0x7: // EFI action
    case EFI + 0xe0: // variable authority
      return true;
    default:
      return false;
  }
}

/** Decoded event data (best effort; `raw` always kept). */
export type EventData =
  | { readonly kind: 'raw'; readonly hex: string }
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'separator'; readonly value: number }
  | { readonly kind: 'efi-variable'; readonly guid: string; readonly name: string; readonly dataHex: string }
  | {
      readonly kind: 'efi-image';
      readonly address: string;
      readonly length: string;
      readonly linkTimeAddress: string;
      readonly devicePathHex: string;
    }
  | {
      readonly kind: 'firmware-blob';
      readonly base: string;
      readonly length: string;
      readonly description?: string;
    }
  | { readonly kind: 'gpt'; readonly diskGuid: string; readonly partitions: number }
  | { readonly kind: 'startup-locality'; readonly locality: number }
  | { readonly kind: 'spec-id'; readonly signature: string };

/** Format a mixed-endian EFI GUID. */
export function formatGuid(b: Uint8Array): string {
  const h = (x: Uint8Array): string => toHex(x);
  const r = (x: Uint8Array): Uint8Array => Uint8Array.from(x).reverse();
  return `${h(r(b.subarray(0, 4)))}-${h(r(b.subarray(4, 6)))}-${h(r(b.subarray(6, 8)))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

function utf16(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b[i]! | (b[i + 1]! << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

function printable(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (!(c >= 0x20 && c < 0x7f) && !(c === 0 && i === b.length - 1) && c !== 0x0a && c !== 0x09)
      return false;
  }
  return b.length > 0;
}

/** Decode event data per type; falls back to raw hex when the data does not fit its structure. */
export function decodeEventData(t: number, data: Uint8Array): EventData {
  try {
    const r = new ByteReader(data);
    switch (t) {
      case EV_NO_ACTION: {
        const sig = latin1(data.subarray(0, 16));
        if (sig === 'StartupLocality\0' && data.length === 17)
          return { kind: 'startup-locality', locality: data[16]! };
        if (sig.startsWith('Spec ID Event')) return { kind: 'spec-id', signature: sig.replace(/\0+$/, '') };
        break;
      }
      case EV_SEPARATOR:
        if (data.length === 4) return { kind: 'separator', value: r.u32('separator', 'le') };
        break;
      case EFI + 0x1:
      case EFI + 0x2:
      case EFI + 0xc:
      case EFI + 0xe0: {
        const guid = formatGuid(r.bytesView(16, 'VariableName'));
        const nameLen = Number(r.u64('UnicodeNameLength', 'le'));
        const dataLen = Number(r.u64('VariableDataLength', 'le'));
        const name = utf16(r.bytesView(nameLen * 2, 'UnicodeName'));
        const v = r.bytesView(dataLen, 'VariableData');
        r.end('UEFI_VARIABLE_DATA');
        return { kind: 'efi-variable', guid, name, dataHex: toHex(v) };
      }
      case EFI + 0x3:
      case EFI + 0x4:
      case EFI + 0x5: {
        const address = r.u64('ImageLocationInMemory', 'le').toString(16);
        const length = r.u64('ImageLengthInMemory', 'le').toString(16);
        const linkTimeAddress = r.u64('ImageLinkTimeAddress', 'le').toString(16);
        const dpl = Number(r.u64('LengthOfDevicePath', 'le'));
        const dp = r.bytesView(dpl, 'DevicePath');
        r.end('UEFI_IMAGE_LOAD_EVENT');
        return { kind: 'efi-image', address, length, linkTimeAddress, devicePathHex: toHex(dp) };
      }
      case EFI + 0x8:
        if (data.length === 16)
          return {
            kind: 'firmware-blob',
            base: r.u64('BlobBase', 'le').toString(16),
            length: r.u64('BlobLength', 'le').toString(16),
          };
        break;
      case EFI + 0xa: {
        const n = r.u8('BlobDescriptionSize');
        const description = latin1(r.bytesView(n, 'BlobDescription'));
        const base = r.u64('BlobBase', 'le').toString(16);
        const length = r.u64('BlobLength', 'le').toString(16);
        r.end('UEFI_PLATFORM_FIRMWARE_BLOB2');
        return { kind: 'firmware-blob', base, length, description };
      }
      case EFI + 0x6: {
        r.bytesView(56, 'EFI_PARTITION_TABLE_HEADER (to DiskGUID)');
        const diskGuid = formatGuid(r.bytesView(16, 'DiskGUID'));
        r.bytesView(20, 'EFI_PARTITION_TABLE_HEADER (rest)');
        const partitions = Number(r.u64('NumberOfPartitions', 'le'));
        return { kind: 'gpt', diskGuid, partitions };
      }
      case EV_S_CRTM_VERSION:
        return { kind: 'string', text: utf16(data) };
      case EV_POST_CODE:
      case 0x5:
      case EFI + 0x7:
      case 0xd:
        // post codes are either a string or a blob base/length; odd sizes happen (quirk, reported)
        if (printable(data)) return { kind: 'string', text: latin1(data).replace(/\0$/, '') };
        if (data.length === 16)
          return {
            kind: 'firmware-blob',
            base: r.u64('base', 'le').toString(16),
            length: r.u64('length', 'le').toString(16),
          };
        break;
    }
  } catch {
    // the data does not have its spec structure: show it raw
  }
  return printable(data)
    ? { kind: 'string', text: latin1(data).replace(/\0$/, '') }
    : { kind: 'raw', hex: toHex(data) };
}
