/**
 * Which form a reference-set file is in, from its first bytes: the compact imakit form (magic),
 * imakit JSON (`"imakitRefs"`), a Keylime runtime policy in a DSSE envelope, a plain Keylime
 * runtime policy (any other JSON object), or a flat `<hash> <path>` allowlist (not JSON). Shared by
 * `imakit log verify --refs` and the verifier's upload route. Detection only: nothing is parsed.
 */
import { isRefsBinary } from './refs-binary.ts';

export type RefsFileKind = 'imakit' | 'json' | 'keylime' | 'keylime-dsse' | 'flat-allowlist';

/** bytes of a JSON file's start that are looked at for the distinguishing keys */
const HEAD_BYTES = 4096;

/** What a reference file is, from its first bytes. */
export function detectRefsKind(bytes: Uint8Array): RefsFileKind {
  if (isRefsBinary(bytes)) return 'imakit';
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] !== 0x7b) return 'flat-allowlist';
  const head = new TextDecoder().decode(bytes.subarray(i, i + HEAD_BYTES));
  if (/"imakitRefs"\s*:/.test(head)) return 'json';
  if (/"payloadType"\s*:/.test(head) || /^\{\s*"payload"\s*:/.test(head)) return 'keylime-dsse';
  return 'keylime';
}
