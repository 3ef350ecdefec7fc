/**
 * ima_match_policy() / ima_match_rules() of security/integrity/ima/ima_policy.c (formats.md §5.5):
 * the first matching rule per action type decides it, a matching dont_X closes X, and the non-action
 * flags, pcr= and template= of every matching rule are collected.
 *
 * Rules are compiled once into closures that test only the conditions a rule has (the hot path does
 * no allocation besides the result), and `explainRule()` is the slow, readable reference the
 * compiled form is tested against.
 */
import {
  ACTIONS,
  F,
  FUNCS,
  LSM_KEYS,
  NONACTION_FLAGS,
  actionType,
  type ActionType,
  type Func,
  type IdCond,
  type LsmKey,
  type PolicyRule,
} from './ast.ts';

/** IMA action bits of the match result (integrity.h). */
export const IMA = Object.freeze({
  MEASURE: 0x1,
  APPRAISE: 0x4,
  AUDIT: 0x40,
  HASH: 0x100,
  FILE_APPRAISE: 0x1000,
  MMAP_APPRAISE: 0x4000,
  BPRM_APPRAISE: 0x10000,
  READ_APPRAISE: 0x40000,
  CREDS_APPRAISE: 0x100000,
});
/** IMA_APPRAISE_SUBMASK */
export const APPRAISE_SUBMASK = 0x1000 | 0x4000 | 0x10000 | 0x40000 | 0x100000;
/** IMA_DO_MASK */
export const DO_MASK = IMA.MEASURE | IMA.APPRAISE | IMA.AUDIT | IMA.HASH | APPRAISE_SUBMASK;

/** The subject (process credentials) of an access. */
export interface MatchSubject {
  readonly uid: number;
  readonly euid: number;
  /** saved uid (default euid) */
  readonly suid?: number;
  readonly gid: number;
  readonly egid: number;
  readonly sgid?: number;
  /** CAP_SETUID: euid rules then also test suid and uid (any match) */
  readonly capSetuid?: boolean;
  readonly capSetgid?: boolean;
  /** LSM subject label parts (user, role, type) */
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
}

/** The object (inode and its filesystem) of an access. */
export interface MatchObject {
  /** inode owner / group as seen through the mount's idmapping */
  readonly uid: number;
  readonly gid: number;
  readonly fsmagic: number;
  readonly fsname: string;
  /** lowercase dashed UUID, or undefined/null for a filesystem without one (null UUID) */
  readonly fsuuid?: string | null;
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
}

/** One decision request. */
export interface MatchRequest {
  readonly func: Func;
  /** MAY_* bits of the access */
  readonly mask: number;
  readonly subject: MatchSubject;
  /** absent for buffer hooks (KEY_CHECK, CRITICAL_DATA, KEXEC_CMDLINE) */
  readonly object?: MatchObject;
  /** keyring name (KEY_CHECK) or critical-data label (CRITICAL_DATA) */
  readonly funcData?: string;
}

/** What ima_match_policy() returns. */
export interface MatchResult {
  /** IMA_MEASURE | IMA_APPRAISE(+ subaction) | IMA_AUDIT | IMA_HASH | non-action flags */
  readonly action: number;
  /** pcr of the last matching rule with pcr=, else the default */
  readonly pcr: number;
  /** template= of the last matching rule that has one, else undefined (= the default template) */
  readonly template: string | undefined;
  /** appraise_algos of the deciding appraise rule, 0 = any */
  readonly allowedAlgos: number;
  /** index of the rule that decided each action type (a dont_X rule counts), -1 if none */
  readonly decidedBy: Readonly<Record<ActionType, number>>;
}

/** Options of compilePolicy. */
export interface CompileOptions {
  /** indexes of rules whose LSM labels are unknown (they never match) */
  readonly inactive?: ReadonlySet<number>;
  /** `ima_policy=fail_securely`: every appraise match gets IMA_FAIL_UNVERIFIABLE_SIGS */
  readonly failSecurely?: boolean;
  /** CONFIG_IMA_MEASURE_PCR_IDX */
  readonly defaultPcr?: number;
}

