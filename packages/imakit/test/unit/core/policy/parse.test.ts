import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parsePolicy,
  tokenizePolicy,
  F,
  MAINLINE_POLICY_FEATURES,
  type PolicyFeatures,
} from '../../../../src/core/policy/index.ts';

/** Debian 6.1-like features: no modsig, old appraise_flag semantics, no MMAP_CHECK_REQPROT, no trailing comments. */
const DEB61: PolicyFeatures = {
  ...MAINLINE_POLICY_FEATURES,
  funcs: new Set([...MAINLINE_POLICY_FEATURES.funcs].filter((f) => f !== 'MMAP_CHECK_REQPROT')),
  modsig: false,
  appraiseFlag: 'blacklist',
  imasigImpliesBlacklist: false,
  trailingComments: false,
  hashAlgoLast: 20,
};

// Valid rules from Documentation/ABI/testing/ima_policy and formats.md §5.
const VALID = [
  'measure func=BPRM_CHECK mask=MAY_EXEC',
  'measure func=FILE_MMAP mask=MAY_EXEC',
  'measure func=PATH_CHECK mask=MAY_READ uid=0',
  'measure func=FILE_CHECK mask=^MAY_READ euid=0',
  'dont_measure fsmagic=0x9fa0',
  'dont_measure fsmagic=9fa0',
  'dont_appraise fsmagic=0x01021994',
  'dont_measure obj_type=var_log_t',
  'dont_appraise obj_type=var_log_t',
  'dont_measure obj_type=auditd_log_t',
  'appraise fowner=0',
  'appraise fowner>999 fgroup<100',
  'measure func=KEXEC_KERNEL_CHECK pcr=4',
  'measure func=KEXEC_INITRAMFS_CHECK pcr=5',
  'measure func=KEXEC_CMDLINE fsmagic=0x9fa0',
  'measure func=KEY_CHECK keyrings=.ima|.builtin_trusted_keys',
  'measure func=KEY_CHECK template=ima-buf',
  'measure func=CRITICAL_DATA label=selinux|kernel_info uid=0',
  'appraise func=MODULE_CHECK appraise_type=imasig|modsig',
  'measure func=FILE_CHECK digest_type=verity template=ima-ngv2',
  'appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3',
  'appraise func=SETXATTR_CHECK appraise_algos=sha256,sha384,sha512',
  'appraise func=BPRM_CHECK appraise_algos=sha256 appraise_type=imasig',
  'audit func=BPRM_CHECK mask=MAY_EXEC',
  'hash func=FILE_CHECK',
  'dont_hash fsmagic=0x9fa0',
  'measure fsname=ext4 fsuuid=28B23254-9467-44c0-b6ba-34b12e85a26f',
  'appraise permit_directio func=FILE_CHECK',
  'appraise func=FILE_CHECK appraise_flag=check_blacklist appraise_type=imasig',
  '   measure\tfunc=FILE_CHECK   ',
  'measure gid=0 fowner=0 fgroup=0',
  'measure egid>10',
  'measure func=POLICY_CHECK',
  'measure func=FIRMWARE_CHECK',
  'measure func=CREDS_CHECK',
  'measure func=MMAP_CHECK_REQPROT',
];

test('valid kernel rules parse (mainline)', () => {
  for (const r of VALID) {
    const p = parsePolicy(r);
    assert.equal(p.ok, true, `${r}: ${JSON.stringify(p.diagnostics)}`);
    assert.equal(p.rules.length, 1, r);
  }
});

test('comments and blank lines are skipped; line numbers are kept', () => {
  const p = parsePolicy(
    '# header\n\n   # indented comment\nmeasure func=BPRM_CHECK\n\t\nappraise fowner=0\n',
  );
  assert.equal(p.ok, true);
  assert.deepEqual(
    p.rules.map((r) => r.line),
    [4, 6],
  );
  assert.deepEqual(
    tokenizePolicy('  measure  func=X\tmask=Y').flatMap((l) => l.tokens.map((t) => [t.text, t.col])),
    [
      ['measure', 3],
      ['func=X', 12],
      ['mask=Y', 19],
    ],
  );
});

