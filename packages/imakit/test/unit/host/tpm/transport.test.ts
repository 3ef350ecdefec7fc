/**
 * Transports: the `--tpm` selector, a TPM that never answers (timeout), responses that are
 * truncated, oversized or followed by extra bytes (typed errors), swtpm over a unix socket, and a
 * TPM error response decoded with the command that returned it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TpmClient } from '../../../../src/host/tpm/client.ts';
import { parseTpmSelector } from '../../../../src/host/tpm/transport.ts';
import { TpmError } from '../../../../src/core/tpm/commands/frame.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { startTestTpm } from '../../tpm-helpers.ts';

/** A fake TPM on an ephemeral port: `answer` decides what each command gets. */
async function fakeTpm(
  answer: (s: Socket, cmd: Buffer) => void,
): Promise<{ server: Server; selector: string }> {
  const server = createServer((s) => s.on('data', (b) => answer(s, b)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return { server, selector: `swtpm:127.0.0.1:${port}` };
}

const header = (size: number, rc = 0): Buffer => {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(0x8001, 0);
  b.writeUInt32BE(size, 2);
  b.writeUInt32BE(rc, 6);
  return b;
};

test('--tpm selectors', () => {
  assert.deepEqual(parseTpmSelector('swtpm:127.0.0.1:2321'), {
    kind: 'swtpm',
    host: '127.0.0.1',
    port: 2321,
    ctrlPort: 2322,
  });
  assert.deepEqual(parseTpmSelector('unix:/run/swtpm.sock'), { kind: 'unix', path: '/run/swtpm.sock' });
  assert.deepEqual(parseTpmSelector('/dev/tpm0'), { kind: 'device', path: '/dev/tpm0' });
  for (const bad of ['swtpm:host', 'swtpm::1', 'swtpm:h:99999', 'unix:', 'tpm0'])
    assert.throws(
      () => parseTpmSelector(bad),
      (e) => isImakitError(e, 'E_USAGE'),
    );
});

test('a TPM that never answers times out with E_TPM_TIMEOUT', async () => {
  const { server, selector } = await fakeTpm(() => undefined);
  try {
    const c = await TpmClient.open(selector, { timeoutMs: 300 });
    const t0 = Date.now();
    await assert.rejects(
      c.getRandom(8),
      (e) => isImakitError(e, 'E_TPM_TIMEOUT') && /no response after 300 ms/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
    await c.close();
  } finally {
    server.close();
  }
});

test('a missing TPM device or refused port is E_TPM_TRANSPORT', async () => {
  await assert.rejects(TpmClient.open('/nonexistent/tpmrm0'), (e) => isImakitError(e, 'E_TPM_TRANSPORT'));
  const { server, selector } = await fakeTpm(() => undefined);
  await new Promise((r) => server.close(r));
  const c = await TpmClient.open(selector);
  await assert.rejects(c.getRandom(8), (e) => isImakitError(e, 'E_TPM_TRANSPORT'));
});

for (const [what, reply] of [
  [
    'truncated (connection closed mid-response)',
    (s: Socket) => s.end(Buffer.concat([header(100), Buffer.alloc(5)])),
  ],
  ['oversized (size field beyond the cap)', (s: Socket) => s.write(header(0x7fffffff))],
  ['smaller than its header', (s: Socket) => s.write(header(6))],
  [
    'followed by extra bytes',
    (s: Socket) => s.write(Buffer.concat([header(12), Buffer.alloc(2), Buffer.alloc(3)])),
  ],
  [
    'well framed but its parameters are short',
    (s: Socket) => s.write(Buffer.concat([header(12), Buffer.from([0, 16])])),
  ],
] as const) {
  test(`a response ${what} is E_TPM_RESPONSE`, async () => {
    const { server, selector } = await fakeTpm((s) => reply(s));
    try {
      const c = await TpmClient.open(selector, { timeoutMs: 2000 });
      await assert.rejects(c.getRandom(16), (e) => isImakitError(e, 'E_TPM_RESPONSE'));
      await c.close();
    } finally {
      server.close();
    }
  });
}

test('an error response is a TpmError naming the command and the decoded code', async () => {
  const { server, selector } = await fakeTpm((s) => s.write(header(10, 0x1df)));
  try {
    const c = await TpmClient.open(selector);
    await assert.rejects(c.getRandom(16), (e) => {
      assert.ok(e instanceof TpmError);
      assert.equal(e.code, 'E_TPM_RC');
      assert.equal(e.rc, 0x1df);
      assert.equal(e.command, 'GetRandom');
      assert.match(e.message, /TPM2_GetRandom: TPM_RC_INTEGRITY \(parameter 1\)/);
      return true;
    });
    await c.close();
  } finally {
    server.close();
  }
});

test('a real TPM error from swtpm: NV_ReadPublic of an absent index', async () => {
  const t = await startTestTpm({ manufacture: false });
  const c = await TpmClient.open(t.selector);
  try {
    await assert.rejects(
      c.nvReadAll(0x01c0000a),
      (e) => e instanceof TpmError && e.command === 'NV_ReadPublic',
    );
  } finally {
    await c.close();
    t.stop();
  }
});

test('swtpm over a unix socket (--server type=unixio): startup, random, PCR read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-unix-'));
  const path = join(dir, 'tpm.sock');
  const child = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${dir}`,
      '--server',
      `type=unixio,path=${path}`,
      '--flags',
      'not-need-init',
    ],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
    const c = await TpmClient.open(`unix:${path}`, { keepAlive: true });
    try {
      assert.equal(await c.startup(), true); // not started yet: this Startup starts it
      assert.equal(await c.startup(), false); // TPM_RC_INITIALIZE is success
      assert.equal((await c.getRandom(40)).length, 40);
      const banks = await c.pcrBanks();
      assert.ok(banks.some((b) => b.pcrs.length === 24));
    } finally {
      await c.close();
    }
  } finally {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
