/**
 * Conformance with the real kernel: the appraisal scenarios captured by the real-kernel suite
 * (test/fixtures/kernel/appraise-*, Debian 6.1 under QEMU) are replayed through the emulator with
 * the debian-6.1 profile. Compared: the decision and the audit op/cause/comm/name of every access,
 * the xattrs fix mode leaves, the measurement list bytes and all PCRs.
 *
 * Inputs the fixtures hold: command line, policy, workload, the labels (security.ima values), file
 * metadata, each file's content digests (sha1/sha256/sha512, computed by the harness from the
 * staged file, never from the kernel's list) and the certificates the guest tried to load into
 * `_ima` (RSA loads; ECDSA is refused by this kernel, as the profile says). Every access of every
 * scenario is checked. The harness also keeps the certificates of keys the kernel never had (the
 * 'other key', the ECDSA key): the test proves each such signature is valid under its own key, so
 * the kernel's invalid-signature is about the keyring, not a corrupt label.
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
import { toHex } from '../../../src/core/bytes/bytes.ts';
import { loadPublicKey } from '../../../src/core/keys/keys.ts';
import { Keyring, verifySignatureValue } from '../../../src/core/labels/ima-signature.ts';
import { parseSignatureV2 } from '../../../src/core/labels/signature-header.ts';
import type { FileState } from '../../../src/host/vm/types.ts';

interface Manifest {
  cmdline: string;
  policy: string | null;
  modules: string[];
  banks: string[];
  workload: WorkloadAccess[];
  inputs: {
    labels?: Record<string, string>;
    labelsBefore?: Record<string, string>;
    fileDigests?: Record<string, Record<string, string>>;
    signingCertsDerHex?: Record<string, string>;
  };
  imaCertsDerHex?: string[];
}
interface Result {
  accesses: Array<{
    op: string;
    path: string;
    outcome: string;
    status: number;
    audit: Array<Record<string, string>>;
  }>;
  files: FileState[];
}

const dirOf = (s: string): string => join(FIXTURES_DIR, 'kernel', s);
const hexBytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

function pcrFile(text: string): Uint8Array[] {
  return text
    .trim()
    .split('\n')
    .map((l) => hexBytes(l.split(': ')[1]!.trim()));
}

for (const scenario of ['appraise-enforce', 'appraise-log', 'appraise-fix', 'appraise-enforce-sha512']) {
  const dir = dirOf(scenario);
  test(
    `real kernel conformance: ${scenario}`,
    { skip: existsSync(join(dir, 'manifest.json')) ? false : 'fixture not captured' },
    () => {
      const man = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
      const res = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as Result;
      const ascii = readFileSync(join(dir, 'ascii_runtime_measurements'), 'latin1');
      const kernelList = parseAsciiList(ascii);
      // labels as written before the boot; enforce/log runs change no xattr, so their final state is the input
      const labels: Record<string, string> =
        man.inputs.labelsBefore ??
        man.inputs.labels ??
        Object.fromEntries(
          res.files.flatMap((f) => (f.xattrs['security.ima'] ? [[f.path, f.xattrs['security.ima']]] : [])),
        );
      const uuid = /fsuuid=([0-9a-f-]{36})/.exec(man.policy ?? '')?.[1] ?? null;
      const fs = ext4Fs(uuid);
      const banks = man.banks;
      const initialPcrs = new Map(
        banks.map((b) => [
          b,
          pcrFile(readFileSync(join(dir, `pcrs-${b}.txt`), 'utf8')).map((v, i) =>
            i < 10 ? v : new Uint8Array(v.length),
          ),
        ]),
      );
      const agg = /^10 [0-9a-f]+ \S+ ([a-z0-9]+):([0-9a-f]+) boot_aggregate/.exec(ascii)!;
      const emu = new Emulator({
        profile: getProfile('debian-6.1'),
        cmdline: man.cmdline,
        banks,
        modules: man.modules,
        initialPcrs,
        bootAggregate: { algo: agg[1]!, digest: hexBytes(agg[2]!) },
      });
      const fileDigests = man.inputs.fileDigests;
      assert.ok(fileDigests, `${scenario}: the manifest keeps the content digests`);
      for (const f of res.files) {
        if ((f.mode & 0o170000) !== 0o100000) continue;
        const ima = labels[f.path];
        emu.addFile({
          path: f.path,
          fs,
          content: undefined,
          digests: new Map(Object.entries(fileDigests[f.path] ?? {}).map(([a, h]) => [a, hexBytes(h)])),
          size: f.size,
          uid: f.uid,
          gid: f.gid,
          mode: f.mode,
          ino: f.ino,
          // contents are not in the fixture: the names say which files are scripts and binaries
          exe: f.path.endsWith('.sh') ? 'script' : f.path.endsWith('/true') ? 'elf' : undefined,
          xattrs: ima ? new Map([['security.ima', hexBytes(ima)]]) : new Map(),
        });
      }
      for (const h of man.imaCertsDerHex ?? []) {
        const der = hexBytes(h);
        emu.addKey(emu.profile.imaKeyring, loadPublicKey(der), der);
      }
      assert.equal(emu.loadPolicy(man.policy ?? '').ok, true);
      let checked = 0;
      man.workload.forEach((a, i) => {
        const got = runAccess(emu, a, i, fs);
        const want = res.accesses[i]!;
        checked++;
        const brief = (au: ReadonlyArray<Readonly<Record<string, string>>>) =>
          au
            .filter((r) => r.op === 'appraise_data' || r.op === 'collect_data')
            .map((r) => `${r.op}:${r.cause} comm=${r.comm} name=${r.name}`);
        assert.equal(got.outcome, want.outcome, `${scenario} #${i} ${a.op} ${a.path}: decision`);
        assert.equal(got.status, want.status, `${scenario} #${i} ${a.op} ${a.path}: exit status`);
        assert.deepEqual(
          brief(got.audit.map((r) => r.fields)),
          brief(want.audit),
          `${scenario} #${i} ${a.op} ${a.path}: audit`,
        );
      });
      // the list: byte-identical entries (template data and every digest) and all PCRs
      const ours = emu.store.listEntries('sha1');
      assert.equal(ours.length, kernelList.length, `${scenario}: entry count`);
      ours.forEach((e, k) => {
        const theirs = kernelList[k]!;
        assert.equal(
          toHex(e.templateData),
          toHex(theirs.templateData ?? new Uint8Array(0)),
          `${scenario}: entry ${k} template data`,
        );
        assert.equal(toHex(e.digest), toHex(theirs.digest), `${scenario}: entry ${k} digest`);
      });
      assert.deepEqual(
        Buffer.from(emu.store.binary('sha1')),
        readFileSync(join(dir, 'binary_runtime_measurements')),
        `${scenario}: binary list bytes`,
      );
      for (const b of banks) {
        const want = readFileSync(join(dir, `pcrs-${b}.txt`), 'utf8')
          .trim()
          .split('\n');
        const got = emu.store.pcrs.get(b)!.map((v, i) => `PCR-${String(i).padStart(2, '0')}: ${toHex(v)}`);
        assert.deepEqual(
          got.slice(0, 11),
          want.slice(0, 11).map((l) => l.replace(/: (.*)$/, (_m, h: string) => `: ${h.toLowerCase()}`)),
          `${scenario}: PCRs ${b}`,
        );
      }
      if (man.inputs.labelsBefore) {
        // fix mode: the xattrs the kernel left, file by file
        for (const f of res.files) {
          if ((f.mode & 0o170000) !== 0o100000) continue;
          const x = emu.inode(f.path, fs)!.xattrs.get('security.ima');
          assert.equal(
            x ? toHex(x) : undefined,
            f.xattrs['security.ima'],
            `${scenario}: security.ima of ${f.path} after fix`,
          );
        }
      }
      // the policy records (type=1807) the kernel logged for the write
      const strip = (l: string): string => l.replace(/^.*?type=1807 audit\([^)]*\): /, '');
      const kernel1807 = readFileSync(join(dir, 'dmesg.txt'), 'latin1')
        .split('\n')
        .filter((l) => l.includes('type=1807'))
        .map(strip);
      assert.deepEqual(
        emu.audit.filter((a) => a.type === 1807).map((a) => strip(a.raw)),
        kernel1807,
        `${scenario}: policy audit records`,
      );
      assert.equal(checked, res.accesses.length, `${scenario}: every access checked`);
      assert.equal(checked, man.workload.length);
      console.log(`# ${scenario}: ${checked}/${res.accesses.length} accesses checked`);
    },
  );
}

/**
 * The labels the kernel refused with invalid-signature for want of a key (the 'other key' never
 * loaded, the ECDSA key this kernel cannot load) are genuine signatures of the file contents
 * under their own certificates: the denial is the keyring's (a profile fact), not a corrupt label.
 */
