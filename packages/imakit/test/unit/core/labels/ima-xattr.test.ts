/**
 * security.ima and security.evm codecs against every evmctl vector (ima_hash for all files and
 * algorithms, ima_sign, EVM sign, HMAC), plus kernel interpretation rules and fast-check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { CodecError } from '../../../../src/errors.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { hash, hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { encodeImaXattr, imaDigestXattr, parseImaXattr } from '../../../../src/core/labels/ima-xattr.ts';
import { encodeEvmXattr, parseEvmXattr } from '../../../../src/core/labels/evm-xattr.ts';
import { hex, vector, vectorPath } from '../../../helpers.ts';

const OUTPUT = readFileSync(vectorPath('vectors_output.txt'), 'utf8');

/** `file algo xattr` lines of the ima_hash section. */
const HASH_LINES = [...OUTPUT.matchAll(/^(\S+\.(?:txt|bin)) (\w+) ([0-9a-f]+)$/gm)].map((m) => ({
  file: m[1]!,
  algo: m[2]!,
  xattr: m[3]!,
}));

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CodecError, `not a CodecError: ${String(e)}`);
    return `${e.code}@${e.context.offset}`;
  }
  return 'no error';
}

test('all 24 evmctl ima_hash vectors: computed, parsed and re-encoded byte for byte', () => {
  assert.equal(HASH_LINES.length, 24);
  for (const { file, algo, xattr } of HASH_LINES) {
    const a = hashAlgoByName(algo);
    const d = hash(a, vector(file));
    assert.equal(toHex(imaDigestXattr(a, d)), xattr, `${file} ${algo}`);
    const v = parseImaXattr(hex(xattr));
    assert.equal(v.kind, 'digest');
    if (v.kind !== 'digest') continue;
    assert.equal(v.algo.name, algo);
    assert.equal(v.type, a.id <= 2 ? 0x01 : 0x04); // pitfall 17: md5 and sha1 use type 0x01
    assert.equal(toHex(v.digest), toHex(d));
    assert.equal(toHex(encodeImaXattr(v)), xattr);
  }
});

test('type 0x01 interpretation follows ima_get_hash_algo: 17 bytes md5, 21 sha1, padded md5', () => {
  const md5 = hex('016f5902ac237024bdd0c176cb93063dc4');
  const p = parseImaXattr(md5);
  assert.equal(p.kind === 'digest' && p.algo.name, 'md5');
  // md5 zero-padded to 20 bytes (old kernels): bytes 16..19 of the digest are zero
  const padded = hex('016f5902ac237024bdd0c176cb93063dc400000000');
  const q = parseImaXattr(padded);
  assert.ok(q.kind === 'digest' && q.algo.name === 'md5' && q.md5Padded === true && q.digest.length === 16);
  assert.equal(toHex(encodeImaXattr(q)), toHex(padded));
  assert.equal(
    codeOf(() => parseImaXattr(hex('01' + '11'.repeat(32)))),
    'E_CODEC_BAD_LENGTH@1',
  );
  // md4 (id 0) is written as 0x01 too and reads back as md5 (the kernel can't tell them apart)
  const md4 = hashAlgoByName('md4');
  const m4 = imaDigestXattr(md4, hash(md4, vector('hello.txt')));
  assert.equal(m4[0], 1);
  assert.equal(m4.length, 17);
});

test('security.ima rejections: empty, unknown/EVM types, type >= 7, bad algo, wrong lengths', () => {
  const sha256 = hex('0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447');
  assert.equal(
    codeOf(() => parseImaXattr(new Uint8Array(0))),
    'E_CODEC_TRUNCATED@0',
  );
  for (const t of [0x00, 0x02, 0x05, 0x07, 0x08, 0xff])
    assert.equal(
      codeOf(() => parseImaXattr(new Uint8Array([t, 4, 1, 2]))),
      'E_CODEC_UNKNOWN_TYPE@0',
      `type ${t}`,
    );
  assert.equal(
    codeOf(() => parseImaXattr(hex('04'))),
    'E_CODEC_TRUNCATED@1',
  );
  assert.equal(
    codeOf(() => parseImaXattr(hex('0417' + '00'.repeat(32)))),
    'E_CODEC_UNKNOWN_ALGO@1',
  );
  assert.equal(
    codeOf(() => parseImaXattr(sha256.subarray(0, 33))),
    'E_CODEC_TRUNCATED@33',
  );
  assert.equal(
    codeOf(() => parseImaXattr(new Uint8Array([...sha256, 0]))),
    'E_CODEC_TRAILING@34',
  );
  // an algorithm this runtime cannot compute is still a valid value
  const sb = parseImaXattr(hex('0412' + '00'.repeat(32)));
  assert.ok(sb.kind === 'digest' && sb.algo.name === 'streebog256');
});

