/**
 * Issue 6 on the real kernel (Debian 6.1 under QEMU, real-kernel.md §2.3, §5):
 *
 * - K1 (enforce): certificates made by `imakit keys ca|gen` (in-process CLI) are loaded into
 *   `_ima`; a file imakit signed with the RSA leaf's key is accepted under
 *   `appraise_type=imasig`, the same signature over changed content is refused
 *   (invalid-signature). The guest loads the certificates with keyctl (the guest has no node),
 *   using the same command line `src/host/keyctl.ts` (`imakit keys import`) runs on a host; the
 *   point is that the certificate BYTES come from imakit's builder, and KEY_CHECK shows the kernel
 *   measured exactly those bytes. ECDSA: a CA-signed EC leaf and a self-signed EC CA are offered
 *   too; what the kernel does with them is recorded as the truth (see EC_LEAF_LOAD below).
 * - K2 (evm=fix): the guest kernel creates the EVM key itself (`new default user:kmk 32`) and
 *   exports it (`keyctl pipe`); imakit decrypts the export with the master key (library and
 *   `imakit keys evmkey decrypt`) and with that key reproduces every security.evm HMAC the kernel
 *   wrote. (The other direction, an imakit blob loaded with `load`, is evm.test.ts f1.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runVm, DEFAULT_DATA_UUID, type VmResult, type VmSpec } from '../../src/host/vm/index.ts';
import { guestScript } from '../../src/host/vm/guest-script.ts';
import { main } from '../../src/cli/main.ts';
import { memoryIo } from '../../src/cli/io.ts';
import { isImakitError } from '../../src/errors.ts';
import { hash, hashAlgoByName } from '../../src/core/hash/hash-algo.ts';
import { loadPrivateKey, type PrivateKey } from '../../src/core/keys/keys.ts';
import { signImaDigest } from '../../src/core/labels/ima-signature.ts';
import { describeKey } from '../../src/core/keys/key-info.ts';
import { decryptEvmKeyBlob, parseEncryptedKeyPayload } from '../../src/core/evm/evm-key-blob.ts';
import {
  addCertificate,
  addEncryptedKey,
  addUserKey,
  type KeyctlRunner,
} from '../../src/host/keys/keyctl.ts';
import { decodeTemplateFields } from '../../src/core/ima-list/fields.ts';
import { lookupTemplate } from '../../src/core/ima-list/templates.ts';
import { measuredKeys } from '../../src/core/ima-list/list-signatures.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  byLabel,
  causeOf,
  libraryEntries,
  verifyListWithLibrary,
  kernelHmacOf,
  printBootTimes,
} from './helpers.ts';
import { Tree } from './labels.ts';
import { tempDir } from '../helpers.ts';

const U = DEFAULT_DATA_UUID;
const SHA256 = hashAlgoByName('sha256');
const LSM = 'lsm=landlock,lockdown,yama,integrity,apparmor'; // real-kernel.md §5.3 workaround

/** A key pair and certificate written by the imakit CLI. */
interface CliKey {
  readonly dir: string;
  readonly der: Uint8Array;
  readonly key: PrivateKey;
}

