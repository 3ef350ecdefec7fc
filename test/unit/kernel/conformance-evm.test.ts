/**
 * Conformance with the real kernel, EVM scenarios (test/fixtures/kernel/evm-*; real-kernel.md §8.3):
 *  - evm-fix-hmac (ima_appraise=fix evm=fix, known HMAC key): replaying the workload must leave
 *    exactly the security.ima / security.evm values the kernel wrote (HMACs after reads, chmod,
 *    file creation, chown and a user.* setxattr), with the same audit causes and the same list;
 *  - evm-tamper-enforce: the offline-tampered disk read in enforce mode gives the same causes.
 * Inputs: file contents are not kept, so digests come from the kernel-written sha256 labels;
 * generations of guest-created files (random in the kernel) come from the fixture. The `_evm`
 * certificate of the portable signature is not kept, so decisions on portable.txt are not checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile } from '../../../src/kernel/profiles.ts';
import { runAccess, type WorkloadAccess } from '../../../src/kernel/workload.ts';
import { toHex } from '../../../src/core/bytes.ts';

interface FileState {
  path: string;
  ino: number;
  uid: number;
  gid: number;
  mode: number;
  size: number;
  generation?: number;
  xattrs: Record<string, string>;
}
interface Fixture {
  man: {
    cmdline: string;
    policy: string;
    banks: string[];
    workload: WorkloadAccess[];
    inputs: Record<string, unknown>;
  };
  res: { files: FileState[]; accesses: Array<{ outcome: string; audit: Array<Record<string, string>> }> };
  ascii: string;
}

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const dirOf = (s: string): string => join(FIXTURES_DIR, 'kernel', s);
const load = (s: string): Fixture => ({
  man: JSON.parse(readFileSync(join(dirOf(s), 'manifest.json'), 'utf8')),
  res: JSON.parse(readFileSync(join(dirOf(s), 'result.json'), 'utf8')),
  ascii: readFileSync(join(dirOf(s), 'ascii_runtime_measurements'), 'latin1'),
});
const regular = (f: FileState): boolean => (f.mode & 0o170000) === 0o100000;
/** the kernel-written sha256 label is the content digest (files are never modified in these runs) */
const digestOf = (f: FileState): Map<string, Uint8Array> => {
  const ima = f.xattrs['security.ima'];
  return ima?.startsWith('0404') ? new Map([['sha256', hex(ima.slice(4))]]) : new Map();
};
const causes = (au: ReadonlyArray<Readonly<Record<string, string>>>): string[] =>
  au.filter((r) => r.op === 'appraise_data' || r.op === 'collect_data').map((r) => `${r.op}:${r.cause}`);

