import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatPolicy, formatRule, parsePolicy } from '../../../../src/core/policy/index.ts';

test('read-back form (ima_policy_show): fixed keyword order, trailing space', () => {
  const cases: Array<[string, string]> = [
    ['measure mask=^MAY_READ func=FILE_CHECK euid=0', 'measure func=FILE_CHECK mask=^MAY_READ euid=0 \n'],
    ['measure func=PATH_CHECK mask=MAY_READ uid=0', 'measure func=FILE_CHECK mask=MAY_READ uid=0 \n'],
    ['measure func=FILE_MMAP', 'measure func=MMAP_CHECK \n'],
    ['dont_measure fsmagic=9FA0', 'dont_measure fsmagic=0x9fa0 \n'],
    ['dont_measure func=FILE_CHECK fsmagic=0x01021994', 'dont_measure func=FILE_CHECK fsmagic=0x1021994 \n'],
    [
      'measure fsuuid=28B23254-9467-44C0-B6BA-34B12E85A26F pcr=11 fsname=ext4 template=ima-sig func=FILE_CHECK',
      'measure func=FILE_CHECK fsname=ext4 pcr=11 fsuuid=28b23254-9467-44c0-b6ba-34b12e85a26f template=ima-sig \n',
    ],
    [
      'appraise appraise_algos=sha512,sha1,sha256 fgroup<5 fowner>7',
      'appraise fowner>7 fgroup<5 appraise_algos=sha1,sha256,sha512 \n',
    ],
    ['measure subj_type=a_t obj_user=u', 'measure obj_user=u subj_type=a_t \n'],
    [
      'appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3',
      'appraise func=BPRM_CHECK appraise_type=sigv3 digest_type=verity \n',
    ],
    [
      'appraise func=MODULE_CHECK appraise_type=imasig|modsig permit_directio',
      'appraise func=MODULE_CHECK appraise_type=imasig|modsig permit_directio \n',
    ],
    ['measure func=KEY_CHECK keyrings=.ima|_ima', 'measure func=KEY_CHECK keyrings=.ima|_ima \n'],
    ['measure uid=4294967294', 'measure uid=-2 \n'],
  ];
  for (const [input, want] of cases) {
    const p = parsePolicy(input);
    assert.equal(p.ok, true, input);
    assert.equal(formatRule(p.rules[0]!), want, input);
  }
});

test('the kernel read-back of a verity rule cannot be written back; reloadable form can', () => {
  const r = parsePolicy('appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3').rules;
  assert.equal(parsePolicy(formatPolicy(r)).ok, false);
  assert.equal(parsePolicy(formatPolicy(r, { reloadable: true })).ok, true);
});

const word = fc.constantFrom(
  'func=FILE_CHECK',
  'func=BPRM_CHECK',
  'func=MMAP_CHECK',
  'mask=MAY_READ',
  'mask=^MAY_EXEC',
  'fsmagic=0xef53',
  'fsname=ext4',
  'fsuuid=28b23254-9467-44c0-b6ba-34b12e85a26f',
  'uid=0',
  'euid>5',
  'gid<3',
  'fowner=1000',
  'fgroup>1',
  'obj_type=etc_t',
  'subj_user=system_u',
  'permit_directio',
);

test('property: fmt is a fixed point (parse(fmt(x)) formats to the same text)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('measure', 'dont_measure', 'appraise', 'dont_appraise', 'audit', 'hash', 'dont_hash'),
      fc.uniqueArray(word, { maxLength: 6 }),
      (action, words) => {
        const p = parsePolicy([action, ...words].join(' '));
        if (!p.ok) return; // duplicates like uid/euid are legitimately refused
        const once = formatPolicy(p.rules, { reloadable: true });
        const again = parsePolicy(once);
        assert.equal(again.ok, true, once);
        assert.equal(formatPolicy(again.rules, { reloadable: true }), once);
      },
    ),
    { numRuns: 300 },
  );
});
