/**
 * OVMF (real-kernel.md §6 i): a UEFI event log whose replay matches the TPM, the initrd measured
 * into PCR 9 by the EFI stub, and the sha256 boot_aggregate over PCR0-9. Run concurrently with
 * the expected-oops boot (§5.3, f0) to show that two runs do not clash. Then the harness's error
 * paths: policy rejected, timeout, abort, bad inputs; and no QEMU/swtpm survives any of them.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runVm, type VmResult, type VmSpec } from '../../src/host/vm/index.ts';
import { isImakitError } from '../../src/errors.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  bootAggregate,
  digestField,
  evmctlReplay,
  fieldString,
  parseList,
  replayPcr,
  saveFixture,
  tpm2EventlogPcrs,
  printBootTimes,
} from './helpers.ts';
import { run, tempDir } from '../helpers.ts';

/** Processes whose command line mentions `marker` (our own temp root). */
function survivors(marker: string): string[] {
  const r = run('ps', ['-eo', 'pid,args']);
  return r.stdout.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('real kernel: OVMF, concurrency and error paths', { concurrency: 1 }, () => {
  const root = tempDir('imakit-kernel-fw-');
  after(() => {
    root.cleanup();
    printBootTimes();
  });
  const opts = (name: string, extra: Record<string, unknown> = {}) => {
    const tmp = join(root.dir, `${name}-tmp`);
    mkdirSync(tmp, { recursive: true });
    return {
      kernelDir: KERNEL_DIR,
      outDir: join(root.dir, `${name}-out`),
      tmpDir: tmp,
      timeoutMs: BOOT_TIMEOUT_MS,
      ...extra,
    };
  };

  test('i + f0 at once: OVMF event log / PCR9, and the EVM oops without the lsm= workaround', async () => {
    const ovmfSpec: VmSpec = {
      append: ['ima_policy=tcb', 'ima_hash=sha256', 'ima_template=ima-ng'],
      firmware: 'ovmf',
      banks: ['sha1', 'sha256'],
    };
    const oopsSpec: VmSpec = {
      append: ['ima_appraise=fix', 'evm=fix', 'ima_hash=sha256', 'ima_template=ima-sig'],
      evmKey: { plain: new Uint8Array(32).fill(7) },
    };
    const t0 = performance.now();
    const [ovmf, oops] = await Promise.allSettled([
      runVm(ovmfSpec, opts('ovmf', { keep: true })),
      runVm(oopsSpec, { ...opts('oops'), timeoutMs: 120_000 }),
    ]);
    const bothMs = Math.round(performance.now() - t0);
    // f0: the oops of §5.3 ends the boot (panic=-1 oops=panic -no-reboot) as a typed error
    assert.equal(oops.status, 'rejected');
    const e = oops.status === 'rejected' ? (oops.reason as unknown) : null;
    assert.ok(isImakitError(e, 'E_VM_OOPS'), `expected E_VM_OOPS, got ${String(e)}`);
    assert.match((e as Error).message, /evm_protected_xattr|evm_inode_init_security|strlen|NULL pointer/);
    assert.deepEqual(survivors(join(root.dir, 'oops-tmp')), [], 'no qemu/swtpm left after the oops');
    assert.equal(ovmf.status, 'fulfilled', ovmf.status === 'rejected' ? String(ovmf.reason) : '');
    const r = (ovmf as PromiseFulfilledResult<VmResult>).value;
    // UEFI crypto-agile log replays to the TPM's PCR0-9 on both banks
    const tl = tpm2EventlogPcrs(join(r.outDir, 'binary_bios_measurements'));
    assert.equal(tl.status, 0);
    assert.match(tl.text, /EV_EFI_/, 'a UEFI event log');
    for (const b of ['sha1', 'sha256'])
      for (let i = 0; i <= 9; i++)
        if (tl.pcrs[b]?.[i] !== undefined) assert.equal(tl.pcrs[b]?.[i], r.pcrs[b]?.[i], `PCR${i} ${b}`);
    // the EFI stub measured the initrd into PCR 9: its event digest is sha256 of our initramfs
    const work = readFileSync(join(r.outDir, 'work-dir.txt'), 'utf8').trim();
    const initrdSha = createHash('sha256')
      .update(readFileSync(join(work, 'initramfs.cpio')))
      .digest('hex');
    rmSync(work, { recursive: true, force: true });
    assert.match(tl.text, new RegExp(`PCRIndex: 9[\\s\\S]*?${initrdSha}`), 'PCR9 event = sha256(initrd)');
    assert.notEqual(r.pcrs.sha256?.[9], '00'.repeat(32));
    // boot_aggregate covers PCR0-9 (so the initrd) and the list replays
    const entries = parseList(r.binaryList);
    assert.equal(fieldString(entries[0]?.fields[1]), 'boot_aggregate');
    assert.equal(digestField(entries[0]?.fields[0]).hex, bootAggregate(r.pcrs.sha256 ?? [], 'sha256'));
    for (const b of ['sha1', 'sha256']) assert.equal(replayPcr(entries, b), r.pcrs[b]?.[10]);
    assert.equal(evmctlReplay(r.outDir, ['sha1', 'sha256']).status, 0);
    BOOT_TIMES.push({
      scenario: 'i OVMF (concurrent with f0)',
      bootMs: r.info.bootMs,
      totalMs: bothMs,
      asserts: 'UEFI log replay PCR0-9, PCR9 = sha256(initrd), boot_aggregate PCR0-9; f0 oops -> E_VM_OOPS',
    });
    saveFixture('ovmf-uefi', r, ovmfSpec, {
      description: 'OVMF (UEFI, no secure boot), tcb policy, ima-ng, sha256 (scenario i)',
      asserts: [
        'UEFI event log replays to PCR0-9',
        'initrd digest in PCR9',
        'boot_aggregate = sha256(PCR0-9)',
        'list replay',
      ],
      inputs: { initrdSha256: initrdSha },
    });
  });

  test('a policy the kernel rejects gives E_VM_POLICY_REJECTED with the kernel message', async () => {
    const o = opts('policy');
    await assert.rejects(
      runVm({ append: ['ima_hash=sha256'], policy: 'measure func=NO_SUCH_HOOK\n' }, o),
      (e: unknown) => {
        assert.ok(isImakitError(e, 'E_VM_POLICY_REJECTED'), String(e));
        assert.match((e as Error).message, /policy|invalid/i);
        return true;
      },
    );
    assert.match(readFileSync(join(o.outDir, 'dmesg.txt'), 'utf8'), /type=1807/);
    assert.deepEqual(survivors(o.tmpDir), []);
  });

  test('timeout and abort kill QEMU and swtpm', async () => {
    const t = opts('timeout', { timeoutMs: 2500 });
    await assert.rejects(runVm({ append: ['ima_policy=tcb'] }, t), (e: unknown) =>
      isImakitError(e, 'E_VM_TIMEOUT'),
    );
    assert.deepEqual(survivors(t.tmpDir), []);
    const ac = new AbortController();
    const a = opts('abort', { signal: ac.signal });
    setTimeout(() => ac.abort(), 2000);
    await assert.rejects(runVm({ append: ['ima_policy=tcb'] }, a), (e: unknown) =>
      isImakitError(e, 'E_VM_BOOT'),
    );
    assert.deepEqual(survivors(a.tmpDir), []);
  });

  test('bad inputs are refused before any boot', async () => {
    const bad = async (spec: VmSpec, o: Parameters<typeof runVm>[1], code: string): Promise<void> => {
      await assert.rejects(runVm(spec, o), (e: unknown) => {
        assert.ok(isImakitError(e) && e.code === code, `${code}: got ${String(e)}`);
        return true;
      });
    };
    await bad({}, { kernelDir: join(root.dir, 'no-kernel') }, 'E_VM_SETUP');
    await bad({ files: join(root.dir, 'missing-dir') }, opts('nofiles'), 'E_VM_IMAGE');
    await bad({ workload: [{ op: 'read', path: '../etc/passwd' }] }, opts('badpath'), 'E_USAGE');
    await bad({ modules: ['no_such_module'] }, opts('badmod'), 'E_USAGE');
    await bad({ banks: ['md5' as never] }, opts('badbank'), 'E_USAGE');
    const full = join(root.dir, 'nonempty');
    mkdirSync(full, { recursive: true });
    writeFileSync(join(full, 'x'), 'x');
    await bad({}, { kernelDir: KERNEL_DIR, outDir: full }, 'E_USAGE');
  });
});
