/**
 * `imakit policy check | fmt | builtin | explain`: the IMA policy language (formats.md §5) as the
 * kernel of a profile sees it.
 *
 * Exit: 0 valid / done, 2 invalid policy or bad options (every diagnostic printed with
 * line:col, token and reason), 3 unreadable file.
 */
import { lstatSync } from 'node:fs';
import { relative } from 'node:path';
import { ImakitError, EXIT } from '../../errors.ts';
import {
  BUILTIN_NAMES,
  actionType,
  builtinPolicyText,
  compilePolicy,
  explainRule,
  formatPolicy,
  parseBuiltinRules,
  IMA,
  type ActionType,
  type Diagnostic,
  type Func,
  type MatchRequest,
  type PolicyRule,
} from '../../core/policy/index.ts';
import { FS_MAGIC } from '../../core/policy/builtin.ts';
import { getProfile, PROFILES, DEFAULT_PROFILE, type KernelProfile } from '../../kernel/profiles.ts';
import { walkTree } from '../../host/fs/walk.ts';
import {
  loadPolicyRules,
  parseCustomPolicy,
  readPolicyFile,
  type LoadedRules,
} from '../../host/preflight/policy-source.ts';
import { OP_HOOKS } from '../../kernel/workload.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';

/** `file:line:col: CODE token 'x': message` lines. */
export function renderDiagnostics(file: string, ds: readonly Diagnostic[]): string {
  return ds
    .map((d) => `${file}:${d.line}:${d.col}: ${d.severity} ${d.code} at '${d.token}': ${d.message}\n`)
    .join('');
}

/** Load rules from `--builtin NAME` or a policy file; invalid files raise E_POLICY_* with the first diagnostic. */
export function loadRules(opts: { policy?: string; builtin?: string }, profile: KernelProfile): LoadedRules {
  if (opts.builtin === undefined && opts.policy === undefined)
    throw new ImakitError('E_USAGE', 'give --policy FILE or --builtin NAME');
  return loadPolicyRules(
    opts.builtin !== undefined ? { builtin: opts.builtin } : { policyFile: opts.policy },
    profile,
  );
}

interface CommonFlags {
  profile: string;
  json?: boolean;
}

async function check(file: string, f: CommonFlags, io: CliIo): Promise<number> {
  const profile = getProfile(f.profile);
  const p = parseCustomPolicy(readPolicyFile(file), profile);
  if (f.json)
    io.stdout(
      JSON.stringify(
        { file, profile: profile.name, ok: p.ok, rules: p.rules.length, diagnostics: p.diagnostics },
        null,
        2,
      ) + '\n',
    );
  else {
    io.stdout(renderDiagnostics(file, p.diagnostics));
    io.stdout(
      p.ok
        ? `${file}: ${p.rules.length} rules, valid for ${profile.name}\n`
        : `${file}: INVALID for ${profile.name}: the kernel would refuse the whole write\n`,
    );
  }
  return p.ok ? EXIT.OK : EXIT.BAD_INPUT;
}

async function fmt(file: string, f: CommonFlags & { reloadable?: boolean }, io: CliIo): Promise<number> {
  const profile = getProfile(f.profile);
  const p = parseCustomPolicy(readPolicyFile(file), profile);
  if (!p.ok) {
    io.stderr(renderDiagnostics(file, p.diagnostics));
    return EXIT.BAD_INPUT;
  }
  const text = formatPolicy(p.rules, {
    hidden: p.inactive,
    reloadable: f.reloadable === true,
    showBlacklistFlag: profile.policy.appraiseFlag === 'blacklist',
  });
  if (f.json)
    io.stdout(JSON.stringify({ file, rules: text.split('\n').filter((l) => l !== '') }, null, 2) + '\n');
  else io.stdout(text);
  return EXIT.OK;
}

async function builtin(name: string, f: CommonFlags, io: CliIo): Promise<number> {
  const profile = getProfile(f.profile);
  const rules = parseBuiltinRules(builtinPolicyText(name, profile.boot.builtin), name, profile.policy);
  const text = formatPolicy(rules, { reloadable: true });
  if (f.json)
    io.stdout(JSON.stringify({ name, rules: text.split('\n').filter((l) => l !== '') }, null, 2) + '\n');
  else io.stdout(text);
  return EXIT.OK;
}

