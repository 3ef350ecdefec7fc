/**
 * The guest's initramfs (real-kernel.md §4.1): static busybox, the kernel modules (§4.2), keyctl,
 * evmctl, getfattr/setfattr/lsattr with their shared libraries, passwd/group with `root` and
 * `user` (1000), the generated /init, and /extra with the scenario's inputs. Written as an
 * uncompressed newc cpio (the kernel accepts it; no decompression in the slow TCG guest).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { mustRun, runTool } from './process.ts';

/** Modules loaded at every boot, in load order (real-kernel.md §4.2). */
export const MODULE_CHAIN: readonly string[] = Object.freeze([
  'drivers/virtio/virtio_ring',
  'drivers/virtio/virtio',
  'drivers/virtio/virtio_pci_legacy_dev',
  'drivers/virtio/virtio_pci_modern_dev',
  'drivers/virtio/virtio_pci',
  'drivers/block/virtio_blk',
  'lib/crc16',
  'fs/mbcache',
  'fs/jbd2/jbd2',
  'crypto/crc32c_generic',
  'fs/ext4/ext4',
]);

/** Optional hash modules a scenario may ask for, by name (§4.2). */
export const OPTIONAL_MODULES: Readonly<Record<string, string>> = Object.freeze({
  sha512_generic: 'crypto/sha512_generic',
  sha3_generic: 'crypto/sha3_generic',
  wp512: 'crypto/wp512',
  streebog_generic: 'crypto/streebog_generic',
});

/** Host tools copied into the guest with their libraries. */
const GUEST_TOOLS = ['keyctl', 'evmctl', 'getfattr', 'setfattr', 'lsattr'] as const;
const BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** Find a host tool in the standard directories (the library does not read PATH). */
export function findTool(name: string): string {
  for (const d of BIN_DIRS) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  throw new ImakitError('E_VM_SETUP', `${name} is not installed; run scripts/setup-kernel.sh`);
}

/** A file to place under /extra. */
export interface ExtraFile {
  readonly name: string;
  readonly data: Uint8Array | string;
}

/** Inputs of one initramfs. */
export interface InitramfsInput {
  readonly kernelDir: string;
  readonly init: string;
  /** optional module names (keys of OPTIONAL_MODULES) to load before the chain */
  readonly extraModules: readonly string[];
  readonly extra: readonly ExtraFile[];
}

/** Guest module names (basename) in load order: extras first, then the chain. */
export function moduleLoadOrder(extraModules: readonly string[]): string[] {
  for (const m of extraModules)
    if (OPTIONAL_MODULES[m] === undefined)
      throw new ImakitError(
        'E_USAGE',
        `unknown module ${m}; available: ${Object.keys(OPTIONAL_MODULES).join(', ')}`,
      );
  return [...extraModules, ...MODULE_CHAIN.map((p) => p.slice(p.lastIndexOf('/') + 1))];
}

async function copyWithLibs(bin: string, stage: string, seen: Set<string>): Promise<void> {
  const targets = [bin];
  const ldd = await runTool('ldd', [bin]);
  for (const m of ldd.stdout.matchAll(/(\/[^\s)]+)/g)) if (m[1] !== undefined) targets.push(m[1]);
  for (const t of targets) {
    if (seen.has(t)) continue;
    seen.add(t);
    const dst = join(stage, t);
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(t, dst);
    chmodSync(dst, 0o755);
  }
}

/** Build the initramfs at `outPath` using `stage` as scratch. */
export async function buildInitramfs(input: InitramfsInput, stage: string, outPath: string): Promise<void> {
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'etc',
    'proc',
    'sys',
    'dev',
    'tmp',
    'extra',
    'lib/modules',
  ])
    mkdirSync(join(stage, d), { recursive: true });
  copyFileSync(findTool('busybox'), join(stage, 'bin/busybox'));
  chmodSync(join(stage, 'bin/busybox'), 0o755);
  const seen = new Set<string>();
  for (const t of GUEST_TOOLS) await copyWithLibs(findTool(t), stage, seen);
  // the guest finds the libraries through LD_LIBRARY_PATH; ld.so's canonical path must exist
  if (!existsSync(join(stage, 'lib64/ld-linux-x86-64.so.2')))
    throw new ImakitError('E_VM_SETUP', 'the dynamic loader was not found by ldd');

  const mods = [...input.extraModules.map((m) => OPTIONAL_MODULES[m] ?? m), ...MODULE_CHAIN];
  moduleLoadOrder(input.extraModules);
  for (const rel of mods) {
    const src = join(input.kernelDir, 'modules', `${rel}.ko`);
    if (!existsSync(src))
      throw new ImakitError(
        'E_VM_SETUP',
        `kernel module ${rel}.ko is not cached; run scripts/setup-kernel.sh`,
        {
          path: src,
        },
      );
    copyFileSync(src, join(stage, 'lib/modules', `${rel.slice(rel.lastIndexOf('/') + 1)}.ko`));
  }
  writeFileSync(
    join(stage, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n',
  );
  writeFileSync(join(stage, 'etc/group'), 'root:x:0:\nuser:x:1000:\n');
  writeFileSync(join(stage, 'init'), input.init, { mode: 0o755 });
  for (const f of input.extra) {
    if (!/^[A-Za-z0-9._-]+$/.test(f.name))
      throw new ImakitError('E_INTERNAL', `bad extra file name ${f.name}`);
    writeFileSync(join(stage, 'extra', f.name), f.data);
  }
  // newc archive, owned by root; stdout goes straight into the file
  const fd = openSync(outPath, 'w');
  try {
    const r = await runTool(
      'sh',
      ['-c', 'find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet'],
      {
        cwd: stage,
        stdio: ['ignore', fd, 'pipe'],
      },
    );
    if (r.status !== 0) throw new ImakitError('E_VM_SETUP', `cpio failed: ${r.stderr.trim()}`);
  } finally {
    closeSync(fd);
  }
  await mustRun('E_VM_SETUP', 'test', ['-s', outPath]);
}
