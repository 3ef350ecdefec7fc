import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  createEvmKeyBlob,
  decryptEvmKeyBlob,
  deriveEncryptedKeyKey,
  encodeEncryptedKeyPayload,
  newEvmKeyBlob,
  parseEncryptedKeyPayload,
} from '../../../../src/core/evm/evm-key-blob.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { run, vector } from '../../../helpers.ts';

// Independent reference: real-kernel.md §5.2 written in Python with `cryptography`, from the
// kernel's encrypted.c (get_derived_key, derived_key_encrypt, datablob_hmac_append).
const PY_REF = String.raw`
import sys, hashlib, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
def derived(label, mk):
    buf = bytearray(max(9 + len(mk), 32))
    lb = label.encode()
    buf[:len(lb)] = lb
    buf[len(lb)+1:len(lb)+1+len(mk)] = mk
    return hashlib.sha256(bytes(buf)).digest()
mode = sys.argv[1]
mk = bytes.fromhex(sys.argv[2])
if mode == 'make':
    plain = bytes.fromhex(sys.argv[3]); iv = bytes.fromhex(sys.argv[4])
    padded = plain + b'\0' * ((-len(plain)) % 16)
    e = Cipher(algorithms.AES(derived('ENC_KEY', mk)), modes.CBC(iv)).encryptor()
    ct = e.update(padded) + e.finalize()
    blob = b'default\0user:kmk\0' + str(len(plain)).encode() + b'\0' + iv + b'\0' + ct
    mac = hmac.new(derived('AUTH_KEY', mk), blob, hashlib.sha256).digest()
    print('default user:kmk %d %s' % (len(plain), (iv + b'\0' + ct + mac).hex()))
else:
    fmt, desc, ln, hx = sys.stdin.read().split()
    raw = bytes.fromhex(hx); n = int(ln); el = (n + 15) // 16 * 16
    iv, ct, mac = raw[:16], raw[17:17+el], raw[17+el:]
    blob = fmt.encode() + b'\0' + desc.encode() + b'\0' + ln.encode() + b'\0' + iv + b'\0' + ct
    assert hmac.compare_digest(mac, hmac.new(derived('AUTH_KEY', mk), blob, hashlib.sha256).digest()), 'bad mac'
    d = Cipher(algorithms.AES(derived('ENC_KEY', mk)), modes.CBC(iv)).decryptor()
    print((d.update(ct) + d.finalize())[:n].hex())
`;

const py = (args: string[], input?: string) => {
  const r = run('python3', ['-c', PY_REF, ...args], input === undefined ? {} : { input });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
};

test('derived keys: buffer is max(9+len, 32) with the label, a NUL and the master key', () => {
  const mk = new Uint8Array(32).fill(7);
  const auth = deriveEncryptedKeyKey('AUTH', mk);
  const enc = deriveEncryptedKeyKey('ENC', mk);
  assert.equal(auth.length, 32);
  assert.notDeepEqual(auth, enc);
  // a 3-byte master key: buffer padded to 32 bytes (not 12)
  const short = deriveEncryptedKeyKey('AUTH', new Uint8Array([1, 2, 3]));
  const buf = Buffer.alloc(32);
  buf.write('AUTH_KEY');
  buf.set([1, 2, 3], 9);
  assert.deepEqual(
    Buffer.from(short).toString('hex'),
    run('sh', ['-c', 'openssl dgst -sha256 -r'], { input: buf }).stdout.slice(0, 64),
  );
});

