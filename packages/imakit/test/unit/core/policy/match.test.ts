import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  IMA,
  F,
  builtinPolicyText,
  compilePolicy,
  explainRule,
  parseBuiltinRules,
  parsePolicy,
  type Func,
  type MatchRequest,
  type MatchSubject,
} from '../../../../src/core/policy/index.ts';

const root: MatchSubject = { uid: 0, euid: 0, gid: 0, egid: 0 };
const user: MatchSubject = { uid: 1000, euid: 1000, gid: 1000, egid: 1000 };
const ext4 = {
  uid: 0,
  gid: 0,
  fsmagic: 0xef53,
  fsname: 'ext4',
  fsuuid: '28b23254-9467-44c0-b6ba-34b12e85a26f',
};
const req = (
  func: Func,
  mask: number,
  subject = root,
  object: MatchRequest['object'] = ext4,
): MatchRequest => ({ func, mask, subject, object });
const MAY_EXEC = 1;
const MAY_WRITE = 2;
const MAY_READ = 4;

function policy(text: string) {
  const p = parsePolicy(text);
  assert.equal(p.ok, true, JSON.stringify(p.diagnostics));
  return compilePolicy(p.rules, { inactive: p.inactive });
}

test('pitfall 26: mask=MAY_READ is exact, ^MAY_READ contains', () => {
  const exact = policy('measure func=FILE_CHECK mask=MAY_READ');
  const inmask = policy('measure func=FILE_CHECK mask=^MAY_READ');
  const table: Array<[number, boolean, boolean]> = [
    [MAY_READ, true, true],
    [MAY_READ | MAY_WRITE, false, true],
    [MAY_WRITE, false, false],
    [MAY_READ | MAY_EXEC, false, true],
  ];
  for (const [mask, e, i] of table) {
    assert.equal((exact.match(req('FILE_CHECK', mask)).action & IMA.MEASURE) !== 0, e, `exact ${mask}`);
    assert.equal((inmask.match(req('FILE_CHECK', mask)).action & IMA.MEASURE) !== 0, i, `inmask ${mask}`);
  }
});

test('pitfall 27: first match per action type; dont_X closes X; types are independent', () => {
  const p = policy(
    [
      'dont_measure fowner=1000',
      'measure func=FILE_CHECK',
      'appraise fowner=1000 appraise_type=imasig',
      'appraise',
      'audit func=FILE_CHECK',
    ].join('\n'),
  );
  const own = { ...ext4, uid: 1000 };
  const r = p.match(req('FILE_CHECK', MAY_READ, root, own));
  assert.equal(r.action & IMA.MEASURE, 0);
  assert.equal(r.decidedBy.measure, 0);
  assert.ok(r.action & IMA.APPRAISE);
  assert.equal(r.decidedBy.appraise, 2);
  assert.ok(r.action & F.DIGSIG_REQUIRED);
  assert.ok(r.action & IMA.FILE_APPRAISE, 'rule without func: file appraise subaction');
  assert.equal(r.decidedBy.audit, 4);
  const r2 = p.match(req('FILE_CHECK', MAY_READ));
  assert.ok(r2.action & IMA.MEASURE);
  assert.equal(r2.decidedBy.appraise, 3);
  assert.equal(r2.action & F.DIGSIG_REQUIRED, 0);
  const r3 = p.match(req('BPRM_CHECK', MAY_EXEC));
  assert.equal(r3.decidedBy.measure, -1);
  assert.ok(r3.action & IMA.APPRAISE);
});

test('tcb: root reads measured, user reads not; euid and uid rules; tmpfs only for FILE_CHECK', () => {
  const tcb = compilePolicy(parseBuiltinRules(builtinPolicyText('tcb'), 'tcb'));
  const tmpfs = { uid: 0, gid: 0, fsmagic: 0x01021994, fsname: 'tmpfs' };
  const proc = { uid: 0, gid: 0, fsmagic: 0x9fa0, fsname: 'proc' };
  const cases: Array<[MatchRequest, boolean]> = [
    [req('FILE_CHECK', MAY_READ), true],
    [req('FILE_CHECK', MAY_READ | MAY_WRITE), true],
    [req('FILE_CHECK', MAY_WRITE), false],
    [req('FILE_CHECK', MAY_READ, user), false],
    [req('FILE_CHECK', MAY_READ, { ...user, euid: 0 }), true],
    [req('FILE_CHECK', MAY_READ, { ...root, euid: 1000 }), true],
    [req('BPRM_CHECK', MAY_EXEC, user), true],
    [req('MMAP_CHECK', MAY_EXEC, user), true],
    [req('FILE_CHECK', MAY_READ, root, tmpfs), false],
    [req('BPRM_CHECK', MAY_EXEC, root, tmpfs), true],
    [req('BPRM_CHECK', MAY_EXEC, root, proc), false],
    [req('MODULE_CHECK', MAY_READ), true],
    [req('CREDS_CHECK', MAY_EXEC), false],
  ];
  for (const [r, want] of cases)
    assert.equal((tcb.match(r).action & IMA.MEASURE) !== 0, want, JSON.stringify(r));
});

