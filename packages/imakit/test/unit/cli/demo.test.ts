import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { getXattr } from '../../../src/host/fs/xattr.ts';
import { parseImaXattr } from '../../../src/core/labels/ima-xattr.ts';
import { parseEvmXattr } from '../../../src/core/labels/evm-xattr.ts';
import { tempDir } from '../../helpers.ts';
import { swtpmAvailable } from '../../../src/cli/demo/attest-demo.ts';

test('demo labels a real tree, verifies it, detects exactly the tampered files, and attests it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const io = memoryIo();
    const ws = join(dir, 'ws');
    const code = await main(['demo', '--json', '--files', '40', '--dir', ws], io);
    assert.equal(code, 0, io.err());
    const r = JSON.parse(io.out());
    assert.equal(r.files, 40);
    assert.equal(r.label.labelled, 40);
    assert.equal(r.verify.passed, 40);
    assert.deepEqual(r.verify.failed, []);
    assert.equal(r.reverify.passed, 38);
    assert.equal(r.detectedExactly, true);
    const byLabel = Object.fromEntries(
      r.reverify.failed.map((f: { label: string; path: string }) => [f.label, f.path]),
    );
    assert.equal(byLabel['security.ima'], r.tampered[0].path);
    assert.equal(byLabel['security.evm'], r.tampered[1].path);
    // the emulated kernel (appraise_tcb, enforce, the demo's certificate and EVM key) denies exactly
    // the tampered files: the content change breaks the signature, the chmod breaks the HMAC
    const treeDir = join('tree', basename(r.source));
    assert.equal(r.prediction.mode, 'enforce');
    assert.ok(r.prediction.checks >= 40);
    const denied = r.prediction.denied.map(
      (d: { path: string; op: string; cause: string }) => `${join(treeDir, d.path)} ${d.op} ${d.cause}`,
    );
    const ops = (p: string, cause: string): string[] =>
      r.prediction.denied
        .filter((d: { path: string }) => join(treeDir, d.path) === p)
        .map((d: { op: string }) => `${p} ${d.op} ${cause}`);
    assert.ok(ops(r.tampered[0].path, 'invalid-signature').length >= 1, denied.join('\n'));
    assert.ok(ops(r.tampered[1].path, 'invalid-HMAC').length >= 1, denied.join('\n'));
    assert.deepEqual(
      denied.sort(),
      [...ops(r.tampered[0].path, 'invalid-signature'), ...ops(r.tampered[1].path, 'invalid-HMAC')].sort(),
    );
    // the labels are real xattrs on the kept workspace, in the kernel's formats
    const sample = join(ws, r.tampered[0].path);
    const ima = parseImaXattr(getXattr(sample, 'security.ima')!);
    assert.equal(ima.kind, 'signature');
    const evm = parseEvmXattr(getXattr(sample, 'security.evm')!);
    assert.equal(evm.kind, 'hmac');

    // attestation: the verifier and an agent on swtpm (CI installs swtpm; without it the step says
    // how to get it and the demo still exits 0)
    const a = r.attestation;
    if (!swtpmAvailable()) {
      assert.equal(a.status, 'skipped');
      assert.match(a.reason, /apt-get install swtpm swtpm-tools/);
      return;
    }
    assert.equal(a.status, 'done', JSON.stringify(a));
    assert.equal(a.tpm.ekCertificate, true, 'enrolled with the manufactured EK certificate');
    assert.deepEqual(a.tpm.banks, ['sha1', 'sha256']);
    assert.match(a.verifier.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(a.list.entries, 41, 'boot_aggregate and one entry per labelled file');
    assert.equal(a.referenceSet.paths, 40);
    assert.equal(a.first.status, 'pass', JSON.stringify(a.first));
    assert.equal(a.first.sentFrom, 0);
    assert.equal(a.second.status, 'fail', JSON.stringify(a.second));
    assert.equal(a.second.sentFrom, a.first.sentBytes, 'only the appended entry was sent');
    assert.equal(a.changed.entry, 41);
    assert.equal(a.second.failure.step, 'refs');
    assert.equal(a.second.failure.entry, 41);
    assert.equal(a.second.failure.path, a.changed.measuredPath);
    assert.equal(a.changed.measuredPath, join(ws, a.changed.path));
    assert.ok(a.reason.includes(a.changed.measuredPath), a.reason);
    assert.equal(a.caught, true);
    // the changed file is one the label demo did not touch, and it was really changed on disk
    assert.ok(!r.tampered.some((t: { path: string }) => t.path === a.changed.path));
    assert.match(
      readFileSync(join(ws, a.changed.path), 'latin1'),
      /# changed after the first attestation\n$/,
    );
  } finally {
    cleanup();
  }
});

test('demo text output names the detected files; a source without files is a clear error', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = join(dir, 'src');
    mkdirSync(src);
    for (let i = 0; i < 5; i++) writeFileSync(join(src, `file${i}.sh`), `#!/bin/sh\necho ${i}\n`);
    const io = memoryIo();
    assert.equal(await main(['demo', '--source', src, '--no-attest'], io), 0, io.err());
    assert.doesNotMatch(io.out(), /attestation/);
    assert.match(io.out(), /verified\s+5\/5 files pass/);
    assert.match(io.out(), /security\.ima fail/);
    assert.match(io.out(), /security\.evm fail/);

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'only'), 'x');
    const io2 = memoryIo();
    assert.equal(await main(['demo', '--source', empty], io2), 3);
    assert.match(io2.err(), /E_IO_READ/);
  } finally {
    cleanup();
  }
});
