/**
 * `imakit tpm …` against swtpm, in-process: the files `ak create` and `quote` write are checked
 * by tpm2_checkquote and by `imakit quote verify`; `pcrread` against tpm2_pcrread; `ek --out`
 * against tpm2_nvread; `activate` with a tpm2_makecredential credential; exit codes for a TPM
 * that cannot be reached and bad flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, sharedTpm } from './tpm-cli-helpers.ts';

const { withTpm } = sharedTpm();

test('tpm info and pcrread (--json) agree with the TPM and tpm2_pcrread', async () => {
  await withTpm(async (t) => {
    const i = await cli('tpm', 'info', '--tpm', t.selector, '--json');
    assert.equal(i.status, 0, i.err);
    const info = JSON.parse(i.out) as { manufacturer: string; pcrBanks: { bank: string }[] };
    assert.equal(info.manufacturer, 'IBM');
    assert.deepEqual(
      info.pcrBanks.map((b) => b.bank),
      ['sha1', 'sha256', 'sha384'],
    );
    t.tool('tpm2_pcrextend', [`23:sha384=${'5a'.repeat(48)}`]);
    const r = await cli('tpm', 'pcrread', 'sha384:23', '--tpm', t.selector);
    assert.equal(r.status, 0, r.err);
    const theirs = /23\s*:\s*0x([0-9A-F]+)/.exec(t.tool('tpm2_pcrread', ['sha384:23']))![1]!.toLowerCase();
    assert.equal(r.out, `sha384:23 ${theirs}\n`);
    const all = await cli('tpm', 'pcrread', '--tpm', t.selector);
    assert.equal(all.out.trim().split('\n').length, 72);
  });
});

for (const kind of ['rsassa', 'ecdsa'] as const) {
  test(`tpm ak create + tpm quote (${kind}): tpm2_checkquote and imakit quote verify accept the files`, async () => {
    await withTpm(async (t) => {
      const ak = join(t.dir, 'ak');
      const q = join(t.dir, 'q');
      const c = await cli('tpm', 'ak', 'create', '--out', ak, '--kind', kind, '--tpm', t.selector, '--json');
      assert.equal(c.status, 0, c.err);
      assert.equal(
        readFileSync(join(ak, 'ak.name'), 'utf8').trim(),
        (JSON.parse(c.out) as { name: string }).name,
      );
      t.tool('tpm2_pcrextend', [`10:sha256=${'cd'.repeat(32)}`]);
      const nonce = '0011223344556677';
      const r = await cli(
        'tpm',
        'quote',
        '--ak',
        ak,
        '--nonce',
        nonce,
        '--pcrs',
        'sha256:0-10',
        '--out',
        q,
        '--tpm',
        t.selector,
      );
      assert.equal(r.status, 0, r.err);
      // nothing left loaded in a TPM without a resource manager
      assert.equal(t.tool('tpm2_getcap', ['handles-transient']).trim(), '');
      t.tool('tpm2_pcrread', [
        '-F',
        'serialized',
        '-o',
        join(q, 'pcrs.bin'),
        'sha256:0,1,2,3,4,5,6,7,8,9,10',
      ]);
      for (const akFile of ['ak.pem', 'ak.pub'])
        t.tool('tpm2_checkquote', [
          '-u',
          join(ak, akFile),
          '-m',
          join(q, 'quote.attest'),
          '-s',
          join(q, 'quote.sig'),
          '-f',
          join(q, 'pcrs.bin'),
          '-g',
          'sha256',
          '-q',
          nonce,
        ]);
      const v = await cli(
        'quote',
        'verify',
        '--attest',
        join(q, 'quote.attest'),
        '--signature',
        join(q, 'quote.sig'),
        '--ak',
        join(ak, 'ak.pub'),
        '--nonce',
        nonce,
        '--pcrs',
        join(q, 'pcrs.txt'),
        '--require',
        'sha256:0-10',
      );
      assert.equal(v.status, 0, v.out + v.err);
      const wrong = await cli(
        'quote',
        'verify',
        '--attest',
        join(q, 'quote.attest'),
        '--signature',
        join(q, 'quote.sig'),
        '--ak',
        join(ak, 'ak.pub'),
        '--nonce',
        '00',
        '--pcrs',
        join(q, 'pcrs.txt'),
      );
      assert.equal(wrong.status, 1);
    });
  });
}

test('tpm ek --out writes certificates byte-identical to tpm2_nvread', async () => {
  await withTpm(async (t) => {
    const r = await cli('tpm', 'ek', '--out', t.dir, '--tpm', t.selector, '--json');
    assert.equal(r.status, 0, r.err);
    const eks = (JSON.parse(r.out) as { eks: { kind: string; certificate: unknown }[] }).eks;
    assert.deepEqual(
      eks.map((e) => [e.kind, e.certificate !== null]),
      [
        ['rsa', true],
        ['ecc', false],
        ['ecc384', true],
      ],
    );
    t.tool('tpm2_nvread', ['0x01c00002', '-C', 'o', '-o', join(t.dir, 'nv.der')]);
    assert.deepEqual(readFileSync(join(t.dir, 'ek-rsa.der')), readFileSync(join(t.dir, 'nv.der')));
  });
});

test('tpm activate: a tpm2_makecredential credential for the AK releases its secret', async () => {
  await withTpm(async (t) => {
    const ak = join(t.dir, 'ak');
    assert.equal((await cli('tpm', 'ak', 'create', '--out', ak, '--tpm', t.selector)).status, 0);
    t.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', join(t.dir, 'ek.pub')]);
    writeFileSync(join(t.dir, 'secret'), 'sixteen byte key');
    const name = readFileSync(join(ak, 'ak.name'), 'utf8').trim();
    t.tool('tpm2_makecredential', [
      '-T',
      'none',
      '-u',
      join(t.dir, 'ek.pub'),
      '-s',
      join(t.dir, 'secret'),
      '-n',
      name,
      '-o',
      join(t.dir, 'cred'),
    ]);
    const r = await cli(
      'tpm',
      'activate',
      '--ak',
      ak,
      '--credential',
      join(t.dir, 'cred'),
      '--tpm',
      t.selector,
      '--json',
    );
    assert.equal(r.status, 0, r.err);
    assert.equal(
      (JSON.parse(r.out) as { secret: string }).secret,
      Buffer.from('sixteen byte key').toString('hex'),
    );
  });
});

test('exit codes: unreachable TPM is 5 with E_TPM_TRANSPORT, a bad selector or nonce is 2', async () => {
  const r = await cli('tpm', 'info', '--tpm', 'unix:/nonexistent/tpm.sock', '--json');
  assert.equal(r.status, 5);
  assert.match(r.out + r.err, /E_TPM_TRANSPORT/);
  assert.equal((await cli('tpm', 'info', '--tpm', 'tpm0')).status, 2);
  await withTpm(async (t) => {
    const ak = join(t.dir, 'ak');
    assert.equal((await cli('tpm', 'ak', 'create', '--out', ak, '--tpm', t.selector)).status, 0);
    const bad = await cli(
      'tpm',
      'quote',
      '--ak',
      ak,
      '--nonce',
      'xyz',
      '--pcrs',
      'sha256:0',
      '--out',
      t.dir,
      '--tpm',
      t.selector,
    );
    assert.equal(bad.status, 2);
  });
});
