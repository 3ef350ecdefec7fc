/**
 * Appended module signatures (modsig.ts, pkcs7.ts) against real tools: PKCS#7 made with
 * `openssl cms -sign` the way scripts/sign-file.c makes them (detached, binary, no certs, with
 * and without signed attributes, issuer+serial or SKID signer), the module_signature trailer
 * written here by hand, the Debian kernel's own sign-file when installed, and `openssl cms
 * -verify` as the oracle on every verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CodecError } from '../../../../src/errors.ts';
import { concatBytes } from '../../../../src/core/bytes/bytes.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { Keyring } from '../../../../src/core/labels/ima-signature.ts';
import { loadPublicKey } from '../../../../src/core/keys/keys.ts';
import {
  appendModsig,
  encodeModuleSignature,
  MODULE_SIG_STRING,
  splitModsig,
  verifyModsig,
} from '../../../../src/core/labels/modsig.ts';
import { parsePkcs7 } from '../../../../src/core/keys/pkcs7.ts';
import {
  parseBinaryList,
  encodeBinaryList,
  type UntrustedEntry,
} from '../../../../src/core/ima-list/binary.ts';
import { joinTemplateData } from '../../../../src/core/ima-list/fields.ts';
import { verifyListSignatures } from '../../../../src/core/ima-list/list-signatures.ts';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import { run, tempDir } from '../../../helpers.ts';

const sha256 = hashAlgoByName('sha256');
const H = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function openssl(args: string[], cwd: string): void {
  const r = run('openssl', args, { cwd });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

/** openssl cms -verify of a detached DER signature over `content` with `cert` (no chain check). */
function opensslVerifies(dir: string, sig: Uint8Array, content: Uint8Array, cert: string): boolean {
  writeFileSync(join(dir, 'v.sig'), sig);
  writeFileSync(join(dir, 'v.content'), content);
  const r = run(
    'openssl',
    [
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      'v.sig',
      '-content',
      'v.content',
      '-noverify',
    ].concat(['-certfile', cert, '-out', '/dev/null']),
    { cwd: dir },
  );
  return r.status === 0;
}

interface Signer {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}

function makeSigner(dir: string, name: string, newkey: string[]): Signer {
  openssl(
    ['req', '-new', '-x509', '-nodes', ...newkey, '-keyout', `${name}.key`, '-out', `${name}.pem`].concat([
      '-subj',
      `/CN=imakit modsig ${name}`,
      '-days',
      '2',
    ]),
    dir,
  );
  return { name, cert: `${name}.pem`, key: `${name}.key` };
}

/** A detached CMS signature the way sign-file makes one; `attrs` keeps the signed attributes. */
function cmsSign(
  dir: string,
  s: Signer,
  content: Uint8Array,
  o: { attrs?: boolean; keyid?: boolean } = {},
): Uint8Array {
  writeFileSync(join(dir, 'c.bin'), content);
  const args = ['cms', '-sign', '-binary', '-outform', 'DER', '-nocerts', '-md', 'sha256'];
  if (!o.attrs) args.push('-noattr');
  if (o.keyid) args.push('-keyid');
  openssl([...args, '-signer', s.cert, '-inkey', s.key, '-in', 'c.bin', '-out', 'c.p7'], dir);
  return new Uint8Array(readFileSync(join(dir, 'c.p7')));
}

/** content ‖ PKCS#7 ‖ module_signature ‖ marker, with the trailer written byte by byte here. */
function signedFile(content: Uint8Array, p7: Uint8Array): Uint8Array {
  const ms = new Uint8Array(12);
  ms[2] = 2; // PKEY_ID_PKCS7
  ms[8] = (p7.length >>> 24) & 0xff;
  ms[9] = (p7.length >>> 16) & 0xff;
  ms[10] = (p7.length >>> 8) & 0xff;
  ms[11] = p7.length & 0xff;
  return concatBytes(content, p7, ms, new TextEncoder().encode('~Module signature appended~\n'));
}

function keyringOf(dir: string, ...certs: string[]): Keyring {
  return new Keyring(certs.map((c) => loadPublicKey(new Uint8Array(readFileSync(join(dir, c))))));
}

