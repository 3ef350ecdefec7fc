/**
 * `imakit tpm ek --verify-ca DIR` against swtpm's EK certificates and its private local CA (the
 * chain openssl verify accepts), an openssl-made CA with the same name (bad signature), a CA set
 * without the root (no issuer), a validity time past the certificates (expired);
 * `imakit tpm credential make` read by `imakit tpm activate` and by `tpm2_activatecredential`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, sharedTpm } from './tpm-cli-helpers.ts';

const { withTpm } = sharedTpm();

interface EkRow {
  kind: string;
  certificate: { bytes: number } | null;
  verification?: {
    status: string;
    keyMatches: boolean;
    chain: {
      status: string;
      code: string | null;
      detail: string;
      chain: { subject: string; notAfter: string }[];
    };
  };
}

const ekRows = (out: string): EkRow[] => (JSON.parse(out) as { eks: EkRow[] }).eks;

test("tpm ek --verify-ca: swtpm's EK certificates chain to its local CA (as openssl verify says); wrong CAs fail with the reason", async () => {
  await withTpm(async (t) => {
    const st = t.state!;
    const good = join(t.dir, 'cas');
    mkdirSync(good);
    copyFileSync(st.issuerCert, join(good, 'issuer.pem'));
    copyFileSync(st.rootCert, join(good, 'root.pem'));
    writeFileSync(join(good, 'README'), 'not a certificate\n');
    // the oracle: openssl verify accepts the RSA EK certificate under this CA pair
    const certs = join(t.dir, 'certs');
    mkdirSync(certs);
    assert.equal((await cli('tpm', 'ek', '--out', certs, '--tpm', t.selector)).status, 0);
    spawnSync('openssl', [
      'x509',
      '-inform',
      'DER',
      '-in',
      join(certs, 'ek-rsa.der'),
      '-out',
      join(certs, 'ek-rsa.pem'),
    ]);
    const ov = spawnSync('openssl', [
      'verify',
      '-CAfile',
      st.rootCert,
      '-untrusted',
      st.issuerCert,
      join(certs, 'ek-rsa.pem'),
    ]);
    assert.equal(ov.status, 0, String(ov.stderr));

    const ok = await cli('tpm', 'ek', '--verify-ca', good, '--tpm', t.selector, '--json');
    assert.equal(ok.status, 0, ok.err + ok.out);
    const rows = ekRows(ok.out).filter((r) => r.certificate !== null);
    assert.deepEqual(
      rows.map((r) => r.kind),
      ['rsa', 'ecc384'],
    );
    for (const r of rows) {
      assert.equal(r.verification?.status, 'pass', JSON.stringify(r.verification));
      assert.equal(r.verification?.keyMatches, true);
      assert.deepEqual(
        r.verification?.chain.chain.map((l) => l.subject),
        ['CN=unknown', 'CN=swtpm-localca', 'CN=swtpm-localca-rootca'],
      );
    }
    const text = await cli('tpm', 'ek', '--verify-ca', good, '--tpm', t.selector);
    assert.match(text.out, /chain: PASS/);
    assert.match(text.out, /the certificate's key is this TPM's EK/);

    // past the certificates' validity
    const notAfter = new Date(rows[0]!.verification!.chain.chain[0]!.notAfter);
    const late = new Date(notAfter.getTime() + 86400e3).toISOString();
    const exp = await cli('tpm', 'ek', '--verify-ca', good, '--at', late, '--tpm', t.selector, '--json');
    assert.equal(exp.status, 1);
    assert.equal(ekRows(exp.out)[0]!.verification?.chain.code, 'expired');

    // only the issuing CA, no root: nothing to anchor to
    const noRoot = join(t.dir, 'noroot');
    mkdirSync(noRoot);
    copyFileSync(st.issuerCert, join(noRoot, 'issuer.pem'));
    const nr = await cli('tpm', 'ek', '--verify-ca', noRoot, '--tpm', t.selector, '--json');
    assert.equal(nr.status, 1);
    assert.equal(ekRows(nr.out)[0]!.verification?.chain.code, 'no-issuer');
    assert.match(ekRows(nr.out)[0]!.verification!.chain.detail, /swtpm-localca-rootca/);

    // an openssl-made CA with swtpm's issuer name (and no key identifiers) but another key
    const fake = join(t.dir, 'fake');
    mkdirSync(fake);
    const o = (...a: string[]): void => {
      const r = spawnSync('openssl', a, { cwd: fake, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    o(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'k.key',
      '-subj',
      '/CN=swtpm-localca',
      '-days',
      '3',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'subjectKeyIdentifier=none',
      '-out',
      'fake.pem',
    );
    rmSync(join(fake, 'k.key'));
    const bad = await cli('tpm', 'ek', '--verify-ca', fake, '--tpm', t.selector, '--json');
    assert.equal(bad.status, 1, bad.err);
    const code = ekRows(bad.out)[0]!.verification?.chain.code;
    // the fake is self-signed with the issuer's name: a key-id mismatch leaves no issuer, else the signature fails
    assert.ok(code === 'bad-signature' || code === 'no-issuer', String(code));

    // misuse: a directory with no certificate file
    const empty = join(t.dir, 'empty');
    mkdirSync(empty);
    assert.equal((await cli('tpm', 'ek', '--verify-ca', empty, '--tpm', t.selector)).status, 2);
  });
});

test('tpm credential make (no TPM) → imakit tpm activate and tpm2_activatecredential release the secret', async () => {
  await withTpm(async (t) => {
    const d = t.dir;
    const ak = join(d, 'ak');
    assert.equal((await cli('tpm', 'ak', 'create', '--out', ak, '--tpm', t.selector)).status, 0);
    t.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', join(d, 'ek.pub')]);
    const secret = 'c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc';
    const mk = await cli(
      'tpm',
      'credential',
      'make',
      '--ek',
      join(d, 'ek.pub'),
      '--name-file',
      join(ak, 'ak.name'),
      '--secret',
      secret,
      '--out',
      join(d, 'cred.out'),
      '--json',
    );
    assert.equal(mk.status, 0, mk.err);
    const act = await cli(
      'tpm',
      'activate',
      '--ak',
      ak,
      '--credential',
      join(d, 'cred.out'),
      '--tpm',
      t.selector,
    );
    assert.equal(act.status, 0, act.err);
    assert.equal(act.out.trim(), secret);

    // tpm2-tools: an AK of its own under the persistent EK, the credential made by imakit for its name
    writeFileSync(join(d, 'secret2.bin'), Buffer.from('a secret for tpm2-tools, 48 bytes long.........'));
    t.tool('tpm2_createak', [
      '-C',
      '0x81010001',
      '-c',
      join(d, 'ak2.ctx'),
      '-G',
      'ecc',
      '-g',
      'sha256',
      '-s',
      'ecdsa',
      '-n',
      join(d, 'ak2.name'),
    ]);
    const mk2 = await cli(
      'tpm',
      'credential',
      'make',
      '--ek',
      join(d, 'ek.pub'),
      '--name',
      readFileSync(join(d, 'ak2.name')).toString('hex'),
      '--secret-file',
      join(d, 'secret2.bin'),
      '--out',
      join(d, 'cred2.out'),
    );
    assert.equal(mk2.status, 0, mk2.err);
    t.tool('tpm2_startauthsession', ['--policy-session', '-S', join(d, 's.ctx')]);
    t.tool('tpm2_policysecret', ['-S', join(d, 's.ctx'), '-c', 'e']);
    t.tool('tpm2_activatecredential', [
      '-c',
      join(d, 'ak2.ctx'),
      '-C',
      '0x81010001',
      '-i',
      join(d, 'cred2.out'),
      '-o',
      join(d, 'out2'),
      '-P',
      `session:${join(d, 's.ctx')}`,
    ]);
    assert.deepEqual(readFileSync(join(d, 'out2')), readFileSync(join(d, 'secret2.bin')));

    // misuse: both --name and --name-file; an oversized secret
    assert.equal(
      (
        await cli(
          'tpm',
          'credential',
          'make',
          '--ek',
          join(d, 'ek.pub'),
          '--name',
          '000b',
          '--name-file',
          join(ak, 'ak.name'),
          '--secret',
          '00',
          '--out',
          join(d, 'x'),
        )
      ).status,
      2,
    );
    assert.equal(
      (
        await cli(
          'tpm',
          'credential',
          'make',
          '--ek',
          join(d, 'ek.pub'),
          '--name-file',
          join(ak, 'ak.name'),
          '--secret',
          '00'.repeat(65),
          '--out',
          join(d, 'x'),
        )
      ).status,
      2,
    );
  });
});
