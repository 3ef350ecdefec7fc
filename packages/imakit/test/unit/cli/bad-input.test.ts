/**
 * Bad input as a user hits it, table-driven through the real CLI (main(argv, memoryIo())): each
 * case gives argv, the exit status (README table: 1 verification failed, 2 bad input, 3 I/O,
 * 4 unsupported, 5 environment), the error code, and a regexp the message must match (it names
 * the file, entry, offset or line and the reason, once). Every case also runs with --json
 * (`{"error":{code,message}}` or per-file verdicts carrying the code), never prints a stack
 * trace, and leaves every file's xattrs as they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { listXattrs, getXattr, setXattr } from '../../../src/host/fs/xattr.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';
import { REPO_ROOT, hex, run, tempDir, vectorPath } from '../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');

async function imakit(args: string[], env: Record<string, string> = {}) {
  const io = memoryIo({ env });
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

/** Every xattr of every file, as name=hex lines: compared before and after each case. */
function xattrSnapshot(files: readonly string[]): string {
  return files
    .map((f) => {
      const names = listXattrs(f).sort();
      return `${f}: ${names.map((n) => `${n}=${toHex(getXattr(f, n) ?? new Uint8Array())}`).join(' ')}`;
    })
    .join('\n');
}

interface Case {
  readonly name: string;
  readonly argv: (d: string) => string[];
  readonly exit: number;
  readonly code: string;
  readonly message: RegExp;
  /** false for commands without --json */
  readonly json?: boolean;
}

/** The fixture tree every case reads (labels set once, snapshot compared after each case). */
function fixtures(d: string): string[] {
  const files: string[] = [];
  const mk = (name: string, content: string, ima?: string): void => {
    const p = join(d, name);
    writeFileSync(p, content);
    if (ima !== undefined) setXattr(p, 'security.ima', hex(ima));
    files.push(p);
  };
  mk('plain', 'no label\n');
  mk('sigsize', 'x\n', '0302044d0e4f4d01ffff00'); // sig_size 511, 2 bytes follow
  mk('short', 'x\n', '03'); // no version byte
  mk('hash-short', 'x\n', '0404'); // sha256 digest missing
  // a binary list whose first entry declares 4 GiB of template data (must not allocate it)
  const list = Buffer.from(readFileSync(vectorPath('synthetic_binary_runtime_measurements_sha256')));
  list.writeUInt32LE(0xffffffff, 46);
  writeFileSync(join(d, 'huge.list'), list);
  writeFileSync(join(d, 'garbage.pcr'), 'garbage\n');
  // an ascii list whose first line is cut inside the template digest
  const ascii = readFileSync(vectorPath('synthetic_ascii_runtime_measurements_sha256'), 'latin1');
  writeFileSync(join(d, 'cut.ascii'), ascii.slice(0, 40) + '\n');
  mkdirSync(join(d, 'dir'));
  writeFileSync(join(d, 'scenario.json'), '{"policy": 5}\n');
  assert.equal(run('mkfifo', [join(d, 'fifo')]).status, 0);
  writeFileSync(join(d, 'garbage.key'), Buffer.from([0x30, 0x82, 0xff, 0xff, 1, 2, 3]));
  writeFileSync(
    join(d, 'binary.pol'),
    Buffer.from('measure func=FILE_CHECK\n\x7fELF\x02\x01\x00\x00', 'latin1'),
  );
  return files;
}