test('modsig: openssl cms signatures (RSA-2048, P-256; issuer+serial, SKID, signed attributes) agree with openssl cms -verify', () => {
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    const rsa = makeSigner(dir, 'rsa', ['-newkey', 'rsa:2048']);
    const ec = makeSigner(dir, 'p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const other = makeSigner(dir, 'other', ['-newkey', 'rsa:2048']);
    const content = new Uint8Array(randomBytes(3000));
    for (const signer of [rsa, ec]) {
      for (const variant of [{}, { keyid: true }, { attrs: true }, { attrs: true, keyid: true }]) {
        const label = `${signer.name} ${JSON.stringify(variant)}`;
        const p7 = cmsSign(dir, signer, content, variant);
        const file = signedFile(content, p7);
        assert.deepEqual(appendModsig(content, p7), file, label);
        const split = splitModsig(file);
        assert.ok(split, label);
        assert.deepEqual(split.content, content, label);
        assert.deepEqual(split.pkcs7, p7, label);
        assert.equal(split.sigInfo.sigLen, p7.length);

        const parsed = parsePkcs7(split.pkcs7);
        assert.equal(parsed.signers.length, 1);
        assert.equal(parsed.detached, true);
        assert.equal(parsed.certificates, 0);
        const s = parsed.signers[0]!;
        assert.equal(s.digestAlgo?.name, 'sha256');
        assert.equal(s.scheme, signer === rsa ? 'rsa' : 'ecdsa');
        assert.equal(s.sid.kind, variant.keyid ? 'skid' : 'issuer-serial', label);
        assert.equal(s.signedAttrs !== undefined, variant.attrs === true, label);
        if (s.signedAttrs) assert.deepEqual(s.signedAttrs.messageDigest, H(content));

        const good = keyringOf(dir, other.cert, signer.cert);
        const wrong = keyringOf(dir, other.cert);
        const digest = H(split.content);
        const accept = { authattrs: 'accept' } as const;
        // right certificate: pass; openssl agrees
        const v = verifyModsig({ pkcs7: split.pkcs7, digest, algo: sha256 }, good, accept);
        assert.equal(v.status, 'pass', `${label}: ${v.detail}`);
        assert.equal(v.matchedBy, variant.keyid ? 'skid' : 'issuer-serial');
        assert.equal(opensslVerifies(dir, p7, content, signer.cert), true, label);
        // another certificate only: unknown key; openssl cannot find the signer either
        const u = verifyModsig({ pkcs7: split.pkcs7, digest, algo: sha256 }, wrong, accept);
        assert.equal(u.status, 'unknown-key', label);
        assert.equal(u.code, 'E_KEY_NOT_FOUND');
        assert.equal(opensslVerifies(dir, p7, content, other.cert), false, label);
        // one content bit flipped: fail; openssl agrees
        const flipped = Uint8Array.from(content);
        flipped[1234]! ^= 0x10;
        const f = verifyModsig({ pkcs7: split.pkcs7, digest: H(flipped), algo: sha256 }, good, accept);
        assert.equal(f.status, 'fail', label);
        assert.equal(f.code, 'E_SIG_INVALID');
        assert.equal(opensslVerifies(dir, p7, flipped, signer.cert), false, label);
        // one signature bit flipped: fail
        const badSig = Uint8Array.from(p7);
        badSig[badSig.length - 3]! ^= 0x01;
        const b = verifyModsig({ pkcs7: badSig, digest, algo: sha256 }, good, accept);
        assert.equal(b.status === 'pass', false, label);
        // the default models the kernels that refuse signed attributes for module signatures
        const k = verifyModsig({ pkcs7: split.pkcs7, digest, algo: sha256 }, good);
        if (variant.attrs) {
          assert.equal(k.status, 'fail', label);
          assert.equal(k.signatureValid, true, label);
          assert.match(k.detail, /has authattrs/);
        } else assert.equal(k.status, 'pass', label);
        // a digest in another algorithm cannot be checked
        const other256 = verifyModsig(
          { pkcs7: split.pkcs7, digest: new Uint8Array(48), algo: hashAlgoByName('sha384') },
          good,
        );
        assert.equal(other256.status, 'unsupported');
      }
    }
  } finally {
    cleanup();
  }
});

test('modsig: the kernel records the signed-attributes digest in d-modsig (pkcs7_get_digest); both readings verify', () => {
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    const rsa = makeSigner(dir, 'rsa', ['-newkey', 'rsa:2048']);
    const content = new Uint8Array(randomBytes(500));
    const p7 = cmsSign(dir, rsa, content, { attrs: true });
    const attrs = parsePkcs7(p7).signers[0]!.signedAttrs!;
    assert.equal(attrs.der[0], 0x31);
    const kr = keyringOf(dir, rsa.cert);
    const opts = { authattrs: 'accept' } as const;
    const recordedAttrs = verifyModsig(
      { pkcs7: p7, digest: H(attrs.der), algo: sha256, digestKind: 'recorded' },
      kr,
      opts,
    );
    assert.equal(recordedAttrs.status, 'pass', recordedAttrs.detail);
    assert.match(recordedAttrs.detail, /signed-attributes digest/);
    const recordedContent = verifyModsig(
      { pkcs7: p7, digest: H(content), algo: sha256, digestKind: 'recorded' },
      kr,
      opts,
    );
    assert.equal(recordedContent.status, 'pass');
    // as a content digest, the attributes digest is wrong (messageDigest differs)
    const asContent = verifyModsig({ pkcs7: p7, digest: H(attrs.der), algo: sha256 }, kr, opts);
    assert.equal(asContent.status, 'fail');
    assert.match(asContent.detail, /messageDigest/);
  } finally {
    cleanup();
  }
});

