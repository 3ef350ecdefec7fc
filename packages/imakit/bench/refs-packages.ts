/**
 * References from an apt archive of 100 `.deb` files (issue 12 part 3): files/s and MiB/s of content
 * hashed (decompression + tar walk + SHA-256 + the MD5 check against md5sums), against `dpkg-deb
 * --fsys-tarfile | sha256sum`-style work done by the tools (dpkg -x + find | sha256sum). Prints
 * figures; asserts nothing.
 *
 * The packages are the first N installed on this machine (`dpkg-query`), downloaded once with
 * `apt-get download` into `$XDG_CACHE_HOME/imakit/debs/bench` (else ~/.cache/...).
 *
 * Run: node --import tsx bench/refs-packages.ts [--count 100]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { referencesFromPackages } from '../src/host/packages/from-packages.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '100' } } });
const count = Number(values.count);
const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'imakit', 'debs', 'bench');
mkdirSync(dir, { recursive: true });
const have = () => readdirSync(dir).filter((f) => f.endsWith('.deb'));
if (have().length < count) {
  const pkgs = execFileSync('dpkg-query', ['-W', '-f', '${Package}\n'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .sort();
  const want = pkgs
    .filter((p) => !have().some((f) => f.startsWith(`${p}_`)))
    .slice(0, count - have().length + 10);
  // one at a time would be slow; apt-get download takes many names, but one unavailable name fails all
  for (let i = 0; i < want.length && have().length < count; i += 10)
    try {
      execFileSync('apt-get', ['download', ...want.slice(i, i + 10)], { cwd: dir, stdio: 'ignore' });
    } catch {
      for (const p of want.slice(i, i + 10))
        try {
          execFileSync('apt-get', ['download', p], { cwd: dir, stdio: 'ignore' });
        } catch {
          /* a package not in the archive (locally built): take the next */
        }
    }
}
const debs = have().sort().slice(0, count);
const compressed = debs.reduce((s, f) => s + statSync(join(dir, f)).size, 0);
const tmp = mkdtempSync(join(tmpdir(), 'imakit-bench-'));
const links = join(tmp, 'archive');
mkdirSync(links);
for (const f of debs) execFileSync('ln', ['-s', join(dir, f), join(links, f)]);

console.log(`${debs.length} .deb files, ${(compressed / 2 ** 20).toFixed(1)} MiB compressed`);
for (let round = 0; round < 2; round++) {
  const t0 = process.hrtime.bigint();
  const r = await referencesFromPackages('deb', [links]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `imakit refs from-deb (round ${round + 1}): ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${s.toFixed(2)} s: ` +
      `${(r.files / s).toFixed(0)} files/s, ${(r.bytes / 2 ** 20 / s).toFixed(1)} MiB/s`,
  );
}
const t1 = process.hrtime.bigint();
for (const f of debs) {
  const x = join(tmp, 'x');
  execFileSync('dpkg', ['-x', join(dir, f), x]);
  execFileSync('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -r sha256sum >/dev/null', 'x', x]);
  rmSync(x, { recursive: true, force: true });
}
console.log(`dpkg -x + find | sha256sum: ${(Number(process.hrtime.bigint() - t1) / 1e9).toFixed(2)} s`);
rmSync(tmp, { recursive: true, force: true });