type Pred = (r: MatchRequest) => boolean;

interface CompiledRule {
  readonly actionBits: number;
  /** fsmagic= value tested inline before the closure (the most common discriminator), -1 if none */
  readonly fsmagic: number;
  readonly doAction: boolean;
  readonly match: Pred;
  readonly nonaction: number;
  readonly subaction: (func: Func) => number;
  readonly pcr: number;
  readonly template: string | undefined;
  readonly allowedAlgos: number;
  readonly type: ActionType;
}

/** A compiled policy: `match()` makes one decision. */
export interface CompiledPolicy {
  readonly rules: readonly PolicyRule[];
  /** ima_policy_flag: the actions present in the policy (IMA_MEASURE|IMA_APPRAISE|IMA_AUDIT|IMA_HASH) */
  readonly policyFlag: number;
  /** the first SETXATTR_CHECK rule's allow-list (0 = none) */
  readonly setxattrAlgos: number;
  /**
   * Decide an access. `requested` is the action bits asked for (default: every type in the policy,
   * i.e. ima_get_action()).
   */
  match(req: MatchRequest, requested?: number): MatchResult;
}

const cmp = (op: IdCond['op']): ((a: number, b: number) => boolean) =>
  op === '=' ? (a, b) => a === b : op === '<' ? (a, b) => a < b : (a, b) => a > b;

function labelPart(k: LsmKey): 'user' | 'role' | 'type' {
  return k.endsWith('user') ? 'user' : k.endsWith('role') ? 'role' : 'type';
}

/** get_subaction(): which per-hook appraisal cache an appraise match uses. */
export function subactionFor(rule: PolicyRule, func: Func): number {
  if (!(rule.flags & F.FUNC)) return IMA.FILE_APPRAISE;
  switch (func) {
    case 'MMAP_CHECK':
    case 'MMAP_CHECK_REQPROT':
      return IMA.MMAP_APPRAISE;
    case 'BPRM_CHECK':
      return IMA.BPRM_APPRAISE;
    case 'CREDS_CHECK':
      return IMA.CREDS_APPRAISE;
    case 'FILE_CHECK':
    case 'POST_SETATTR':
      return IMA.FILE_APPRAISE;
    default:
      return IMA.READ_APPRAISE;
  }
}

