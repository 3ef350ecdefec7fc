/**
 * Every command line the README shows is checked (issue 10 item 6): each `imakit …` and `npm …`
 * line of a shell code block, and each `imakit …` / `npm …` code span in the first column of a
 * table. Lines are found in the README itself, so commands documented later are checked without
 * editing this file.
 *
 *  1. Every `imakit` line parses: the command, its options and arguments exist (`main` with
 *     `parseOnly`, which stops before the command runs). Every `npm run X` names a script of the
 *     root package.json, and `npm run bench -- NAME` a file bench/NAME.ts.
 *  2. Every line runs, in a scratch workspace with what the README's examples refer to (below), and
 *     exits 0 (or the status EXIT_NOT_ZERO documents for it), except the lines in NOT_RUN, each with
 *     the reason it cannot run in a unit test.
 *     Lines run in README order, except that `imakit keys …` lines run first and `imakit label …`
 *     lines second: the keys and labels they make are what the other examples sign, verify and
 *     predict with.
 *  3. The Quick start shows exactly `npm run demo` and `npm test`; paths a code block runs
 *     (`bash PATH`) and the paths of the Layout table exist.
 *
 * The workspace: `tree/` (a directory to label: a few files and a copy of /bin/true), `files/`
 * (single files: `a.txt`, `b.txt`, `true`), `run1/` and `run2/` (what real-kernel runs wrote:
 * test/fixtures/kernel/measure-ima-ng-4banks and evm-fix-hmac), `policy.txt`, `scenario.json` (an emulator
 * scenario); `ca/` and `ima/` are made by the README's own `keys` lines. Where this machine cannot read the
 * workspace filesystem's UUID (a container without access to the block device), commands that
 * compute EVM values get `--uuid` appended, the one input they would otherwise read from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR, REPO_ROOT, run, tempDir } from '../helpers.ts';
import { main } from '../../src/cli/main.ts';
import { memoryIo } from '../../src/cli/io.ts';
import { readFsUuid } from '../../src/host/fs/fs-uuid.ts';

const WORKSPACE_ROOT = join(REPO_ROOT, '../..');
const README = readFileSync(join(WORKSPACE_ROOT, 'README.md'), 'utf8');

/** Lines that cannot run in a unit test; they are still parsed (1). */
const NOT_RUN: readonly { readonly match: RegExp; readonly reason: string }[] = [
  { match: /^npm ci\b/, reason: 'reinstalls node_modules under the running suite' },
  { match: /^npm link\b/, reason: "writes to npm's global prefix" },
  { match: /^npm (test|run test(:\w+)?)\b/, reason: 'is the suite this test is part of' },
  { match: /^npm run (typecheck|lint|format|build)\b/, reason: 'whole-tree jobs of minutes; CI runs them' },
  { match: /^npm run bench\b/, reason: 'benchmarks take minutes and assert nothing' },
  { match: /^imakit vm (setup|run)\b/, reason: 'downloads and boots a kernel under QEMU (test/kernel does)' },
  {
    match: /^imakit (verifier serve|fleet)\b/,
    reason: 'a long-running verifier, or a request to one (test/unit/cli/fleet.test.ts runs both)',
  },
  {
    match: /^imakit agent\b/,
    reason: "needs this machine's TPM and a verifier (test/unit/host/agent/agent.test.ts runs it on swtpm)",
  },
  {
    match: /^imakit keys import\b/,
    reason: "loads a key into this machine's kernel keyrings (test/kernel does)",
  },
  {
    match: /^imakit log verify .*--quote\b/,
    reason: 'needs a quote from a TPM over the list (test/unit/cli/log-quote.test.ts replays one into swtpm)',
  },
  {
    match: /^imakit refs from-(deb|dpkg|rpm|rpmdb|oci)\b/,
    reason:
      'needs packages or images (apt-get download, rpmbuild, an image layout): test/unit/cli/refs-packages.test.ts and test/unit/host/packages/e2e.test.ts run them',
  },
  {
    match: /^imakit quote verify\b/,
    reason: 'needs a quote made by a TPM (test/unit/cli/quote.test.ts and tpm.test.ts make them with swtpm)',
  },
  {
    match: /^imakit tpm\b/,
    reason:
      'talks to a TPM: a device, or an swtpm the line does not start (test/unit/cli/tpm.test.ts starts one)',
  },
];

