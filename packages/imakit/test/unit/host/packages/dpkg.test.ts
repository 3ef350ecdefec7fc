/**
 * The installed-system reader against a scratch root made from a real package: `dpkg -x` puts the
 * files down, and the database is dpkg's own files from the package (`md5sums`) plus a `.list` made
 * from `dpkg-deb -c`. Every yielded digest equals `sha256sum`; a file changed after "installation"
 * is reported as modified and left out; the CLI writes a set with the package's paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDpkgInstalled } from '../../../../src/host/packages/dpkg.ts';
import { referencesFromPackages } from '../../../../src/host/packages/from-packages.ts';
import { tempDir, REPO_ROOT } from '../../../helpers.ts';
import { cachedDebs } from './deb-helpers.ts';

const deb = cachedDebs(['bash']).get('bash')!;

function scratchRoot(dir: string): string {
  const root = join(dir, 'root');
  execFileSync('dpkg', ['-x', deb, root]);
  const info = join(root, 'var/lib/dpkg/info');
  mkdirSync(info, { recursive: true });
  execFileSync('dpkg-deb', ['-e', deb, join(dir, 'ctl')]);
  writeFileSync(join(info, 'bash.md5sums'), readFileSync(join(dir, 'ctl/md5sums')));
  const names = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'x', deb], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (l === './' ? '/.' : l.replace(/^\.\//, '/').replace(/\/$/, '')));
  writeFileSync(join(info, 'bash.list'), names.join('\n') + '\n');
  const control = readFileSync(join(dir, 'ctl/control'), 'utf8').replace(
    /^Package: bash\n/,
    'Package: bash\nStatus: install ok installed\n',
  );
  writeFileSync(join(root, 'var/lib/dpkg/status'), control + '\n');
  return root;
}

function sha256sum(root: string, p: string): string {
  return execFileSync('sha256sum', [join(root, p)], { encoding: 'utf8' }).slice(0, 64);
}

test('installed files: digests equal sha256sum; a changed file is reported, not referenced', async () => {
  const { dir, cleanup } = tempDir('imakit-dpkg-');
  try {
    const root = scratchRoot(dir);
    appendFileSync(join(root, 'bin/bash'), 'tampered');
    const modified: string[] = [];
    const recs = [];
    for await (const r of readDpkgInstalled(root, { onModified: (p) => modified.push(p) })) recs.push(r);
    assert.deepEqual(modified, ['/bin/bash']);
    assert.ok(recs.length > 50);
    for (const r of recs) assert.equal(r.digests.sha256, sha256sum(root, r.path), r.path);
    assert.ok(recs.every((r) => r.provenance.name === 'bash' && r.path !== '/bin/bash'));
    const res = await referencesFromPackages('dpkg', [root]);
    assert.equal(res.files, recs.length);
    assert.equal(res.skipped.length, 1);
  } finally {
    cleanup();
  }
});

test('CLI: refs from-deb writes a set whose paths are the package files; --json summary', () => {
  const { dir, cleanup } = tempDir('imakit-dpkg-');
  try {
    const out = join(dir, 'bash.json');
    const r = execFileSync(
      'node',
      [join(REPO_ROOT, 'bin/imakit.js'), 'refs', 'from-deb', deb, '--out', out, '--format', 'json', '--json'],
      { encoding: 'utf8' },
    );
    const summary = JSON.parse(r) as { files: number; paths: number };
    assert.ok(summary.files > 50);
    assert.equal(summary.paths, summary.files);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /\/bin\/bash/);
    execFileSync('dpkg', ['-x', deb, join(dir, 'x')]);
    assert.ok(text.includes(sha256sum(join(dir, 'x'), 'bin/bash')), 'the set holds sha256sum of /bin/bash');
  } finally {
    cleanup();
  }
});
