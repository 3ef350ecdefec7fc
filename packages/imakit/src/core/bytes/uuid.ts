/**
 * Filesystem UUIDs as the kernel hashes them: `sb->s_uuid`, 16 raw bytes in the byte order of the
 * canonical dashed text form (formats.md §4.3: `28b23254-9467-…` → `28 b2 32 54 94 67 …`).
 * There is no per-field byte swapping (unlike Microsoft GUIDs).
 */
import { CodecError } from '../../errors.ts';
import { assertBytes, toHex } from './bytes.ts';

/** Size of a UUID in bytes (UUID_SIZE in include/linux/uuid.h). */
export const UUID_SIZE = 16;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Parse the 36-character dashed UUID form (either case), the only form evmctl's `--uuid=` accepts
 * (pitfall 22).
 * @param text e.g. `28b23254-9467-44c0-b6ba-34b12e85a26f`
 * @returns 16 bytes in text order
 * @throws CodecError E_CODEC_BAD_VALUE when the text is not a dashed UUID
 * @example parseUuid('28b23254-9467-44c0-b6ba-34b12e85a26f')[0] // 0x28
 */
export function parseUuid(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError('uuid must be a string');
  if (!UUID_RE.test(text))
    throw new CodecError('E_CODEC_BAD_VALUE', `not a UUID (expected 8-4-4-4-12 hex digits): '${text}'`, {
      offset: 0,
      field: 'uuid',
    });
  const hex = text.replace(/-/g, '');
  const out = new Uint8Array(UUID_SIZE);
  for (let i = 0; i < UUID_SIZE; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Format 16 bytes as the lowercase dashed UUID text (what `blkid` prints).
 * @throws RangeError unless exactly 16 bytes
 * @example formatUuid(new Uint8Array(16)) // '00000000-0000-0000-0000-000000000000'
 */
export function formatUuid(bytes: Uint8Array): string {
  assertBytes(bytes, UUID_SIZE, 'uuid');
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
