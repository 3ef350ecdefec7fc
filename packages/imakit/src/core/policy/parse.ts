/**
 * The policy parser: ima_parse_rule() of security/integrity/ima/ima_policy.c, token by token, building
 * `PolicyRule`s with spans and collecting `Diagnostic`s instead of stopping (style.md practice 13).
 *
 * Like the kernel, ANY invalid rule invalidates the whole write (the temporary rule list is discarded
 * on close, "policy update failed", formats.md §5.1): `ok` is false as soon as one error exists.
 * The semantic pass (ima_validate_rule) is in validate.ts and runs on rules whose tokens all parsed.
 */
import { findHashAlgo } from '../hash/hash-algo.ts';
import {
  ACTIONS,
  F,
  FUNC_ALIASES,
  FUNCS,
  LSM_KEYS,
  MAINLINE_POLICY_FEATURES,
  MAY,
  type Action,
  type Diagnostic,
  type Func,
  type IdCond,
  type IdOp,
  type LsmKey,
  type PolicyFeatures,
  type PolicyRule,
  type Span,
} from './ast.ts';
import { tokenizePolicy, type Token } from './tokenize.ts';
import { validateRule } from './validate.ts';

/** Options of a parse. */
export interface ParseOptions {
  /** kernel facts (default: current mainline) */
  readonly features?: PolicyFeatures;
  /**
   * Whether the boot (default) policy is still active. The kernel rejects unknown LSM labels only
   * then; in a custom policy such a rule is accepted but never matches (pitfall 28).
   */
  readonly defaultPolicyActive?: boolean;
  /** LSM label check (security_filter_rule_init); default: every label is known */
  readonly lsmLabelKnown?: (key: LsmKey, value: string) => boolean;
  /** where the rules come from (built-in name or 'custom') */
  readonly origin?: string;
  /** built-in rules are C structs: `imasig` there sets no blacklist flag (formats.md §5.6 note) */
  readonly builtin?: boolean;
}

/** The result of parsing a policy write. */
export interface ParsedPolicy {
  /** false if any rule is invalid: the kernel would discard the whole write */
  readonly ok: boolean;
  /** rules that parsed and validated (in order); rules with errors are left out */
  readonly rules: readonly PolicyRule[];
  /** rules with inactive LSM labels (accepted, never match, hidden in read-back) by index in `rules` */
  readonly inactive: ReadonlySet<number>;
  readonly diagnostics: readonly Diagnostic[];
}

interface Draft {
  action?: Action;
  flags: number;
  func: Func;
  mask: number;
  fsmagic: number;
  fsname?: string;
  fsuuid?: string;
  uid?: IdCond;
  gid?: IdCond;
  fowner?: IdCond;
  fgroup?: IdCond;
  lsm: Partial<Record<LsmKey, string>>;
  lsmInactive: boolean;
  keyrings?: string[];
  labels?: string[];
  pcr?: number;
  template?: string;
  allowedAlgos: number;
  spans: Record<string, Span>;
}

type Emit = (
  code: Diagnostic['code'],
  tok: Token,
  message: string,
  severity?: Diagnostic['severity'],
) => void;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ID_KEYS = new Set(['uid', 'euid', 'gid', 'egid', 'fowner', 'fgroup']);

/**
 * Parse a policy text as one write to `<securityfs>/ima/policy`.
 *
 * @example
 * const p = parsePolicy('measure func=BPRM_CHECK mask=MAY_EXEC\n');
 * p.ok; // true
 */
export function parsePolicy(text: string, opts: ParseOptions = {}): ParsedPolicy {
  const features = opts.features ?? MAINLINE_POLICY_FEATURES;
  const diagnostics: Diagnostic[] = [];
  const rules: PolicyRule[] = [];
  const inactive = new Set<number>();
  for (const rl of tokenizePolicy(text)) {
    const before = diagnostics.filter((d) => d.severity === 'error').length;
    const emit: Emit = (code, tok, message, severity = 'error') =>
      diagnostics.push(
        Object.freeze({ code, severity, line: tok.line, col: tok.col, token: tok.text, message }),
      );
    const d = parseTokens(rl.tokens, features, opts, emit);
    if (d === undefined) continue; // only a trailing comment
    const tokenErrors = diagnostics.filter((x) => x.severity === 'error').length - before;
    if (tokenErrors > 0) continue;
    const first = rl.tokens[0] as Token;
    if (d.action === undefined) {
      emit(
        'E_POLICY_SYNTAX',
        first,
        'rule has no action (measure, dont_measure, appraise, dont_appraise, audit, hash, dont_hash)',
      );
      continue;
    }
    const rule: PolicyRule = Object.freeze({
      action: d.action,
      flags: d.flags,
      func: d.func,
      mask: d.mask,
      fsmagic: d.fsmagic,
      fsname: d.fsname,
      fsuuid: d.fsuuid,
      uid: d.uid,
      gid: d.gid,
      fowner: d.fowner,
      fgroup: d.fgroup,
      lsm: Object.freeze(d.lsm),
      keyrings: d.keyrings && Object.freeze(d.keyrings),
      labels: d.labels && Object.freeze(d.labels),
      pcr: d.pcr,
      template: d.template,
      allowedAlgos: d.allowedAlgos,
      line: rl.line,
      text: rl.text,
      spans: Object.freeze(d.spans),
      origin: opts.origin ?? 'custom',
    });
    const problem = validateRule(rule, features);
    if (problem !== null) {
      const at = problem.keyword !== undefined ? rule.spans[problem.keyword] : undefined;
      const tok = at ? (rl.tokens.find((t) => t.col === at.col) ?? first) : first;
      emit(problem.code, tok, problem.message);
      continue;
    }
    noticeChecks(rule, features, tok0(rl.tokens), emit);
    if (d.lsmInactive) inactive.add(rules.length);
    rules.push(rule);
  }
  const ok = !diagnostics.some((x) => x.severity === 'error');
  return Object.freeze({
    ok,
    rules: Object.freeze(rules),
    inactive,
    diagnostics: Object.freeze(diagnostics),
  });
}