test('modsig: a file signed by the Debian kernel sign-file (-k and issuer+serial) splits and verifies', () => {
  const kbuild = existsSync('/usr/lib')
    ? readdirSync('/usr/lib')
        .filter((d) => d.startsWith('linux-kbuild-'))
        .map((d) => join('/usr/lib', d, 'scripts/sign-file'))
        .find((p) => existsSync(p))
    : undefined;
  assert.ok(kbuild, 'linux-kbuild-*/scripts/sign-file missing: run scripts/install-deps.sh');
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    const rsa = makeSigner(dir, 'rsa', ['-newkey', 'rsa:2048']);
    const ec = makeSigner(dir, 'p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const content = new Uint8Array(randomBytes(4096));
    for (const s of [rsa, ec]) {
      for (const flags of [[], ['-k']]) {
        writeFileSync(join(dir, 'm.ko'), content);
        const r = run(kbuild, [...flags, 'sha256', s.key, s.cert, 'm.ko'], { cwd: dir });
        assert.equal(r.status, 0, r.stderr);
        const file = new Uint8Array(readFileSync(join(dir, 'm.ko')));
        const split = splitModsig(file);
        assert.ok(split);
        assert.deepEqual(split.content, content);
        assert.deepEqual(appendModsig(split.content, split.pkcs7), file);
        const p = parsePkcs7(split.pkcs7);
        assert.equal(p.signers[0]!.sid.kind, flags.length ? 'skid' : 'issuer-serial');
        assert.equal(p.signers[0]!.signedAttrs, undefined, 'sign-file uses CMS_NOATTR');
        const v = verifyModsig(
          { pkcs7: split.pkcs7, digest: H(content), algo: sha256 },
          keyringOf(dir, s.cert),
        );
        assert.equal(v.status, 'pass', v.detail);
        assert.equal(opensslVerifies(dir, split.pkcs7, content, s.cert), true);
        const flipped = Uint8Array.from(content);
        flipped[0]! ^= 0x80;
        assert.equal(
          verifyModsig({ pkcs7: split.pkcs7, digest: H(flipped), algo: sha256 }, keyringOf(dir, s.cert))
            .status,
          'fail',
        );
      }
    }
  } finally {
    cleanup();
  }
});

test('splitModsig: the kernel trailer checks (mod_check_sig)', () => {
  const p7 = new Uint8Array(100).fill(0x30);
  const content = new Uint8Array([1, 2, 3]);
  const file = appendModsig(content, p7);
  assert.equal(file.length, 3 + 100 + 12 + MODULE_SIG_STRING.length);
  assert.deepEqual(encodeModuleSignature(100), new Uint8Array([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 100]));
  assert.equal(splitModsig(content), null, 'no marker');
  assert.equal(splitModsig(new TextEncoder().encode(MODULE_SIG_STRING)), null, 'too short');
  assert.equal(splitModsig(file.subarray(0, file.length - 1)), null, 'marker cut');
  const code = (f: Uint8Array) => {
    try {
      splitModsig(f);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof CodecError);
      return e.code;
    }
  };
  const at = file.length - MODULE_SIG_STRING.length - 12;
  const mut = (i: number, v: number) => {
    const f = Uint8Array.from(file);
    f[at + i] = v;
    return f;
  };
  assert.equal(code(file), 'ok');
  assert.equal(code(mut(2, 1)), 'E_CODEC_UNKNOWN_TYPE'); // PKEY_ID_PGP: -ENOPKG
  for (const i of [0, 1, 3, 4, 5, 6, 7]) assert.equal(code(mut(i, 1)), 'E_CODEC_BAD_VALUE', `byte ${i}`);
  // sig_len must leave at least one content byte: 103 fails, 102 splits (content = 1 byte)
  assert.equal(code(mut(11, 103)), 'E_CODEC_BAD_LENGTH');
  assert.equal(splitModsig(mut(11, 102))!.content.length, 1);
  assert.equal(code(mut(8, 0xff)), 'E_CODEC_BAD_LENGTH'); // 4 GiB sig_len, nothing allocated
});

