/**
 * Policy matching and preflight throughput (issue 5). Prints figures; asserts nothing.
 *
 *  1. ima_match_policy() decisions per second for the built-in `tcb`, `appraise_tcb` and a 50-rule
 *     custom policy, over a mix of hooks, masks, owners, filesystems and uids (target >= 1,000,000/s)
 *  2. `imakit preflight` over a generated tree of N files, every file labelled with a sha256
 *     security.ima hash (so every file must be hashed), vs `sha256sum` over the same files
 *     (target: within 1.2x of sha256sum's files/s)
 *
 * Run: node --import tsx bench/policy-match.ts [--files 100000] [--file-kib 4] [--decisions 2000000] [--rounds 3]
 * Needs root for security.* xattrs. The tree goes to a fresh temporary directory, removed at the end.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  builtinPolicyText,
  compilePolicy,
  parseBuiltinRules,
  parsePolicy,
  type Func,
  type MatchRequest,
} from '../src/core/policy/index.ts';
import { setXattr } from '../src/host/fs/xattr.ts';
import { preflight } from '../src/host/preflight/preflight.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    'file-kib': { type: 'string', default: '4' },
    decisions: { type: 'string', default: '2000000' },
    'skip-tree': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
  },
});
const nFiles = Number(values.files);
const fileKiB = Number(values['file-kib']);
const nDecisions = Number(values.decisions);
const rounds = Number(values.rounds);

// ---------------------------------------------------------------- 1. matching

function custom50(): string {
  const r: string[] = [];
  const magics = [
    '0x9fa0',
    '0x62656572',
    '0x64626720',
    '0x1021994',
    '0x858458f6',
    '0x1cd1',
    '0x42494e4d',
    '0x73636673',
  ];
  for (const m of magics) r.push(`dont_measure fsmagic=${m}`, `dont_appraise fsmagic=${m}`);
  for (let i = 0; i < 10; i++)
    r.push(`dont_appraise fowner=${2000 + i} fsuuid=00000000-0000-0000-0000-00000000000${i}`);
  r.push(
    'measure func=BPRM_CHECK mask=MAY_EXEC',
    'measure func=MMAP_CHECK mask=MAY_EXEC',
    'measure func=FILE_CHECK mask=^MAY_READ euid=0',
  );
  r.push(
    'measure func=FILE_CHECK mask=^MAY_READ uid=0',
    'measure func=MODULE_CHECK',
    'measure func=FIRMWARE_CHECK',
    'measure func=POLICY_CHECK',
  );
  for (let i = 0; i < 8; i++) r.push(`audit func=BPRM_CHECK uid=${3000 + i}`);
  r.push(
    'appraise func=BPRM_CHECK fowner>999 appraise_type=imasig',
    'appraise func=MMAP_CHECK fowner>999 appraise_type=imasig',
  );
  r.push(
    'appraise func=MODULE_CHECK appraise_type=imasig',
    'appraise func=FIRMWARE_CHECK appraise_type=imasig',
    'appraise func=FILE_CHECK fgroup=50 appraise_type=imasig',
  );
  r.push('hash func=FILE_CHECK fsname=xfs', 'dont_hash fsname=tmpfs');
  r.push('dont_appraise fsname=proc', 'appraise fowner=0 appraise_algos=sha256,sha512');
  if (r.length !== 50) throw new Error(`custom policy has ${r.length} rules`);
  return r.join('\n');
}

function requests(n: number): MatchRequest[] {
  const funcs: Func[] = [
    'FILE_CHECK',
    'FILE_CHECK',
    'FILE_CHECK',
    'BPRM_CHECK',
    'MMAP_CHECK',
    'MODULE_CHECK',
  ];
  const fss = [
    { fsmagic: 0xef53, fsname: 'ext4', fsuuid: '28b23254-9467-44c0-b6ba-34b12e85a26f' },
    { fsmagic: 0x01021994, fsname: 'tmpfs', fsuuid: null },
    { fsmagic: 0x58465342, fsname: 'xfs', fsuuid: '00000000-0000-0000-0000-000000000003' },
    { fsmagic: 0x9fa0, fsname: 'proc', fsuuid: null },
  ];
  const out: MatchRequest[] = [];
  for (let i = 0; i < n; i++) {
    const uid = [0, 0, 1000, 3003][i % 4]!;
    const fs = fss[(i >> 2) % fss.length]!;
    out.push({
      func: funcs[i % funcs.length]!,
      mask: [4, 6, 1, 4, 2][i % 5]!,
      subject: { uid, euid: uid, gid: uid, egid: uid, capSetuid: uid === 0 },
      object: { uid: [0, 1000, 2003][i % 3]!, gid: [0, 50][i % 2]!, ...fs },
    });
  }
  return out;
}

function benchMatch(name: string, rules: ReturnType<typeof parsePolicy>['rules']): void {
  const cp = compilePolicy(rules);
  const reqs = requests(4096);
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += cp.match(reqs[i & 4095]!).action; // warm up
  const t0 = performance.now();
  for (let i = 0; i < nDecisions; i++) sink += cp.match(reqs[i & 4095]!).action;
  const ms = performance.now() - t0;
  const rate = nDecisions / (ms / 1000);
  console.log(
    `  ${name.padEnd(14)} ${String(rules.length).padStart(3)} rules  ${(rate / 1e6).toFixed(2).padStart(6)} M decisions/s  ${rate >= 1e6 ? 'OK' : 'BELOW TARGET'} (${sink & 1})`,
  );
}

console.log(`policy matching, ${nDecisions} decisions each (target >= 1,000,000/s):`);
benchMatch('tcb', parseBuiltinRules(builtinPolicyText('tcb'), 'tcb'));
benchMatch('appraise_tcb', parseBuiltinRules(builtinPolicyText('appraise_tcb'), 'appraise_tcb'));
const c = parsePolicy(custom50());
if (!c.ok) throw new Error(JSON.stringify(c.diagnostics));
benchMatch('custom-50', c.rules);

// ---------------------------------------------------------------- 2. preflight vs sha256sum

if (!values['skip-tree']) {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-bench-preflight-'));
  try {
    const root = join(dir, 'tree');
    const t0 = performance.now();
    const blob = randomBytes(fileKiB * 1024);
    const paths: string[] = [];
    for (let d = 0; d < Math.ceil(nFiles / 1000); d++) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let i = 0; i < 1000 && d * 1000 + i < nFiles; i++) {
        const p = join(root, `d${d}`, `f${i}`);
        blob.writeUInt32LE(d * 1000 + i, 0); // distinct contents
        writeFileSync(p, blob);
        const ima = Buffer.concat([Buffer.from([0x04, 0x04]), createHash('sha256').update(blob).digest()]);
        setXattr(p, 'security.ima', ima);
        paths.push(p);
      }
    }
    console.log(
      `\ntree: ${nFiles} files of ${fileKiB} KiB, labelled, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    // warm the page cache once for both contenders
    spawnSync('sh', ['-c', `find "${root}" -type f -print0 | xargs -0 cat > /dev/null`]);
    // interleaved rounds: sha256sum, then preflight (workers by default, then one thread), so
    // that load from other processes hits both contenders alike; best and spread are reported
    const fps = (ms: number): number => nFiles / (ms / 1000);
    const times = { sha: [] as number[], pre: [] as number[], one: [] as number[] };
    let last: Awaited<ReturnType<typeof preflight>> | undefined;
    const opts = {
      builtin: 'appraise_tcb',
      appraise: 'enforce',
      profile: 'debian-6.1',
      ops: ['read'],
    } as const;
    for (let round = 0; round < rounds; round++) {
      const s0 = performance.now();
      const ss = spawnSync('sh', ['-c', `find "${root}" -type f -print0 | xargs -0 sha256sum > /dev/null`]);
      times.sha.push(performance.now() - s0);
      if (ss.status !== 0) throw new Error(`sha256sum failed: ${String(ss.stderr)}`);
      const p0 = performance.now();
      last = await preflight(root, opts);
      times.pre.push(performance.now() - p0);
      if (round === 0) {
        const o0 = performance.now();
        await preflight(root, { ...opts, workers: 0 });
        times.one.push(performance.now() - o0);
      }
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const spread = (xs: number[]): string =>
      `${(best(xs) / 1000).toFixed(2)}-${(Math.max(...xs) / 1000).toFixed(2)} s`;
    console.log(
      `  load: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')} (1/5/15 min) after the runs; ${availableParallelism()} CPUs`,
    );
    console.log(
      `  sha256sum (find | xargs)   best ${fps(best(times.sha)).toFixed(0).padStart(7)} files/s  (${rounds} rounds: ${spread(times.sha)})`,
    );
    console.log(
      `  imakit preflight (${last?.summary.workers} workers) best ${fps(best(times.pre)).toFixed(0).padStart(7)} files/s  (${rounds} rounds: ${spread(times.pre)}; ${last?.summary.hashed} hashed, ${last?.summary.denied} denied)`,
    );
    console.log(
      `  imakit preflight (1 thread)  ${fps(best(times.one)).toFixed(0).padStart(7)} files/s  (${(best(times.one) / 1000).toFixed(2)} s)`,
    );
    console.log(
      `  ratio preflight/sha256sum (best/best): ${(best(times.pre) / best(times.sha)).toFixed(2)}x, target <= 1.2x; per round: ${times.pre.map((t, i) => (t / times.sha[i]!).toFixed(2)).join(', ')}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