async function imakit(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

/** `imakit keys ca --alg ALG --out DIR` */
async function cliCa(root: string, name: string, alg: 'rsa' | 'ec'): Promise<CliKey> {
  const dir = join(root, name);
  await import('node:fs').then((fs) => fs.mkdirSync(dir));
  const r = await imakit('keys', 'ca', '--alg', alg, '--subject', `O=imakit,CN=${name}`, '--out', dir);
  assert.equal(r.status, 0, r.err);
  return {
    dir,
    der: new Uint8Array(readFileSync(join(dir, 'ca.der'))),
    key: loadPrivateKey(new Uint8Array(readFileSync(join(dir, 'ca.key.pem')))),
  };
}

/** `imakit keys gen --alg ALG --ca CA --out DIR` */
async function cliGen(root: string, name: string, alg: 'rsa' | 'ec', ca: CliKey): Promise<CliKey> {
  const dir = join(root, name);
  await import('node:fs').then((fs) => fs.mkdirSync(dir));
  const r = await imakit(
    'keys',
    'gen',
    '--alg',
    alg,
    '--ca',
    ca.dir,
    '--subject',
    `O=imakit,CN=${name}`,
    '--code-signing',
    '--out',
    dir,
  );
  assert.equal(r.status, 0, r.err);
  return {
    dir,
    der: new Uint8Array(readFileSync(join(dir, 'cert.der'))),
    key: loadPrivateKey(new Uint8Array(readFileSync(join(dir, 'key.pem')))),
  };
}

/** The keys.log line of a certificate: `ok <serial>` or `failed <keyctl message>`. */
function keyLog(r: VmResult, name: string): string {
  const log = readFileSync(join(r.outDir, 'keys.log'), 'utf8');
  const line = log.split('\n').find((l) => l.startsWith(`${name} `));
  return line?.slice(name.length + 1) ?? '(missing)';
}

describe('real kernel: keys made by imakit (issue 6)', { concurrency: 1 }, () => {
  const root = tempDir('imakit-kernel-keys-');
  const outs: { cleanup: () => void }[] = [root];
  let rsaCa: CliKey;
  let rsaLeaf: CliKey;
  let ecCa: CliKey;
  let ecLeaf: CliKey;
  before(async () => {
    rsaCa = await cliCa(root.dir, 'rsa-ca', 'rsa');
    rsaLeaf = await cliGen(root.dir, 'rsa-leaf', 'rsa', rsaCa);
    ecCa = await cliCa(root.dir, 'ec-ca', 'ec');
    ecLeaf = await cliGen(root.dir, 'ec-leaf', 'ec', ecCa);
  });
  after(() => {
    for (const o of outs) o.cleanup();
    printBootTimes();
  });
  const boot = async (spec: VmSpec): Promise<VmResult> => {
    const o = tempDir('imakit-kernel-out-');
    outs.push(o);
    return runVm(spec, { kernelDir: KERNEL_DIR, outDir: o.dir, timeoutMs: BOOT_TIMEOUT_MS });
  };

  test('the guest loads keys with the command lines imakit keys import runs on a host', () => {
    // src/host/keyctl.ts with a recording runner: the argv `imakit keys import` / `kmk` / `evmkey`
    // would pass to keyctl. The guest script must run the same commands.
    const calls: string[][] = [];
    const rec: KeyctlRunner = (args) => {
      calls.push([...args]);
      return { status: 0, stdout: new TextEncoder().encode('1\n'), stderr: '' };
    };
    addCertificate(rsaLeaf.der, '$IMA', { run: rec });
    addUserKey('kmk', new Uint8Array(32), '@u', { run: rec });
    addEncryptedKey('evm-key', 'new default user:kmk 32', '@u', { run: rec });
    assert.deepEqual(calls, [
      ['padd', 'asymmetric', '', '$IMA'],
      ['padd', 'user', 'kmk', '@u'],
      ['add', 'encrypted', 'evm-key', 'new default user:kmk 32', '@u'],
    ]);
    const script = guestScript(
      {},
      {
        imaCertCount: 1,
        evmCertCount: 0,
        imaV1KeyCount: 0,
        hasEvmKey: true,
        evmKeyMode: 'new',
        hasPolicy: false,
        hasData: false,
        modules: [],
      },
    );
    assert.ok(script.includes('keyctl padd asymmetric "" "$IMA" </extra/ima-cert-$i.der'));
    assert.ok(script.includes('keyctl padd user kmk @u </extra/kmk.bin'));
    assert.ok(script.includes('keyctl add encrypted evm-key "$EKCMD" @u'));
    assert.ok(script.includes('EKCMD="new $(cat /extra/evm-key.new)"'));
    const syntax = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
  });

  test('K1: an imakit certificate in _ima lets the kernel accept an imakit signature (enforce); ECDSA truth', async () => {
    const tree = new Tree();
    outs.push({ cleanup: () => tree.cleanup() });
    const sign = (rel: string, k: CliKey): Uint8Array => {
      const v = signImaDigest({
        key: k.key,
        algo: SHA256,
        digest: hash(SHA256, readFileSync(tree.path(rel))),
      });
      tree.xattr(rel, 'security.ima', v);
      return v;
    };
    tree.file('rsa-signed.txt', 'signed by the imakit RSA leaf\n');
    const rsaSig = sign('rsa-signed.txt', rsaLeaf);
    // the same signature after the content changed (changed on the host, label kept)
    tree.file('rsa-changed.txt', 'signed by the imakit RSA leaf\n');
    sign('rsa-changed.txt', rsaLeaf);
    writeFileSync(tree.path('rsa-changed.txt'), 'signed by the imakit RSA leaf, then edited\n');
    // and changed in the guest: a write open of a file with a valid signature
    tree.file('rsa-write.txt', 'signed, then written in the guest\n');
    sign('rsa-write.txt', rsaLeaf);
    tree.file('ec-leaf-signed.txt', 'signed by the CA-signed EC leaf\n');
    sign('ec-leaf-signed.txt', ecLeaf);
    tree.file('ec-ca-signed.txt', 'signed by the self-signed EC CA\n');
    sign('ec-ca-signed.txt', ecCa);
    tree.file('unsigned.txt', 'no label\n');
    const rd = (p: string, label = p) => ({ op: 'read' as const, path: p, label });
    const spec: VmSpec = {
      append: ['ima_appraise=enforce', 'ima_hash=sha256', 'ima_template=ima-sig'],
      // ima-cert-0: RSA leaf (keys gen), 1: EC leaf signed by the EC CA, 2: the self-signed EC CA
      imaCerts: [rsaLeaf.der, ecLeaf.der, ecCa.der],
      policy: [
        'measure func=KEY_CHECK keyrings=_ima template=ima-buf',
        `measure func=FILE_CHECK fsuuid=${U} template=ima-sig`,
        `appraise func=FILE_CHECK fsuuid=${U} appraise_type=imasig`,
      ].join('\n'),
      files: tree.dir,
      workload: [
        rd('rsa-signed.txt'),
        rd('rsa-changed.txt'),
        { op: 'write', path: 'rsa-write.txt', content: 'appended\n', label: 'rsa-write/write' },
        rd('rsa-write.txt', 'rsa-write/read'),
        rd('ec-leaf-signed.txt'),
        rd('ec-ca-signed.txt'),
        rd('unsigned.txt'),
      ],
      generations: false,
    };
    const r = await boot(spec);
    assert.equal(r.policyLoaded, true);
    const acc = byLabel(r);
    const verdict = (l: string): string => `${acc.get(l)?.outcome ?? '?'} ${causeOf(acc.get(l))}`.trim();

    // (a) imakit's RSA leaf certificate loads; its signature is accepted; changed content is refused
    assert.match(keyLog(r, 'ima-cert-0'), /^ok \d+$/, 'RSA leaf from imakit keys gen loads into _ima');
    assert.equal(verdict('rsa-signed.txt'), 'allowed');
    assert.equal(verdict('rsa-changed.txt'), 'denied appraise_data:invalid-signature');
    assert.equal(verdict('unsigned.txt'), 'denied appraise_data:IMA-signature-required');
    // a write open of a file whose signature the kernel appraised is refused (process_measurement:
    // MAY_WRITE on an IMA_DIGSIG inode gives -EACCES), so the content cannot change in the guest
    const w = acc.get('rsa-write/write');
    console.log(
      `# K1 write to a signed file in the guest: ${verdict('rsa-write/write')} (${w?.stderr}); then read: ${verdict('rsa-write/read')}`,
    );
    assert.equal(w?.outcome, 'denied', 'write open of a validly signed file');
    assert.match(w?.stderr ?? '', /Permission denied/);
    assert.equal(verdict('rsa-write/read'), 'allowed', 'content unchanged: still accepted');
    // the kernel measured exactly the certificate bytes imakit built (KEY_CHECK, ima-buf, _ima)
    const entries = libraryEntries(r.binaryList);
    const keys = measuredKeys(entries);
    const imaKeys = keys.filter((k) => k.keyring === '_ima');
    const bufOf = (index: number): string => {
      const e = entries[index]!;
      const f = decodeTemplateFields(lookupTemplate(e.templateName)!, e.templateData, 'le');
      return Buffer.from(f.find((x) => x.id === 'buf')!.data).toString('hex');
    };
    assert.ok(
      imaKeys.some((k) => bufOf(k.index) === Buffer.from(rsaLeaf.der).toString('hex')),
      'an ima-buf _ima entry carries the DER of the imakit RSA leaf',
    );
    // the list's sig field of the accepted file is the signature imakit wrote, and it verifies
    // against the key the list itself measured
    const sigEntry = entries.find((e) => {
      const tpl = lookupTemplate(e.templateName);
      if (tpl?.fields.includes('sig') !== true) return false;
      const f = decodeTemplateFields(tpl, e.templateData, 'le');
      const n = f.find((x) => x.id === 'n-ng');
      return n !== undefined && 'text' in n && n.text === '/data/rsa-signed.txt';
    });
    assert.ok(sigEntry, 'rsa-signed.txt measured');
    const sf = decodeTemplateFields(lookupTemplate(sigEntry.templateName)!, sigEntry.templateData, 'le');
    assert.equal(
      Buffer.from(sf.find((x) => x.id === 'sig')!.data).toString('hex'),
      Buffer.from(rsaSig).toString('hex'),
    );

    // (d) ECDSA on Debian 6.1 (CONFIG_CRYPTO_ECDSA not set): the kernel's verdict is the truth
    const ecLeafLog = keyLog(r, 'ima-cert-1');
    const ecCaLog = keyLog(r, 'ima-cert-2');
    const ecLeafMeasured = imaKeys.some((k) => bufOf(k.index) === Buffer.from(ecLeaf.der).toString('hex'));
    const ecLeafRaw = entries.some(
      (e) => e.templateName === 'ima-buf' && Buffer.from(e.templateData).includes(Buffer.from(ecLeaf.der)),
    );
    console.log(
      `# K1 ECDSA on ${r.info.kernelPackage}: CA-signed EC leaf: ${ecLeafLog} (measured: ${ecLeafRaw}); ` +
        `self-signed EC CA: ${ecCaLog}; EC-leaf-signed file: ${verdict('ec-leaf-signed.txt')}; ` +
        `EC-CA-signed file: ${verdict('ec-ca-signed.txt')}`,
    );
    assert.equal(ecLeafMeasured, ecLeafRaw);
    assert.match(ecLeafLog, EC_LEAF_LOAD, 'CA-signed EC leaf: load verdict of the 6.1 kernel');
    assert.match(ecCaLog, EC_CA_LOAD, 'self-signed EC CA: load verdict of the 6.1 kernel');
    assert.equal(verdict('ec-leaf-signed.txt'), 'denied appraise_data:invalid-signature');
    assert.equal(verdict('ec-ca-signed.txt'), 'denied appraise_data:invalid-signature');
    // imakit keys info (debian-6.1 profile) predicts that ECDSA keys cannot be used for IMA there
    assert.equal(describeKey(ecLeaf.der, { profile: 'debian-6.1' }).ima.accepted, false);
    assert.equal(describeKey(rsaLeaf.der, { profile: 'debian-6.1' }).ima.accepted, true);

    const v = await verifyListWithLibrary(r, ['sha1', 'sha256']);
    assert.equal(v.status, 'pass', v.detail);
    BOOT_TIMES.push({
      scenario: 'K1 keys/enforce',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts:
        'imakit keys-gen RSA cert in _ima: imakit signature accepted, changed content invalid-signature; KEY_CHECK buf = imakit DER; ECDSA leaf/CA verdicts; replay',
    });
  });

  test('K2: a key the guest kernel creates and exports is decrypted by imakit; its HMACs match', async () => {
    const tree = new Tree();
    outs.push({ cleanup: () => tree.cleanup() });
    tree.file('none.txt', 'no xattrs\n');
    tree.file('ima-only.txt', 'only security.ima\n');
    tree.hashLabel('ima-only.txt');
    tree.file('user.txt', 'owned by 1000\n', { uid: 1000 });
    const kmk = new Uint8Array(randomBytes(32));
    const spec: VmSpec = {
      append: [LSM, 'ima_appraise=fix', 'evm=fix', 'ima_hash=sha256', 'ima_template=ima-sig'],
      policy: [
        `measure func=FILE_CHECK fsuuid=${U} template=evm-sig`,
        `appraise func=FILE_CHECK fsuuid=${U}`,
      ].join('\n'),
      evmKey: { generateInGuest: true, kmk },
      files: tree.dir,
      workload: [
        { op: 'read', path: 'none.txt', label: 'none' },
        { op: 'read', path: 'ima-only.txt', label: 'ima-only' },
        { op: 'read', path: 'user.txt', label: 'user' },
        { op: 'create', path: 'new.txt', content: 'created in the guest\n', label: 'create' },
        { op: 'chmod', path: 'none.txt', mode: '0640', label: 'chmod' },
      ],
    };
    const r = await boot(spec);
    assert.equal(r.policyLoaded, true);
    assert.match(keyLog(r, 'evm-key'), /^ok \d+$/, 'the guest kernel created evm-key');
    assert.match(r.dmesg, /evm: key initialized/);
    for (const a of r.accesses) assert.equal(a.outcome, 'allowed', `${a.label}: ${a.stderr}`);
    assert.ok(r.evmKeyExported !== null, 'keyctl pipe exported the key');
    const p = parseEncryptedKeyPayload(r.evmKeyExported);
    assert.equal(p.format, 'default');
    assert.equal(p.masterDesc, 'user:kmk');
    assert.equal(p.decryptedLen, 32);
    const key = decryptEvmKeyBlob(r.evmKeyExported, kmk);
    assert.equal(key.length, 32);
    // the MAC is checked first: another master key never yields bytes
    assert.throws(
      () => decryptEvmKeyBlob(r.evmKeyExported!, new Uint8Array(randomBytes(32))),
      (e: unknown) => isImakitError(e, 'E_EVMKEY_MAC'),
    );
    // the CLI gives the same key
    const blobFile = join(root.dir, 'evm-key.exported');
    const kmkFile = join(root.dir, 'kmk.bin');
    const plainFile = join(root.dir, 'evm-key.plain');
    writeFileSync(blobFile, r.evmKeyExported);
    writeFileSync(kmkFile, kmk, { mode: 0o600 });
    const c = await imakit('keys', 'evmkey', 'decrypt', blobFile, '--kmk', kmkFile, '--out', plainFile);
    assert.equal(c.status, 0, c.err);
    assert.deepEqual(new Uint8Array(readFileSync(plainFile)), key);

    const hmacFiles = r.files.filter((f) => f.xattrs['security.evm']?.startsWith('02'));
    assert.deepEqual(hmacFiles.map((f) => f.path).sort(), [
      'ima-only.txt',
      'new.txt',
      'none.txt',
      'user.txt',
    ]);
    for (const f of hmacFiles)
      assert.equal(f.xattrs['security.evm'], kernelHmacOf(key, f), `${f.path}: HMAC with the decrypted key`);
    BOOT_TIMES.push({
      scenario: 'K2 guest-made evm-key',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts: `kernel-made evm-key exported, decrypted by imakit (lib + CLI); ${hmacFiles.length} kernel HMACs = imakit evmHmac with it`,
    });
  });
});

/**
 * What Debian 6.1 (no CONFIG_CRYPTO_ECDSA) does with EC certificates in `keyctl padd asymmetric`,
 * as observed in K1 (the kernel's verdict is the truth): a CA-signed EC leaf LOADS (x509 parsing
 * needs no ECDSA; only a self-signed certificate has its signature checked at add time, which
 * needs the missing akcipher: ENOENT) and KEY_CHECK measures it, but every ECDSA signature is
 * still refused with invalid-signature. So real-kernel.md §2.3 "ECDSA certs cannot be loaded"
 * holds only for self-signed ones.
 */
const EC_LEAF_LOAD = /^ok \d+$/;
const EC_CA_LOAD = /^failed .*No such file or directory/;