test('id comparisons, CAP_SETUID euid semantics, fsuuid/fsname, pcr and template', () => {
  const p = policy(
    'measure func=FILE_CHECK euid>999 pcr=11 template=ima-sig\nmeasure fsuuid=28b23254-9467-44c0-b6ba-34b12e85a26f fsname=ext4 uid<1',
  );
  const a = p.match(req('FILE_CHECK', MAY_READ, user));
  assert.ok(a.action & IMA.MEASURE);
  assert.equal(a.pcr, 11);
  assert.equal(a.template, 'ima-sig');
  const b = p.match(req('FILE_CHECK', MAY_READ, root));
  assert.equal(b.decidedBy.measure, 1);
  assert.equal(b.pcr, 10);
  assert.equal(b.template, undefined);
  // with CAP_SETUID the saved and real uids are also tried
  assert.ok(
    p.match(req('FILE_CHECK', MAY_READ, { ...root, suid: 1000, capSetuid: true })).decidedBy.measure === 0,
  );
  assert.equal(p.match(req('FILE_CHECK', MAY_READ, root, { ...ext4, fsuuid: null })).decidedBy.measure, -1);
});

test('KEY_CHECK / CRITICAL_DATA match only rules of their hook; uid is ignored without a list (kernel quirk)', () => {
  const p = policy(
    'measure uid=0\nmeasure func=KEY_CHECK keyrings=.ima uid=0\nmeasure func=CRITICAL_DATA uid=5',
  );
  const k = (func: Func, data: string, subject = root): MatchRequest => ({
    func,
    mask: 0,
    subject,
    funcData: data,
  });
  assert.equal(p.match(k('KEY_CHECK', '.ima')).decidedBy.measure, 1);
  assert.equal(p.match(k('KEY_CHECK', '_ima')).decidedBy.measure, -1);
  assert.equal(p.match(k('KEY_CHECK', '.ima', user)).decidedBy.measure, -1);
  assert.equal(p.match(k('CRITICAL_DATA', 'kernel_version', root)).decidedBy.measure, 2);
});

test('appraise clears hash; appraise_algos and fail_securely reach the result; policyFlag', () => {
  const rules = parsePolicy(
    'hash func=BPRM_CHECK\nappraise func=BPRM_CHECK appraise_algos=sha256\nappraise func=SETXATTR_CHECK appraise_algos=sha512\nappraise func=SETXATTR_CHECK appraise_algos=sha1',
  ).rules;
  const p = compilePolicy(rules, { failSecurely: true });
  const r = p.match(req('BPRM_CHECK', MAY_EXEC));
  assert.equal(r.action & IMA.HASH, 0);
  assert.equal(r.allowedAlgos, 1 << 4);
  assert.ok(r.action & F.FAIL_UNVERIFIABLE_SIGS);
  assert.ok(r.action & IMA.BPRM_APPRAISE);
  assert.equal(p.policyFlag, IMA.APPRAISE | IMA.HASH);
  assert.equal(p.setxattrAlgos, 1 << 6);
});

test('property: compiled matcher agrees with the reference explainRule()', () => {
  const words = [
    'func=FILE_CHECK',
    'func=BPRM_CHECK',
    'func=MMAP_CHECK',
    'mask=MAY_READ',
    'mask=^MAY_READ',
    'mask=^MAY_EXEC',
    'fsmagic=0xef53',
    'fsmagic=0x1021994',
    'fsname=ext4',
    'uid=0',
    'euid>500',
    'gid<10',
    'fowner=1000',
    'fgroup>0',
    'obj_type=etc_t',
    'subj_type=unconfined_t',
  ];
  const ruleArb = fc.tuple(
    fc.constantFrom('measure', 'dont_measure', 'appraise', 'dont_appraise', 'audit', 'hash', 'dont_hash'),
    fc.uniqueArray(fc.constantFrom(...words), { maxLength: 4 }),
  );
  const reqArb = fc.record({
    func: fc.constantFrom<Func>('FILE_CHECK', 'BPRM_CHECK', 'MMAP_CHECK', 'MODULE_CHECK'),
    mask: fc.integer({ min: 1, max: 15 }),
    subject: fc.record({
      uid: fc.constantFrom(0, 1000),
      euid: fc.constantFrom(0, 600, 1000),
      gid: fc.constantFrom(0, 50),
      egid: fc.constantFrom(0, 50),
      capSetuid: fc.boolean(),
      label: fc.constant({ type: 'unconfined_t' }),
    }),
    object: fc.record({
      uid: fc.constantFrom(0, 1000),
      gid: fc.constantFrom(0, 1),
      fsmagic: fc.constantFrom(0xef53, 0x1021994),
      fsname: fc.constantFrom('ext4', 'tmpfs'),
      label: fc.constantFrom({ type: 'etc_t' }, {}),
    }),
  });
  fc.assert(
    fc.property(fc.array(ruleArb, { maxLength: 8 }), reqArb, (rs, r) => {
      const parsed = parsePolicy(rs.map(([a, w]) => [a, ...w].join(' ')).join('\n'));
      const good = parsed.rules;
      const cp = compilePolicy(good);
      const res = cp.match(r);
      // reference walk (§5.5)
      const open = new Set(
        ['measure', 'appraise', 'audit', 'hash'].filter(
          (t) =>
            cp.policyFlag &
            ({ measure: 1, appraise: 4, audit: 0x40, hash: 0x100 } as Record<string, number>)[t]!,
        ),
      );
      const decided: Record<string, number> = { measure: -1, appraise: -1, audit: -1, hash: -1 };
      good.forEach((rule, i) => {
        const t = rule.action.replace('dont_', '');
        if (!open.has(t)) return;
        if (explainRule(rule, r) !== null) return;
        decided[t] = i;
        open.delete(t);
      });
      assert.deepEqual(res.decidedBy, decided);
    }),
    { numRuns: 500 },
  );
});
