/**
 * Package references end to end (issue 12): real Debian packages from `apt-get download` (coreutils,
 * bash, perl-base with its hard links, and zstd repacked by dpkg-deb with a data.tar.zst because no
 * Debian 12 package we use ships one) become a reference set with `imakit refs from-deb`; the same
 * packages are installed into a scratch root with `dpkg -x` and labelled with `imakit label`; a
 * measurement list built from the labels (ima-ng, the paths as the target sees them, without the
 * scratch root) passes `imakit log verify --refs`, and after one file changes (and is relabelled)
 * the list fails naming that entry. An RPM with per-file IMA signatures (tag 274, made by evmctl):
 * an ima-sig entry whose digest is not in the set is allowed by its signature under the signing
 * key, refused without the key, and refused when the signature does not match the digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import type { UntrustedEntry } from '../../../../src/core/ima-list/binary.ts';
import { renderPcrJson } from '../../../../src/core/tcg/pcr-values.ts';
import { tempDir, vectorPath } from '../../../helpers.ts';
import { encode, imaNgData, nodeHash, oraclePcrs } from '../../core/ima-list/build-list.ts';
import { cachedDebs } from './deb-helpers.ts';
import { buildRpm, signRpm } from './rpm-helpers.ts';

const { dir, cleanup } = tempDir('imakit-e2e-');
process.on('exit', cleanup);

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

function entry(
  i: number,
  template: 'ima-ng' | 'ima-sig',
  digest: Uint8Array,
  path: string,
  sig?: Uint8Array,
): UntrustedEntry {
  const data = imaNgData('sha256', digest, path, template === 'ima-sig' ? [sig ?? new Uint8Array(0)] : []);
  return {
    index: i,
    offset: 0,
    pcr: 10,
    digest: nodeHash('sha1', data),
    templateName: template,
    templateData: data,
  };
}

/** Write the list and its PCR values (node:crypto replay); returns the list's path. */
function writeList(name: string, entries: UntrustedEntry[]): { list: string; pcrs: string } {
  const list = join(dir, `${name}.bin`);
  const pcrs = join(dir, `${name}.pcrs.json`);
  writeFileSync(list, encode(entries));
  writeFileSync(pcrs, JSON.stringify(renderPcrJson(oraclePcrs(entries, ['sha256']))));
  return { list, pcrs };
}

/**
 * security.ima of every labelled file under root (getfattr), keyed by the path on the target. `-h`:
 * a symlink has no label of its own (the kernel measures the file it resolves to, under that path).
 */
function labels(root: string): Map<string, Buffer> {
  const text = execFileSync(
    'getfattr',
    ['-R', '-P', '-h', '--absolute-names', '-d', '-m', '^security\\.ima$', '-e', 'hex', root],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  const out = new Map<string, Buffer>();
  let file = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8).slice(root.length);
    else if (line.startsWith('security.ima=0x')) out.set(file, Buffer.from(line.slice(15), 'hex'));
  }
  return out;
}

interface VerifyJson {
  refs: {
    summary: { refused: number; allowed: number };
    verdicts: { index: number; path: string; reason: string; status: string }[];
  };
}

test('Debian packages: refs from-deb, dpkg -x + imakit label, a list from the labels passes; a changed file fails naming its entry', async () => {
  const debs = cachedDebs(['coreutils', 'bash', 'perl-base', 'zstd']);
  // data.tar.zst: repack zstd's package with dpkg-deb -Zzstd
  const unpacked = join(dir, 'zstd-unpacked');
  execFileSync('dpkg-deb', ['-R', debs.get('zstd')!, unpacked]);
  const zst = join(dir, 'zstd-zst.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zzstd', '-b', unpacked, zst], { stdio: 'ignore' });
  assert.match(execFileSync('ar', ['t', zst], { encoding: 'utf8' }), /data\.tar\.zst/);
  const inputs = [debs.get('coreutils')!, debs.get('bash')!, debs.get('perl-base')!, zst];
  const set = join(dir, 'debs.imr');
  const g = await cli('refs', 'from-deb', ...inputs, '--out', set, '--json');
  assert.equal(g.status, 0, g.err);
  assert.equal((JSON.parse(g.out) as { inputs: number }).inputs, 4);

  const root = join(dir, 'root');
  for (const d of inputs) execFileSync('dpkg', ['-x', d, root]);
  // perl-base ships /usr/bin/perl and /usr/bin/perl5.36.0 as one file: dpkg -x makes a hard link
  const ino = (p: string) => execFileSync('stat', ['-c', '%i', join(root, p)], { encoding: 'utf8' });
  assert.equal(ino('usr/bin/perl'), ino('usr/bin/perl5.36.0'));
  const l = await cli('label', root);
  assert.equal(l.status, 0, l.err);
  const lab = labels(root);
  assert.ok(lab.size > 300, `${lab.size} labelled files`);
  const entries: UntrustedEntry[] = [];
  for (const [path, v] of [...lab].sort(([a], [b]) => (a < b ? -1 : 1))) {
    // ima-ng hash label: type 4, hash algo 4 (sha256), the digest; equal to sha256 of the file
    assert.deepEqual([v[0], v[1]], [4, 4], path);
    const digest = v.subarray(2);
    assert.ok(digest.equals(sha256(readFileSync(join(root, path)))), path);
    entries.push(entry(entries.length, 'ima-ng', digest, path));
  }
  assert.ok(entries.some((e) => Buffer.from(e.templateData).includes('/usr/bin/perl5.36.0\0')));
  assert.ok(entries.some((e) => Buffer.from(e.templateData).includes('/usr/bin/zstd\0')));
  const good = writeList('debs-good', entries);
  const ok = await cli('log', 'verify', good.list, '--refs', set, '--pcrs-json', good.pcrs, '--json');
  const okJson0 = JSON.parse(ok.out) as VerifyJson;
  assert.equal(
    ok.status,
    0,
    JSON.stringify(okJson0.refs.verdicts.filter((v) => v.status === 'refused').slice(0, 5)) + ok.err,
  );
  const okJson = JSON.parse(ok.out) as VerifyJson;
  assert.equal(okJson.refs.summary.refused, 0);
  assert.equal(okJson.refs.summary.allowed, entries.length);

  // one file changes after installation; imakit label writes its new hash, the kernel would measure that
  appendFileSync(join(root, 'bin/ls'), 'x');
  assert.equal((await cli('label', join(root, 'bin/ls'))).status, 0);
  const changed = labels(root).get('/bin/ls')!.subarray(2);
  const bad = entries.map((e) =>
    Buffer.from(e.templateData).includes('\0/bin/ls\0') ||
    Buffer.from(e.templateData).toString('latin1').endsWith('/bin/ls\0')
      ? entry(e.index, 'ima-ng', changed, '/bin/ls')
      : e,
  );
  const lsIndex = bad.findIndex((e, i) => e !== entries[i]);
  assert.ok(lsIndex >= 0);
  const badList = writeList('debs-bad', bad);
  const r = await cli('log', 'verify', badList.list, '--refs', set, '--pcrs-json', badList.pcrs, '--json');
  assert.equal(r.status, 1, r.err);
  const refused = (JSON.parse(r.out) as VerifyJson).refs.verdicts.filter((v) => v.status === 'refused');
  assert.deepEqual(
    refused.map((v) => `${v.index} ${v.path} ${v.reason}`),
    [`${lsIndex} /bin/ls digest-not-allowed`],
  );
  const text = await cli('log', 'verify', badList.list, '--refs', set, '--pcrs-json', badList.pcrs);
  assert.equal(text.status, 1);
  assert.match(text.out + text.err, new RegExp(`entry ${lsIndex} \\[digest-not-allowed\\] /bin/ls`));
});

