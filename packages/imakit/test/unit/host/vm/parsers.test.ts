/**
 * The harness's pure parts, without a boot: audit record parsing (quoted and hex-encoded
 * untrusted strings), attribution of records to accesses by marker, getfattr/stat/lsattr output,
 * PCR files, shell quoting, crash detection and workload validation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { auditByAccess, parseAuditLine } from '../../../../src/host/vm/audit.ts';
import { parseFileStates, parseGetfattr, parsePcrFile } from '../../../../src/host/vm/artifacts.ts';
import { guestScript, shq } from '../../../../src/host/vm/guest-script.ts';
import { detectCrash, kernelCmdline } from '../../../../src/host/vm/run.ts';
import { isImakitError } from '../../../../src/errors.ts';

test('audit lines: quoted and hex-encoded names', () => {
  const r = parseAuditLine(
    '[    5.1] audit: type=1800 audit(1.2:7): pid=9 uid=0 op=appraise_data cause=invalid-hash comm="cat" name="/data/x y" dev="vdb" ino=12 res=0 errno=0',
  );
  assert.equal(r?.type, 1800);
  assert.equal(r?.fields.cause, 'invalid-hash');
  assert.equal(r?.fields.name, '/data/x y');
  assert.equal(r?.fields.ino, '12');
  // the kernel hex-encodes untrusted strings holding a space (audit_log_untrustedstring)
  const h = parseAuditLine(
    `audit: type=1800 audit(1.2:8): op=appraise_data cause=missing-hash name=${Buffer.from('/data/a b').toString('hex').toUpperCase()} res=0`,
  );
  assert.equal(h?.fields.name, '/data/a b');
  assert.equal(parseAuditLine('ima: policy update completed'), null);
});

test('audit records are attributed to the access whose markers surround them', () => {
  const log = [
    '[1] IMAKIT-MARK access 0 begin',
    '[2] audit: type=1800 audit(1:1): op=appraise_data cause=missing-hash name="/data/a" res=0',
    '[3] IMAKIT-MARK access 0 end',
    '[4] IMAKIT-MARK access 1 begin',
    '[5] IMAKIT-MARK access 1 end',
    '[6] audit: type=1800 audit(1:2): op=appraise_data cause=invalid-hash name="/data/b" res=0',
    '[7] IMAKIT-MARK collect',
    '[8] audit: type=1800 audit(1:3): op=appraise_data cause=late name="/data/c" res=0',
  ].join('\n');
  const per = auditByAccess(log, 2);
  assert.deepEqual(
    per.map((l) => l.map((r) => r.fields.cause)),
    [['missing-hash'], ['invalid-hash']],
  );
});

test('getfattr, stat and lsattr output joined into file states', () => {
  const x = parseGetfattr('# file: .\n\n# file: ./a\\040b\nsecurity.ima=0x0404ab\nuser.t="hi"\n\n');
  assert.deepEqual(x.get('a b'), { 'security.ima': '0404ab', 'user.t': '6869' });
  const files = parseFileStates(
    '2 0 0 41ed 4096 .\n12 1000 1000 81a4 6 ./a b\n',
    '# file: ./a\\040b\nsecurity.evm=0x02aa\n',
    '   42 --------------e------- ./a b\n',
  );
  assert.equal(files.length, 2);
  assert.deepEqual(files[1], {
    path: 'a b',
    ino: 12,
    uid: 1000,
    gid: 1000,
    mode: 0o100644,
    size: 6,
    generation: 42,
    xattrs: { 'security.evm': '02aa' },
  });
});

test('PCR files: 24 values, lowercase; incomplete files rejected', () => {
  const text = Array.from(
    { length: 24 },
    (_, i) => `PCR-${String(i).padStart(2, '0')}: ${'AB'.repeat(20)}`,
  ).join('\n');
  const p = parsePcrFile(text);
  assert.equal(p.length, 24);
  assert.equal(p[23], 'ab'.repeat(20));
  assert.throws(
    () => parsePcrFile(text.split('\n').slice(1).join('\n')),
    (e: unknown) => isImakitError(e, 'E_PCR_FILE'),
  );
});

test('shell quoting survives the real shell', () => {
  for (const s of ["it's", 'a b', '$(reboot)', '`x`', '"q"', 'back\\slash', 'new\nline']) {
    const r = spawnSync('sh', ['-c', `printf %s ${shq(s)}`], { encoding: 'utf8' });
    assert.equal(r.stdout, s);
  }
  assert.throws(
    () => shq('a\0b'),
    (e: unknown) => isImakitError(e, 'E_USAGE'),
  );
});

test('guest script: workload validation and syntax', () => {
  const inputs = {
    imaCertCount: 1,
    evmCertCount: 0,
    imaV1KeyCount: 0,
    hasEvmKey: false,
    hasPolicy: true,
    hasData: true,
    modules: ['ext4'],
  };
  const script = guestScript(
    {
      workload: [
        { op: 'read', path: "it's here.txt" },
        { op: 'chmod', path: 'x', mode: '0600' },
      ],
    },
    inputs,
  );
  const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const bad of [
    { op: 'read', path: '/abs' },
    { op: 'read', path: 'a/../../b' },
    { op: 'read', path: 'x', uid: 5 },
    { op: 'chmod', path: 'x', mode: 'rwx' },
    { op: 'chown', path: 'x', owner: 'root' },
    { op: 'setxattr', path: 'x', name: 'user.a' },
  ] as const)
    assert.throws(
      () => guestScript({ workload: [bad] }, inputs),
      (e: unknown) => isImakitError(e, 'E_USAGE'),
      JSON.stringify(bad),
    );
});

test('crash detection and command line', () => {
  assert.equal(detectCrash('[ 7.1] BUG: kernel NULL pointer dereference, address: 0\n')?.code, 'E_VM_OOPS');
  assert.equal(
    detectCrash('Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100')?.code,
    'E_VM_BOOT',
  );
  assert.equal(detectCrash('ima: policy update completed'), null);
  assert.match(
    kernelCmdline({ append: ['ima_policy=tcb'] }),
    /^console=ttyS0,115200 panic=-1 oops=panic .* ima_policy=tcb$/,
  );
  assert.throws(
    () => kernelCmdline({ append: ['a\nb'] }),
    (e: unknown) => isImakitError(e, 'E_USAGE'),
  );
});
