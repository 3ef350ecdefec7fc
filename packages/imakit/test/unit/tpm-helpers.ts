/**
 * A software TPM per test (tpm.md "The TPM that was built"): optionally manufactured by
 * `swtpm_setup` (EK certificates, platform certificate, PCR banks) with a private swtpm-localca
 * configuration in the test's temp dir, so nothing under /etc or /var/lib is read or written; then
 * `swtpm socket` on a free TCP port pair (data P, ctrl P+1). The caller calls `stop()` in finally:
 * it kills swtpm by its PID and removes the directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTpmOptions {
  /** run swtpm_setup with EK + platform certificates first (default true) */
  readonly manufacture?: boolean;
  /** PCR banks to activate (default sha1, sha256, sha384) */
  readonly banks?: readonly string[];
  /** copy this already-manufactured state instead of running swtpm_setup again */
  readonly fromState?: TestTpmState;
}

/** A manufactured TPM state directory and the local CA that signed its EK certificates. */
export interface TestTpmState {
  readonly stateDir: string;
  /** the EK certificates' issuer (CN=swtpm-localca) */
  readonly issuerCert: string;
  /** the local root (CN=swtpm-localca-rootca) */
  readonly rootCert: string;
}

export interface TestTpm {
  readonly dir: string;
  readonly port: number;
  readonly ctrlPort: number;
  /** `swtpm:host=127.0.0.1,port=P` for tpm2-tools (`-T` or TPM2TOOLS_TCTI) */
  readonly tcti: string;
  /** imakit's `--tpm` selector for this TPM */
  readonly selector: string;
  readonly pid: number;
  /** present when manufactured */
  readonly state: TestTpmState | undefined;
  /** run a tpm2-tools command against this TPM (adds the TCTI); throws unless it exits 0 */
  readonly tool: (cmd: string, args: readonly string[], opts?: { input?: Uint8Array }) => string;
  /** TPM Reset through independent tools: swtpm_ioctl -i (CMD_INIT) then tpm2_startup -c */
  readonly powerCycle: () => void;
  readonly stop: () => void;
}

/** Manufacture a TPM state once (about 1.7 s), to be copied into several TestTpms with `fromState`. */
export function manufactureTpm(
  dir: string,
  banks: readonly string[] = ['sha1', 'sha256', 'sha384'],
): TestTpmState {
  const stateDir = join(dir, 'state');
  const ca = join(dir, 'ca');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(ca, { recursive: true });
  writeFileSync(
    join(dir, 'swtpm-localca.conf'),
    `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`,
  );
  writeFileSync(
    join(dir, 'swtpm-localca.options'),
    '--platform-manufacturer imakit\n--platform-version 2.1\n--platform-model test\n',
  );
  writeFileSync(
    join(dir, 'swtpm_setup.conf'),
    `create_certs_tool = swtpm_localca\ncreate_certs_tool_config = ${join(dir, 'swtpm-localca.conf')}\n` +
      `create_certs_tool_options = ${join(dir, 'swtpm-localca.options')}\nactive_pcr_banks = sha256\n`,
  );
  const r = spawnSync(
    'swtpm_setup',
    [
      '--tpm2',
      '--tpmstate',
      stateDir,
      '--create-ek-cert',
      '--create-platform-cert',
      '--pcr-banks',
      banks.join(','),
      '--config',
      join(dir, 'swtpm_setup.conf'),
      '--overwrite',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`swtpm_setup failed (${r.status}): ${r.stderr}${r.stdout}`);
  return {
    stateDir,
    issuerCert: join(ca, 'issuercert.pem'),
    rootCert: join(ca, 'swtpm-localca-rootca-cert.pem'),
  };
}

/** Two consecutive free TCP ports on 127.0.0.1 (data, ctrl). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await listenEphemeral();
    if (p < 65535 && (await portFree(p)) && (await portFree(p + 1))) return p;
  }
  throw new Error('no free TCP port pair');
}

function listenEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Start a software TPM (manufactured unless `manufacture: false`) on a free port pair. */
export async function startTestTpm(opts: TestTpmOptions = {}): Promise<TestTpm> {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-'));
  let child: ChildProcess | undefined;
  try {
    let state: TestTpmState | undefined;
    const stateDir = join(dir, 'state');
    if (opts.fromState !== undefined) {
      cpSync(opts.fromState.stateDir, stateDir, { recursive: true });
      state = { ...opts.fromState, stateDir };
    } else if (opts.manufacture !== false) {
      state = manufactureTpm(dir, opts.banks);
    } else {
      mkdirSync(stateDir, { recursive: true });
    }
    const port = await freePortPair();
    const ctrlPort = port + 1;
    child = spawn(
      'swtpm',
      [
        'socket',
        '--tpm2',
        '--tpmstate',
        `dir=${stateDir}`,
        '--server',
        `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl',
        `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
        '--flags',
        'not-need-init,startup-clear',
        '--log',
        `file=${join(dir, 'swtpm.log')},level=1`,
      ],
      { stdio: 'ignore' },
    );
    const proc = child;
    for (let i = 0; i < 200; i++) {
      if (proc.exitCode !== null) throw new Error(`swtpm exited with ${proc.exitCode}`);
      if ((await canConnect(ctrlPort)) && (await canConnect(port))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = proc.pid;
    if (pid === undefined) throw new Error('swtpm did not start');
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    const tool = (cmd: string, args: readonly string[], o: { input?: Uint8Array } = {}): string => {
      const r = spawnSync(cmd, [...args], {
        encoding: 'utf8',
        env: { ...process.env, TPM2TOOLS_TCTI: tcti },
        input: o.input,
        cwd: dir,
      });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    };
    return {
      dir,
      port,
      ctrlPort,
      tcti,
      selector: `swtpm:127.0.0.1:${port}`,
      pid,
      state,
      tool,
      powerCycle: () => {
        tool('swtpm_ioctl', ['--tcp', `127.0.0.1:${ctrlPort}`, '-i']);
        tool('tpm2_startup', ['-c']);
      },
      stop: () => {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child?.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
