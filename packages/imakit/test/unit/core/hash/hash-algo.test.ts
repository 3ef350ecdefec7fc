import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  HASH_ALGOS,
  hash,
  hashAlgoById,
  hashAlgoByName,
  hashAlgoByTpmAlg,
  isHashSupported,
  createHasher,
} from '../../../../src/core/hash/hash-algo.ts';
import { toHex, utf8 } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';

test('table ids are positional and match the kernel enum', () => {
  HASH_ALGOS.forEach((a, i) => assert.equal(a.id, i));
  assert.equal(hashAlgoByName('sha256').id, 4);
  assert.equal(hashAlgoByName('sm3').id, 17);
  assert.equal(hashAlgoByName('sha3-512').id, 22);
  assert.equal(hashAlgoById(7)?.name, 'sha224');
  assert.equal(hashAlgoById(23), undefined);
});

test('historical aliases resolve to the same algorithm', () => {
  assert.equal(hashAlgoByName('sm3-256'), hashAlgoByName('sm3'));
  assert.equal(hashAlgoByName('md_gost12_256').id, 18);
  assert.equal(hashAlgoByName('ripemd160').name, 'rmd160');
});

test('names are case-sensitive like evmctl (SHA1 fails)', () => {
  assert.throws(
    () => hashAlgoByName('SHA1'),
    (e) => isImakitError(e, 'E_HASH_UNKNOWN'),
  );
  assert.throws(
    () => hashAlgoByName('sha512-224'),
    (e) => isImakitError(e, 'E_HASH_UNKNOWN'),
  );
});

test('TPM algorithm ids map to banks', () => {
  assert.equal(hashAlgoByTpmAlg(0x000b)?.name, 'sha256');
  assert.equal(hashAlgoByTpmAlg(0x0012)?.name, 'sm3');
  assert.equal(hashAlgoByTpmAlg(0x9999), undefined);
});

test('digests of hello.txt equal the evmctl vectors (formats.md 3.1)', () => {
  const data = utf8('hello world\n');
  assert.equal(toHex(hash('sha1', data)), '22596363b3de40b06f981fb85d82312e8c0ed511');
  assert.equal(
    toHex(hash('sha256', data)),
    'a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447',
  );
  assert.equal(toHex(hash('sm3', data)), '4cc2036b86431b5d2685a04d289dfe140a36baa854b01cb39fcd6009638e4e7a');
  assert.equal(toHex(hash('md5', data)), '6f5902ac237024bdd0c176cb93063dc4');
  assert.equal(toHex(hash('rmd160', data)), 'a915519a9fb5cee65a56ad04123ccaa34485067c');
});

test('every supported algorithm produces its declared size', () => {
  for (const a of HASH_ALGOS) {
    if (!isHashSupported(a)) continue;
    assert.equal(hash(a, utf8('x')).length, a.size, a.name);
  }
});

test('md4 (pure implementation) matches RFC 1320 vectors, incrementally too', () => {
  assert.equal(toHex(hash('md4', utf8(''))), '31d6cfe0d16ae931b73c59d7e0c089c0');
  assert.equal(toHex(hash('md4', utf8('abc'))), 'a448017aaf21d8525fc10ae87aa6729d');
  assert.equal(
    toHex(
      hash('md4', utf8('12345678901234567890123456789012345678901234567890123456789012345678901234567890')),
    ),
    'e33b4ddc9c38f2199c3e7b164fcc0536',
  );
  const h = createHasher('md4');
  const msg = utf8('message digest'.repeat(20));
  for (let i = 0; i < msg.length; i += 7) h.update(msg.subarray(i, i + 7));
  assert.equal(toHex(h.digest()), toHex(hash('md4', msg)));
});

test('incremental and one-shot agree with node for sha256', () => {
  const data = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const h = createHasher('sha256');
  h.update(data.subarray(0, 33333)).update(data.subarray(33333));
  assert.equal(toHex(h.digest()), createHash('sha256').update(data).digest('hex'));
});

test('algorithms the runtime cannot compute fail as unsupported, never a wrong digest', () => {
  for (const name of ['streebog256', 'streebog512', 'wp512', 'tgr192', 'rmd320']) {
    assert.equal(isHashSupported(name), false);
    assert.throws(
      () => hash(name, utf8('')),
      (e) => isImakitError(e, 'E_HASH_UNSUPPORTED'),
      name,
    );
  }
});