test('same blob as the Python cryptography reference, byte for byte, both directions', () => {
  for (const len of [32, 64, 20, 100]) {
    const mk = new Uint8Array(randomBytes(32));
    const plain = new Uint8Array(randomBytes(len));
    const iv = new Uint8Array(randomBytes(16));
    const ours = createEvmKeyBlob({ masterKey: mk, plain, iv });
    const theirs = py([
      'make',
      Buffer.from(mk).toString('hex'),
      Buffer.from(plain).toString('hex'),
      Buffer.from(iv).toString('hex'),
    ]);
    assert.equal(ours.payloadHex, theirs);
    // a random-IV blob made by us decrypts in Python; one made by Python decrypts here
    const fresh = newEvmKeyBlob({ masterKey: mk, len });
    assert.equal(
      py(['check', Buffer.from(mk).toString('hex')], fresh.payloadHex),
      Buffer.from(fresh.plain).toString('hex'),
    );
    assert.deepEqual(decryptEvmKeyBlob(theirs, mk), plain);
  }
});

test('the vectors evm-key-plain.bin round-trips; 64-byte keys give the 246-byte export of seed 000', () => {
  const plain = vector('evm-key-plain.bin');
  const mk = new Uint8Array(randomBytes(32));
  const b = createEvmKeyBlob({ masterKey: mk, plain });
  assert.deepEqual(decryptEvmKeyBlob(b.payloadHex, mk), plain);
  assert.deepEqual(decryptEvmKeyBlob(Buffer.from(b.payloadHex + '\n'), mk), plain);
  assert.equal(newEvmKeyBlob({ masterKey: mk, len: 64 }).payloadHex.length, 246);
  assert.equal(b.loadCommand, `load ${b.payloadHex}`);
  assert.equal(b.blob.length, 16 + 1 + Math.ceil(plain.length / 16) * 16 + 32);
});

test('wrong master key and tampering are caught by the MAC before decryption', () => {
  const mk = new Uint8Array(randomBytes(32));
  const b = newEvmKeyBlob({ masterKey: mk, len: 32 });
  const other = new Uint8Array(mk);
  other[0]! ^= 1;
  assert.throws(
    () => decryptEvmKeyBlob(b.payloadHex, other),
    (e) => isImakitError(e, 'E_EVMKEY_MAC'),
  );
  // flip every hex digit position class: iv, ciphertext, mac
  const hexStart = b.payloadHex.lastIndexOf(' ') + 1;
  for (const pos of [hexStart, hexStart + 40, b.payloadHex.length - 1]) {
    const ch = b.payloadHex[pos] === '0' ? '1' : '0';
    const t = b.payloadHex.slice(0, pos) + ch + b.payloadHex.slice(pos + 1);
    assert.throws(
      () => decryptEvmKeyBlob(t, mk),
      (e) => isImakitError(e, 'E_EVMKEY_MAC'),
    );
  }
  // the length text and master description are MACed too
  assert.throws(
    () => decryptEvmKeyBlob(b.payloadHex.replace('user:kmk', 'user:kmx'), mk),
    (e) => isImakitError(e, 'E_EVMKEY_MAC'),
  );
  // legacy syntax without the format word: the kernel MACs without "default\0", so it fails too
  assert.throws(
    () => decryptEvmKeyBlob(b.payloadHex.replace('default ', ''), mk),
    (e) => isImakitError(e, 'E_EVMKEY_MAC'),
  );
});