// [rule, code, token, features?]
const INVALID: Array<[string, string, string, PolicyFeatures?]> = [
  ['func=FILE_CHECK', 'E_POLICY_SYNTAX', 'func=FILE_CHECK'],
  ['measure appraise', 'E_POLICY_DUPLICATE', 'appraise'],
  ['dont_audit func=FILE_CHECK', 'E_POLICY_UNKNOWN_KEYWORD', 'dont_audit'],
  ['measure func=', 'E_POLICY_UNKNOWN_KEYWORD', 'func='],
  ['measure foo=bar', 'E_POLICY_UNKNOWN_KEYWORD', 'foo=bar'],
  ['measure func<FILE_CHECK', 'E_POLICY_UNKNOWN_KEYWORD', 'func<FILE_CHECK'],
  ['measure func=FILE_CHECK\r', 'E_POLICY_VALUE', 'func=FILE_CHECK\r'],
  ['measure func=OPEN_CHECK', 'E_POLICY_VALUE', 'func=OPEN_CHECK'],
  ['measure func=POST_SETATTR', 'E_POLICY_VALUE', 'func=POST_SETATTR'],
  ['measure func=FILE_CHECK func=BPRM_CHECK', 'E_POLICY_DUPLICATE', 'func=BPRM_CHECK'],
  ['measure mask=MAY_OPEN', 'E_POLICY_VALUE', 'mask=MAY_OPEN'],
  ['measure mask=MAY_READ mask=^MAY_EXEC', 'E_POLICY_DUPLICATE', 'mask=^MAY_EXEC'],
  ['measure fsmagic=proc', 'E_POLICY_VALUE', 'fsmagic=proc'],
  ['measure fsuuid=1234', 'E_POLICY_VALUE', 'fsuuid=1234'],
  ['measure uid=root', 'E_POLICY_VALUE', 'uid=root'],
  ['measure uid=-1', 'E_POLICY_VALUE', 'uid=-1'],
  ['measure uid=4294967295', 'E_POLICY_VALUE', 'uid=4294967295'],
  ['measure uid=0 euid=0', 'E_POLICY_DUPLICATE', 'euid=0'],
  ['measure gid=0 egid<5', 'E_POLICY_DUPLICATE', 'egid<5'],
  ['measure pcr=64', 'E_POLICY_VALUE', 'pcr=64'],
  ['appraise pcr=11', 'E_POLICY_COMBINATION', 'pcr=11'],
  ['template=ima-sig measure', 'E_POLICY_ORDER', 'template=ima-sig'],
  ['appraise template=ima-sig', 'E_POLICY_COMBINATION', 'template=ima-sig'],
  ['measure template=ima-sigv3', 'E_POLICY_VALUE', 'template=ima-sigv3'],
  ['measure template=ima-ng template=ima-sig', 'E_POLICY_DUPLICATE', 'template=ima-sig'],
  ['measure appraise_type=imasig', 'E_POLICY_COMBINATION', 'appraise_type=imasig'],
  ['appraise appraise_type=sigv3 digest_type=verity', 'E_POLICY_ORDER', 'appraise_type=sigv3'],
  ['appraise appraise_type=imasig digest_type=verity', 'E_POLICY_ORDER', 'digest_type=verity'],
  ['appraise digest_type=verity appraise_type=imasig', 'E_POLICY_COMBINATION', 'appraise_type=imasig'],
  ['appraise func=FILE_CHECK digest_type=verity', 'E_POLICY_COMBINATION', 'digest_type=verity'],
  [
    'appraise func=MODULE_CHECK digest_type=verity appraise_type=sigv3',
    'E_POLICY_COMBINATION',
    'digest_type=verity',
  ],
  ['measure digest_type=ima', 'E_POLICY_VALUE', 'digest_type=ima'],
  [
    'appraise func=FILE_CHECK appraise_type=imasig|modsig',
    'E_POLICY_COMBINATION',
    'appraise_type=imasig|modsig',
  ],
  ['appraise appraise_type=foo', 'E_POLICY_VALUE', 'appraise_type=foo'],
  ['measure func=KEY_CHECK keyrings=.ima||x', 'E_POLICY_VALUE', 'keyrings=.ima||x'],
  ['measure func=FILE_CHECK keyrings=.ima', 'E_POLICY_COMBINATION', 'keyrings=.ima'],
  ['measure label=selinux', 'E_POLICY_COMBINATION', 'label=selinux'],
  ['measure func=KEY_CHECK mask=MAY_READ', 'E_POLICY_COMBINATION', 'mask=MAY_READ'],
  ['appraise func=KEY_CHECK', 'E_POLICY_COMBINATION', 'appraise'],
  ['measure func=CRITICAL_DATA obj_type=foo_t', 'E_POLICY_COMBINATION', 'obj_type=foo_t'],
  ['measure func=KEXEC_CMDLINE mask=MAY_READ', 'E_POLICY_COMBINATION', 'mask=MAY_READ'],
  ['measure func=SETXATTR_CHECK appraise_algos=sha256', 'E_POLICY_COMBINATION', 'appraise_algos=sha256'],
  ['appraise func=SETXATTR_CHECK', 'E_POLICY_COMBINATION', 'func=SETXATTR_CHECK'],
  ['appraise func=SETXATTR_CHECK appraise_algos=sha256 fowner=0', 'E_POLICY_COMBINATION', 'fowner=0'],
  ['appraise appraise_algos=sha256 appraise_algos=sha1', 'E_POLICY_DUPLICATE', 'appraise_algos=sha1'],
  ['appraise appraise_algos=sha257', 'E_POLICY_VALUE', 'appraise_algos=sha257'],
  ['appraise appraise_algos=', 'E_POLICY_UNKNOWN_KEYWORD', 'appraise_algos='],
  ['measure obj_type=a_t obj_type=b_t', 'E_POLICY_DUPLICATE', 'obj_type=b_t'],
  ['measure fsname=ext4 fsname=xfs', 'E_POLICY_DUPLICATE', 'fsname=xfs'],
  ['measure func=FILE_CHECK #comment', 'E_POLICY_UNKNOWN_KEYWORD', '#comment', DEB61],
  [
    'appraise func=MODULE_CHECK appraise_type=imasig|modsig',
    'E_POLICY_VALUE',
    'appraise_type=imasig|modsig',
    DEB61,
  ],
  [
    'appraise func=FILE_CHECK appraise_flag=check_blacklist',
    'E_POLICY_VALUE',
    'appraise_flag=check_blacklist',
    DEB61,
  ],
  ['measure func=MMAP_CHECK_REQPROT', 'E_POLICY_VALUE', 'func=MMAP_CHECK_REQPROT', DEB61],
];

