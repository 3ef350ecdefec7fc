/**
 * Conformance with the real kernel, EVM scenarios (test/fixtures/kernel/evm-*; real-kernel.md §8.3):
 *  - evm-fix-hmac (ima_appraise=fix evm=fix, known HMAC key, an `_evm` certificate): replaying the
 *    workload must leave exactly the security.ima / security.evm values the kernel wrote (HMACs
 *    after reads, chmod, file creation, chown and a user.* setxattr), with the same audit causes for
 *    every access (the portable signature included) and the same list and PCRs;
 *  - evm-tamper-enforce: the offline-tampered disk read in enforce mode gives the same decision and
 *    cause for every access (invalid-HMAC, missing-HMAC, invalid-fail-immutable, allowed).
 * Inputs from the manifests: the labels as staged, the content digests (computed by the harness
 * from the staged files, never taken from the kernel's labels or list), the contents of the files
 * the guest created, the HMAC key, the `_evm` certificates. Generations of guest-created files
 * (random in the kernel) come from the fixture's file states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile } from '../../../src/kernel/profiles.ts';
import { runAccess, type WorkloadAccess } from '../../../src/kernel/workload.ts';
import { parseAsciiList } from '../../../src/core/ima-list/ascii.ts';
import { loadPublicKey } from '../../../src/core/keys/keys.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';
import type { FileState } from '../../../src/host/vm/types.ts';

interface Inputs {
  fsUuid?: string;
  evmKeyHex?: string;
  labelsBefore?: Record<string, Record<string, string>>;
  fileDigests?: Record<string, Record<string, string>>;
  createdContents?: Record<string, string>;
  tampering?: Record<string, string>;
}
interface Fixture {
  man: {
    cmdline: string;
    policy: string;
    banks: string[];
    workload: WorkloadAccess[];
    inputs: Inputs;
    evmCertsDerHex: string[];
  };
  res: { files: FileState[]; accesses: Array<{ outcome: string; audit: Array<Record<string, string>> }> };
  ascii: string;
  dir: string;
}

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const dirOf = (s: string): string => join(FIXTURES_DIR, 'kernel', s);
const load = (s: string): Fixture => ({
  man: JSON.parse(readFileSync(join(dirOf(s), 'manifest.json'), 'utf8')),
  res: JSON.parse(readFileSync(join(dirOf(s), 'result.json'), 'utf8')),
  ascii: readFileSync(join(dirOf(s), 'ascii_runtime_measurements'), 'latin1'),
  dir: dirOf(s),
});
const regular = (f: FileState): boolean => (f.mode & 0o170000) === 0o100000;
const digestsOf = (inputs: Inputs, path: string): Map<string, Uint8Array> =>
  new Map(Object.entries(inputs.fileDigests?.[path] ?? {}).map(([a, h]) => [a, hex(h)]));
const causes = (au: ReadonlyArray<Readonly<Record<string, string>>>): string[] =>
  au.filter((r) => r.op === 'appraise_data' || r.op === 'collect_data').map((r) => `${r.op}:${r.cause}`);
const pcrLines = (dir: string, bank: string): string[] =>
  readFileSync(join(dir, `pcrs-${bank}.txt`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(': ')[1]!.trim().toLowerCase());

/** A boot like the guest's: PCRs 0-9 from the fixture, the EVM key and `_evm` certificates. */
function boot(fx: Fixture, key: Uint8Array, generation: (p: string) => number): Emulator {
  const initialPcrs = new Map(
    fx.man.banks.map((b) => [
      b,
      pcrLines(fx.dir, b).map((h, i) => (i < 10 ? hex(h) : new Uint8Array(h.length / 2))),
    ]),
  );
  const emu = new Emulator({
    profile: getProfile('debian-6.1'),
    cmdline: fx.man.cmdline,
    banks: fx.man.banks,
    initialPcrs,
    newInodeGeneration: generation,
  });
  // guest order (src/host/vm/guest-script.ts): `_evm` certificates, `echo 2`, the HMAC key, `echo 1`
  for (const h of fx.man.evmCertsDerHex) {
    const der = hex(h);
    assert.equal(emu.addKey(emu.profile.evmKeyring, loadPublicKey(der), der).ok, true);
  }
  if (fx.man.evmCertsDerHex.length > 0) emu.enableEvmX509();
  emu.loadEvmHmacKey(key);
  return emu;
}

function checkPcrs(emu: Emulator, fx: Fixture, label: string): void {
  for (const b of fx.man.banks)
    assert.deepEqual(
      emu.store.pcrs
        .get(b)!
        .map((v) => toHex(v))
        .slice(0, 11),
      pcrLines(fx.dir, b).slice(0, 11),
      `${label}: PCRs of ${b}`,
    );
}

