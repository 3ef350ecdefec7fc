/** `0x`-prefixed lowercase hex of a u32, at least 3 digits (as TPM specs print codes). */
export function hex(v: number, digits = 3): string {
  return `0x${(v >>> 0).toString(16).padStart(digits, '0')}`;
}
