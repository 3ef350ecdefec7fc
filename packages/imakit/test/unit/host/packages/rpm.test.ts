/**
 * RPM headers (issue 12 part 3) against Debian's rpm: packages built here with rpmbuild are parsed by
 * imakit and every path and digest is checked against `rpm -qp --qf '[%{FILENAMES} %{FILEDIGESTS}\n]'`;
 * both headers re-encode byte for byte; per-file IMA signatures (made with evmctl) are added as tag
 * 274 with imakit's header writer, read back by `rpm -qp --qf '[%{FILESIGNATURES}\n]'` exactly, and
 * verify with `evmctl ima_verify`; an rpmdb.sqlite made with `rpm --initdb` + `rpm -i --justdb`
 * yields the same files and signatures (tag 5090).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeRpmHeader,
  RPM_LEAD_SIZE,
  signaturePadding,
} from '../../../../src/core/packages/rpm-header.ts';
import { readRpm, readRpmHeaders, readRpmdb } from '../../../../src/host/packages/rpm.ts';
import type { PackageFileRecord } from '../../../../src/host/packages/file-record.ts';
import { ImakitError } from '../../../../src/errors.ts';
import { tempDir, vectorPath } from '../../../helpers.ts';
import { buildRpm as buildRpmWith, signRpm } from './rpm-helpers.ts';

const { dir, cleanup } = tempDir('imakit-rpm-');
process.on('exit', cleanup);

const FILES: Record<string, string> = {
  '/usr/bin/hello': '#!/bin/sh\necho hello\n',
  '/usr/lib/imakit-test/data.bin': 'x'.repeat(100_000),
  '/etc/imakit-test/conf': 'key=value\n',
};

/** The test package: version 1.2-3, a symlink, a directory entry and a %config file. */
function buildRpm(name: string, defines: string[] = []): string {
  return buildRpmWith(dir, name, FILES, {
    version: '1.2',
    release: '3',
    install: ['ln -s hello %{buildroot}/usr/bin/hello-link'],
    fileList: [
      '/usr/bin/hello',
      '/usr/bin/hello-link',
      '/usr/lib/imakit-test',
      '%config /etc/imakit-test/conf',
    ],
    defines,
  });
}