interface ExplainFlags extends CommonFlags {
  policy?: string;
  builtin?: string;
  path?: string;
  tree?: string;
  op: string;
  uid: string;
  owner?: string;
  group?: string;
  fsmagic: string;
  fsname: string;
  fsuuid?: string;
}

interface Explanation {
  readonly path: string;
  readonly hook: Func;
  readonly mask: number;
  readonly actions: Record<
    ActionType,
    {
      decided: boolean;
      action: string | null;
      rule: number | null;
      line: number | null;
      text: string | null;
      why: string;
    }
  >;
}

function explainAccess(
  rules: readonly PolicyRule[],
  inactive: ReadonlySet<number>,
  req: MatchRequest,
  path: string,
): Explanation {
  const cp = compilePolicy(rules, { inactive });
  const m = cp.match(req, IMA.MEASURE | IMA.APPRAISE | IMA.AUDIT | IMA.HASH);
  const actions = {} as Explanation['actions'];
  for (const t of ['measure', 'appraise', 'audit', 'hash'] as const) {
    const idx = m.decidedBy[t];
    const skipped: string[] = [];
    for (let i = 0; i < (idx < 0 ? rules.length : idx); i++) {
      const r = rules[i] as PolicyRule;
      if (actionType(r.action) !== t) continue;
      const why = explainRule(r, req, inactive.has(i));
      if (why !== null) skipped.push(`rule ${i + 1} (${r.action}) skipped: ${why}`);
    }
    const r = idx >= 0 ? (rules[idx] as PolicyRule) : null;
    actions[t] = {
      decided: r !== null,
      action: r ? r.action : null,
      rule: r ? idx + 1 : null,
      line: r ? r.line : null,
      text: r ? r.text.trim() : null,
      why: r
        ? `${r.action.startsWith('dont_') ? `'${r.action}' closes ${t}` : `'${r.action}' applies`}: first ${t}-type rule whose conditions all hold${skipped.length ? ` (${skipped.length} earlier ${t} rule(s) did not match)` : ''}`
        : `no ${t} rule matches: nothing is ${t === 'measure' ? 'measured' : t === 'appraise' ? 'appraised' : t === 'audit' ? 'audited' : 'hashed'}`,
      ...(skipped.length ? { skipped } : {}),
    };
  }
  return { path, hook: req.func, mask: req.mask, actions };
}

function renderExplanation(e: Explanation): string {
  let s = `${e.path}: ${e.hook} mask=0x${e.mask.toString(16)}\n`;
  for (const [t, a] of Object.entries(e.actions)) {
    s += `  ${t.padEnd(8)} ${a.decided ? `rule ${a.rule} (line ${a.line}): ${a.text}` : '-'}\n           ${a.why}\n`;
    for (const k of (a as { skipped?: string[] }).skipped ?? []) s += `           ${k}\n`;
  }
  return s;
}

