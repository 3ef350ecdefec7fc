/**
 * verifyEkCertChain over certificates made by openssl (root → intermediate → leaf, RSA and ECDSA),
 * each failure reason made by a real certificate: a missing root, a same-named CA with another key,
 * an intermediate without CA:TRUE, a root's pathlen:0, keyUsage without keyCertSign, validity
 * judged before and after the certificates' window; every passing chain is also accepted by
 * `openssl verify`, every failing one rejected by it (except where only the time differs).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCertificate, pemDecode, type Certificate } from '../../../../src/core/keys/x509.ts';
import { verifyEkCertChain } from '../../../../src/core/tpm/ek-cert-chain.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'imakit-chain-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function ossl(...args: string[]): string {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function key(name: string, kind: 'rsa' | 'ec'): string {
  if (kind === 'rsa')
    ossl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`);
  else ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  return `${name}.key`;
}

/** A certificate `name` for `subject`, signed by `issuer` (self-signed when absent), with extensions. */
function cert(
  name: string,
  subject: string,
  ext: string,
  issuer?: string,
  kind: 'rsa' | 'ec' = 'rsa',
): Certificate {
  key(name, kind);
  writeFileSync(join(dir, `${name}.ext`), `[v3]\n${ext}\n`);
  ossl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
  const signer = issuer
    ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial']
    : ['-key', `${name}.key`];
  ossl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-days',
    '30',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-extensions',
    'v3',
    '-out',
    `${name}.pem`,
  );
  return parseCertificate(pemDecode(readFileSync(join(dir, `${name}.pem`)))[0]!.der);
}

const CA =
  'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash';
const LEAF =
  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nauthorityKeyIdentifier=keyid';

function opensslAccepts(root: string, inter: string[], leaf: string): boolean {
  const untrusted = inter.length > 0 ? ['-untrusted', inter.map((i) => `${i}.pem`).join(' ')] : [];
  if (inter.length > 1) {
    writeFileSync(
      join(dir, 'untrusted.pem'),
      inter.map((i) => readFileSync(join(dir, `${i}.pem`), 'utf8')).join(''),
    );
    untrusted.splice(0, 2, '-untrusted', 'untrusted.pem');
  }
  return (
    spawnSync('openssl', ['verify', '-CAfile', `${root}.pem`, ...untrusted, `${leaf}.pem`], { cwd: dir })
      .status === 0
  );
}

test('root → intermediate → EK: passes (RSA and ECDSA links), chain named; openssl verify agrees', () => {
  const root = cert('root', '/CN=vendor root', CA);
  const inter = cert('inter', '/CN=vendor ek ca', `${CA}\nauthorityKeyIdentifier=keyid`, 'root', 'ec');
  const ek = cert('ek', '/CN=unknown', LEAF, 'inter');
  const v = verifyEkCertChain(ek, [inter, root], new Date());
  assert.equal(v.status, 'pass', v.detail);
  assert.deepEqual(
    v.chain.map((l) => l.subject),
    ['CN=unknown', 'CN=vendor ek ca', 'CN=vendor root'],
  );
  assert.ok(opensslAccepts('root', ['inter'], 'ek'));
  // validity is judged at the given time: before the window, after it
  const early = verifyEkCertChain(ek, [inter, root], new Date(ek.notBefore.getTime() - 86400e3));
  assert.equal(early.code, 'not-yet-valid');
  const late = verifyEkCertChain(ek, [inter, root], new Date(ek.notAfter.getTime() + 86400e3));
  assert.equal(late.code, 'expired');
  assert.match(late.detail, /CN=unknown: expired/);
  assert.throws(() => verifyEkCertChain(ek, [root], new Date('x')), TypeError);
});

test('failure reasons: no issuer, same-named CA with another key, issuer not a CA, pathlen, keyUsage', () => {
  const root = cert('r2', '/CN=vendor root 2', CA);
  const inter = cert('i2', '/CN=vendor ek ca 2', CA, 'r2');
  const ek = cert('ek2', '/CN=unknown', LEAF, 'i2');

  // only the intermediate: the root is missing (anchors are self-signed)
  const noRoot = verifyEkCertChain(ek, [inter], new Date());
  assert.equal(noRoot.code, 'no-issuer');
  assert.match(noRoot.detail, /CN=vendor root 2/);
  assert.equal(verifyEkCertChain(ek, [], new Date()).code, 'no-issuer');

  // a CA with the same name but another key (no key ids to tell them apart)
  const impostor = cert(
    'i2x',
    '/CN=vendor ek ca 2',
    'basicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=none',
    'r2',
  );
  const ek3 = cert(
    'ek3',
    '/CN=unknown',
    'basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=none',
    'i2',
  );
  const bad = verifyEkCertChain(ek3, [impostor, root], new Date());
  assert.equal(bad.code, 'bad-signature');
  assert.ok(!opensslAccepts('r2', ['i2x'], 'ek3'));
  // with the genuine one beside it, the right issuer is found
  assert.equal(verifyEkCertChain(ek3, [impostor, inter, root], new Date()).status, 'pass');

  // an intermediate without CA:TRUE
  const notCa = cert('i3', '/CN=not a ca', 'basicConstraints=critical,CA:FALSE', 'r2');
  const ek4 = cert('ek4', '/CN=unknown', LEAF, 'i3');
  assert.equal(verifyEkCertChain(ek4, [notCa, root], new Date()).code, 'issuer-not-ca');
  assert.ok(!opensslAccepts('r2', ['i3'], 'ek4'));

  // a root limited to pathlen:0 cannot have an intermediate CA below it
  const r0 = cert(
    'r0',
    '/CN=root pathlen 0',
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=keyCertSign',
  );
  const i0 = cert(
    'i0',
    '/CN=inter under pathlen 0',
    'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign',
    'r0',
  );
  const ek5 = cert('ek5', '/CN=unknown', LEAF, 'i0');
  const pl = verifyEkCertChain(ek5, [i0, r0], new Date());
  assert.equal(pl.code, 'path-length-exceeded');
  assert.ok(!opensslAccepts('r0', ['i0'], 'ek5'));

  // a CA whose keyUsage does not allow signing certificates
  const noSign = cert(
    'i4',
    '/CN=no certsign',
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature',
    'r2',
  );
  const ek6 = cert('ek6', '/CN=unknown', LEAF, 'i4');
  assert.equal(verifyEkCertChain(ek6, [noSign, root], new Date()).code, 'issuer-cannot-sign-certificates');
  assert.ok(!opensslAccepts('r2', ['i4'], 'ek6'));
});
