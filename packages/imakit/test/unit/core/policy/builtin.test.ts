import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_BUILTIN_CONFIG,
  MAINLINE_POLICY_FEATURES,
  builtinPolicyText,
  formatPolicy,
  parseBuiltinRules,
  resolveBootParams,
  F,
  type BootDefaults,
} from '../../../../src/core/policy/index.ts';

const DEFAULTS: BootDefaults = {
  defaultHash: 'sha256',
  defaultTemplate: 'ima-sig',
  appraiseBootParam: true,
  builtin: DEFAULT_BUILTIN_CONFIG,
  archRules: ['measure func=KEXEC_KERNEL_CHECK', 'measure func=MODULE_CHECK'],
  features: MAINLINE_POLICY_FEATURES,
};

test('tcb in the kernel order (read-back form)', () => {
  const text = formatPolicy(parseBuiltinRules(builtinPolicyText('tcb'), 'tcb'));
  assert.equal(
    text,
    [
      'dont_measure fsmagic=0x9fa0 ',
      'dont_measure fsmagic=0x62656572 ',
      'dont_measure fsmagic=0x64626720 ',
      'dont_measure func=FILE_CHECK fsmagic=0x1021994 ',
      'dont_measure fsmagic=0x1cd1 ',
      'dont_measure fsmagic=0x42494e4d ',
      'dont_measure fsmagic=0x73636673 ',
      'dont_measure fsmagic=0xf97cff8c ',
      'dont_measure fsmagic=0x43415d53 ',
      'dont_measure fsmagic=0x27e0eb ',
      'dont_measure fsmagic=0x63677270 ',
      'dont_measure fsmagic=0x6e736673 ',
      'dont_measure fsmagic=0xde5e81e4 ',
      'measure func=MMAP_CHECK mask=MAY_EXEC ',
      'measure func=BPRM_CHECK mask=MAY_EXEC ',
      'measure func=FILE_CHECK mask=^MAY_READ euid=0 ',
      'measure func=FILE_CHECK mask=^MAY_READ uid=0 ',
      'measure func=MODULE_CHECK ',
      'measure func=FIRMWARE_CHECK ',
      'measure func=POLICY_CHECK ',
      '',
    ].join('\n'),
  );
});

test('ima_tcb, appraise_tcb, secure_boot, critical_data', () => {
  const orig = builtinPolicyText('ima_tcb').slice(13);
  assert.deepEqual(orig, [
    'measure func=MMAP_CHECK mask=MAY_EXEC',
    'measure func=BPRM_CHECK mask=MAY_EXEC',
    'measure func=FILE_CHECK mask=MAY_READ uid=0',
    'measure func=MODULE_CHECK',
    'measure func=FIRMWARE_CHECK',
  ]);
  const at = builtinPolicyText('appraise_tcb');
  assert.equal(at.length, 15);
  assert.equal(at[3], 'dont_appraise fsmagic=0x1021994');
  assert.equal(at[4], 'dont_appraise fsmagic=0x858458f6');
  assert.equal(at[12], 'dont_appraise fsmagic=0x27e0eb');
  assert.equal(at.at(-1), 'appraise fowner=0');
  assert.equal(
    builtinPolicyText('appraise_tcb', {
      ...DEFAULT_BUILTIN_CONFIG,
      writePolicy: true,
      appraiseSignedInit: true,
    })
      .slice(-2)
      .join('|'),
    'appraise func=POLICY_CHECK appraise_type=imasig|appraise fowner=0 appraise_type=imasig',
  );
  assert.deepEqual(
    builtinPolicyText('secure_boot').map((r) => r.split(' ')[1]),
    ['func=MODULE_CHECK', 'func=FIRMWARE_CHECK', 'func=KEXEC_KERNEL_CHECK', 'func=POLICY_CHECK'],
  );
  assert.deepEqual(builtinPolicyText('critical_data'), ['measure func=CRITICAL_DATA']);
  // built-in imasig rules carry no blacklist flag (C tables), text-parsed ones do (mainline)
  const sb = parseBuiltinRules(builtinPolicyText('secure_boot'), 'secure_boot');
  assert.equal(sb[0]!.flags & F.CHECK_BLACKLIST, 0);
  assert.throws(() => builtinPolicyText('nope'), { code: 'E_POLICY_BUILTIN' });
});