test(
  'real kernel conformance: evm-fix-hmac',
  { skip: existsSync(join(dirOf('evm-fix-hmac'), 'manifest.json')) ? false : 'fixture not captured' },
  () => {
    const { man, res, ascii } = load('evm-fix-hmac');
    const key = hex(man.inputs.evmKeyHex as string);
    const uuid = man.inputs.fsUuid as string;
    const agg = /^10 [0-9a-f]+ \S+ ([a-z0-9]+):([0-9a-f]+) boot_aggregate/.exec(ascii)!;
    const created = new Map(
      res.files
        .filter((f) => man.workload.some((a) => a.op === 'create' && a.path === f.path))
        .map((f) => [f.path, f]),
    );
    const emu = new Emulator({
      profile: getProfile('debian-6.1'),
      cmdline: man.cmdline,
      banks: man.banks,
      bootAggregate: { algo: agg[1]!, digest: hex(agg[2]!) },
      newInodeGeneration: (p) => created.get(p)?.generation ?? 0,
      // created files' contents are unknown too: their digests are the kernel-written labels
      digestSource: (inode, algo) =>
        algo === 'sha256' ? digestOf(res.files.find((f) => f.path === inode.path)!).get('sha256') : undefined,
    });
    const fs = ext4Fs(uuid);
    emu.loadEvmHmacKey(key);
    // the disk before the run: pre-existing files with their original labels (real-kernel.md §8.3)
    for (const f of res.files) {
      if (!regular(f) || created.has(f.path)) continue;
      const x = new Map<string, Uint8Array>();
      if (f.path === 'ima-only.txt') x.set('security.ima', hex(f.xattrs['security.ima']!));
      if (f.path === 'portable.txt')
        for (const n of ['security.ima', 'security.evm']) x.set(n, hex(f.xattrs[n]!));
      const mode = f.path === 'none.txt' ? 0o100644 : f.path === 'portable.txt' ? 0o100644 : f.mode;
      emu.addFile({
        path: f.path,
        fs,
        uid: f.uid,
        gid: f.gid,
        mode,
        ino: f.ino,
        generation: f.generation ?? 0,
        size: f.size,
        digests: digestOf(f),
        xattrs: x,
      });
    }
    assert.equal(emu.loadPolicy(man.policy).ok, true);
    man.workload.forEach((a, i) => {
      const r = runAccess(emu, a, i, fs);
      assert.equal(r.outcome, res.accesses[i]!.outcome, `#${i} ${a.op} ${a.path}`);
      if (a.path !== 'portable.txt')
        assert.deepEqual(
          causes(r.audit.map((x) => x.fields)),
          causes(res.accesses[i]!.audit),
          `#${i} ${a.op} ${a.path}: audit`,
        );
    });
    for (const f of res.files) {
      if (!regular(f)) continue;
      const got = emu.inode(f.path, fs)!;
      for (const n of ['security.ima', 'security.evm']) {
        const v = got.xattrs.get(n);
        assert.equal(v ? toHex(v) : undefined, f.xattrs[n], `${f.path} ${n}`);
      }
    }
  },
);

test(
  'real kernel conformance: evm-tamper-enforce',
  { skip: existsSync(join(dirOf('evm-tamper-enforce'), 'manifest.json')) ? false : 'fixture not captured' },
  () => {
    const { man, res } = load('evm-tamper-enforce');
    const fix = existsSync(join(dirOf('evm-fix-hmac'), 'manifest.json')) ? load('evm-fix-hmac') : null;
    const key = (man.inputs.evmKeyHex ?? fix?.man.inputs.evmKeyHex) as string | undefined;
    const uuid = (man.inputs.fsUuid ??
      fix?.man.inputs.fsUuid ??
      /fsuuid=([0-9a-f-]{36})/.exec(man.policy ?? '')?.[1]) as string | undefined;
    assert.ok(key && uuid, 'the fixtures give the EVM key and fs UUID');
    const emu = new Emulator({ profile: getProfile('debian-6.1'), cmdline: man.cmdline, banks: man.banks });
    const fs = ext4Fs(uuid);
    emu.loadEvmHmacKey(hex(key));
    // enforce mode changes nothing: the state after the run is the tampered disk it booted with.
    // Generations are not collected in this run: the tampering record and the f1 run give them.
    const tampering = (man.inputs.tampering ?? {}) as Record<string, string>;
    const generation = (f: FileState): number => {
      const t = /^generation (\d+)$/.exec(tampering[f.path] ?? '');
      if (t) return Number(t[1]);
      return f.generation ?? fix?.res.files.find((g) => g.path === f.path)?.generation ?? 0;
    };
    for (const f of res.files) {
      if (!regular(f)) continue;
      emu.addFile({
        path: f.path,
        fs,
        uid: f.uid,
        gid: f.gid,
        mode: f.mode,
        ino: f.ino,
        generation: generation(f),
        size: f.size,
        digests: digestOf(f),
        xattrs: new Map(Object.entries(f.xattrs).map(([k, v]) => [k, hex(v)])),
      });
    }
    assert.equal(emu.loadPolicy(man.policy).ok, true);
    man.workload.forEach((a, i) => {
      if (a.path === 'portable.txt') return;
      const r = runAccess(emu, a, i, fs);
      assert.equal(r.outcome, res.accesses[i]!.outcome, `#${i} ${a.op} ${a.path}`);
      assert.deepEqual(
        causes(r.audit.map((x) => x.fields)),
        causes(res.accesses[i]!.audit),
        `#${i} ${a.op} ${a.path}: audit`,
      );
    });
  },
);
