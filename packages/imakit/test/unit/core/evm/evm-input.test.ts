/**
 * EVM digest / HMAC input (formats.md §4.3) against the shared vectors, which evmctl 1.4/1.6 and
 * evm_ref.py produced, and against evmctl's own RSA signature over the type-3 input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { evmDigest, evmHmac, evmInput, hMisc, type InodeMeta } from '../../../../src/core/evm/evm-input.ts';
import { resolveEvmConfig } from '../../../../src/core/evm/evm-config.ts';
import { parseUuid } from '../../../../src/core/bytes/uuid.ts';
import { concatBytes, toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { hex, vector, vectorOutputLine, vectorPath } from '../../../helpers.ts';

// vectors.md "EVM signatures": hello.txt with security.ima = its sha256 ima_hash
const IMA = hex('0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447');
const META: InodeMeta = { ino: 1000n, generation: 12345, uid: 0, gid: 0, mode: 0o100644 };
const UUID = parseUuid('28b23254-9467-44c0-b6ba-34b12e85a26f');
const XATTRS = new Map([['security.ima', IMA]]);
const EVMCTL = resolveEvmConfig('evmctl');

test('h_misc: 64-bit layout, 32-bit layout and portable zeroing (vectors.md)', () => {
  assert.equal(
    toHex(hMisc(META, 64, false)),
    'e803000000000000' + '39300000' + '00000000' + '00000000' + 'a481' + '0000',
  );
  assert.equal(
    toHex(hMisc(META, 32, false)),
    'e8030000' + '39300000' + '00000000' + '00000000' + 'a481' + '0000',
  );
  assert.equal(
    toHex(hMisc(META, 64, true)),
    '0000000000000000' + '00000000' + '00000000' + '00000000' + 'a481' + '0000',
  );
  assert.equal(hMisc(META, 32, true).length, 20);
});

test('h_misc: fields little-endian at their offsets, u64 inode, 32-bit truncation like evmctl --m32', () => {
  const m: InodeMeta = {
    ino: 0x0102030405060708n,
    generation: 0xaabbccdd,
    uid: 1000,
    gid: 0xfffffffe,
    mode: 0o40755,
  };
  assert.equal(
    toHex(hMisc(m, 64, false)),
    '0807060504030201' + 'ddccbbaa' + 'e8030000' + 'feffffff' + 'ed41' + '0000',
  );
  assert.equal(toHex(hMisc(m, 32, false)).slice(0, 8), '08070605');
});

test('h_misc: out-of-range metadata is misuse (RangeError)', () => {
  for (const bad of [
    { ...META, ino: -1n },
    { ...META, ino: 1n << 64n },
    { ...META, generation: 2 ** 32 },
    { ...META, uid: -1 },
    { ...META, gid: 1.5 },
    { ...META, mode: 0x10000 },
  ])
    assert.throws(() => hMisc(bad, 64, false), RangeError);
  assert.throws(() => hMisc(META, 16 as 64, false), RangeError);
});

test('type-3 digest (sha256) with fs UUID = bc54eaa9…7fd9', () => {
  const input = evmInput({ kind: 'signature', xattrs: XATTRS, meta: META, fsUuid: UUID, config: EVMCTL });
  assert.equal(toHex(input), toHex(concatBytes(IMA, hMisc(META, 64, false), UUID)));
  assert.equal(
    toHex(evmDigest('sha256', input)),
    'bc54eaa9fb935830d133c50f5ba3eb45916e2a8c8bba6c65695b5ca622b77fd9',
  );
});

test('portable digest = e85c2fb7…4e83: no inode/generation, no UUID even when given', () => {
  const input = evmInput({ kind: 'portable', xattrs: XATTRS, meta: META, fsUuid: UUID, config: EVMCTL });
  assert.equal(input.length, IMA.length + 24);
  assert.equal(
    toHex(evmDigest('sha256', input)),
    'e85c2fb741128023b50da237db65e54979a2b3b92e6293d43015fa1620ef4e83',
  );
});

test('--m32 type-3 digest = 0c153283…64f7', () => {
  const cfg = resolveEvmConfig({ preset: 'evmctl', layout: 32 });
  const input = evmInput({ kind: 'signature', xattrs: XATTRS, meta: META, fsUuid: UUID, config: cfg });
  assert.equal(
    toHex(evmDigest('sha256', input)),
    '0c153283117f2c2fdfd038b131531daaa114f46dfeb0c67c8c71cc96530664f7',
  );
});

test('sm3 digests (evmctl sm2/sm3 rows)', () => {
  const t3 = evmInput({ kind: 'signature', xattrs: XATTRS, meta: META, fsUuid: UUID, config: EVMCTL });
  const t5 = evmInput({ kind: 'portable', xattrs: XATTRS, meta: META, fsUuid: null, config: EVMCTL });
  assert.equal(
    toHex(evmDigest('sm3', t3)),
    'c5849c64ea58120695e9c39e50ea6abbb131b20bd9ea7750ff9a4e7d561f25fe',
  );
  assert.equal(
    toHex(evmDigest('sm3', t5)),
    '355fe9d3f27ea3ab6f8b6dd2a0f6460f275582f72a675b8fa305961c5ba94e03',
  );
});

test("evmctl's own RSA type-3 and portable signatures verify over imakit's input", () => {
  const pub = createPublicKey(readFileSync(vectorPath('rsa2048.pub')));
  for (const [key, kind] of [
    ['rsa2048/sha256 evm type3', 'signature'],
    ['rsa2048/sha256 evm portable', 'portable'],
  ] as const) {
    const value = hex(vectorOutputLine(key).split(': ')[1]!.trim());
    assert.equal(value[0], kind === 'signature' ? 0x03 : 0x05);
    const sig = value.subarray(9); // 9-byte v2 header (formats.md §3.2)
    const input = evmInput({ kind, xattrs: XATTRS, meta: META, fsUuid: UUID, config: EVMCTL });
    assert.ok(verify('sha256', input, pub, sig), kind);
    // a one-bit change of the metadata must break it
    const other = evmInput({ kind, xattrs: XATTRS, meta: { ...META, uid: 1 }, fsUuid: UUID, config: EVMCTL });
    assert.ok(!verify('sha256', other, pub, sig));
  }
});

test('HMAC: key zero-padded to 128 bytes, with and without UUID (pitfall 19)', () => {
  const key = vector('evm-key-plain.bin');
  assert.equal(key.length, 32);
  const withUuid = evmInput({ kind: 'hmac', xattrs: XATTRS, meta: META, fsUuid: UUID, config: EVMCTL });
  const noUuid = evmInput({ kind: 'hmac', xattrs: XATTRS, meta: META, fsUuid: null, config: EVMCTL });
  assert.equal(toHex(evmHmac(key, withUuid)), 'debcd8116442ae9303c630cfaf20238750ad7d18');
  assert.equal(toHex(evmHmac(key, noUuid)), '8eb4581cc4667edca0d2f25760c3da521d23bb81');
  // the WRONG raw-key MAC exists (so the check above can fail) and imakit must not produce it
  const wrong = createHmac('sha1', key).update(withUuid).digest('hex');
  assert.equal(wrong, 'b1e9527b2d383bb68b7cbb29a04b13ad973d14d7');
  assert.notEqual(toHex(evmHmac(key, withUuid)), wrong);
  // a 128-byte key is used as is; a longer one is refused
  assert.equal(evmHmac(new Uint8Array(128).fill(7), withUuid).length, 20);
  assert.throws(() => evmHmac(new Uint8Array(129), withUuid), RangeError);
});

test('fsUuid config off drops the UUID even when one is given', () => {
  const cfg = resolveEvmConfig({ preset: 'evmctl', fsUuid: false });
  const a = evmInput({ kind: 'hmac', xattrs: XATTRS, meta: META, fsUuid: UUID, config: cfg });
  assert.equal(toHex(evmHmac(vector('evm-key-plain.bin'), a)), '8eb4581cc4667edca0d2f25760c3da521d23bb81');
});

test('xattr order is the list order, not the map order; absent names contribute nothing', () => {
  const sel = new Uint8Array([0x73, 0x00]);
  const cap = new Uint8Array([1, 0, 0, 2, 0]);
  const app = new Uint8Array([0x61]);
  const m1 = new Map<string, Uint8Array>([
    ['security.capability', cap],
    ['user.foo', new Uint8Array([9])],
    ['security.ima', IMA],
    ['security.selinux', sel],
    ['security.apparmor', app],
  ]);
  const input = evmInput({ kind: 'hmac', xattrs: m1, meta: META, fsUuid: null, config: EVMCTL });
  assert.equal(toHex(input), toHex(concatBytes(sel, app, IMA, cap, hMisc(META, 64, false))));
  // debian-6.1 has no Smack: a SMACK64 value is ignored for HMAC but covered by portable signatures
  const deb = resolveEvmConfig('debian-6.1');
  const smack = new Uint8Array([0x5f]);
  const m2 = new Map(m1).set('security.SMACK64', smack);
  assert.equal(
    toHex(evmInput({ kind: 'hmac', xattrs: m2, meta: META, fsUuid: null, config: deb })),
    toHex(input),
  );
  assert.equal(
    toHex(evmInput({ kind: 'portable', xattrs: m2, meta: META, fsUuid: null, config: deb })),
    toHex(concatBytes(sel, smack, app, IMA, cap, hMisc(META, 64, true))),
  );
});

test('portable without security.ima → E_XATTR_MISSING; wrong UUID length is misuse', () => {
  assert.throws(
    () => evmInput({ kind: 'portable', xattrs: new Map(), meta: META, fsUuid: null, config: EVMCTL }),
    (e) => isImakitError(e, 'E_XATTR_MISSING') && e.context.field === 'security.ima',
  );
  // an HMAC needs no security.ima
  assert.equal(
    evmInput({ kind: 'hmac', xattrs: new Map(), meta: META, fsUuid: null, config: EVMCTL }).length,
    24,
  );
  assert.throws(
    () => evmInput({ kind: 'hmac', xattrs: XATTRS, meta: META, fsUuid: new Uint8Array(15), config: EVMCTL }),
    RangeError,
  );
  assert.throws(
    () => evmInput({ kind: 'bogus' as 'hmac', xattrs: XATTRS, meta: META, fsUuid: null, config: EVMCTL }),
    TypeError,
  );
});

test('property: input = present values in list order ‖ h_misc ‖ uuid, matching a direct model', () => {
  const names = EVMCTL.all;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...names), fc.uint8Array({ maxLength: 40 })), { maxLength: 8 }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.nat({ max: 0xffffffff }),
      fc.boolean(),
      (pairs, ino, gen, withUuid) => {
        const xs = new Map(pairs);
        const meta = { ino, generation: gen, uid: 5, gid: 6, mode: 0o100600 };
        const input = evmInput({
          kind: 'hmac',
          xattrs: xs,
          meta,
          fsUuid: withUuid ? UUID : null,
          config: EVMCTL,
        });
        const model = concatBytes(
          ...EVMCTL.enabled.filter((n) => xs.has(n)).map((n) => xs.get(n)!),
          hMisc(meta, 64, false),
          withUuid ? UUID : new Uint8Array(0),
        );
        assert.equal(toHex(input), toHex(model));
      },
    ),
    { numRuns: 200 },
  );
});