function compileRule(rule: PolicyRule, inactive: boolean): Pred {
  if (inactive) return () => false;
  const checks: Pred[] = [];
  const fl = rule.flags;
  const func = rule.func;
  const buffer = func === 'KEY_CHECK' || func === 'CRITICAL_DATA';
  if (fl & F.FUNC) checks.push((r) => r.func === func || r.func === 'POST_SETATTR');
  if (buffer) {
    // ima_match_rules(): buffer hooks only match rules of exactly that hook, then ima_match_rule_data()
    const list = func === 'KEY_CHECK' ? rule.keyrings : rule.labels;
    const uid = fl & F.UID ? rule.uid : undefined;
    const uidOp = uid ? cmp(uid.op) : undefined;
    return (r) => {
      if (r.func !== func) return false;
      if (list === undefined) return true; // kernel quirk: no list -> match, uid= not even tested
      if (r.funcData === undefined) return false;
      if (uid && uidOp && !uidOp(r.subject.uid, uid.value)) return false;
      return list.includes(r.funcData);
    };
  }
  const notBuffer: Pred = (r) => r.func !== 'KEY_CHECK' && r.func !== 'CRITICAL_DATA';
  checks.push(notBuffer);
  if (fl & F.MASK) {
    const m = rule.mask;
    checks.push((r) => r.mask === m || r.func === 'POST_SETATTR');
  }
  if (fl & F.INMASK) {
    const m = rule.mask;
    checks.push((r) => (r.mask & m) !== 0 || r.func === 'POST_SETATTR');
  }
  if (fl & F.FSMAGIC) {
    const v = rule.fsmagic;
    checks.push((r) => r.object !== undefined && r.object.fsmagic === v);
  }
  if (fl & F.FSNAME) {
    const v = rule.fsname;
    checks.push((r) => r.object !== undefined && r.object.fsname === v);
  }
  if (fl & F.FSUUID) {
    const v = rule.fsuuid;
    checks.push(
      (r) => r.object !== undefined && (r.object.fsuuid ?? '00000000-0000-0000-0000-000000000000') === v,
    );
  }
  if (fl & F.UID && rule.uid) {
    const c = cmp(rule.uid.op);
    const v = rule.uid.value;
    checks.push((r) => c(r.subject.uid, v));
  }
  if (fl & F.EUID && rule.uid) {
    const c = cmp(rule.uid.op);
    const v = rule.uid.value;
    checks.push((r) => {
      const s = r.subject;
      return s.capSetuid ? c(s.euid, v) || c(s.suid ?? s.euid, v) || c(s.uid, v) : c(s.euid, v);
    });
  }
  if (fl & F.GID && rule.gid) {
    const c = cmp(rule.gid.op);
    const v = rule.gid.value;
    checks.push((r) => c(r.subject.gid, v));
  }
  if (fl & F.EGID && rule.gid) {
    const c = cmp(rule.gid.op);
    const v = rule.gid.value;
    checks.push((r) => {
      const s = r.subject;
      return s.capSetgid ? c(s.egid, v) || c(s.sgid ?? s.egid, v) || c(s.gid, v) : c(s.egid, v);
    });
  }
  if (fl & F.FOWNER && rule.fowner) {
    const c = cmp(rule.fowner.op);
    const v = rule.fowner.value;
    checks.push((r) => r.object !== undefined && c(r.object.uid, v));
  }
  if (fl & F.FGROUP && rule.fgroup) {
    const c = cmp(rule.fgroup.op);
    const v = rule.fgroup.value;
    checks.push((r) => r.object !== undefined && c(r.object.gid, v));
  }
  for (const k of LSM_KEYS) {
    const v = rule.lsm[k];
    if (v === undefined) continue;
    const part = labelPart(k);
    if (k.startsWith('subj')) checks.push((r) => r.subject.label?.[part] === v);
    else checks.push((r) => r.object?.label?.[part] === v);
  }
  if (checks.length === 1) return checks[0] as Pred;
  if (checks.length === 2) {
    const [a, b] = checks as [Pred, Pred];
    return (r) => a(r) && b(r);
  }
  return (r) => {
    for (let i = 0; i < checks.length; i++) if (!(checks[i] as Pred)(r)) return false;
    return true;
  };
}

/**
 * Compile a rule list (the active policy, in order) for fast matching.
 *
 * @example
 * const cp = compilePolicy(parsePolicy('measure func=BPRM_CHECK').rules);
 * cp.match({ func: 'BPRM_CHECK', mask: 1, subject, object }).action & IMA.MEASURE; // 1
 */