function rpmQuery(args: string[]): string[] {
  return execFileSync('rpm', args, { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '');
}

async function records(gen: AsyncGenerator<PackageFileRecord>): Promise<PackageFileRecord[]> {
  const out: PackageFileRecord[] = [];
  for await (const r of gen) out.push(r);
  return out;
}

function checkDigests(recs: PackageFileRecord[], lines: string[], algo: string): void {
  const want = lines.map((l) => l.split(' ')).filter(([, d]) => d !== undefined && d !== '');
  assert.equal(recs.length, want.length, 'one record per file with a digest');
  const got = new Map(recs.map((r) => [r.path, r.digests[algo]]));
  for (const [p, d] of want) assert.equal(got.get(p!), d, p);
}

const sha256Rpm = buildRpm('imakit-test');

test('paths and SHA-256 digests equal rpm -qp FILENAMES FILEDIGESTS', async () => {
  const recs = await records(readRpm(sha256Rpm));
  checkDigests(recs, rpmQuery(['-qp', '--qf', '[%{FILENAMES} %{FILEDIGESTS}\n]', sha256Rpm]), 'sha256');
  assert.deepEqual(recs.map((r) => r.path).sort(), Object.keys(FILES).sort());
  assert.equal(recs[0]!.provenance.kind, 'rpm');
  assert.equal(recs[0]!.provenance.name, 'imakit-test');
  assert.equal(recs[0]!.provenance.version, '1.2-3');
});

test('an MD5 package (FILEDIGESTALGO 1) reports md5 digests', async () => {
  const p = buildRpm('imakit-md5', ['--define', '_binary_filedigest_algorithm 1']);
  const recs = await records(readRpm(p));
  checkDigests(recs, rpmQuery(['-qp', '--qf', '[%{FILENAMES} %{FILEDIGESTS}\n]', p]), 'md5');
});

test('both headers re-encode byte for byte', async () => {
  const bytes = readFileSync(sha256Rpm);
  const h = await readRpmHeaders(sha256Rpm);
  const sig = encodeRpmHeader(h.sig.entries, { magic: true, regionTag: 62 });
  assert.deepEqual(Buffer.from(sig), bytes.subarray(RPM_LEAD_SIZE, RPM_LEAD_SIZE + h.sig.size));
  const mainAt = RPM_LEAD_SIZE + h.sig.size + signaturePadding(h.sig.size);
  const main = encodeRpmHeader(h.main.entries, { magic: true, regionTag: 63 });
  assert.deepEqual(Buffer.from(main), bytes.subarray(mainAt, h.payloadOffset));
});

/** Sign the package's files with evmctl, put the signatures in tag 274, write the new package. */
async function signedRpm(): Promise<{ path: string; sigs: Map<string, string>; cert: string }> {
  const cert = join(dir, 'cert.der');
  execFileSync('openssl', [
    'req',
    '-new',
    '-x509',
    '-key',
    vectorPath('rsa2048_skid.key'),
    '-subj',
    '/CN=imakit rpm test',
    '-outform',
    'DER',
    '-out',
    cert,
  ]);
  const signed = await signRpm(dir, sha256Rpm, FILES, vectorPath('rsa2048_skid.key'));
  return { ...signed, cert };
}

test('tag 274 written by imakit: rpm reads back FILESIGNATURES exactly, imakit keeps them, evmctl verifies them', async () => {
  const { path, sigs, cert } = await signedRpm();
  const lines = rpmQuery(['-qp', '--qf', '[%{FILENAMES} %{FILESIGNATURES}\n]', path]);
  for (const l of lines) {
    const [p, s] = l.split(' ');
    assert.equal(s ?? '', sigs.get(p!) ?? '', p);
  }
  const recs = await records(readRpm(path));
  assert.equal(recs.length, sigs.size);
  for (const r of recs) {
    assert.equal(Buffer.from(r.imaSignature!).toString('hex'), sigs.get(r.path), r.path);
    // the kept signature, written beside the file, verifies with evmctl
    const f = join(dir, 'verify', r.path);
    mkdirSync(join(f, '..'), { recursive: true });
    writeFileSync(f, FILES[r.path]!);
    writeFileSync(`${f}.sig`, r.imaSignature!);
    execFileSync('evmctl', ['ima_verify', '--sigfile', '--key', cert, f], { stdio: 'ignore' });
  }
});

test('rpmdb.sqlite (rpm --initdb, rpm -i --justdb): files, digests and signatures (tag 5090)', async () => {
  assert.equal(execFileSync('rpm', ['--eval', '%_db_backend'], { encoding: 'utf8' }).trim(), 'sqlite');
  const { path, sigs } = await signedRpm();
  const db = join(dir, 'db');
  mkdirSync(db);
  execFileSync('rpm', ['--dbpath', db, '--initdb']);
  execFileSync(
    'rpm',
    ['--dbpath', db, '-i', '--nodeps', '--justdb', '--noscripts', path, buildRpm('imakit-other')],
    { stdio: 'ignore' },
  );
  const recs = await records(readRpmdb(join(db, 'rpmdb.sqlite')));
  const lines = rpmQuery(['--dbpath', db, '-qa', '--qf', '[%{FILENAMES} %{FILEDIGESTS}\n]']);
  checkDigests(recs, lines, 'sha256');
  const signed = recs.filter((r) => r.provenance.name === 'imakit-test');
  assert.equal(signed.length, sigs.size);
  for (const r of signed) assert.equal(Buffer.from(r.imaSignature!).toString('hex'), sigs.get(r.path));
  assert.ok(
    recs.filter((r) => r.provenance.name === 'imakit-other').every((r) => r.imaSignature === undefined),
  );
});

test('corrupt packages: typed errors naming the header and tag', async () => {
  const bytes = Buffer.from(readFileSync(sha256Rpm));
  const cut = join(dir, 'cut.rpm');
  writeFileSync(cut, bytes.subarray(0, 400));
  await assert.rejects(
    records(readRpm(cut)),
    (e: unknown) =>
      e instanceof ImakitError && e.code === 'E_CODEC_TRUNCATED' && /header/.test(String(e.context.member)),
  );
  const huge = Buffer.from(bytes);
  huge.writeUInt32BE(0x7fffffff, RPM_LEAD_SIZE + 12); // signature header dl
  const hp = join(dir, 'huge.rpm');
  writeFileSync(hp, huge);
  await assert.rejects(
    records(readRpm(hp)),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_PKG_TOO_LARGE',
  );
  const badOff = Buffer.from(bytes);
  badOff.writeInt32BE(0x7ffffff0, RPM_LEAD_SIZE + 16 + 16 + 8); // second index entry's offset
  const bp = join(dir, 'badoff.rpm');
  writeFileSync(bp, badOff);
  await assert.rejects(
    records(readRpm(bp)),
    (e: unknown) =>
      e instanceof ImakitError && e.code === 'E_PKG_FORMAT' && /^tag \d+$/.test(String(e.context.field)),
  );
  const notRpm = join(dir, 'not.rpm');
  writeFileSync(notRpm, Buffer.alloc(200));
  await assert.rejects(
    records(readRpm(notRpm)),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_PKG_FORMAT',
  );
});
