/**
 * Start-up cost (issue 10 item 11): one short command, side by side, median of N runs.
 *
 *  1. `imakit evmctl ima_verify --key CERT FILE` on one signed file, against `node -e 0` (the floor
 *     any Node program pays; target: imakit within 2x of it), `evmctl ima_verify` on the same file,
 *     imakit as built at an earlier commit (`--before REF`: a scratch `git worktree` of REF, built
 *     there and removed afterwards), this checkout's build, and this checkout's sources through tsx.
 *  2. The seeds' pattern (seed 002, `find / -type f -exec sign_file.sh {} \;`): one process per
 *     file, `evmctl sign --imasig` against `imakit evmctl sign --imasig` over --files files, and
 *     whether both wrote byte-identical security.ima and security.evm.
 *
 * Candidates run round-robin (one run of each in turn), so a change of machine load hits them alike.
 * Wall time is what users wait for; CPU time (user + sys, from /usr/bin/time when installed) is
 * shown too because on a shared machine it varies less. Prints figures; asserts nothing.
 *
 * Run: npm run bench -- startup [--runs 21] [--files 150] [--loop-runs 3] [--before REF | --no-before]
 * This checkout must be built (`npm run build`); the bench says so when the launcher would run the
 * sources instead. Files go to a fresh temporary directory on a filesystem with security.* xattrs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    files: { type: 'string', default: '150' },
    'loop-runs': { type: 'string', default: '3' },
    // the last commit before the bundled CLI (scripts/build.mjs, bin/load-bundle.js)
    before: { type: 'string', default: '5dd8eab' },
    'no-before': { type: 'boolean', default: false },
  },
});
const RUNS = Number(values.runs);
const FILES = Number(values.files);
const LOOP_RUNS = Number(values['loop-runs']);

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const workspace = resolve(pkg, '../..');
const UUID = '6a7d3d2b-2c6f-4b9e-8e54-16b2a4cbd1f0';
const HAVE_TIME = existsSync('/usr/bin/time');

interface Candidate {
  readonly label: string;
  readonly cmd: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly status: number;
  readonly stderr: string;
}

/** One run; CPU time from GNU time's `%U %S` written to a file (the command's stderr stays its own). */
function once(c: Candidate, cwd: string): Sample {
  const timeFile = join(cwd, '.time');
  const argv = HAVE_TIME ? ['/usr/bin/time', '-f', '%U %S', '-o', timeFile, ...c.cmd] : [...c.cmd];
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8', env: c.env ?? process.env });
  const wallMs = performance.now() - t0;
  let cpuMs = NaN;
  if (HAVE_TIME) {
    const t = spawnSync('cat', [timeFile], { encoding: 'utf8' }).stdout.trim().split(/\s+/).map(Number);
    cpuMs = ((t[0] ?? NaN) + (t[1] ?? NaN)) * 1000;
  }
  return { wallMs, cpuMs, status: r.status ?? -1, stderr: r.stderr };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

/** Round-robin runs of every candidate; returns medians in candidate order. */
function compare(cands: readonly Candidate[], runs: number, cwd: string, lastRun?: (j: number) => void) {
  const samples: Sample[][] = cands.map(() => []);
  for (let i = 0; i < runs; i++)
    cands.forEach((c, j) => {
      samples[j]!.push(once(c, cwd));
      if (i === runs - 1) lastRun?.(j);
    });
  return cands.map((c, j) => {
    const s = samples[j]!;
    const bad = s.find((x) => x.status !== 0);
    return {
      label: c.label,
      wallMs: median(s.map((x) => x.wallMs)),
      cpuMs: median(s.map((x) => x.cpuMs)),
      failed: bad ? `exit ${bad.status}: ${bad.stderr.trim().split('\n').slice(-2).join(' / ')}` : undefined,
    };
  });
}

function sh(cmd: string, args: readonly string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** Which entry a launcher runs (IMAKIT_LAUNCH_TRACE), e.g. `dist (build is up to date)`. */
function entryOf(bin: string): string {
  const r = spawnSync(process.execPath, [bin, '--version'], {
    encoding: 'utf8',
    env: { ...process.env, IMAKIT_LAUNCH_TRACE: '1' },
  });
  return /^imakit: (.*)$/m.exec(r.stderr)?.[1] ?? 'unknown';
}

/** A built scratch copy of the repository at `ref`; returns its launcher and a cleanup. */
function buildBefore(ref: string, parent: string): { bin: string; cleanup: () => void } {
  const tree = join(parent, 'before');
  sh('git', ['-C', workspace, 'worktree', 'add', '--detach', tree, ref]);
  const cleanup = (): void => {
    spawnSync('git', ['-C', workspace, 'worktree', 'remove', '--force', tree]);
  };
  try {
    // layouts before the workspace (bin/ at the top) and after it (packages/imakit/bin)
    const p = existsSync(join(tree, 'packages/imakit/bin/imakit.js')) ? join(tree, 'packages/imakit') : tree;
    symlinkSync(join(workspace, 'node_modules'), join(tree, 'node_modules'));
    if (existsSync(join(pkg, 'build')) && !existsSync(join(p, 'build')))
      symlinkSync(join(pkg, 'build'), join(p, 'build'));
    sh(process.execPath, ['scripts/build.mjs'], p);
    return { bin: join(p, 'bin/imakit.js'), cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

const fmt = (ms: number): string => (Number.isNaN(ms) ? '—' : `${ms.toFixed(0)} ms`.padStart(8));
const ratio = (a: number, b: number): string =>
  Number.isNaN(a) || Number.isNaN(b) ? '—' : `${(a / b).toFixed(2)}x`;

const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'imakit-startup-'));
let before: { bin: string; cleanup: () => void } | undefined;
try {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.der');
  copyFileSync(join(pkg, 'test/vectors/rsa2048.key'), key);
  copyFileSync(join(pkg, 'test/vectors/rsa2048.cer'), cert);
  const file = join(dir, 'file');
  writeFileSync(file, randomBytes(4096));
  sh('evmctl', ['ima_sign', '-a', 'sha256', '-k', key, file]);

  const after = join(pkg, 'bin/imakit.js');
  const afterEntry = entryOf(after);
  if (!values['no-before']) {
    process.stderr.write(`building imakit at ${values.before} in a scratch worktree...\n`);
    before = buildBefore(values.before, dir);
  }
  const node = process.execPath;
  const verify = ['evmctl', 'ima_verify', '--key', cert, file];
  const cands: Candidate[] = [
    { label: 'node -e 0', cmd: [node, '-e', '0'] },
    { label: 'evmctl ima_verify (ima-evm-utils)', cmd: verify },
    ...(before
      ? [
          {
            label: `imakit before (${values.before}; ${entryOf(before.bin)})`,
            cmd: [node, before.bin, ...verify],
          },
        ]
      : []),
    { label: `imakit after (this checkout; ${afterEntry})`, cmd: [node, after, ...verify] },
    {
      label: 'imakit from source (IMAKIT_FROM_SOURCE=1, tsx)',
      cmd: [node, after, ...verify],
      env: { ...process.env, IMAKIT_FROM_SOURCE: '1' },
    },
  ];
  console.log(
    `# one-file ima_verify, median of ${RUNS} runs (load average at start ${sh('cat', ['/proc/loadavg']).split(' ')[0]})`,
  );
  const res = compare(cands, RUNS, dir);
  const floor = res[0]!;
  console.log(`${'candidate'.padEnd(66)}    wall      cpu   wall/node cpu/node`);
  for (const r of res)
    console.log(
      `${r.label.padEnd(66)} ${fmt(r.wallMs)} ${fmt(r.cpuMs)}   ${ratio(r.wallMs, floor.wallMs).padStart(6)}   ${ratio(r.cpuMs, floor.cpuMs).padStart(6)}${r.failed ? `  FAILED ${r.failed}` : ''}`,
    );
  if (!afterEntry.startsWith('dist'))
    console.log('note: this checkout ran its sources; run `npm run build` first');

  // --- the seeds' find -exec loop, every candidate over the same files (EVM signatures cover the
  // inode number and generation, so only the same inodes can get the same labels)
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  const seed = randomBytes(FILES * 64);
  for (let i = 0; i < FILES; i++)
    writeFileSync(
      join(tree, `f${String(i).padStart(3, '0')}`),
      Buffer.concat([seed.subarray(i * 64, i * 64 + 64), Buffer.alloc(i * 97)]),
    );
  const signArgs = ['sign', '--imasig', `--uuid=${UUID}`, '-k', key];
  const loop = (tool: readonly string[]): readonly string[] => [
    'find',
    tree,
    '-type',
    'f',
    '-exec',
    ...tool,
    ...signArgs,
    '{}',
    ';',
  ];
  const loopCands: Candidate[] = [
    { label: 'evmctl sign --imasig', cmd: loop(['evmctl']) },
    ...(before
      ? [{ label: 'imakit before: imakit evmctl sign --imasig', cmd: loop([node, before.bin, 'evmctl']) }]
      : []),
    { label: 'imakit after: imakit evmctl sign --imasig', cmd: loop([node, after, 'evmctl']) },
  ];
  // RSA PKCS#1 v1.5 is deterministic and --uuid fixes the filesystem's one input: labels must match
  const dump = (): string => sh('getfattr', ['-R', '-e', 'hex', '-m', '^security\\.(ima|evm)$', '-d', tree]);
  const dumps: string[] = [];
  console.log(`\n# find -exec loop over ${FILES} files (one process per file), median of ${LOOP_RUNS} runs`);
  const lr = compare(loopCands, LOOP_RUNS, dir, (j) => {
    dumps[j] = dump();
    // a candidate that writes nothing must not inherit the previous one's labels
    const files = Array.from({ length: FILES }, (_, i) => join(tree, `f${String(i).padStart(3, '0')}`));
    for (const name of ['security.evm', 'security.ima']) sh('setfattr', ['-x', name, ...files]);
  });
  for (const r of lr)
    console.log(
      `${r.label.padEnd(48)} ${(r.wallMs / 1000).toFixed(2).padStart(7)} s  ${(r.wallMs / FILES).toFixed(1).padStart(6)} ms/file  ${ratio(r.wallMs, lr[0]!.wallMs).padStart(7)} evmctl${r.failed ? `  FAILED ${r.failed}` : ''}`,
    );
  const same = dumps.slice(1).map((d) => (d === dumps[0] ? 'identical' : 'DIFFERENT'));
  console.log(
    `security.ima + security.evm against evmctl's: ${same.join(', ')} (${dumps[0]!.split('security.evm=').length - 1} files labelled)`,
  );
} finally {
  before?.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