test(
  'real kernel conformance: refused signatures verify under their own (unloaded) keys',
  { skip: existsSync(join(dirOf('appraise-enforce'), 'manifest.json')) ? false : 'fixture not captured' },
  () => {
    const man = JSON.parse(
      readFileSync(join(dirOf('appraise-enforce'), 'manifest.json'), 'utf8'),
    ) as Manifest;
    const certs = man.inputs.signingCertsDerHex!;
    const digests = man.inputs.fileDigests!;
    const labels = man.inputs.labels!;
    const ring = (h: string): Keyring => new Keyring([loadPublicKey(hexBytes(h))]);
    const verify = (path: string, h: string): string => {
      const sig = parseSignatureV2(hexBytes(labels[path]!));
      return verifySignatureValue(sig, (a) => hexBytes(digests[path]![a.name]!), ring(h)).status;
    };
    for (const p of ['sig-otherkey.txt', 'u/otherkey.txt']) {
      assert.equal(verify(p, certs.other!), 'pass', `${p} under the other key`);
      assert.equal(verify(p, certs.key!), 'unknown-key', `${p} under the loaded key`);
    }
    for (const p of ['sig-ecdsa.txt', 'u/ecdsa.txt']) assert.equal(verify(p, certs.ecdsa!), 'pass', p);
    // and the ones the kernel accepted verify under the loaded key
    for (const p of ['sig-good.txt', 'sig-sha1.txt', 'u/sig.txt'])
      assert.equal(verify(p, certs.key!), 'pass', p);
    for (const p of ['sig-bad.txt', 'u/sig-bad.txt']) assert.equal(verify(p, certs.key!), 'fail', p);
  },
);
