/**
 * `tpm2_pcrread` output parsed by core/pcr-values.ts against a real (software) TPM: swtpm on a
 * random local port, PCR 10 extended with tpm2_pcrextend in the sha1 and sha256 banks, then
 * `tpm2_pcrread sha1:0,10+sha256:0,10` parsed and compared with the values computed by node:crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tempDir } from '../../../helpers.ts';
import { parsePcrText, parseTpm2Pcrread } from '../../../../src/core/tcg/pcr-values.ts';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/**
 * Wait until something listens on 127.0.0.1:port, reading /proc/net/tcp: a probe connection would
 * be taken by swtpm as a client (a connect-and-close on its ports left the next client hanging).
 */
async function waitListening(port: number, ms = 5000): Promise<void> {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const end = Date.now() + ms;
  for (;;) {
    const rows = readFileSync('/proc/net/tcp', 'utf8').split('\n');
    if (rows.some((r) => r.trim().split(/\s+/)[1] === want && r.trim().split(/\s+/)[3] === '0A')) return;
    if (Date.now() > end) throw new Error(`swtpm did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('tpm2_pcrread output from swtpm parses to the extended values', async (t) => {
  if (!have('swtpm') || !have('tpm2_pcrread')) {
    t.skip('swtpm / tpm2-tools not installed (scripts/install-deps.sh)');
    return;
  }
  const { dir, cleanup } = tempDir('imakit-swtpm-');
  const port = 20000 + Math.floor(Math.random() * 20000) * 2;
  let tpm: ChildProcess | undefined;
  try {
    tpm = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--server',
        `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
        '--flags',
        'not-need-init,startup-clear',
        '--tpmstate',
        `dir=${dir}`,
      ],
      { stdio: 'ignore' },
    );
    await waitListening(port);
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
    const d1 = randomBytes(20);
    const d256 = randomBytes(32);
    const ext = spawnSync(
      'tpm2_pcrextend',
      [`10:sha1=${d1.toString('hex')},sha256=${d256.toString('hex')}`],
      { env, encoding: 'utf8', timeout: 20000 },
    );
    assert.equal(ext.status, 0, ext.stderr);
    const rd = spawnSync('tpm2_pcrread', ['sha1:0,10+sha256:0,10'], {
      env,
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(rd.status, 0, rd.stderr);
    const want1 = createHash('sha1').update(Buffer.alloc(20)).update(d1).digest();
    const want256 = createHash('sha256').update(Buffer.alloc(32)).update(d256).digest();
    for (const v of [parseTpm2Pcrread(rd.stdout), parsePcrText(rd.stdout)]) {
      assert.deepEqual([...v.keys()].sort(), ['sha1', 'sha256']);
      assert.deepEqual(Buffer.from(v.get('sha1')!.get(10)!), want1);
      assert.deepEqual(Buffer.from(v.get('sha256')!.get(10)!), want256);
      // PCR 0 of a fresh swtpm without firmware: all zeros
      assert.deepEqual(Buffer.from(v.get('sha1')!.get(0)!), Buffer.alloc(20));
      assert.deepEqual(Buffer.from(v.get('sha256')!.get(0)!), Buffer.alloc(32));
      assert.deepEqual(
        [...v.get('sha256')!.keys()].sort((a, b) => a - b),
        [0, 10],
      );
    }
  } finally {
    tpm?.kill('SIGTERM');
    cleanup();
  }
});