const CASES: readonly Case[] = [
  {
    name: 'verify: oversized sig_size names the offset and field',
    argv: (d) => ['verify', '-k', RSA_CER, join(d, 'sigsize')],
    exit: 1,
    code: 'E_CODEC_TRUNCATED',
    message:
      /sigsize: FAILED malformed-label \(.*offset 7, field sig_size: sig_size 511 but only 2 bytes follow\)/,
  },
  {
    name: 'verify: a one-byte label names what is missing',
    argv: (d) => ['verify', '-k', RSA_CER, join(d, 'short')],
    exit: 1,
    code: 'E_CODEC_TRUNCATED',
    message: /short: FAILED malformed-label \(.*offset 1, field version/,
  },
  {
    name: 'verify: a hash label without its digest',
    argv: (d) => ['verify', '-k', RSA_CER, join(d, 'hash-short')],
    exit: 1,
    code: 'E_CODEC_TRUNCATED',
    message: /hash-short: FAILED malformed-label \(.*field digest: sha256 digest needs 32 bytes/,
  },
  {
    name: 'sign: a DER certificate as the private key is named, not "encrypted"',
    argv: (d) => ['sign', '-k', RSA_CER, join(d, 'plain')],
    exit: 2,
    code: 'E_KEY_PARSE',
    message: /rsa2048\.cer: this is a DER X\.509 certificate, not a private key/,
  },
  {
    name: 'sign: a PEM public key as the private key',
    argv: (d) => ['sign', '-k', vectorPath('rsa2048.pub'), join(d, 'plain')],
    exit: 2,
    code: 'E_KEY_PARSE',
    message: /holds: PUBLIC KEY; a certificate or public key cannot sign/,
  },
  {
    name: 'evm sign --portable without security.ima is bad input (2), path named once',
    argv: (d) => ['evm', 'sign', '--portable', '-k', RSA_KEY, join(d, 'plain')],
    exit: 2,
    code: 'E_XATTR_MISSING',
    message: /plain, field security\.ima: a portable EVM signature needs security\.ima/,
  },
  {
    name: 'log show: a 4 GiB template-data length names entry, offset and field',
    argv: (d) => ['log', 'show', join(d, 'huge.list')],
    exit: 2,
    code: 'E_LIST_ENDIAN',
    message: /entry 0, offset 46, field template data length: .*template data length 4294967295 exceeds/,
  },
  {
    name: 'log verify: a PCR file in no known format names file and line once',
    argv: (d) => ['log', 'verify', '--pcrs', join(d, 'garbage.pcr'), join(d, 'huge.list')],
    exit: 2,
    code: 'E_PCR_FILE',
    message: /garbage\.pcr, line 1, offset 0: not a PCR file/,
  },
  {
    name: 'log show: a directory as the list is bad input naming it',
    argv: (d) => ['log', 'show', join(d, 'dir')],
    exit: 2,
    code: 'E_IO_NOT_REGULAR',
    message: /dir: is a directory, expected a file/,
  },
  {
    name: 'eventlog show: a directory as the log',
    argv: (d) => ['eventlog', 'show', join(d, 'dir')],
    exit: 2,
    code: 'E_IO_NOT_REGULAR',
    message: /dir: is a directory, expected a file/,
  },
  {
    name: 'log show: a cut ascii line goes to the ascii parser, which names the line',
    argv: (d) => ['log', 'show', join(d, 'cut.ascii')],
    exit: 2,
    code: 'E_CODEC_BAD_TEXT',
    message: /entry 0, line 1, offset 0: expected '<pcr> <digest> <template> <fields>'/,
  },
  {
    name: 'policy check: a binary file is one error naming the NUL byte, not garbage "keywords"',
    argv: (d) => ['policy', 'check', join(d, 'binary.pol')],
    exit: 2,
    code: 'E_POLICY_SYNTAX',
    message: /binary\.pol, line 2, offset 30: not a text policy: NUL byte at offset 30/,
  },
  {
    name: 'keys info: garbage names the file',
    argv: (d) => ['keys', 'info', join(d, 'garbage.key')],
    exit: 2,
    code: 'E_KEY_PARSE',
    message: /garbage\.key: not a certificate or public key/,
  },
  {
    name: 'keys gen: --ca pointing to a directory without a CA says so and how to make one',
    argv: (d) => ['keys', 'gen', '--ca', join(d, 'dir'), '--out', join(d, 'dir')],
    exit: 3,
    code: 'E_IO_READ',
    message: /ca\.pem: no CA in .*dir: ca\.pem is missing \(create one with `imakit keys ca --out/,
  },
  {
    name: 'verify: a FIFO is refused without opening it (no hang), path named once',
    argv: (d) => ['verify', '-k', RSA_CER, join(d, 'fifo')],
    exit: 2,
    code: 'E_IO_NOT_REGULAR',
    message: /fifo: error \(\S*fifo is not a regular file\) \[E_IO_NOT_REGULAR\]/,
  },
  {
    name: 'emulate: a scenario field of the wrong type names the file and the field',
    argv: (d) => ['emulate', join(d, 'scenario.json')],
    exit: 2,
    code: 'E_SCENARIO',
    message: /scenario\.json, field policy: expected a string, got 5/,
  },
];

test('bad input: exit status, code, message naming where and why; --json; xattrs untouched', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = fixtures(dir);
    const before = xattrSnapshot(files);
    for (const c of CASES) {
      const argv = c.argv(dir);
      const r = await imakit(argv);
      const text = r.out + r.err;
      assert.equal(r.status, c.exit, `${c.name}: exit\n${text}`);
      assert.match(text, c.message, c.name);
      assert.ok(!/\n\s+at .*\(.*:\d+:\d+\)/.test(text), `${c.name}: stack trace\n${text}`);
      assert.equal(xattrSnapshot(files), before, `${c.name}: xattrs changed`);
      // the path is not repeated inside its own message ("p: p: reason")
      for (const f of [...files, join(dir, 'fifo')])
        assert.ok(!text.includes(`${f}: ${f}`), `${c.name}: path twice\n${text}`);
      if (c.json === false) continue;
      const verbs = ['evm', 'log', 'eventlog', 'policy', 'keys'].includes(argv[0]!) ? 2 : 1;
      const j = await imakit([...argv.slice(0, verbs), '--json', ...argv.slice(verbs)]);
      assert.equal(j.status, c.exit, `${c.name} --json: exit`);
      assert.ok(j.out.includes(`"code": "${c.code}"`), `${c.name} --json: code\n${j.out}${j.err}`);
      const doc = JSON.parse(j.out) as { error?: { code: string; message: string } };
      if (doc.error) assert.equal(doc.error.code, c.code, c.name);
      assert.equal(xattrSnapshot(files), before, `${c.name} --json: xattrs changed`);
    }
  } finally {
    cleanup();
  }
});

test('hash of a /proc pseudo-file says it is one (size 0 but content), exit 3', async () => {
  const r = await imakit(['hash', '--print', '/proc/version']);
  assert.equal(r.status, 3, r.err);
  assert.match(r.err, /\/proc\/version: the file reports size 0 but \d+ bytes were read \(a pseudo-file/);
  assert.match(r.err, /E_IO_CHANGED/);
});

test('evmctl ima_measurement: a bad --pcrs file is named; ima_verify on a FIFO', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'bad.pcr'), 'garbage\n');
    const list = vectorPath('synthetic_binary_runtime_measurements_sha256');
    const r = await imakit(['evmctl', 'ima_measurement', '--pcrs', `sha256,${join(dir, 'bad.pcr')}`, list]);
    // PCRs that cannot be read are not an error to evmctl (1.6.2's read_tpm_banks): the template
    // digests alone decide, and they are valid here (evmctl-exit-status.test.ts compares with evmctl)
    assert.equal(r.status, 0, r.err);
    assert.match(
      r.err,
      /bad\.pcr: line 1, offset 0: expected 'PCR-NN: <hex>', got 'garbage'\nFailed to read any TPM PCRs/,
    );
    // ima_verify on a FIFO: refused without opening it, the path said once, evmctl's status 1
    const fifo = join(dir, 'fifo');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    const v = await imakit(['evmctl', 'ima_verify', '-k', RSA_CER, fifo]);
    assert.equal(v.status, 1);
    assert.ok(v.err.includes(`${fifo}: ${fifo} is not a regular file [E_IO_NOT_REGULAR]`), v.err);
  } finally {
    cleanup();
  }
});

test('output piped into a reader that closes early: quiet exit 141 (as SIGPIPE), no EPIPE trace', () => {
  const list = vectorPath('synthetic_ascii_runtime_measurements_sha256');
  // `true` exits long before the CLI has started, so the first write meets a closed pipe
  const r = run(
    'bash',
    ['-c', `node bin/imakit.js log show '${list}' | true; echo "status=\${PIPESTATUS[0]}"`],
    {
      cwd: REPO_ROOT,
    },
  );
  assert.match(r.stdout, /status=141/, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Unhandled/);
});

test('vm run with a missing --files dir fails before booting and leaves no empty output dir', async () => {
  const outs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('imakit-vm-out-'));
  const before = new Set(outs());
  // the real environment: the harness finds its kernel cache from it
  const env = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const r = await imakit(['vm', 'run', '--files', '/nonexistent-imakit-files-dir'], env);
  // 2 (E_VM_IMAGE) with the kernel cached; 5 where the harness's kernel or tools are missing
  assert.ok(r.status === 2 || r.status === 5, r.err);
  if (r.status === 2) assert.match(r.err, /nonexistent-imakit-files-dir: cannot read the files directory/);
  assert.deepEqual(
    outs().filter((n) => !before.has(n)),
    [],
  );
});