/**
 * Lines whose documented exit status is not 0, with the reason; each must exit with exactly that
 * status (a line that suddenly exits 0 is as wrong as one that crashes).
 */
const EXIT_NOT_ZERO: readonly { readonly match: RegExp; readonly exit: number; readonly reason: string }[] = [
  { match: /^imakit refs diff\b/, exit: 1, reason: 'like diff(1): 1 when the two sets differ' },
  {
    match: /^imakit refs impact\b.*run1\//,
    exit: 1,
    reason: "1 when a machine would fail: run1's list has ToMToU violations, which are refused",
  },
];

/** Commands that hash the filesystem UUID into EVM values (see the header). */
const USES_FS_UUID = /^imakit (evm (hmac|sign|verify)|(label|verify) .*--evm\b|evmctl (sign|hmac|verify)\b)/;
const FIXED_UUID = '6a7d3d2b-2c6f-4b9e-8e54-16b2a4cbd1f0';

interface DocLine {
  readonly text: string;
  /** 1-based line number in README.md */
  readonly line: number;
  readonly section: string;
}

/** `imakit …` / `npm …` lines of shell code blocks and table first columns, in README order. */
function commandLines(md: string): DocLine[] {
  const out: DocLine[] = [];
  let fence: string | undefined;
  let section = '';
  md.split('\n').forEach((raw, i) => {
    const f = /^```(\w*)/.exec(raw);
    if (f) {
      fence = fence === undefined ? f[1] : undefined;
      return;
    }
    if (fence === undefined && raw.startsWith('#')) section = raw.replace(/^#+\s*/, '');
    if (fence !== undefined) {
      if (!['sh', 'bash', 'shell', 'console', ''].includes(fence)) return;
      const text = stripComment(raw.trim().replace(/^\$ /, ''));
      if (/^(imakit|npm) /.test(text)) out.push({ text, line: i + 1, section });
    } else if (raw.startsWith('|')) {
      const first = raw.split(/(?<!\\)\|/)[1] ?? '';
      for (const m of first.matchAll(/`([^`]+)`/g)) {
        const text = m[1]!.replace(/\\\|/g, '|').trim();
        if (/^(imakit|npm) /.test(text)) out.push({ text, line: i + 1, section });
      }
    }
  });
  return out;
}

/** A line without its trailing shell comment (` # …` outside quotes). */
function stripComment(s: string): string {
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = undefined;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i).trimEnd();
  }
  return s;
}

/**
 * Split a plain command line into words: quotes and backslashes as the shell has them. Anything
 * that needs a shell to mean what it says (variables, pipes, redirections, globs) is refused, so
 * an example that only works in a shell cannot pass here unnoticed.
 */
function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated quote in: ${s}`);
      const body = s.slice(i + 1, end);
      if (c === '"' && /[$`\\]/.test(body)) throw new Error(`needs a shell ($, \`, \\ in quotes): ${s}`);
      cur = (cur ?? '') + body;
      i = end;
    } else if (c === '\\') {
      cur = (cur ?? '') + (s[++i] ?? '');
    } else if (/\s/.test(c)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (/[$|&;<>`*?(){}[\]]/.test(c)) {
      throw new Error(`needs a shell (${c}): ${s}`);
    } else cur = (cur ?? '') + c;
  }
  if (cur !== undefined) words.push(cur);
  return words;
}

const LINES = commandLines(README);
const notRun = (l: DocLine) => NOT_RUN.find((n) => n.match.test(l.text));
const at = (l: DocLine): string => `README.md:${l.line} (${l.section}): ${l.text}`;

test('the README shows command lines, and the extractor finds both kinds', () => {
  assert.ok(LINES.length >= 30, `only ${LINES.length} command lines found`);
  assert.ok(LINES.some((l) => l.section.startsWith('Quick start')));
  assert.ok(LINES.some((l) => /^imakit evmctl /.test(l.text)));
  // the extractor itself: a table cell with several commands and an escaped pipe, a code block
  // line with a comment, prose mentions ignored
  const md = [
    'Run `imakit log show | head` in prose.',
    '| `imakit a x\\|y` / `imakit b` | `--opt` |',
    '```sh',
    'npm run demo   # comment',
    '```',
    '```ts',
    "imakit('not a command')",
    '```',
  ].join('\n');
  assert.deepEqual(
    commandLines(md).map((l) => l.text),
    ['imakit a x|y', 'imakit b', 'npm run demo'],
  );
  assert.deepEqual(shellWords(`imakit vm run --append "a b=c" --x 'y z' p\\ q`), [
    'imakit',
    'vm',
    'run',
    '--append',
    'a b=c',
    '--x',
    'y z',
    'p q',
  ]);
  assert.throws(() => shellWords('imakit sign "$file"'), /needs a shell/);
});