test('ima-modsig list entries verify through verifyListSignatures (binary list codec round trip) and the CLI', async () => {
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    const rsa = makeSigner(dir, 'rsa', ['-newkey', 'rsa:2048']);
    const ec = makeSigner(dir, 'p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const other = makeSigner(dir, 'other', ['-newkey', 'rsa:2048']);
    const mod = (n: number) => new Uint8Array(randomBytes(n));
    const dng = (d: Uint8Array) => concatBytes(new TextEncoder().encode('sha256:\0'), d);
    const entry = (
      i: number,
      name: string,
      content: Uint8Array,
      p7: Uint8Array,
      dModsig?: Uint8Array,
    ): UntrustedEntry => {
      const file = signedFile(content, p7);
      const data = joinTemplateData(
        [
          dng(H(file)),
          new TextEncoder().encode(`${name}\0`),
          new Uint8Array(0),
          p7.length ? (dModsig ?? dng(H(content))) : new Uint8Array(0),
          p7,
        ],
        'le',
      );
      return {
        index: i,
        offset: 0,
        pcr: 10,
        digest: new Uint8Array(createHash('sha1').update(data).digest()),
        templateName: 'ima-modsig',
        templateData: data,
      } as UntrustedEntry;
    };
    const c = [mod(800), mod(900), mod(1000), mod(1100), mod(50)];
    const tampered = Uint8Array.from(c[2]!);
    tampered[7]! ^= 1;
    const p7 = [
      cmsSign(dir, rsa, c[0]!),
      cmsSign(dir, ec, c[1]!, { keyid: true }),
      cmsSign(dir, rsa, c[2]!),
      cmsSign(dir, other, c[3]!),
    ];
    const entries = [
      entry(0, '/lib/modules/a.ko', c[0]!, p7[0]!),
      entry(1, '/lib/modules/b.ko', c[1]!, p7[1]!),
      // d-modsig of different content: the signature does not cover it
      entry(2, '/lib/modules/c.ko', c[2]!, p7[2]!, dng(H(tampered))),
      entry(3, '/lib/modules/d.ko', c[3]!, p7[3]!),
      entry(4, '/lib/modules/unsigned.ko', c[4]!, new Uint8Array(0)),
    ];
    const list = encodeBinaryList(entries);
    const parsed = parseBinaryList(list);
    const res = verifyListSignatures(parsed, keyringOf(dir, rsa.cert, ec.cert));
    const by = new Map(res.map((r) => [r.index, r]));
    assert.equal(res.length, 4, 'the unsigned entry has no verdict');
    assert.equal(by.get(0)?.status, 'pass', by.get(0)?.detail);
    assert.equal(by.get(0)?.source, 'modsig');
    assert.equal(by.get(0)?.name, '/lib/modules/a.ko');
    assert.equal(by.get(1)?.status, 'pass', by.get(1)?.detail);
    assert.equal(by.get(2)?.status, 'fail');
    assert.equal(by.get(3)?.status, 'unknown-key');
    assert.match(by.get(3)!.detail, /^modsig: /);
    // openssl on the same signatures and contents (entry 2: the content d-modsig claims)
    assert.equal(opensslVerifies(dir, p7[0]!, c[0]!, rsa.cert), true);
    assert.equal(opensslVerifies(dir, p7[1]!, c[1]!, ec.cert), true);
    assert.equal(opensslVerifies(dir, p7[2]!, tampered, rsa.cert), false);
    assert.equal(opensslVerifies(dir, p7[3]!, c[3]!, rsa.cert), false);
    assert.equal(opensslVerifies(dir, p7[3]!, c[3]!, other.cert), true);
    assert.equal(
      verifyListSignatures(parsed, keyringOf(dir, rsa.cert, ec.cert), 'le', { modsig: false }).length,
      0,
    );

    // CLI on the same list: `log verify` reports the modsig verdicts and exits 1 on the failed one;
    // the evmctl drop-in ignores modsig like evmctl 1.4 itself, run here on the same files
    const listFile = join(dir, 'l.bin');
    const pcrFile = join(dir, 'pcrs');
    writeFileSync(listFile, list);
    let pcr = new Uint8Array(20);
    for (const e of entries) pcr = new Uint8Array(createHash('sha1').update(pcr).update(e.digest).digest());
    const hex10 = Buffer.from(pcr).toString('hex');
    const pcrLines = Array.from(
      { length: 24 },
      (_, i) => `PCR-${String(i).padStart(2, '0')}: ${i === 10 ? hex10 : '00'.repeat(20)}\n`,
    );
    writeFileSync(pcrFile, pcrLines.join(''));
    const cli = async (argv: string[]) => {
      const io = memoryIo({ cwd: dir });
      const status = await main(argv, io);
      return { status, text: io.out() + io.err() };
    };
    const certs = [join(dir, rsa.cert), join(dir, ec.cert)];
    const lv = await cli([
      'log',
      'verify',
      '--key',
      certs[0]!,
      '--key',
      certs[1]!,
      '--pcrs',
      `sha1,${pcrFile}`,
      listFile,
    ]);
    assert.equal(lv.status, 1, lv.text);
    assert.match(lv.text, /signatures: 2 pass, 1 fail, 1 unknown-key/);
    assert.match(lv.text, /c\.ko: fail: modsig/);
    assert.match(lv.text, /d\.ko: unknown-key: modsig/);
    const evArgs = [
      'ima_measurement',
      '--verify-sig',
      '--key',
      certs.join(','),
      '--pcrs',
      `sha1,${pcrFile}`,
      listFile,
    ];
    const ev = run('evmctl', evArgs);
    assert.equal(ev.status, 0, ev.stderr);
    assert.match(ev.stdout + ev.stderr, /Template "ima-modsig" contains unprocessed data/);
    assert.doesNotMatch(ev.stdout + ev.stderr, /verification failed/);
    const drop = await cli(['evmctl', ...evArgs]);
    assert.equal(drop.status, 0, drop.text);
    assert.match(drop.text, /Matched per TPM bank/);
    assert.doesNotMatch(drop.text, /verification failed/);
  } finally {
    cleanup();
  }
});

