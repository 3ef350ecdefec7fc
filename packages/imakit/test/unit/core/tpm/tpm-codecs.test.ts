/**
 * Property tests of the TPM structure codecs (fast-check): random bytes into every decoder give a
 * value or a CodecError, nothing else; whatever decodes re-encodes to the same bytes; and
 * response codes seen from real TPMs (tpm.md) decode to their names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CodecError } from '../../../../src/errors.ts';
import { decodeTpmsAttest, encodeTpmsAttest } from '../../../../src/core/tpm/attest.ts';
import {
  decodePcrSelection,
  encodePcrSelection,
  parsePcrSelectionText,
} from '../../../../src/core/tpm/pcr-selection.ts';
import {
  decodeTpm2bPublic,
  decodeTpmtPublic,
  encodeTpm2bPublic,
  encodeTpmtPublic,
} from '../../../../src/core/tpm/public.ts';
import { decodeTpmtSignature, encodeTpmtSignature } from '../../../../src/core/tpm/signature.ts';
import { decodeResponseCode } from '../../../../src/core/tpm/response-code.ts';
import { parseQuotePcrs } from '../../../../src/core/tcg/quote-pcrs.ts';

const CODECS: readonly [string, (b: Uint8Array) => unknown, (v: never) => Uint8Array][] = [
  ['TPMS_ATTEST', decodeTpmsAttest, encodeTpmsAttest as (v: never) => Uint8Array],
  ['TPML_PCR_SELECTION', decodePcrSelection, encodePcrSelection as (v: never) => Uint8Array],
  ['TPMT_PUBLIC', decodeTpmtPublic, encodeTpmtPublic as (v: never) => Uint8Array],
  ['TPM2B_PUBLIC', decodeTpm2bPublic, encodeTpm2bPublic as (v: never) => Uint8Array],
  ['TPMT_SIGNATURE', decodeTpmtSignature, encodeTpmtSignature as (v: never) => Uint8Array],
];

/** Bytes biased toward structure: a valid-looking prefix (tags, small sizes) then random bytes. */
const structured = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .tuple(
      fc.constantFrom(
        [0xff, 0x54, 0x43, 0x47, 0x80, 0x18],
        [0xff, 0x54, 0x43, 0x47, 0x80, 0x17],
        [0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x03],
        [0x00, 0x01, 0x00, 0x0b],
        [0x00, 0x23, 0x00, 0x0b],
        [0x00, 0x14, 0x00, 0x0b],
        [0x00, 0x18, 0x00, 0x0b],
      ),
      fc.uint8Array({ maxLength: 300 }),
    )
    .map(([p, r]) => new Uint8Array([...p, ...r])),
);

for (const [name, decode, encode] of CODECS) {
  test(`${name}: random bytes give a value or a CodecError, and what decodes re-encodes exactly`, () => {
    fc.assert(
      fc.property(structured, (b) => {
        let v: unknown;
        try {
          v = decode(b);
        } catch (e) {
          assert.ok(e instanceof CodecError, `${name}: ${String(e)}`);
          assert.equal(typeof e.context.offset, 'number');
          return;
        }
        assert.deepEqual(encode(v as never), b);
      }),
      { numRuns: 3000 },
    );
  });
}

test('PCR file parser: random input gives values or E_PCR_FILE/E_CODEC_BAD_HEX', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 700 }),
        fc.string().map((s) => new TextEncoder().encode(s)),
      ),
      (b) => {
        try {
          parseQuotePcrs(b);
        } catch (e) {
          assert.ok(e instanceof CodecError, String(e));
        }
      },
    ),
  );
});

test('selection text round trip and rejection', () => {
  const s = parsePcrSelectionText('sha256:0-7,10+sha1:10');
  assert.deepEqual(decodePcrSelection(encodePcrSelection(s)), s);
  assert.deepEqual(s[0]!.pcrs, [0, 1, 2, 3, 4, 5, 6, 7, 10]);
  for (const bad of ['', 'sha256', 'md9:1', 'sha256:24', 'sha256:5-3', 'sha256:x'])
    assert.throws(
      () => parsePcrSelectionText(bad),
      (e: unknown) => e instanceof CodecError && e.code === 'E_CODEC_BAD_TEXT',
    );
});

test('response codes seen from swtpm decode to their names (tpm.md)', () => {
  const cases: [number, string, Record<string, number>][] = [
    [0x000, 'TPM_RC_SUCCESS', {}],
    [0x100, 'TPM_RC_INITIALIZE', {}],
    [0x101, 'TPM_RC_FAILURE', {}],
    [0x12f, 'TPM_RC_AUTH_UNAVAILABLE', {}],
    [0x1df, 'TPM_RC_INTEGRITY', { parameter: 1 }],
    [0x2d2, 'TPM_RC_SCHEME', { parameter: 2 }],
    [0x902, 'TPM_RC_OBJECT_MEMORY', {}],
    [0x98e, 'TPM_RC_AUTH_FAIL', { session: 1 }],
    [0x18b, 'TPM_RC_HANDLE', { handle: 1 }],
  ];
  for (const [rc, name, where] of cases) {
    const d = decodeResponseCode(rc);
    assert.equal(d.name, name, rc.toString(16));
    for (const [k, v] of Object.entries(where)) assert.equal((d as unknown as Record<string, number>)[k], v);
  }
  assert.equal(decodeResponseCode(0x1df).format, 1);
  assert.equal(decodeResponseCode(0x902).kind, 'warning');
  assert.throws(() => decodeResponseCode(-1), RangeError);
});
