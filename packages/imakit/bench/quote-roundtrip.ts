/**
 * Quote round trip from swtpm (tpm.md §(d)). Prints figures; asserts nothing.
 *
 *  1. imakit in-process, warm: the AK loaded once, then TPM2_Quote (sha256:0-10) per iteration,
 *     over one kept-alive connection and over a connection per command (the default)
 *  2. the same through `imakit`'s AK directory path (Load under the regenerated EK + Quote + flush)
 *  3. `tpm2_quote` per process (a new process, AK context loaded from a file, flushed after)
 *
 * Run: node --import tsx bench/quote-roundtrip.ts [--n 100] [--tools-n 20]
 * The software TPM runs from a fresh temporary directory, killed by PID and removed at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TpmClient } from '../src/host/tpm/client.ts';
import { createAkDir, loadAkDir } from '../src/host/tpm/ak-files.ts';
import { parsePcrSelectionText } from '../src/core/tpm/pcr-selection.ts';
import type { AkKind } from '../src/core/tpm/commands/templates.ts';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '100' }, 'tools-n': { type: 'string', default: '20' } },
});
const N = Number(values.n);
const TOOLS_N = Number(values['tools-n']);

const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `mean ${mean.toFixed(2)} ms, median ${s[Math.floor(s.length / 2)]!.toFixed(2)} ms (n=${s.length})`;
};

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('swtpm did not start');
}

const dir = mkdtempSync(join(tmpdir(), 'imakit-bench-tpm-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const child = spawn(
  'swtpm',
  [
    'socket',
    '--tpm2',
    '--tpmstate',
    `dir=${dir}`,
    '--server',
    `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl',
    `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--flags',
    'not-need-init,startup-clear',
  ],
  { stdio: 'ignore' },
);
const selector = `swtpm:127.0.0.1:${port}`;
const tcti = `swtpm:host=127.0.0.1,port=${port}`;
const sel = parsePcrSelectionText('sha256:0-10');
const nonce = new Uint8Array(16).fill(0xab);
try {
  await waitPort(port);
  console.log(`quote round trip, sha256:0-10, swtpm on ${selector}`);
  for (const kind of ['rsassa', 'ecdsa', 'rsapss'] as AkKind[]) {
    for (const keepAlive of [true, false]) {
      const c = await TpmClient.open(selector, { keepAlive });
      try {
        const ek = await c.createEk('rsa');
        const ak = await c.createAk(ek, kind);
        await c.flush(ek.handle);
        for (let i = 0; i < 5; i++) await c.quote(ak.key.handle, nonce, sel);
        const t: number[] = [];
        for (let i = 0; i < N; i++) {
          const t0 = performance.now();
          await c.quote(ak.key.handle, nonce, sel);
          t.push(performance.now() - t0);
        }
        console.log(
          `  imakit ${kind.padEnd(6)} warm, ${keepAlive ? 'one connection      ' : 'connection/command  '}: ${stats(t)}`,
        );
      } finally {
        await c.close();
      }
    }
    // the CLI's path: AK directory, Load under the regenerated EK, Quote, flush
    const akDir = join(dir, `ak-${kind}`);
    const c = await TpmClient.open(selector);
    try {
      await createAkDir(c, akDir, { kind });
      const t: number[] = [];
      for (let i = 0; i < Math.min(N, 30); i++) {
        const t0 = performance.now();
        const { key } = await loadAkDir(c, akDir);
        await c.quote(key.handle, nonce, sel);
        await c.flush(key.handle);
        t.push(performance.now() - t0);
      }
      console.log(`  imakit ${kind.padEnd(6)} from ak dir (EK CreatePrimary + Load + Quote): ${stats(t)}`);
    } finally {
      await c.close();
    }
  }
  // tpm2-tools: one process per quote
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  const tool = (args: string[]): void => {
    const r = spawnSync(args[0]!, args.slice(1), { env, cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  tool(['tpm2_flushcontext', '-t']);
  tool(['tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
  for (const [kind, g, s] of [
    ['rsassa', 'rsa', 'rsassa'],
    ['ecdsa', 'ecc', 'ecdsa'],
  ] as const) {
    tool([
      'tpm2_createak',
      '-C',
      'ek.ctx',
      '-c',
      `ak-${kind}.ctx`,
      '-G',
      g,
      '-g',
      'sha256',
      '-s',
      s,
      '-u',
      `ak-${kind}.pub`,
    ]);
    tool(['tpm2_flushcontext', '-t']);
    tool(['tpm2_evictcontrol', '-c', `ak-${kind}.ctx`, kind === 'rsassa' ? '0x81000100' : '0x81000101']);
    tool(['tpm2_flushcontext', '-t']);
    const t: number[] = [];
    for (let i = 0; i < TOOLS_N; i++) {
      const t0 = performance.now();
      tool([
        'tpm2_quote',
        '-c',
        kind === 'rsassa' ? '0x81000100' : '0x81000101',
        '-l',
        'sha256:0,1,2,3,4,5,6,7,8,9,10',
        '-q',
        'abababababababababababababababab',
        '-m',
        'q.msg',
        '-s',
        'q.sig',
      ]);
      t.push(performance.now() - t0);
      tool(['tpm2_flushcontext', '-s']);
    }
    console.log(`  tpm2_quote ${kind.padEnd(6)} per process (persistent AK)        : ${stats(t)}`);
  }
} finally {
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