function tok0(tokens: readonly Token[]): Token {
  return tokens[0] as Token;
}

/** Kernel notices (pr_info) that do not invalidate the rule (formats.md §5.4). */
function noticeChecks(rule: PolicyRule, features: PolicyFeatures, tok: Token, emit: Emit): void {
  if (
    rule.action === 'measure' &&
    rule.flags & F.VERITY_REQUIRED &&
    rule.template !== undefined &&
    !/ngv2|sigv2/.test(rule.template)
  )
    emit(
      'E_POLICY_COMBINATION',
      tok,
      'verity measure rule: the template should contain d-ngv2 to tell verity digests apart',
      'notice',
    );
  void features;
}

function parseTokens(
  tokens: readonly Token[],
  features: PolicyFeatures,
  opts: ParseOptions,
  emit: Emit,
): Draft | undefined {
  const d: Draft = {
    flags: 0,
    func: 'NONE',
    mask: 0,
    fsmagic: 0,
    lsm: {},
    lsmInactive: false,
    allowedAlgos: 0,
    spans: {},
  };
  let any = false;
  for (const tok of tokens) {
    const t = tok.text;
    // 2025 kernels: a token starting with '#' ends the rule ("ignore suffixed comment")
    if (t.startsWith('#') && features.trailingComments) break;
    any = true;
    const span: Span = { line: tok.line, col: tok.col, endCol: tok.col + t.length };
    if (Object.hasOwn(ACTIONS, t)) {
      if (d.action !== undefined)
        emit('E_POLICY_DUPLICATE', tok, `second action '${t}' (the rule already has '${d.action}')`);
      d.action = t as Action;
      d.spans.action = span;
      continue;
    }
    if (t === 'permit_directio') {
      d.flags |= F.PERMIT_DIRECTIO;
      d.spans.permit_directio = span;
      continue;
    }
    const m = /^([a-z_]+)([=<>])(.*)$/s.exec(t);
    if (!m) {
      emit('E_POLICY_UNKNOWN_KEYWORD', tok, unknownHint(t));
      continue;
    }
    const key = m[1] as string;
    const op = m[2] as IdOp;
    const value = m[3] as string;
    if (op !== '=' && !ID_KEYS.has(key)) {
      emit(
        'E_POLICY_UNKNOWN_KEYWORD',
        tok,
        `'${key}${op}' is not a keyword ('<' and '>' only follow uid, euid, gid, egid, fowner, fgroup)`,
      );
      continue;
    }
    // match_token(): "%s" needs at least one character, so `func=` is no keyword at all
    if (value === '') {
      emit(
        'E_POLICY_UNKNOWN_KEYWORD',
        tok,
        `'${t}' has an empty value (the kernel does not recognise the token)`,
      );
      continue;
    }
    d.spans[key] = span;
    parseKeyword(d, key, op, value, tok, features, opts, emit);
  }
  return any ? d : undefined;
}

function unknownHint(t: string): string {
  if (t === 'dont_audit')
    return "unknown keyword 'dont_audit': the audit action has no negative form (pitfall 28)";
  if (t.startsWith('#')) return `'${t}': this kernel does not accept a trailing comment inside a rule`;
  if (t.endsWith('\r'))
    return `'${JSON.stringify(t)}' ends with a carriage return: the kernel separates tokens only with spaces and tabs (CRLF file?)`;
  return `unknown keyword '${t}'`;
}

