/**
 * Conformance with the real kernel, measurement scenarios (test/fixtures/kernel/measure-*): the
 * workload of each captured boot is replayed through the emulator (debian-6.1 profile, the boot's
 * command line and PCR banks) and the emulated list must equal the kernel's byte for byte, with the
 * same PCRs in every bank.
 *
 * Inputs: the fixture does not keep file contents, so each file's digest for each of its versions
 * (a write makes a new version) is taken from the kernel's own list, in order; the firmware PCRs
 * 0-9 come from the fixture's PCR files and the emulator computes boot_aggregate from them (SeaBIOS
 * and OVMF boots). For scenario d (critical data) the inputs are also the kernel release, the
 * certificates added to `_ima` before and after the policy load, and the build-time kernel key of
 * `.builtin_trusted_keys` (only the kernel's list holds it). Everything else (which accesses are
 * measured, dedup, re-measurement, violations and their order, names, template fields and digests,
 * KEY_CHECK / CRITICAL_DATA buffers, per-rule templates, PCR extension, padded banks) is the
 * emulator's own doing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile } from '../../../src/kernel/profiles.ts';
import { runAccess, type WorkloadAccess } from '../../../src/kernel/workload.ts';
import { absoluteName, type Inode } from '../../../src/kernel/inode-state.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';
import { loadPublicKey } from '../../../src/core/keys/keys.ts';
import type { FileState } from '../../../src/host/vm/types.ts';

interface Manifest {
  cmdline: string;
  banks: string[];
  modules: string[];
  policy: string | null;
  workload: WorkloadAccess[];
  inputs: { earlyCertDerHex?: string; lateCertDerHex?: string; kernelRelease?: string };
}

const hexBytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

/** name → digests in list order, from `d-ng` (`algo:hex`), `d-ngv2` (`ima:algo:hex`) or the legacy `d` (sha1). */
function listDigests(ascii: string): Map<string, Array<{ algo: string; digest: Uint8Array }>> {
  const out = new Map<string, Array<{ algo: string; digest: Uint8Array }>>();
  for (const line of ascii.split('\n')) {
    const m = /^\s*\d+ ([0-9a-f]+) (\S+) (?:(?:ima|verity):)?(?:([a-z0-9-]+):)?([0-9a-f]+) (\S+)/.exec(line);
    if (!m || /^0+$/.test(m[1]!)) continue; // violations carry no digest
    const name = m[5]!;
    const l = out.get(name) ?? [];
    l.push({ algo: m[3] ?? 'sha1', digest: hexBytes(m[4]!) });
    out.set(name, l);
  }
  return out;
}

/** The build-time kernel key the kernel measured from `.builtin_trusted_keys` (ima-buf buffer). */
function builtinKeys(ascii: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const line of ascii.split('\n')) {
    const m = /^\s*\d+ [0-9a-f]+ ima-buf \S+ \.builtin_trusted_keys ([0-9a-f]+)$/.exec(line);
    if (m) out.push(hexBytes(m[1]!));
  }
  return out;
}