test('invalid rules are rejected with the kernel reason, line, column and token', () => {
  for (const [rule, code, token, features] of INVALID) {
    const text = `measure func=BPRM_CHECK\n${rule}\n`;
    const p = parsePolicy(text, features ? { features } : {});
    assert.equal(p.ok, false, rule);
    const errs = p.diagnostics.filter((d) => d.severity === 'error');
    assert.equal(errs.length >= 1, true, rule);
    const e = errs[0]!;
    assert.equal(e.code, code, `${rule}: ${e.message}`);
    assert.equal(e.token, token, rule);
    assert.equal(e.line, 2, rule);
    assert.equal(e.col, rule.indexOf(token) + 1, rule);
    // the good rule on line 1 still parsed, but the write as a whole is invalid
    assert.equal(p.rules.length, 1, rule);
  }
});

test('all problems of a policy are reported at once', () => {
  const p = parsePolicy('measure foo\nappraise pcr=3\nmeasure func=FILE_CHECK\ndont_audit\n');
  assert.deepEqual(
    p.diagnostics.map((d) => [d.line, d.code]),
    [
      [1, 'E_POLICY_UNKNOWN_KEYWORD'],
      [2, 'E_POLICY_COMBINATION'],
      [4, 'E_POLICY_UNKNOWN_KEYWORD'],
    ],
  );
});

test('accepted-and-ignored keywords and trailing comments (mainline)', () => {
  const p = parsePolicy('appraise func=FILE_CHECK appraise_flag=anything\nmeasure func=FILE_CHECK # why\n');
  assert.equal(p.ok, true);
  assert.equal(p.rules[0]!.flags & F.CHECK_BLACKLIST, 0);
  assert.equal(p.rules[1]!.func, 'FILE_CHECK');
});

test('flags and values', () => {
  const r = parsePolicy(
    'appraise func=BPRM_CHECK mask=^MAY_EXEC fowner>999 appraise_type=imasig appraise_algos=sha256,sha1',
  ).rules[0]!;
  assert.equal(r.flags & F.INMASK, F.INMASK);
  assert.equal(r.flags & F.MASK, 0);
  assert.equal(r.mask, 1);
  assert.deepEqual(r.fowner, { op: '>', value: 999, effective: false });
  assert.ok(r.flags & F.DIGSIG_REQUIRED);
  assert.ok(r.flags & F.CHECK_BLACKLIST, 'mainline imasig implies the blacklist check');
  assert.equal(r.allowedAlgos, (1 << 4) | (1 << 2));
  const d = parsePolicy('appraise func=BPRM_CHECK appraise_type=imasig', { features: DEB61 }).rules[0]!;
  assert.equal(d.flags & F.CHECK_BLACKLIST, 0, '6.1: imasig does not set the blacklist flag');
});

test('unknown LSM labels: rejected under the boot policy, inactive in a custom one', () => {
  const known = (_k: string, v: string): boolean => v !== 'nope_t';
  const boot = parsePolicy('measure obj_type=nope_t', { lsmLabelKnown: known, defaultPolicyActive: true });
  assert.equal(boot.ok, false);
  assert.equal(boot.diagnostics[0]!.code, 'E_POLICY_VALUE');
  const custom = parsePolicy('measure obj_type=nope_t\nmeasure obj_type=ok_t', { lsmLabelKnown: known });
  assert.equal(custom.ok, true);
  assert.deepEqual([...custom.inactive], [0]);
  assert.equal(custom.diagnostics[0]!.severity, 'notice');
});