export function compilePolicy(rules: readonly PolicyRule[], opts: CompileOptions = {}): CompiledPolicy {
  const defaultPcr = opts.defaultPcr ?? 10;
  const compiled: CompiledRule[] = rules.map((rule, i) => {
    const bits = ACTIONS[rule.action];
    return {
      actionBits: bits,
      fsmagic: rule.flags & F.FSMAGIC ? rule.fsmagic : -1,
      doAction: (bits & DO_MASK) !== 0,
      match: compileRule(rule, opts.inactive?.has(i) === true),
      nonaction: rule.flags & NONACTION_FLAGS,
      subaction: (func: Func) => subactionFor(rule, func),
      pcr: rule.flags & F.PCR ? (rule.pcr ?? -1) : -1,
      template: rule.template,
      allowedAlgos: rule.flags & F.VALIDATE_ALGOS ? rule.allowedAlgos : 0,
      type: actionType(rule.action),
    };
  });
  let policyFlag = 0;
  let setxattrAlgos = 0;
  for (const r of rules) {
    if (r.func === 'SETXATTR_CHECK') {
      if (setxattrAlgos === 0) setxattrAlgos = r.allowedAlgos;
      continue;
    }
    const b = ACTIONS[r.action];
    if (b & DO_MASK) policyFlag |= b;
  }
  const failSecurely = opts.failSecurely === true;
  // Only rules without func= or with the request's func can match (ima_match_rules() checks func
  // first), so each hook walks its own precomputed index list, in policy order. POST_SETATTR
  // ignores func= and walks everything.
  const all = compiled.map((_, i) => i);
  const byFunc = new Map<Func, Int32Array>();
  for (const f of FUNCS) {
    const buffer = f === 'KEY_CHECK' || f === 'CRITICAL_DATA';
    byFunc.set(
      f,
      Int32Array.from(
        all.filter((i) => {
          const r = rules[i] as PolicyRule;
          return buffer ? r.func === f : !(r.flags & F.FUNC) || r.func === f;
        }),
      ),
    );
  }
  byFunc.set('POST_SETATTR', Int32Array.from(all));
  return Object.freeze({
    rules,
    policyFlag,
    setxattrAlgos,
    match(req: MatchRequest, requested = policyFlag): MatchResult {
      let action = 0;
      let actmask = requested | (requested << 1);
      let pcr = defaultPcr;
      let template: string | undefined;
      let allowedAlgos = 0;
      let dm = -1;
      let da = -1;
      let dau = -1;
      let dh = -1;
      const idx = byFunc.get(req.func) as Int32Array;
      const obj = req.object;
      const n = idx.length;
      for (let k = 0; k < n; k++) {
        const i = idx[k] as number;
        const e = compiled[i] as CompiledRule;
        if (!(e.actionBits & actmask)) continue;
        if (e.fsmagic !== -1 && (obj === undefined || obj.fsmagic !== e.fsmagic)) continue;
        if (!e.match(req)) continue;
        action |= e.nonaction;
        action |= e.actionBits & DO_MASK;
        if (e.actionBits & IMA.APPRAISE) {
          action |= e.subaction(req.func);
          action &= ~IMA.HASH;
          if (failSecurely) action |= F.FAIL_UNVERIFIABLE_SIGS;
          if (e.allowedAlgos) allowedAlgos = e.allowedAlgos;
        }
        if (e.doAction) actmask &= ~(e.actionBits | (e.actionBits << 1));
        else actmask &= ~(e.actionBits | (e.actionBits >> 1));
        if (e.pcr >= 0) pcr = e.pcr;
        if (e.template !== undefined) template = e.template;
        const t = e.type;
        if (t === 'measure') dm = i;
        else if (t === 'appraise') da = i;
        else if (t === 'audit') dau = i;
        else dh = i;
        if (!actmask) break;
      }
      return {
        action,
        pcr,
        template,
        allowedAlgos,
        decidedBy: { measure: dm, appraise: da, audit: dau, hash: dh },
      };
    },
  });
}

/**
 * The reference (slow) form of ima_match_rules() for one rule: null if the rule matches the access,
 * otherwise the first condition that fails, in words. Used by `policy explain`.
 */