test(
  'real kernel conformance: evm-fix-hmac',
  { skip: existsSync(join(dirOf('evm-fix-hmac'), 'manifest.json')) ? false : 'fixture not captured' },
  () => {
    const fx = load('evm-fix-hmac');
    const { man, res, ascii } = fx;
    const inputs = man.inputs;
    assert.ok(inputs.labelsBefore && inputs.fileDigests, 'the manifest keeps staged labels and digests');
    const created = new Map(
      res.files
        .filter((f) => man.workload.some((a) => a.op === 'create' && a.path === f.path))
        .map((f) => [f.path, f]),
    );
    const emu = boot(fx, hex(inputs.evmKeyHex!), (p) => created.get(p)?.generation ?? 0);
    const fs = ext4Fs(inputs.fsUuid!);
    // the disk before the run: the staged files with their staged labels and modes
    for (const f of res.files) {
      if (!regular(f) || created.has(f.path)) continue;
      const staged = inputs.labelsBefore[f.path];
      assert.ok(staged, `${f.path} staged`);
      const chmodded = man.workload.find((a) => a.op === 'chmod' && a.path === f.path);
      emu.addFile({
        path: f.path,
        fs,
        uid: f.uid,
        gid: f.gid,
        // files chmod-ed by the workload were staged 0644 (the harness's default)
        mode: chmodded ? 0o100644 : f.mode,
        ino: f.ino,
        generation: f.generation ?? 0,
        size: f.size,
        digests: digestsOf(inputs, f.path),
        xattrs: new Map(Object.entries(staged).map(([n, v]) => [n, hex(v)])),
      });
    }
    assert.equal(emu.loadPolicy(man.policy).ok, true);
    man.workload.forEach((a, i) => {
      const r = runAccess(emu, a, i, fs);
      assert.equal(r.outcome, res.accesses[i]!.outcome, `#${i} ${a.op} ${a.path}`);
      assert.deepEqual(
        causes(r.audit.map((x) => x.fields)),
        causes(res.accesses[i]!.audit),
        `#${i} ${a.op} ${a.path}: audit`,
      );
    });
    for (const f of res.files) {
      if (!regular(f)) continue;
      const got = emu.inode(f.path, fs)!;
      assert.equal(got.mode, f.mode, `${f.path} mode`);
      assert.equal(got.uid, f.uid, `${f.path} uid`);
      for (const n of ['security.ima', 'security.evm']) {
        const v = got.xattrs.get(n);
        assert.equal(v ? toHex(v) : undefined, f.xattrs[n], `${f.path} ${n}`);
      }
    }
    // the evm-sig list (its digests are the content's, so it checks the digests too) and PCRs
    const kernel = parseAsciiList(ascii);
    const ours = emu.store.listEntries('sha1');
    assert.equal(ours.length, kernel.length, 'entry count');
    ours.forEach((e, k) =>
      assert.equal(toHex(e.templateData), toHex(kernel[k]!.templateData ?? new Uint8Array(0)), `entry ${k}`),
    );
    assert.deepEqual(
      Buffer.from(emu.store.binary('sha1')),
      readFileSync(join(fx.dir, 'binary_runtime_measurements')),
      'binary list bytes',
    );
    checkPcrs(emu, fx, 'evm-fix-hmac');
  },
);

test(
  'real kernel conformance: evm-tamper-enforce',
  { skip: existsSync(join(dirOf('evm-tamper-enforce'), 'manifest.json')) ? false : 'fixture not captured' },
  () => {
    const fx = load('evm-tamper-enforce');
    const { man, res } = fx;
    const inputs = man.inputs;
    assert.ok(
      inputs.evmKeyHex && inputs.fsUuid && inputs.fileDigests,
      'the manifest keeps key, UUID, digests',
    );
    // generations are not collected in this run: the f1 fixture and the tampering record give them
    const f1 = existsSync(join(dirOf('evm-fix-hmac'), 'manifest.json')) ? load('evm-fix-hmac') : null;
    const tampering = inputs.tampering ?? {};
    const generation = (f: FileState): number => {
      const t = /^generation (\d+)$/.exec(tampering[f.path] ?? '');
      if (t) return Number(t[1]);
      const g = f.generation ?? f1?.res.files.find((x) => x.path === f.path)?.generation;
      assert.ok(g !== undefined, `${f.path}: generation known`);
      return g;
    };
    const emu = boot(fx, hex(inputs.evmKeyHex), () => 0);
    const fs = ext4Fs(inputs.fsUuid);
    // enforce mode changes nothing: the state after the run is the tampered disk it booted with
    for (const f of res.files) {
      if (!regular(f)) continue;
      const content = inputs.createdContents?.[f.path];
      emu.addFile({
        path: f.path,
        fs,
        uid: f.uid,
        gid: f.gid,
        mode: f.mode,
        ino: f.ino,
        generation: generation(f),
        size: f.size,
        ...(content !== undefined
          ? { content: new TextEncoder().encode(content) }
          : { digests: digestsOf(inputs, f.path) }),
        xattrs: new Map(Object.entries(f.xattrs).map(([k, v]) => [k, hex(v)])),
      });
    }
    assert.equal(emu.loadPolicy(man.policy).ok, true);
    let checked = 0;
    man.workload.forEach((a, i) => {
      const r = runAccess(emu, a, i, fs);
      assert.equal(r.outcome, res.accesses[i]!.outcome, `#${i} ${a.op} ${a.path}`);
      assert.deepEqual(
        causes(r.audit.map((x) => x.fields)),
        causes(res.accesses[i]!.audit),
        `#${i} ${a.op} ${a.path}: audit`,
      );
      checked++;
    });
    assert.equal(checked, res.accesses.length);
    const kernel = parseAsciiList(fx.ascii);
    const ours = emu.store.listEntries('sha1');
    assert.equal(ours.length, kernel.length, 'entry count');
    assert.deepEqual(
      Buffer.from(emu.store.binary('sha1')),
      readFileSync(join(fx.dir, 'binary_runtime_measurements')),
      'binary list bytes',
    );
    checkPcrs(emu, fx, 'evm-tamper-enforce');
  },
);
