/**
 * Every input kind a command reads whole is bounded (issue 10 item 3): /dev/zero given as a key,
 * certificate, policy, PCR file, event log, scenario or list is refused with an error naming the
 * file, the kind and the cap (or, for lists, what the head looks like), a non-zero exit, and
 * without reading more than the cap. Before, each of these read until the process was OOM-killed,
 * so each case here hung (the test timeout) or died. Run through the real CLI in-process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { spawn } from 'node:child_process';
import { FIXTURES_DIR, run, tempDir, vectorPath } from '../../helpers.ts';

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

const LIST = vectorPath('synthetic_binary_runtime_measurements_sha1');

interface Case {
  readonly argv: string[];
  readonly exit: number;
  readonly message: RegExp;
}

const CASES: readonly Case[] = [
  {
    argv: ['keys', 'info', '/dev/zero'],
    exit: 2,
    message:
      /\/dev\/zero: is a character device giving more than 1 MiB: the cap for a key is 1 MiB.*E_IO_TOO_LARGE/,
  },
  {
    argv: ['policy', 'check', '/dev/zero'],
    exit: 2,
    message: /\/dev\/zero: .*the cap for a policy is 16 MiB.*E_IO_TOO_LARGE/,
  },
  {
    argv: ['log', 'verify', LIST, '--pcrs', 'sha1,/dev/zero'],
    exit: 2,
    message: /\/dev\/zero: .*the cap for a PCR file is 1 MiB/,
  },
  {
    argv: ['eventlog', 'show', '/dev/zero'],
    exit: 2,
    message: /\/dev\/zero: .*the cap for an event log is 16 MiB/,
  },
  { argv: ['boot-aggregate', '--eventlog', '/dev/zero'], exit: 2, message: /the cap for an event log/ },
  {
    argv: ['emulate', '/dev/zero'],
    exit: 2,
    message: /\/dev\/zero: not JSON: starts with byte 0x00.*E_SCENARIO/,
  },
  // a list is probed before it is read whole: zeros are no list at all
  {
    argv: ['log', 'show', '/dev/zero'],
    exit: 2,
    message: /\/dev\/zero.*no byte order\/digest size yields a valid first entry.*E_LIST_ENDIAN/,
  },
  { argv: ['log', 'diff', '/dev/zero', LIST], exit: 2, message: /E_LIST_ENDIAN/ },
  {
    argv: ['evmctl', 'ima_sign', '--key', '/dev/zero', LIST],
    exit: 125,
    message: /\/dev\/zero: .*the cap for a key is 1 MiB/,
  },
  { argv: ['evmctl', 'convert', '/dev/zero'], exit: 1, message: /the cap for a key/ },
  // the agent's and fleet's user-supplied files (issue 10 item 3 leftovers): read before any network
  {
    argv: ['fleet', 'list', '--token', 't', '--verifier', 'https://127.0.0.1:1', '--ca', '/dev/zero'],
    exit: 2,
    message:
      /\/dev\/zero: is a character device giving more than 1 MiB: the cap for a certificate is 1 MiB.*E_IO_TOO_LARGE/,
  },
  {
    argv: ['agent', 'status', '--config', '/dev/zero'],
    exit: 2,
    message:
      /\/dev\/zero: is a character device giving more than 1 MiB: the cap for a config file is 1 MiB.*E_IO_TOO_LARGE/,
  },
];

for (const c of CASES)
  test(`bounded: imakit ${c.argv.join(' ')}`, { timeout: 60_000 }, async () => {
    const before = process.memoryUsage().rss;
    const r = await imakit(c.argv);
    assert.equal(r.status, c.exit, r.err);
    assert.match(r.err, c.message);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    // never more than the largest cap exercised here (16 MiB) plus slack
    assert.ok(process.memoryUsage().rss - before < 160 << 20, 'memory stayed bounded');
  });

test(
  'evmctl ima_verify --key /dev/zero: the key is skipped and verification fails (1), as evmctl',
  { timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = join(dir, 'signed');
      copyFileSync(vectorPath('hello.txt'), f);
      assert.equal(run('evmctl', ['ima_sign', '-k', vectorPath('rsa2048.key'), f]).status, 0);
      const ref = run('evmctl', ['ima_verify', '--key', '/dev/zero', f]);
      const r = await imakit(['evmctl', 'ima_verify', '--key', '/dev/zero', f]);
      assert.equal(r.status, ref.status);
      assert.equal(r.status, 1);
      assert.match(r.err, /\/dev\/zero: .*cap for a key is 1 MiB/);
      // the right key in the list still verifies, /dev/zero beside it is skipped
      const ok = await imakit(['evmctl', 'ima_verify', '--key', `/dev/zero,${vectorPath('rsa2048.cer')}`, f]);
      assert.equal(ok.status, 0, ok.err);
    } finally {
      cleanup();
    }
  },
);

test(
  'agent run --ca /dev/zero, and a state file that is /dev/zero: refused at their caps before any TPM or network',
  { timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'agent-token'), 'tok\n');
      const base = [
        'agent',
        'run',
        '--once',
        '--state',
        dir,
        '--id',
        'a',
        '--verifier',
        'https://127.0.0.1:1',
      ];
      const ca = await imakit([...base, '--ca', '/dev/zero']);
      assert.equal(ca.status, 2, ca.err);
      assert.match(ca.err, /\/dev\/zero: .*the cap for a certificate is 1 MiB.*E_IO_TOO_LARGE/);
      // a missing state file is "not enrolled"; one that never ends is refused at its cap
      const fresh = await imakit([
        'agent',
        'status',
        '--state',
        join(dir, 'none'),
        '--id',
        'a',
        '--verifier',
        'https://v:1',
        '--json',
      ]);
      assert.equal(fresh.status, 0, fresh.err);
      assert.equal(JSON.parse(fresh.out).enrolled, false);
      symlinkSync('/dev/zero', join(dir, 'last.json'));
      const st = await imakit(['agent', 'status', '--state', dir, '--id', 'a', '--verifier', 'https://v:1']);
      assert.equal(st.status, 2, st.err);
      assert.match(st.err, /last\.json: .*the cap for an agent state file is 1 MiB.*E_IO_TOO_LARGE/);
    } finally {
      cleanup();
    }
  },
);

test('log show streams: a list arriving through a FIFO prints the same as the file (was ESPIPE / read whole)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const list = join(FIXTURES_DIR, 'kernel', 'appraise-fix', 'binary_runtime_measurements');
    const fifo = join(dir, 'fifo');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    const writer = spawn('sh', ['-c', `exec cat '${list}' > '${fifo}'`], { stdio: 'ignore' });
    const viaFifo = await imakit(['log', 'show', fifo]);
    await new Promise((r) => writer.on('exit', r));
    const viaFile = await imakit(['log', 'show', list, '--limit', '100']);
    assert.equal(viaFifo.status, 0, viaFifo.err);
    assert.equal(viaFifo.out, viaFile.out);
    assert.match(viaFifo.err, /; 24 entries/);
    // --limit prints fewer lines but still counts every entry
    const limited = await imakit(['log', 'show', list, '--limit', '2']);
    assert.equal(limited.out.split('\n').length - 1, 2);
    assert.match(limited.err, /; 24 entries/);
  } finally {
    cleanup();
  }
});

test('log convert --to ascii streams; a list cut short leaves no output and no temporary file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const list = join(FIXTURES_DIR, 'kernel', 'appraise-fix', 'binary_runtime_measurements');
    const out = join(dir, 'out.ascii');
    const ok = await imakit(['log', 'convert', list, '--to', 'ascii', '--out', out]);
    assert.equal(ok.status, 0, ok.err);
    // the kernel's own ascii list of the same run
    assert.equal(
      readFileSync(out, 'utf8'),
      readFileSync(join(FIXTURES_DIR, 'kernel', 'appraise-fix', 'ascii_runtime_measurements'), 'utf8'),
    );
    const cut = join(dir, 'cut.bin');
    const bytes = readFileSync(list);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 7));
    const out2 = join(dir, 'out2.ascii');
    const bad = await imakit(['log', 'convert', cut, '--to', 'ascii', '--out', out2]);
    assert.equal(bad.status, 2);
    assert.match(bad.err, /cut\.bin, entry 23, .*cut short.*E_CODEC_TRUNCATED/);
    assert.deepEqual(readdirSync(dir).sort(), ['cut.bin', 'out.ascii']);
  } finally {
    cleanup();
  }
});