export function explainRule(rule: PolicyRule, req: MatchRequest, inactive = false): string | null {
  if (inactive) return 'its LSM label is unknown to the running LSM, so it never matches';
  const fl = rule.flags;
  if (fl & F.FUNC && rule.func !== req.func && req.func !== 'POST_SETATTR')
    return `func=${rule.func} but the hook is ${req.func}`;
  if (req.func === 'KEY_CHECK' || req.func === 'CRITICAL_DATA') {
    if (rule.func !== req.func) return `only rules with func=${req.func} apply to ${req.func} events`;
    const list = req.func === 'KEY_CHECK' ? rule.keyrings : rule.labels;
    if (list === undefined) return null;
    if (req.funcData === undefined) return 'the event has no keyring/label';
    if (fl & F.UID && rule.uid && !cmp(rule.uid.op)(req.subject.uid, rule.uid.value))
      return `uid is ${req.subject.uid}, not ${rule.uid.op}${rule.uid.value}`;
    return list.includes(req.funcData) ? null : `'${req.funcData}' is not in ${list.join('|')}`;
  }
  if (fl & F.MASK && rule.mask !== req.mask && req.func !== 'POST_SETATTR')
    return `mask= is an exact match: the access mask 0x${req.mask.toString(16)} is not 0x${rule.mask.toString(16)} (use ^ to match any access containing it, pitfall 26)`;
  if (fl & F.INMASK && !(rule.mask & req.mask) && req.func !== 'POST_SETATTR')
    return `the access mask 0x${req.mask.toString(16)} does not contain 0x${rule.mask.toString(16)}`;
  const o = req.object;
  if (fl & F.FSMAGIC && o?.fsmagic !== rule.fsmagic)
    return `filesystem magic is 0x${(o?.fsmagic ?? 0).toString(16)}, not 0x${rule.fsmagic.toString(16)}`;
  if (fl & F.FSNAME && o?.fsname !== rule.fsname)
    return `filesystem is ${o?.fsname ?? '?'}, not ${rule.fsname ?? ''}`;
  if (fl & F.FSUUID && (o?.fsuuid ?? '00000000-0000-0000-0000-000000000000') !== rule.fsuuid)
    return `filesystem UUID is ${o?.fsuuid ?? 'null'}, not ${rule.fsuuid ?? ''}`;
  const s = req.subject;
  if (fl & F.UID && rule.uid && !cmp(rule.uid.op)(s.uid, rule.uid.value))
    return `uid is ${s.uid}, not ${rule.uid.op}${rule.uid.value}`;
  if (fl & F.EUID && rule.uid) {
    const c = cmp(rule.uid.op);
    const ok = s.capSetuid
      ? c(s.euid, rule.uid.value) || c(s.suid ?? s.euid, rule.uid.value) || c(s.uid, rule.uid.value)
      : c(s.euid, rule.uid.value);
    if (!ok) return `euid is ${s.euid}, not ${rule.uid.op}${rule.uid.value}`;
  }
  if (fl & F.GID && rule.gid && !cmp(rule.gid.op)(s.gid, rule.gid.value))
    return `gid is ${s.gid}, not ${rule.gid.op}${rule.gid.value}`;
  if (fl & F.EGID && rule.gid) {
    const c = cmp(rule.gid.op);
    const ok = s.capSetgid
      ? c(s.egid, rule.gid.value) || c(s.sgid ?? s.egid, rule.gid.value) || c(s.gid, rule.gid.value)
      : c(s.egid, rule.gid.value);
    if (!ok) return `egid is ${s.egid}, not ${rule.gid.op}${rule.gid.value}`;
  }
  if (fl & F.FOWNER && rule.fowner && !(o && cmp(rule.fowner.op)(o.uid, rule.fowner.value)))
    return `file owner is ${o?.uid ?? '?'}, not ${rule.fowner.op}${rule.fowner.value}`;
  if (fl & F.FGROUP && rule.fgroup && !(o && cmp(rule.fgroup.op)(o.gid, rule.fgroup.value)))
    return `file group is ${o?.gid ?? '?'}, not ${rule.fgroup.op}${rule.fgroup.value}`;
  for (const k of LSM_KEYS) {
    const v = rule.lsm[k];
    if (v === undefined) continue;
    const part = labelPart(k);
    const have = k.startsWith('subj') ? s.label?.[part] : o?.label?.[part];
    if (have !== v) return `${k} is ${have ?? '(none)'}, not ${v}`;
  }
  return null;
}