for (const scenario of [
  'measure-ima-sig',
  'measure-ima-ng-4banks',
  'measure-ima-legacy-sha1',
  'measure-custom-template',
  'measure-templates-critical-data',
  'ovmf-uefi',
]) {
  const dir = join(FIXTURES_DIR, 'kernel', scenario);
  test(
    `real kernel conformance: ${scenario}`,
    { skip: existsSync(join(dir, 'manifest.json')) ? false : 'fixture not captured' },
    () => {
      const man = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      const res = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
        files: FileState[];
        accesses: Array<{ outcome: string }>;
      };
      const ascii = readFileSync(join(dir, 'ascii_runtime_measurements'), 'latin1');
      const digests = listDigests(ascii);
      const pcrFiles = new Map(
        man.banks.map((b) => [
          b,
          readFileSync(join(dir, `pcrs-${b}.txt`), 'utf8')
            .trim()
            .split('\n'),
        ]),
      );
      const initialPcrs = new Map(
        [...pcrFiles].map(([b, lines]) => [
          b,
          lines.map((l, i) =>
            i < 10
              ? hexBytes(l.split(': ')[1]!.trim())
              : new Uint8Array(hexBytes(l.split(': ')[1]!.trim()).length),
          ),
        ]),
      );
      // per inode: which list digest each version maps to (versions are numbered as they are first hashed)
      const versionIndex = new Map<string, Map<number, number>>();
      const legacy = man.cmdline.includes('ima_template=ima ') || man.cmdline.endsWith('ima_template=ima');
      const source = (inode: Inode, algo: string): Uint8Array | undefined => {
        const full = absoluteName(inode).replace(/ /g, '_');
        const name = legacy && full.length > 255 ? full.split('/').pop()! : full;
        const l = digests.get(name);
        if (!l) return undefined;
        const vi = versionIndex.get(name) ?? new Map<number, number>();
        versionIndex.set(name, vi);
        if (!vi.has(inode.version)) vi.set(inode.version, vi.size);
        const d = l[vi.get(inode.version)!];
        return d && d.algo === algo ? d.digest : undefined;
      };
      const emu = new Emulator({
        profile: getProfile('debian-6.1'),
        cmdline: man.cmdline,
        banks: man.banks,
        modules: man.modules,
        initialPcrs,
        digestSource: source,
        kernelRelease: man.inputs.kernelRelease,
        builtinTrustedKeys: builtinKeys(ascii),
      });
      const uuid = /fsuuid=([0-9a-f-]{36})/.exec(man.policy ?? '')?.[1] ?? null;
      const fs = ext4Fs(uuid);
      // keys: added to _ima before the policy load (queued), the policy, then the late key
      const addCert = (h: string | undefined): void => {
        if (h === undefined) return;
        const der = hexBytes(h);
        assert.equal(emu.addKey(emu.profile.imaKeyring, loadPublicKey(der), der).ok, true);
      };
      addCert(man.inputs.earlyCertDerHex);
      if (man.policy !== null) assert.equal(emu.loadPolicy(man.policy).ok, true, `${scenario}: policy`);
      addCert(man.inputs.lateCertDerHex);
      for (const f of res.files) {
        if ((f.mode & 0o170000) !== 0o100000) continue;
        emu.addFile({
          path: f.path,
          fs,
          uid: f.uid,
          gid: f.gid,
          mode: f.mode,
          ino: f.ino,
          size: f.size,
          xattrs: new Map(Object.entries(f.xattrs).map(([k, v]) => [k, hexBytes(v)])),
          exe: f.path.endsWith('.sh') ? 'script' : f.path.endsWith('/true') ? 'elf' : undefined,
        });
      }
      man.workload.forEach((a, i) => {
        const r = runAccess(emu, a, i, fs);
        assert.equal(r.outcome, res.accesses[i]!.outcome, `${scenario} #${i} ${a.op} ${a.path}`);
      });
      const ours = emu.store.ascii('sha1').split('\n');
      const theirs = ascii.split('\n');
      for (let k = 0; k < Math.max(ours.length, theirs.length); k++)
        assert.equal(ours[k], theirs[k], `${scenario}: ascii line ${k}`);
      assert.deepEqual(
        Buffer.from(emu.store.binary('sha1')),
        readFileSync(join(dir, 'binary_runtime_measurements')),
        `${scenario}: binary list`,
      );
      for (const [b, lines] of pcrFiles) {
        const got = emu.store.pcrs.get(b)!.map((v) => toHex(v));
        assert.deepEqual(
          got.slice(0, 11),
          lines.slice(0, 11).map((l) => l.split(': ')[1]!.trim().toLowerCase()),
          `${scenario}: PCRs of ${b}`,
        );
      }
    },
  );
}