test('property: mutated PKCS#7 and trailers only raise typed errors; verifyModsig never throws', () => {
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    const rsa = makeSigner(dir, 'rsa', ['-newkey', 'rsa:2048']);
    const content = new Uint8Array(randomBytes(200));
    const samples = [cmsSign(dir, rsa, content), cmsSign(dir, rsa, content, { attrs: true, keyid: true })];
    const kr = keyringOf(dir, rsa.cert);
    const digest = H(content);
    const typed = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
        assert.match(e.code, /^E_CODEC_/);
      }
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (p7, flips, cut) => {
          const m = Uint8Array.from(p7);
          for (const [i, v] of flips) m[i % m.length] = v;
          typed(() => parsePkcs7(m));
          typed(() => parsePkcs7(p7.subarray(0, cut % p7.length)));
          const v = verifyModsig({ pkcs7: m, digest, algo: sha256 }, kr, { authattrs: 'accept' });
          assert.ok(['pass', 'fail', 'unknown-key', 'unsupported'].includes(v.status));
          const file = appendModsig(content, p7);
          const f2 = Uint8Array.from(file);
          for (const [i, val] of flips) f2[file.length - 1 - (i % 60)] = val;
          typed(() => splitModsig(f2));
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        typed(() => parsePkcs7(b));
        typed(() => splitModsig(concatBytes(b, new TextEncoder().encode(MODULE_SIG_STRING))));
      }),
      { numRuns: 300 },
    );
    // split ∘ append is the identity on content and PKCS#7
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        (c, p) => {
          const s = splitModsig(appendModsig(c, p))!;
          assert.deepEqual(s.content, c);
          assert.deepEqual(s.pkcs7, p);
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    cleanup();
  }
});

test('modsig: a serial with its high bit set keeps its leading 0x00 on both sides (kernel compares raw INTEGER contents)', () => {
  const { dir, cleanup } = tempDir('imakit-modsig-');
  try {
    openssl(
      ['req', '-new', '-x509', '-nodes', '-newkey', 'rsa:2048', '-keyout', 'h.key', '-out', 'h.pem'].concat([
        '-subj',
        '/CN=high serial',
        '-set_serial',
        '0x80112233',
        '-days',
        '2',
      ]),
      dir,
    );
    const content = new Uint8Array(randomBytes(300));
    const p7 = cmsSign(dir, { name: 'h', cert: 'h.pem', key: 'h.key' }, content);
    const sid = parsePkcs7(p7).signers[0]!.sid;
    assert.equal(sid.kind, 'issuer-serial');
    if (sid.kind === 'issuer-serial') assert.equal(Buffer.from(sid.serial).toString('hex'), '0080112233');
    const v = verifyModsig({ pkcs7: p7, digest: H(content), algo: sha256 }, keyringOf(dir, 'h.pem'));
    assert.equal(v.status, 'pass', v.detail);
  } finally {
    cleanup();
  }
});