test('RPM with per-file IMA signatures (tag 274): a digest not in the set is allowed by a signature that verifies under the signing key', async () => {
  const files = { '/usr/bin/hello': '#!/bin/sh\necho hello\n', '/usr/lib/t/data': 'data\n' };
  const key = vectorPath('rsa2048_skid.key');
  const { path: rpm, sigs } = await signRpm(dir, buildRpm(dir, 'e2esig', files), files, key);
  const set = join(dir, 'rpm.imr');
  const g = await cli('refs', 'from-rpm', rpm, '--out', set, '--json');
  assert.equal(g.status, 0, g.err);
  assert.equal((JSON.parse(g.out) as { signatures: number }).signatures, 2);
  const cert = join(dir, 'signer.der');
  execFileSync('openssl', [
    'req',
    '-new',
    '-x509',
    '-key',
    key,
    '-subj',
    '/CN=imakit e2e',
    '-outform',
    'DER',
    '-out',
    cert,
  ]);
  // a newer build of /usr/bin/hello signed by the same key: its digest is in no package set
  const newer = join(dir, 'newer', 'hello');
  mkdirSync(join(newer, '..'), { recursive: true });
  writeFileSync(newer, '#!/bin/sh\necho hello, again\n');
  execFileSync('evmctl', ['ima_sign', '--sigfile', '-a', 'sha256', '--key', key, newer], { stdio: 'ignore' });
  const newerSig = readFileSync(`${newer}.sig`);
  const newerDigest = sha256(readFileSync(newer));
  const pkgSig = Buffer.from(sigs.get('/usr/bin/hello')!, 'hex');
  const entries = [
    // the packaged file with the package's own signature: allowed (signature, or digest without the key)
    entry(0, 'ima-sig', sha256(files['/usr/bin/hello']), '/usr/bin/hello', pkgSig),
    // not in the set, but signed by the package signer
    entry(1, 'ima-sig', newerDigest, '/usr/bin/hello', newerSig),
    entry(2, 'ima-ng', sha256(files['/usr/lib/t/data']), '/usr/lib/t/data'),
  ];
  const good = writeList('rpm-good', entries);
  const withKey = await cli(
    'log',
    'verify',
    good.list,
    '--refs',
    set,
    '--key',
    cert,
    '--pcrs-json',
    good.pcrs,
    '--json',
  );
  assert.equal(withKey.status, 0, withKey.out + withKey.err);
  assert.deepEqual(
    (JSON.parse(withKey.out) as VerifyJson).refs.verdicts.map((v) => v.reason),
    ['allowed-signature', 'allowed-signature', 'allowed-digest'],
  );
  // without the signer's key the digest decides: the newer build is refused
  const noKey = await cli('log', 'verify', good.list, '--refs', set, '--pcrs-json', good.pcrs, '--json');
  assert.equal(noKey.status, 1);
  assert.deepEqual(
    (JSON.parse(noKey.out) as VerifyJson).refs.verdicts.map((v) => `${v.index}:${v.reason}`),
    ['0:allowed-digest', '1:unknown-key', '2:allowed-digest'],
  );
  // the package's signature presented with the newer digest does not verify: refused
  const forged = writeList('rpm-forged', [entry(0, 'ima-sig', newerDigest, '/usr/bin/hello', pkgSig)]);
  const f = await cli(
    'log',
    'verify',
    forged.list,
    '--refs',
    set,
    '--key',
    cert,
    '--pcrs-json',
    forged.pcrs,
    '--json',
  );
  assert.equal(f.status, 1);
  assert.deepEqual(
    (JSON.parse(f.out) as VerifyJson).refs.verdicts.map((v) => v.reason),
    ['bad-signature'],
  );
});
