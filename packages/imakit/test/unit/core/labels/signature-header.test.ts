/**
 * v1/v2/v3 signature headers: every evmctl-made signature value in vectors_output.txt parses and
 * re-encodes byte for byte; rejection paths have their own cases; fast-check for robustness.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { CodecError } from '../../../../src/errors.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import {
  encodeSignatureV1,
  encodeSignatureV2,
  parseSignatureV1,
  parseSignatureV2,
  type SignatureV2,
} from '../../../../src/core/labels/signature-header.ts';
import { hex, vectorPath } from '../../../helpers.ts';

/** Every hex run starting with a signature type+version (03/05/06 then 02/03) in the vector output. */
function vectorSignatures(): string[] {
  const text = readFileSync(vectorPath('vectors_output.txt'), 'utf8');
  return [...text.matchAll(/\b(0[356]0[23][0-9a-f]{16,})\b/g)].map((m) => m[1]!);
}

const RSA_SHA256 = vectorSignatures().find((s) => s.startsWith('0302044d0e4f4d0100'))!;

test('all evmctl signature values in the vectors parse and round-trip exactly', () => {
  const sigs = vectorSignatures();
  assert.ok(sigs.length >= 25, `found ${sigs.length}`);
  for (const s of sigs) {
    const b = hex(s);
    const v = parseSignatureV2(b);
    assert.equal(v.sig.length, b.length - 9, s.slice(0, 20));
    assert.equal(toHex(encodeSignatureV2(v)), s);
  }
});

test('fields of the rsa2048/sha256 vector: type, version, algo, BE keyid and size', () => {
  const v = parseSignatureV2(hex(RSA_SHA256));
  assert.equal(v.xattrType, 0x03); // offset 0
  assert.equal(v.version, 2); // offset 1
  assert.equal(v.hashAlgo, 4); // offset 2: sha256
  assert.equal(v.keyid, 0x4d0e4f4d); // offsets 3..6, big-endian
  assert.equal(v.sig.length, 0x100); // offsets 7..8, big-endian
});

test('the sigv3 fs-verity vector is type 6 version 3', () => {
  const s = vectorSignatures().find((x) => x.startsWith('0603'))!;
  const v = parseSignatureV2(hex(s));
  assert.equal(v.xattrType, 6);
  assert.equal(v.version, 3);
  assert.ok(s.startsWith('0603044d0e4f4d01005b95d8ff'));
});

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CodecError, `not a CodecError: ${String(e)}`);
    return `${e.code}@${e.context.offset}`;
  }
  return 'no error';
}

test('rejections name code and offset', () => {
  const good = hex(RSA_SHA256);
  const mut = (i: number, v: number): Uint8Array => {
    const c = good.slice();
    c[i] = v;
    return c;
  };
  assert.equal(
    codeOf(() => parseSignatureV2(new Uint8Array(0))),
    'E_CODEC_TRUNCATED@0',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(good.subarray(0, 8))),
    'E_CODEC_TRUNCATED@7',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(good.subarray(0, good.length - 1))),
    'E_CODEC_TRUNCATED@7',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(new Uint8Array([...good, 0]))),
    'E_CODEC_TRAILING@265',
  ); // pitfall 12
  assert.equal(
    codeOf(() => parseSignatureV2(mut(0, 0x04))),
    'E_CODEC_UNKNOWN_TYPE@0',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(mut(1, 0x01))),
    'E_CODEC_BAD_VERSION@1',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(mut(1, 0x04))),
    'E_CODEC_BAD_VERSION@1',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(mut(0, 0x06))),
    'E_CODEC_BAD_VERSION@1',
  ); // 0x06 needs v3
  assert.equal(
    codeOf(() => parseSignatureV2(mut(2, 23))),
    'E_CODEC_UNKNOWN_ALGO@2',
  );
  assert.equal(
    codeOf(() => parseSignatureV2(mut(7, 0xff))),
    'E_CODEC_TRUNCATED@7',
  ); // oversized sig_size
  assert.equal(
    codeOf(() => parseSignatureV2(hex('030204aabbccdd0000'))),
    'E_CODEC_BAD_LENGTH@7',
  );
  // hash algo ids the runtime cannot compute are still valid wire values (< HASH_ALGO__LAST)
  assert.equal(parseSignatureV2(mut(2, 18)).hashAlgo, 18);
  // 0x03 and 0x05 with version 3 parse (2026 development series); appraisal decides acceptance
  assert.equal(parseSignatureV2(mut(1, 3)).version, 3);
});