test('signature values in security.ima: v2 (0x03), v3 (0x06) and v1', () => {
  const rsa = OUTPUT.match(/hello\.txt key=rsa2048\.key algo=sha256 ([0-9a-f]+)/)![1]!;
  const v = parseImaXattr(hex(rsa));
  assert.ok(v.kind === 'signature' && v.sig.keyid === 0x4d0e4f4d);
  assert.equal(toHex(encodeImaXattr(v)), rsa);
  const v3 = OUTPUT.match(/ (0603044d0e4f4d0100[0-9a-f]+)/)![1]!;
  const p3 = parseImaXattr(hex(v3));
  assert.ok(p3.kind === 'signature' && p3.sig.version === 3 && p3.sig.xattrType === 6);
  const v1 = hex('03 01 00000000 00 00 0102030405060708 01 0008 ff');
  const p1 = parseImaXattr(v1);
  assert.equal(p1.kind, 'signature-v1');
  assert.equal(toHex(encodeImaXattr(p1)), toHex(v1));
});

test('security.evm: HMAC exactly 21 bytes, type 3 and portable type 5 vectors', () => {
  const mac = hex('02debcd8116442ae9303c630cfaf20238750ad7d18');
  const h = parseEvmXattr(mac);
  assert.ok(h.kind === 'hmac' && h.mac.length === 20);
  assert.equal(toHex(encodeEvmXattr(h)), toHex(mac));
  assert.equal(
    codeOf(() => parseEvmXattr(mac.subarray(0, 20))),
    'E_CODEC_BAD_LENGTH@1',
  );
  assert.equal(
    codeOf(() => parseEvmXattr(new Uint8Array([...mac, 0]))),
    'E_CODEC_BAD_LENGTH@1',
  );
  // evmctl 1.4 default `hmac` wrote a 32-byte HMAC-SHA256 (wrong for the kernel, pitfall 19)
  assert.equal(
    codeOf(() => parseEvmXattr(hex('02' + '11'.repeat(32)))),
    'E_CODEC_BAD_LENGTH@1',
  );
  const evmLines = [...OUTPUT.matchAll(/evm (type3|portable)[^:]*: ([0-9a-f]+)/g)];
  assert.ok(evmLines.length >= 6);
  for (const [, kind, x] of evmLines) {
    const v = parseEvmXattr(hex(x!));
    assert.ok(v.kind === 'signature');
    if (v.kind !== 'signature') continue;
    assert.equal(v.portable, kind === 'portable');
    assert.equal(toHex(encodeEvmXattr(v)), x);
  }
  for (const t of [0x00, 0x01, 0x04, 0x06, 0x07])
    assert.equal(
      codeOf(() => parseEvmXattr(new Uint8Array([t, 2, 4, 0, 0, 0, 1, 0, 1, 1]))),
      'E_CODEC_UNKNOWN_TYPE@0',
    );
  assert.equal(
    codeOf(() => parseEvmXattr(new Uint8Array(0))),
    'E_CODEC_TRUNCATED@0',
  );
  // portable signatures have no v1 form
  assert.equal(
    codeOf(() => parseEvmXattr(hex('0501000000000000000000000000000000010008ff'))),
    'E_CODEC_BAD_VERSION@1',
  );
});

test('encode misuse throws RangeError', () => {
  const sha256 = hashAlgoByName('sha256');
  assert.throws(
    () => encodeImaXattr({ kind: 'digest', type: 0x01, algo: sha256, digest: new Uint8Array(32) }),
    RangeError,
  );
  assert.throws(
    () => encodeImaXattr({ kind: 'digest', type: 0x04, algo: sha256, digest: new Uint8Array(31) }),
    RangeError,
  );
  assert.throws(() => imaDigestXattr(sha256, new Uint8Array(20)), RangeError);
  assert.throws(() => encodeEvmXattr({ kind: 'hmac', mac: new Uint8Array(32) }), RangeError);
  assert.throws(
    () =>
      encodeEvmXattr({
        kind: 'signature',
        portable: true,
        sig: { version: 2, xattrType: 3, hashAlgo: 4, keyid: 1, sig: new Uint8Array(1) },
      }),
    RangeError,
  );
});

test('property: random and mutated bytes only raise CodecError; parsed values re-encode identically', () => {
  const seeds = [...HASH_LINES.map((l) => hex(l.xattr)), hex('02debcd8116442ae9303c630cfaf20238750ad7d18')];
  const arb = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc
      .tuple(fc.constantFrom(...seeds), fc.nat({ max: 70 }), fc.nat({ max: 255 }), fc.nat({ max: 70 }))
      .map(([s, i, v, cut]) => {
        const m = s.slice(0, cut + 1);
        if (i < m.length) m[i] = v;
        return m;
      }),
  );
  fc.assert(
    fc.property(arb, (b) => {
      for (const [parse, encode] of [
        [parseImaXattr, encodeImaXattr],
        [parseEvmXattr, encodeEvmXattr],
      ] as const) {
        try {
          const v = parse(b);
          assert.equal(toHex((encode as (x: typeof v) => Uint8Array)(v)), toHex(b));
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
        }
      }
    }),
    { numRuns: 3000 },
  );
});