test('Quick start: exactly two commands, npm run demo and npm test', () => {
  const quick = LINES.filter((l) => l.section.startsWith('Quick start')).map((l) => l.text);
  assert.deepEqual(quick, ['npm run demo', 'npm test']);
});

test('paths the README runs or lays out exist', () => {
  const bash = [...README.matchAll(/^bash (\S+)/gm)].map((m) => m[1]!);
  assert.ok(bash.length > 0);
  for (const p of bash) assert.ok(existsSync(join(WORKSPACE_ROOT, p)), `bash ${p}`);
  const layout = README.split(/^## /m).find((s) => s.startsWith('Layout'));
  assert.ok(layout, 'a Layout section');
  // every code span of the table's first column
  const paths = [...layout.matchAll(/^\| (.*?) \|/gm)].flatMap((m) =>
    [...m[1]!.matchAll(/`([^`]+)`/g)].map((c) => c[1]!),
  );
  assert.ok(paths.length >= 5);
  for (const p of paths) assert.ok(existsSync(join(WORKSPACE_ROOT, p)), `Layout: ${p}`);
});

test('main parseOnly: checks a line without running it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const parse = async (argv: string[]): Promise<number> => main(argv, memoryIo(), { parseOnly: true });
    // the README's old mistake: the option is --path (commander would suggest --profile)
    assert.equal(
      await parse(['policy', 'explain', '--policy', 'p.txt', '--file', '/usr/bin/ls', '--op', 'exec']),
      2,
    );
    assert.equal(
      await parse(['policy', 'explain', '--policy', 'p.txt', '--path', '/usr/bin/ls', '--op', 'exec']),
      0,
    );
    assert.equal(await parse(['keys', 'kmk', 'new', '--out', join(dir, 'kmk')]), 0);
    assert.ok(!existsSync(join(dir, 'kmk')), 'parsed only: nothing written');
    assert.equal(await parse(['keys', 'kmk', 'new', '--bogus']), 2);
    assert.equal(await parse(['evmctl', 'ima_verify', '--key', 'c.der', 'f']), 0);
    assert.equal(await parse(['evmctl', 'ima_verfy', 'f']), 125);
    assert.equal(await parse(['evmctl', 'sign', '--nope', 'f']), 1);
  } finally {
    cleanup();
  }
});

test('every imakit line parses and every npm line names a script', async (t) => {
  interface Pkg {
    readonly name: string;
    readonly scripts: Record<string, string>;
    readonly workspaces?: readonly string[];
  }
  const pkgAt = (dir: string): Pkg => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Pkg;
  const root = pkgAt(WORKSPACE_ROOT);
  const workspaces = new Map((root.workspaces ?? []).map((w) => [pkgAt(join(WORKSPACE_ROOT, w)).name, w]));
  for (const l of LINES)
    await t.test(at(l), async () => {
      const argv = shellWords(l.text);
      if (argv[0] === 'npm') {
        // `-w NAME` runs the script of that workspace
        const w = argv.findIndex((a) => a === '-w' || a === '--workspace');
        const dir = w < 0 ? '.' : workspaces.get(argv[w + 1] ?? '');
        assert.ok(dir !== undefined, `no workspace '${argv[w + 1]}'`);
        const scripts = pkgAt(join(WORKSPACE_ROOT, dir)).scripts;
        if (argv[1] === 'run') {
          assert.ok(argv[2] && argv[2] in scripts, `no script '${argv[2]}' in ${dir}/package.json`);
          if (argv[2] === 'bench' && argv[4] !== undefined && argv[4] !== 'NAME')
            assert.ok(existsSync(join(REPO_ROOT, 'bench', `${argv[4]}.ts`)), `no bench/${argv[4]}.ts`);
        } else assert.ok(['ci', 'test', 'link'].includes(argv[1]!), `npm ${argv[1]}`);
        return;
      }
      const io = memoryIo();
      const code = await main(argv.slice(1), io, { parseOnly: true });
      assert.equal(code, 0, io.err() + io.out());
    });
});

test('every README command line runs and exits 0 (keys lines first, then label)', async (t) => {
  const { dir: ws, cleanup } = tempDir('imakit-readme-');
  const cwd = process.cwd();
  try {
    for (const d of ['tree/bin', 'tree/etc', 'files']) mkdirSync(join(ws, d), { recursive: true });
    writeFileSync(join(ws, 'tree/etc/motd'), 'hello\n');
    writeFileSync(join(ws, 'tree/notes.txt'), 'notes\n'.repeat(100));
    copyFileSync('/bin/true', join(ws, 'tree/bin/true'));
    writeFileSync(join(ws, 'files/a.txt'), 'alpha\n');
    writeFileSync(join(ws, 'files/b.txt'), 'beta\n'.repeat(100));
    copyFileSync('/bin/true', join(ws, 'files/true'));
    cpSync(join(FIXTURES_DIR, 'kernel/measure-ima-ng-4banks'), join(ws, 'run1'), { recursive: true });
    // a second real-kernel run whose list has no violations: the reference-set examples learn from it
    cpSync(join(FIXTURES_DIR, 'kernel/evm-fix-hmac'), join(ws, 'run2'), { recursive: true });
    writeFileSync(
      join(ws, 'policy.txt'),
      'measure func=BPRM_CHECK\nmeasure func=FILE_CHECK uid=0\nappraise func=BPRM_CHECK appraise_type=imasig\n',
    );
    writeFileSync(
      join(ws, 'scenario.json'),
      JSON.stringify({
        profile: 'debian-6.1',
        append: ['ima_policy=tcb', 'ima_hash=sha256', 'ima_template=ima-ng'],
        files: [{ path: 'a.txt', content: 'hello\n' }],
        workload: [{ op: 'read', path: 'a.txt' }],
      }),
    );
    let uuidReadable = true;
    try {
      readFsUuid(ws);
    } catch {
      uuidReadable = false;
    }
    process.chdir(ws);
    const phase = (l: DocLine): number =>
      l.text.startsWith('imakit keys ') ? 0 : l.text.startsWith('imakit label ') ? 1 : 2;
    const ordered = [0, 1, 2].flatMap((p) => LINES.filter((l) => phase(l) === p));
    for (const l of ordered) {
      const skip = notRun(l);
      if (skip) {
        // reported, not counted as a test: these lines are parsed above
        t.diagnostic(`not run: ${at(l)}: ${skip.reason}`);
        continue;
      }
      await t.test(at(l), async () => {
        const argv = shellWords(l.text);
        if (argv[0] === 'npm') {
          const r = run('npm', argv.slice(1), { cwd: WORKSPACE_ROOT, env: { ...process.env, CI: '1' } });
          assert.equal(r.status, 0, r.stdout.slice(-2000) + r.stderr.slice(-2000));
          return;
        }
        const args = argv.slice(1);
        if (!uuidReadable && USES_FS_UUID.test(l.text))
          args.push(...(args[0] === 'evmctl' ? [`--uuid=${FIXED_UUID}`] : ['--uuid', FIXED_UUID]));
        const io = memoryIo({ cwd: ws });
        const code = await main(args, io);
        const expected = EXIT_NOT_ZERO.find((e) => e.match.test(l.text))?.exit ?? 0;
        assert.equal(code, expected, `exit ${code}\n${io.err()}${io.out().slice(-2000)}`);
      });
    }
  } finally {
    process.chdir(cwd);
    cleanup();
  }
});