async function explain(f: ExplainFlags, io: CliIo): Promise<number> {
  const profile = getProfile(f.profile);
  const { rules, inactive } = loadRules(f, profile);
  const hooks = OP_HOOKS[f.op];
  if (!hooks) throw new ImakitError('E_USAGE', `--op ${f.op}: use ${Object.keys(OP_HOOKS).join(', ')}`);
  const uid = Number(f.uid);
  const subject = { uid, euid: uid, gid: uid, egid: uid, capSetuid: uid === 0, capSetgid: uid === 0 };
  const fsmagic = /^(0x)?[0-9a-f]+$/i.test(f.fsmagic)
    ? Number.parseInt(f.fsmagic.replace(/^0x/i, ''), 16)
    : (FS_MAGIC as Record<string, number>)[f.fsmagic];
  if (fsmagic === undefined)
    throw new ImakitError('E_USAGE', `--fsmagic ${f.fsmagic}: hex or a filesystem name`);
  const out: Explanation[] = [];
  const one = (path: string, owner: number, group: number): void => {
    for (const [func, mask] of hooks)
      out.push(
        explainAccess(
          rules,
          inactive,
          {
            func,
            mask,
            subject,
            object: {
              uid: owner,
              gid: group,
              fsmagic,
              fsname: f.fsname,
              fsuuid: f.fsuuid?.toLowerCase() ?? null,
            },
          },
          path,
        ),
      );
  };
  if (f.tree !== undefined) {
    for await (const e of walkTree(f.tree)) {
      if (e.kind !== 'entry' || e.type !== 'file') continue;
      const st = lstatSync(e.path);
      one(relative(f.tree, e.path), st.uid, st.gid);
    }
  } else if (f.path !== undefined) {
    let owner = f.owner !== undefined ? Number(f.owner) : 0;
    let group = f.group !== undefined ? Number(f.group) : 0;
    if (f.owner === undefined) {
      try {
        const st = lstatSync(f.path);
        owner = st.uid;
        group = f.group !== undefined ? group : st.gid;
      } catch {
        // an abstract path: owner/group default to root
      }
    }
    one(f.path, owner, group);
  } else throw new ImakitError('E_USAGE', 'explain needs --path FILE or --tree DIR');
  if (f.json) io.stdout(JSON.stringify({ profile: profile.name, results: out }, null, 2) + '\n');
  else io.stdout(out.map(renderExplanation).join(''));
  return EXIT.OK;
}

export const command: CommandModule = {
  name: 'policy',
  register(program, ctx) {
    const policy = program
      .command('policy')
      .description('check, format, explain IMA policies; print built-in policies');
    const profileOpt = `kernel profile (${Object.keys(PROFILES).join(', ')})`;
    policy
      .command('check')
      .description(
        'validate a policy like the kernel would; print every problem with line:col, token and reason (exit 2 if invalid)',
      )
      .argument('<file>', 'policy file')
      .option('--profile <name>', profileOpt, DEFAULT_PROFILE)
      .option('--json', 'JSON output')
      .action(async (file, f) => ctx.run(() => check(file, f, ctx.io), { json: f.json === true }));
    policy
      .command('fmt')
      .description('print the canonical (kernel read-back) form of a valid policy')
      .argument('<file>', 'policy file')
      .option('--profile <name>', profileOpt, DEFAULT_PROFILE)
      .option(
        '--reloadable',
        'put digest_type=verity before appraise_type=sigv3 so the output can be written back',
      )
      .option('--json', 'JSON output')
      .action(async (file, f) => ctx.run(() => fmt(file, f, ctx.io), { json: f.json === true }));
    policy
      .command('builtin')
      .description(`print a built-in policy in rule order (${BUILTIN_NAMES.join(', ')})`)
      .argument('<name>', 'built-in policy name')
      .option('--profile <name>', profileOpt, DEFAULT_PROFILE)
      .option('--json', 'JSON output')
      .action(async (name, f) => ctx.run(() => builtin(name, f, ctx.io), { json: f.json === true }));
    policy
      .command('explain')
      .description(
        'say which rule decides measure/appraise/audit/hash for a file and an access (or every file of a tree), and why',
      )
      .option('--policy <file>', 'policy file')
      .option('--builtin <names>', 'built-in policies, e.g. tcb|appraise_tcb')
      .option('--path <file>', 'the file (stat for its owner when it exists)')
      .option('--tree <dir>', 'explain every regular file below DIR')
      .option('--op <op>', `access: ${Object.keys(OP_HOOKS).join(', ')}`, 'read')
      .option('--uid <n>', 'uid of the process', '0')
      .option('--owner <n>', 'file owner (default: from stat, else 0)')
      .option('--group <n>', 'file group')
      .option('--fsmagic <hex|name>', 'filesystem magic or name (ext4, tmpfs, proc…)', 'ext4')
      .option('--fsname <name>', 'filesystem type name', 'ext4')
      .option('--fsuuid <uuid>', 'filesystem UUID')
      .option('--profile <name>', profileOpt, DEFAULT_PROFILE)
      .option('--json', 'JSON output')
      .action(async (f) => ctx.run(() => explain(f, ctx.io), { json: f.json === true }));
  },
};