test('boot parameters compose like ima_init_policy()', () => {
  const s = resolveBootParams(
    'ima_policy=tcb|appraise_tcb ima_policy=critical_data ima_appraise=fix ima_hash=sha512 evm=fix lsm=apparmor,integrity',
    DEFAULTS,
  );
  assert.equal(s.bootRules.length, 20 + 15 + 1);
  assert.equal(s.bootRules[0]!.origin, 'tcb');
  assert.equal(s.bootRules[20]!.origin, 'appraise_tcb');
  assert.equal(s.bootRules.at(-1)!.func, 'CRITICAL_DATA');
  assert.equal(s.appraise, 'fix');
  assert.equal(s.hash, 'sha512');
  assert.equal(s.evmFix, true);
  assert.deepEqual(s.lsm, ['apparmor', 'integrity']);
  assert.deepEqual(s.template, { name: 'ima-sig', fmt: 'd-ng|n-ng|sig' });
  // ima_tcb before tcb wins (tcb is only taken when no policy was chosen yet)
  assert.equal(resolveBootParams('ima_tcb ima_policy=tcb', DEFAULTS).policyNames.tcb, 'ima_tcb');
  assert.equal(resolveBootParams('ima_policy=tcb ima_tcb', DEFAULTS).policyNames.tcb, 'tcb');
  // no ima_policy: empty boot policy
  assert.equal(resolveBootParams('', DEFAULTS).bootRules.length, 0);
  assert.equal(resolveBootParams('', DEFAULTS).hash, 'sha256');
  // secure boot: arch rules first in both lists, ima_appraise locked to enforce
  const sb = resolveBootParams('ima_policy=tcb ima_appraise=log', DEFAULTS, { secureBoot: true });
  assert.equal(sb.appraise, 'enforce');
  assert.equal(sb.bootRules[20]!.origin, 'arch');
  assert.equal(sb.customSeed.length, 2);
  assert.equal(resolveBootParams('ima_policy=bogus', DEFAULTS).messages[0], 'ima: policy "bogus" not found');
});

test('ima_hash / ima_template interplay (parameter order matters)', () => {
  // scenario c: ima_hash=sha1 ima_template=ima
  const c = resolveBootParams('ima_hash=sha1 ima_template=ima', DEFAULTS);
  assert.deepEqual([c.hash, c.template.name], ['sha1', 'ima']);
  // ima template first: the default sha256 is refused, sha1 stays
  const d = resolveBootParams('ima_template=ima', DEFAULTS);
  assert.deepEqual([d.hash, d.template.name], ['sha1', 'ima']);
  // sha256 first: the ima template is refused, default template kept
  const e = resolveBootParams('ima_hash=sha256 ima_template=ima', DEFAULTS);
  assert.deepEqual([e.hash, e.template.name], ['sha256', 'ima-sig']);
  const g = resolveBootParams(
    'ima_template_fmt=d-ng|n-ng|sig|iuid|igid|imode|xattrnames|xattrlengths|xattrvalues',
    DEFAULTS,
  );
  assert.deepEqual(g.template, {
    name: '',
    fmt: 'd-ng|n-ng|sig|iuid|igid|imode|xattrnames|xattrlengths|xattrvalues',
  });
  assert.equal(resolveBootParams('ima_template_fmt=d-ng|bogus', DEFAULTS).template.name, 'ima-sig');
  assert.equal(resolveBootParams('ima_hash=nope', DEFAULTS).hash, 'sha256');
  assert.equal(
    resolveBootParams('ima_template=ima-ng ima_template=ima-sig', DEFAULTS).template.name,
    'ima-ng',
  );
});
