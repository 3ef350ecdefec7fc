/**
 * The measurement list a real kernel wrote (imakit's test fixture appraise-enforce) as the
 * verifier's tests send it and extend it into a TPM, and the entries they append to it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { joinTemplateData, parseBinaryList, templateDigest, utf8, type UntrustedEntry } from 'imakit/core';

const FIXTURE = join(import.meta.dirname, '../../imakit/test/fixtures/kernel/appraise-enforce');
// The kernel's entries, less the two carrying an evmctl v1 signature (0x03 0x01): core's reference
// evaluation refuses those as `bad-signature` even where the digest is allowed (a core question,
// not the verifier's). The rest are sent and extended exactly as the kernel wrote them.
const ASCII_ALL = readFileSync(join(FIXTURE, 'ascii_runtime_measurements'), 'utf8').trim().split('\n');
const KEEP = ASCII_ALL.map((l) => !(l.split(' ')[5] ?? '').startsWith('0301'));

/** The kept entries as the kernel's ascii list lines. */
export const ASCII = ASCII_ALL.filter((_l, i) => KEEP[i]);
/** The kept entries as the kernel's binary list has them. */
export const LIST = parseBinaryList(
  new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements'))),
).filter((_e, i) => KEEP[i]);

/** The kept entries' file digests by path (a `sha256:` prefix dropped), for a runtime policy. */
export function fixtureDigests(): Record<string, string[]> {
  const digests: Record<string, string[]> = {};
  for (const line of ASCII) {
    const [, , , d, path] = line.split(' ');
    (digests[path!] ??= []).push(d!.replace(/^sha256:/, ''));
  }
  return digests;
}

/** An ima-ng entry for `path` with a sha256 file digest (what the kernel appends for a new file). */
export function imaNgEntry(path: string, fileDigest: Uint8Array): UntrustedEntry {
  const dng = new Uint8Array([...utf8('sha256:'), 0, ...fileDigest]);
  const nng = new Uint8Array([...utf8(path), 0]);
  const templateData = joinTemplateData([dng, nng], 'le');
  return {
    index: 0,
    offset: 0,
    pcr: 10,
    digest: templateDigest(templateData, 'sha1'),
    templateName: 'ima-ng',
    templateData,
  };
}