test('encode rejects misuse with RangeError', () => {
  const base: SignatureV2 = { version: 2, xattrType: 3, hashAlgo: 4, keyid: 1, sig: new Uint8Array(1) };
  assert.throws(() => encodeSignatureV2({ ...base, sig: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeSignatureV2({ ...base, sig: new Uint8Array(65536) }), RangeError);
  assert.throws(() => encodeSignatureV2({ ...base, keyid: 2 ** 32 }), RangeError);
  assert.throws(() => encodeSignatureV2({ ...base, hashAlgo: 23 }), RangeError);
  assert.throws(() => encodeSignatureV2({ ...base, xattrType: 6 }), RangeError);
});

test('v1 header: layout from formats.md §3.4, round trip and rejections', () => {
  // 03 | 01 | timestamp 78563412 (LE 0x12345678) | algo 00 | hash 01 | keyid 8 | nmpi 01 | bits 0009 | 2 bytes
  const b = hex('03 01 78563412 00 01 0102030405060708 01 0009 01ff');
  const v = parseSignatureV1(b);
  assert.equal(v.timestamp, 0x12345678);
  assert.equal(v.hashAlgo, 1);
  assert.equal(toHex(v.keyid8), '0102030405060708');
  assert.equal(v.sigBits, 9);
  assert.equal(toHex(v.sig), '01ff');
  assert.equal(toHex(encodeSignatureV1(v)), toHex(b));
  assert.equal(
    codeOf(() => parseSignatureV1(new Uint8Array([...b, 0]))),
    'E_CODEC_TRAILING@21',
  );
  assert.equal(
    codeOf(() => parseSignatureV1(b.subarray(0, 20))),
    'E_CODEC_TRUNCATED@19',
  );
  const nm = b.slice();
  nm[16] = 2;
  assert.equal(
    codeOf(() => parseSignatureV1(nm)),
    'E_CODEC_BAD_VALUE@16',
  );
  assert.equal(
    codeOf(() => parseSignatureV1(hex(RSA_SHA256))),
    'E_CODEC_BAD_VERSION@1',
  );
});

test('property: random bytes only ever raise CodecError; valid values round-trip', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      for (const p of [parseSignatureV2, parseSignatureV1]) {
        try {
          const v = p(b);
          assert.equal(
            toHex('timestamp' in v ? encodeSignatureV1(v) : encodeSignatureV2(v as SignatureV2)),
            toHex(b),
          );
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: structured v2 values round-trip and mutations of a vector raise only CodecError', () => {
  const arb = fc.record({
    version: fc.constantFrom(2 as const, 3 as const),
    xattrType: fc.constantFrom(3 as const, 5 as const),
    hashAlgo: fc.integer({ min: 0, max: 22 }),
    keyid: fc.nat({ max: 0xffffffff }),
    sig: fc.uint8Array({ minLength: 1, maxLength: 600 }),
  });
  fc.assert(
    fc.property(arb, (s) => {
      const b = encodeSignatureV2(s);
      const v = parseSignatureV2(b);
      assert.deepEqual({ ...v, sig: toHex(v.sig) }, { ...s, sig: toHex(s.sig) });
    }),
    { numRuns: 500 },
  );
  const good = hex(RSA_SHA256);
  fc.assert(
    fc.property(fc.nat({ max: 40 }), fc.nat({ max: 255 }), fc.nat({ max: 270 }), (i, v, cut) => {
      const m = good.slice(0, Math.max(cut, 1) + 9);
      if (i < m.length) m[i] = v;
      try {
        parseSignatureV2(m);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
    }),
    { numRuns: 1000 },
  );
});
