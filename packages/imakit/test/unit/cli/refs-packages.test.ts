/**
 * `imakit refs from-rpm | from-rpmdb | from-oci | from-dpkg | from-deb` through the CLI: exit codes,
 * `--json` summaries, `--format keylime` output validated against Keylime's own runtime-policy schema,
 * digests against rpm -qp / sha256sum, and bad input (a corrupt .deb, a tampered image, a bad
 * --platform): exit 2 (or 1 for content that contradicts its own digest) naming the member, with
 * nothing written at --out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { encodeTarHeader, TAR_BLOCK, tarPadding } from '../../../src/core/packages/tar.ts';
import { tempDir, vectorPath } from '../../helpers.ts';
import { keylimeValid } from '../core/refs/keylime-schema.ts';
import { cachedDebs } from '../host/packages/deb-helpers.ts';
import { buildRpm, signRpm } from '../host/packages/rpm-helpers.ts';

const { dir, cleanup } = tempDir('imakit-cli-pkg-');
process.on('exit', cleanup);

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');
const FILES = { '/usr/bin/hello': '#!/bin/sh\necho hello\n', '/usr/lib/t/data': 'data\n' };

interface Summary {
  files: number;
  paths: number;
  signatures: number;
  format: string;
  inputs: number;
}

test('from-rpm: exit 0, --json summary, digests = rpm -qp, signatures kept; --format keylime validates against Keylime’s schema', async () => {
  const rpm = buildRpm(dir, 'clitest', FILES);
  const { path: signed } = await signRpm(dir, rpm, FILES, vectorPath('rsa2048_skid.key'));
  const out = join(dir, 'rpm.json');
  const r = await cli('refs', 'from-rpm', signed, '--out', out, '--format', 'json', '--json');
  assert.equal(r.status, 0, r.err);
  const s = JSON.parse(r.out) as Summary;
  assert.equal(s.files, 2);
  assert.equal(s.signatures, 2);
  const lines = execFileSync('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEDIGESTS}\n]', signed], {
    encoding: 'utf8',
  });
  const set = JSON.parse(readFileSync(out, 'utf8')) as {
    digests: Record<string, { digest: string; imaSignature?: string }[]>;
  };
  for (const l of lines.trim().split('\n')) {
    const [p, d] = l.split(' ');
    assert.equal(set.digests[p!]![0]!.digest, d, p);
    assert.match(set.digests[p!]![0]!.imaSignature!, /^030204/);
  }
  const kl = join(dir, 'rpm-keylime.json');
  const k = await cli('refs', 'from-rpm', signed, '--out', kl, '--format', 'keylime');
  assert.equal(k.status, 0, k.err);
  assert.equal(keylimeValid(readFileSync(kl, 'utf8')), null);
  const policy = JSON.parse(readFileSync(kl, 'utf8')) as { digests: Record<string, string[]> };
  assert.deepEqual(policy.digests['/usr/bin/hello'], [sha(FILES['/usr/bin/hello'])]);
  // a missing input: I/O exit, nothing written
  const missing = join(dir, 'missing.imr');
  const m = await cli('refs', 'from-rpm', join(dir, 'nope.rpm'), '--out', missing);
  assert.equal(m.status, 3, m.err);
  assert.equal(existsSync(missing), false);
});

test('from-rpmdb --root: the installed headers (rpm -i --justdb) give the same digests and signatures', async () => {
  const rpm = buildRpm(dir, 'dbtest', FILES);
  const { path: signed, sigs } = await signRpm(dir, rpm, FILES, vectorPath('rsa2048_skid.key'));
  const root = join(dir, 'rpmroot');
  const db = join(root, 'var/lib/rpm');
  mkdirSync(db, { recursive: true });
  execFileSync('rpm', ['--dbpath', db, '--initdb']);
  execFileSync('rpm', ['--dbpath', db, '-i', '--nodeps', '--justdb', '--noscripts', signed], {
    stdio: 'ignore',
  });
  const out = join(dir, 'rpmdb.json');
  const r = await cli('refs', 'from-rpmdb', '--root', root, '--out', out, '--format', 'json', '--json');
  assert.equal(r.status, 0, r.err);
  assert.equal((JSON.parse(r.out) as Summary).signatures, 2);
  const set = JSON.parse(readFileSync(out, 'utf8')) as {
    digests: Record<string, { digest: string; imaSignature?: string }[]>;
  };
  for (const [p, c] of Object.entries(FILES)) {
    assert.equal(set.digests[p]![0]!.digest, sha(c), p);
    assert.equal(set.digests[p]![0]!.imaSignature, sigs.get(p), p);
  }
  const kl = join(dir, 'rpmdb-keylime.json');
  assert.equal(
    (await cli('refs', 'from-rpmdb', '--root', root, '--out', kl, '--format', 'keylime')).status,
    0,
  );
  assert.equal(keylimeValid(readFileSync(kl, 'utf8')), null);
  // no database under the root: exit 3 naming the file
  const none = await cli('refs', 'from-rpmdb', '--root', join(dir, 'empty'), '--out', join(dir, 'x.imr'));
  assert.equal(none.status, 3);
  assert.match(none.err, /rpmdb\.sqlite/);
});

/** A one-layer OCI layout written here (tar by imakit's encoder; digests by node:crypto). */
function layout(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  const parts: Uint8Array[] = [];
  for (const [p, c] of Object.entries(files))
    parts.push(
      encodeTarHeader({ name: p.slice(1), type: 'file', size: c.length }),
      Buffer.from(c),
      new Uint8Array(tarPadding(c.length)),
    );
  parts.push(new Uint8Array(2 * TAR_BLOCK));
  const tar = Buffer.concat(parts);
  const blob = (b: Buffer) => {
    mkdirSync(join(root, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(root, 'blobs/sha256', sha(b)), b);
    return { digest: `sha256:${sha(b)}`, size: b.length };
  };
  const cfg = blob(
    Buffer.from(
      JSON.stringify({ os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha(tar)}`] } }),
    ),
  );
  const m = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(tar) }],
      }),
    ),
  );
  writeFileSync(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(root, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
    }),
  );
  return root;
}

test('from-oci: exit 0 with --json and a Keylime policy that validates; a tampered layer exits 1 naming the blob; a bad --platform exits 2; nothing written on failure', async () => {
  const img = layout('img', FILES);
  const kl = join(dir, 'oci-keylime.json');
  const r = await cli('refs', 'from-oci', img, '--out', kl, '--format', 'keylime', '--json');
  assert.equal(r.status, 0, r.err);
  assert.equal((JSON.parse(r.out) as Summary).files, 2);
  assert.equal(keylimeValid(readFileSync(kl, 'utf8')), null);
  const policy = JSON.parse(readFileSync(kl, 'utf8')) as { digests: Record<string, string[]> };
  for (const [p, c] of Object.entries(FILES)) assert.deepEqual(policy.digests[p], [sha(c)]);
  const bad = await cli('refs', 'from-oci', img, '--out', join(dir, 'p.imr'), '--platform', 'amd64');
  assert.equal(bad.status, 2);
  assert.equal(existsSync(join(dir, 'p.imr')), false);
  // tamper with the layer: same size, one byte flipped
  const idx = JSON.parse(readFileSync(join(img, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  const man = JSON.parse(
    readFileSync(join(img, 'blobs/sha256', idx.manifests[0]!.digest.slice(7)), 'utf8'),
  ) as {
    layers: { digest: string }[];
  };
  const layerFile = join(img, 'blobs/sha256', man.layers[0]!.digest.slice(7));
  const bytes = readFileSync(layerFile);
  bytes[TAR_BLOCK + 1]! ^= 1;
  writeFileSync(layerFile, bytes);
  const out = join(dir, 'tampered.imr');
  const t = await cli('refs', 'from-oci', img, '--out', out, '--json');
  assert.equal(t.status, 1, t.err);
  const err = JSON.parse(t.out) as { error: { code: string; member: string } };
  assert.equal(err.error.code, 'E_PKG_DIGEST_MISMATCH');
  assert.equal(err.error.member, `layer ${man.layers[0]!.digest}`);
  assert.equal(existsSync(out), false);
});

test('from-dpkg --root and from-deb: exit 0 with --json; a corrupt .deb exits 2 naming the member and writes nothing', async () => {
  const deb = cachedDebs(['bash']).get('bash')!;
  // a scratch root as dpkg leaves it: files, status, info/bash.list and .md5sums
  const root = join(dir, 'dpkgroot');
  execFileSync('dpkg', ['-x', deb, root]);
  const info = join(root, 'var/lib/dpkg/info');
  mkdirSync(info, { recursive: true });
  execFileSync('dpkg-deb', ['-e', deb, join(dir, 'ctl')]);
  writeFileSync(join(info, 'bash.md5sums'), readFileSync(join(dir, 'ctl/md5sums')));
  const names = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'x', deb], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (l === './' ? '/.' : l.replace(/^\.\//, '/').replace(/\/$/, '')));
  writeFileSync(join(info, 'bash.list'), names.join('\n') + '\n');
  writeFileSync(
    join(root, 'var/lib/dpkg/status'),
    readFileSync(join(dir, 'ctl/control'), 'utf8').replace(
      /^Package: bash\n/,
      'Package: bash\nStatus: install ok installed\n',
    ) + '\n',
  );
  const kl = join(dir, 'dpkg-keylime.json');
  const r = await cli('refs', 'from-dpkg', '--root', root, '--out', kl, '--format', 'keylime', '--json');
  assert.equal(r.status, 0, r.err);
  assert.ok((JSON.parse(r.out) as Summary).files > 50);
  assert.equal(keylimeValid(readFileSync(kl, 'utf8')), null);
  const policy = JSON.parse(readFileSync(kl, 'utf8')) as { digests: Record<string, string[]> };
  assert.deepEqual(policy.digests['/bin/bash'], [sha(readFileSync(join(root, 'bin/bash')))]);
  const d = await cli('refs', 'from-deb', deb, '--out', join(dir, 'deb-keylime.json'), '--format', 'keylime');
  assert.equal(d.status, 0, d.err);
  assert.equal(keylimeValid(readFileSync(join(dir, 'deb-keylime.json'), 'utf8')), null);
  // corrupt: a byte of data.tar.xz's compressed stream flipped (past its header)
  const bytes = readFileSync(deb);
  const at = bytes.indexOf('data.tar.xz') + 60 + 4096;
  bytes[at]! ^= 0xff;
  const corrupt = join(dir, 'corrupt.deb');
  writeFileSync(corrupt, bytes);
  const out = join(dir, 'corrupt.imr');
  const c = await cli('refs', 'from-deb', corrupt, '--out', out);
  assert.equal(c.status, 2, c.err);
  assert.match(c.err, /data\.tar\.xz/);
  assert.equal(existsSync(out), false);
  const j = await cli('refs', 'from-deb', corrupt, '--out', out, '--json');
  const e = JSON.parse(j.out) as { error: { code: string; member: string; path: string } };
  assert.equal(e.error.code, 'E_PKG_COMPRESSION');
  assert.equal(e.error.member, 'data.tar.xz');
  assert.equal(e.error.path, corrupt);
});
