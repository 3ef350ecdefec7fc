/**
 * RPM packages for the package tests, made with Debian's rpmbuild, and per-file IMA signatures made
 * with evmctl and written into the signature header (tag 274) with imakit's header writer.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeRpmHeader,
  RpmType,
  rpmEntry,
  RPM_LEAD_SIZE,
  signaturePadding,
} from '../../../../src/core/packages/rpm-header.ts';
import { Tag } from '../../../../src/core/packages/rpm-files.ts';
import { readRpmHeaders } from '../../../../src/host/packages/rpm.ts';

/** What a test package may add to the default spec (version 1.0-1, every file listed in %files). */
export interface RpmSpecOptions {
  readonly version?: string;
  readonly release?: string;
  /** Further lines for %install, after the files are written. */
  readonly install?: readonly string[];
  /** The %files lines; default the paths of `files`. */
  readonly fileList?: readonly string[];
  /** Further rpmbuild arguments (`--define`, `MACRO VALUE`, …). */
  readonly defines?: readonly string[];
}

/** Build a noarch package `name` holding `files` (absolute path → content). */
export function buildRpm(
  dir: string,
  name: string,
  files: Record<string, string>,
  opts: RpmSpecOptions = {},
): string {
  const { version = '1.0', release = '1', install = [], fileList = Object.keys(files), defines = [] } = opts;
  const top = join(dir, `top-${name}`);
  mkdirSync(join(top, 'SPECS'), { recursive: true });
  const write = Object.entries(files).map(
    ([p, c]) => `mkdir -p %{buildroot}$(dirname ${p}) && printf '%s' '${c}' > %{buildroot}${p}`,
  );
  const spec = `Name: ${name}\nVersion: ${version}\nRelease: ${release}\nSummary: test\nLicense: MIT\nBuildArch: noarch\n%description\ntest\n%install\n${[...write, ...install].join('\n')}\n%files\n${fileList.join('\n')}\n`;
  writeFileSync(join(top, 'SPECS', `${name}.spec`), spec);
  execFileSync(
    'rpmbuild',
    [
      '-bb',
      '--define',
      `_topdir ${top}`,
      '--define',
      '__os_install_post %{nil}',
      ...defines,
      join(top, 'SPECS', `${name}.spec`),
    ],
    { stdio: 'ignore' },
  );
  const rpmDir = join(top, 'RPMS', 'noarch');
  return join(rpmDir, readdirSync(rpmDir)[0]!);
}

/**
 * Sign every file of the package with `evmctl ima_sign --key KEY` and write the package again with
 * the signatures in tag 274. Returns the new package and the signatures (hex) by path.
 */
export async function signRpm(
  dir: string,
  rpm: string,
  files: Record<string, string>,
  key: string,
): Promise<{ path: string; sigs: Map<string, string> }> {
  const h = await readRpmHeaders(rpm);
  const paths = execFileSync('rpm', ['-qp', '--qf', '[%{FILENAMES}\n]', rpm], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '');
  const sigs = new Map<string, string>();
  const hexes = paths.map((p) => {
    const content = files[p];
    if (content === undefined) return '';
    const f = join(dir, 'sign', p);
    mkdirSync(join(f, '..'), { recursive: true });
    writeFileSync(f, content);
    execFileSync('evmctl', ['ima_sign', '--sigfile', '-a', 'sha256', '--key', key, f], { stdio: 'ignore' });
    const hex = readFileSync(`${f}.sig`).toString('hex');
    sigs.set(p, hex);
    return hex;
  });
  const sig = encodeRpmHeader(
    [
      ...h.sig.entries,
      rpmEntry(Tag.SIG_FILESIGNATURES, RpmType.STRING_ARRAY, hexes),
      rpmEntry(Tag.SIG_FILESIGNATURELENGTH, RpmType.INT32, [Math.max(...hexes.map((x) => x.length / 2))]),
    ],
    { magic: true, regionTag: 62 },
  );
  const bytes = readFileSync(rpm);
  const mainAt = RPM_LEAD_SIZE + h.sig.size + signaturePadding(h.sig.size);
  const out = rpm.replace(/\.rpm$/, '.signed.rpm');
  writeFileSync(
    out,
    Buffer.concat([
      bytes.subarray(0, RPM_LEAD_SIZE),
      sig,
      Buffer.alloc(signaturePadding(sig.length)),
      bytes.subarray(mainAt),
    ]),
  );
  return { path: out, sigs };
}