test('malformed text gives E_EVMKEY_BLOB / E_CODEC_BAD_HEX with offsets', () => {
  const mk = new Uint8Array(32);
  const b = createEvmKeyBlob({ masterKey: mk, plain: new Uint8Array(32), iv: new Uint8Array(16) });
  const cases: [string, string][] = [
    [b.payloadHex.slice(0, -2), 'E_EVMKEY_BLOB'], // truncated
    [b.payloadHex + '00', 'E_EVMKEY_BLOB'], // too long
    [b.payloadHex.replace(' 32 ', ' 33 '), 'E_EVMKEY_BLOB'], // length does not match hex
    [b.payloadHex.replace(' 32 ', ' 19 '), 'E_EVMKEY_BLOB'], // below MIN_DATA_SIZE
    [b.payloadHex.replace('user:kmk', 'kmk'), 'E_EVMKEY_BLOB'],
    [b.payloadHex.replace('default ', 'default  '), 'E_EVMKEY_BLOB'], // empty field
    [b.payloadHex + ' extra', 'E_EVMKEY_BLOB'],
    ['ecryptfs ' + b.payloadHex.slice(8), 'E_EVMKEY_BLOB'],
    [b.payloadHex.slice(0, -1) + 'g', 'E_CODEC_BAD_HEX'],
    ['', 'E_EVMKEY_BLOB'],
  ];
  for (const [t, code] of cases)
    assert.throws(
      () => parseEncryptedKeyPayload(t),
      (e) => isImakitError(e, code as never),
      t,
    );
  // separator byte after the IV must be 00
  const sepAt = b.payloadHex.lastIndexOf(' ') + 1 + 32;
  const badSep = b.payloadHex.slice(0, sepAt) + '01' + b.payloadHex.slice(sepAt + 2);
  assert.throws(
    () => parseEncryptedKeyPayload(badSep),
    (e) => isImakitError(e, 'E_EVMKEY_BLOB'),
  );
  assert.throws(
    () => decryptEvmKeyBlob(new Uint8Array([0x64, 0, 0x20]), mk),
    (e) => isImakitError(e, 'E_EVMKEY_BLOB'),
  );
});

test('property: parse/encode round trip; mutations only raise typed errors', () => {
  const mk = new Uint8Array(randomBytes(32));
  fc.assert(
    fc.property(
      fc.integer({ min: 20, max: 130 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (len, iv) => {
        const b = createEvmKeyBlob({ masterKey: mk, plain: new Uint8Array(randomBytes(len)), iv });
        assert.equal(encodeEncryptedKeyPayload(parseEncryptedKeyPayload(b.payloadHex)), b.payloadHex);
      },
    ),
    { numRuns: 60 },
  );
  const base = createEvmKeyBlob({ masterKey: mk, plain: new Uint8Array(randomBytes(32)) }).payloadHex;
  fc.assert(
    fc.property(
      fc.nat({ max: base.length - 1 }),
      fc.integer({ min: 32, max: 126 }),
      fc.boolean(),
      (pos, ch, cut) => {
        const t = cut
          ? base.slice(0, pos)
          : base.slice(0, pos) + String.fromCharCode(ch) + base.slice(pos + 1);
        if (t === base) return;
        // the kernel's hex2bin accepts either case, so an upper-case copy of the same hex digit is
        // the same blob: it must still decrypt
        if (!cut && pos > base.lastIndexOf(' ') && String.fromCharCode(ch).toLowerCase() === base[pos]) {
          assert.equal(decryptEvmKeyBlob(t, mk).length, 32);
          return;
        }
        try {
          decryptEvmKeyBlob(t, mk);
          assert.fail('mutated blob decrypted');
        } catch (e) {
          assert.ok(isImakitError(e), String(e));
          assert.ok(['E_EVMKEY_BLOB', 'E_EVMKEY_MAC', 'E_CODEC_BAD_HEX'].includes(e.code), e.code);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('misuse throws TypeError/RangeError', () => {
  assert.throws(
    () => createEvmKeyBlob({ masterKey: new Uint8Array(0), plain: new Uint8Array(32) }),
    RangeError,
  );
  assert.throws(
    () => createEvmKeyBlob({ masterKey: new Uint8Array(32), plain: new Uint8Array(19) }),
    RangeError,
  );
  assert.throws(
    () =>
      createEvmKeyBlob({ masterKey: new Uint8Array(32), plain: new Uint8Array(32), iv: new Uint8Array(8) }),
    RangeError,
  );
  assert.throws(
    () => createEvmKeyBlob({ masterKey: new Uint8Array(32), plain: new Uint8Array(32), masterDesc: 'kmk' }),
    RangeError,
  );
  assert.throws(() => newEvmKeyBlob({ masterKey: new Uint8Array(32), len: 4097 }), RangeError);
});