function parseKeyword(
  d: Draft,
  key: string,
  op: IdOp,
  value: string,
  tok: Token,
  features: PolicyFeatures,
  opts: ParseOptions,
  emit: Emit,
): void {
  const dup = (what = key): void => emit('E_POLICY_DUPLICATE', tok, `'${what}' given twice in one rule`);
  const bad = (why: string): void => emit('E_POLICY_VALUE', tok, why);
  switch (key) {
    case 'func': {
      if (d.flags & F.FUNC) return dup();
      const f = FUNC_ALIASES[value] ?? (FUNCS as readonly string[]).find((x) => x === value);
      if (f === undefined || f === 'NONE' || f === 'POST_SETATTR' || !features.funcs.has(f as Func))
        return bad(
          f !== undefined && f !== 'NONE' && f !== 'POST_SETATTR'
            ? `func=${value} is not supported by this kernel`
            : `unknown hook '${value}'`,
        );
      d.func = f as Func;
      d.flags |= F.FUNC;
      return;
    }
    case 'mask': {
      if (d.mask) return dup();
      const inmask = value.startsWith('^');
      const name = inmask ? value.slice(1) : value;
      const bit = Object.hasOwn(MAY, name) ? MAY[name as keyof typeof MAY] : undefined;
      if (bit === undefined)
        return bad(
          `unknown mask '${value}' (MAY_EXEC, MAY_WRITE, MAY_READ, MAY_APPEND, optionally with '^')`,
        );
      d.mask = bit;
      d.flags |= inmask ? F.INMASK : F.MASK;
      return;
    }
    case 'fsmagic': {
      // kstrtoul(base 16): optional '+', optional 0x, hex digits, fits unsigned long
      if (d.fsmagic) return dup();
      const h = value.replace(/^\+/, '').replace(/^0[xX]/, '');
      if (!/^[0-9a-fA-F]+$/.test(h) || h.replace(/^0+/, '').length > 16)
        return bad(`fsmagic '${value}' is not a hexadecimal number`);
      d.fsmagic = Number.parseInt(h, 16);
      d.flags |= F.FSMAGIC;
      return;
    }
    case 'fsname':
      if (d.fsname !== undefined) return dup();
      d.fsname = value;
      d.flags |= F.FSNAME;
      return;
    case 'fsuuid':
      if (d.fsuuid !== undefined && d.fsuuid !== '00000000-0000-0000-0000-000000000000') return dup();
      if (!UUID_RE.test(value))
        return bad(`fsuuid '${value}' is not a dashed UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
      d.fsuuid = value.toLowerCase();
      d.flags |= F.FSUUID;
      return;
    case 'uid':
    case 'euid':
    case 'gid':
    case 'egid':
    case 'fowner':
    case 'fgroup': {
      // uid and euid share entry->uid (gid/egid share entry->gid): `uid=0 euid=0` is a duplicate
      const slot =
        key === 'euid' ? 'uid' : key === 'egid' ? 'gid' : (key as 'uid' | 'gid' | 'fowner' | 'fgroup');
      if (d[slot] !== undefined) return dup(slot === key ? key : `${slot}/${key}`);
      const n = parseUnsignedDecimal(value);
      // make_kuid(): (uid_t)-1 is INVALID_UID; larger than 32 bits fails the (uid_t)lnum != lnum check
      if (n === undefined || n >= 0xffffffff)
        return bad(`${key} value '${value}' is not a valid id (decimal 0..4294967294)`);
      d[slot] = Object.freeze({ op, value: n, effective: key === 'euid' || key === 'egid' });
      d.flags |= { uid: F.UID, euid: F.EUID, gid: F.GID, egid: F.EGID, fowner: F.FOWNER, fgroup: F.FGROUP }[
        key
      ];
      return;
    }
    case 'keyrings':
    case 'label': {
      if (key === 'keyrings' && !features.funcs.has('KEY_CHECK'))
        return bad('keyrings= needs CONFIG_IMA_MEASURE_ASYMMETRIC_KEYS, which this kernel lacks');
      const field = key === 'keyrings' ? 'keyrings' : 'labels';
      if (d[field] !== undefined) return dup();
      const items = value.split('|');
      if (items.some((x) => x === '')) return bad(`${key}= has an empty item`);
      d[field] = items;
      d.flags |= key === 'keyrings' ? F.KEYRINGS : F.LABEL;
      return;
    }
    case 'pcr': {
      // kstrtoint(base 10) then INVALID_PCR(): 0 <= pcr < bits in measured_pcrs; repeating pcr= is not checked
      const n = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 0 || n >= features.pcrLimit)
        return bad(`pcr '${value}' is not in 0..${features.pcrLimit - 1}`);
      d.pcr = n;
      d.flags |= F.PCR;
      return;
    }
    case 'template':
      if (d.action !== 'measure')
        return d.action === undefined
          ? emit('E_POLICY_ORDER', tok, 'template= must come after the measure action (pitfall 25)')
          : emit('E_POLICY_COMBINATION', tok, `template= is only for measure rules, not ${d.action}`);
      if (!features.templates.has(value)) return bad(`unknown template '${value}'`);
      if (d.template !== undefined) return dup();
      d.template = value;
      return;
    case 'appraise_type': {
      const blk = features.imasigImpliesBlacklist && !opts.builtin ? F.CHECK_BLACKLIST : 0;
      if (value === 'imasig') {
        if (d.flags & F.VERITY_REQUIRED)
          return emit(
            'E_POLICY_COMBINATION',
            tok,
            'digest_type=verity needs appraise_type=sigv3, not imasig',
          );
        d.flags |= F.DIGSIG_REQUIRED | blk;
      } else if (value === 'sigv3' && features.verity) {
        if (!(d.flags & F.VERITY_REQUIRED))
          return emit(
            'E_POLICY_ORDER',
            tok,
            'appraise_type=sigv3 needs digest_type=verity EARLIER in the rule (pitfall 25)',
          );
        d.flags |= F.DIGSIG_REQUIRED | blk;
      } else if (value === 'imasig|modsig' && features.modsig) {
        if (d.flags & F.VERITY_REQUIRED)
          return emit('E_POLICY_COMBINATION', tok, 'digest_type=verity cannot be combined with modsig');
        d.flags |= F.DIGSIG_REQUIRED | F.MODSIG_ALLOWED | blk;
      } else {
        return bad(
          value === 'imasig|modsig'
            ? 'appraise_type=imasig|modsig needs CONFIG_IMA_APPRAISE_MODSIG, which this kernel lacks'
            : `unknown appraise_type '${value}'`,
        );
      }
      return;
    }
    case 'appraise_flag':
      // mainline (2023+): accepted and ignored (pitfall 28). Older kernels: only "...blacklist..." and
      // only with CONFIG_IMA_APPRAISE_MODSIG, otherwise EINVAL.
      if (features.appraiseFlag === 'ignored') return;
      if (features.modsig && value.includes('blacklist')) {
        d.flags |= F.CHECK_BLACKLIST;
        return;
      }
      return bad(
        features.modsig
          ? `appraise_flag '${value}' is not check_blacklist`
          : 'appraise_flag= needs CONFIG_IMA_APPRAISE_MODSIG on this kernel',
      );
    case 'appraise_algos': {
      if (!features.appraiseAlgos)
        return emit('E_POLICY_UNKNOWN_KEYWORD', tok, 'appraise_algos= is not known to this kernel');
      if (d.allowedAlgos) return dup();
      let mask = 0;
      for (const name of value.split(',')) {
        const a = findHashAlgo(name);
        // ima_parse_appraise_algos(): match_string(hash_algo_name) then crypto_has_alg()
        if (a === undefined || a.name !== name || a.id >= features.hashAlgoLast)
          return bad(`unknown hash algorithm '${name}' in appraise_algos`);
        if (!features.availableHashes.has(name))
          return bad(`hash algorithm '${name}' is not available in this kernel`);
        mask |= 1 << a.id;
      }
      d.allowedAlgos = mask;
      d.flags |= F.VALIDATE_ALGOS;
      return;
    }
    case 'digest_type':
      if (!features.verity)
        return emit('E_POLICY_UNKNOWN_KEYWORD', tok, 'digest_type= is not known to this kernel');
      if (d.flags & F.DIGSIG_REQUIRED)
        return emit('E_POLICY_ORDER', tok, 'digest_type=verity must come before appraise_type (pitfall 25)');
      if (value !== 'verity') return bad(`unknown digest_type '${value}' (only verity)`);
      d.flags |= F.VERITY_REQUIRED;
      return;
    default:
      if ((LSM_KEYS as readonly string[]).includes(key)) {
        const k = key as LsmKey;
        if (d.lsm[k] !== undefined) return dup();
        d.lsm[k] = value;
        const known = features.lsmRules && (opts.lsmLabelKnown ? opts.lsmLabelKnown(k, value) : true);
        if (!known) {
          if (opts.defaultPolicyActive === true)
            return bad(
              `LSM label '${value}' is unknown to the active LSM (rejected while the boot policy is active)`,
            );
          d.lsmInactive = true;
          emit(
            'E_POLICY_VALUE',
            tok,
            `LSM label '${value}' is unknown: the rule is accepted but never matches`,
            'notice',
          );
        }
        return;
      }
      emit('E_POLICY_UNKNOWN_KEYWORD', tok, `unknown keyword '${key}'`);
  }
}

/** kstrtoul(base 10): optional '+', decimal digits, no sign, no spaces. */
function parseUnsignedDecimal(s: string): number | undefined {
  if (!/^\+?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}
