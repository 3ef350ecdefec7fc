/**
 * A private software TPM (tpm.md "The TPM that was built"): manufactured by `swtpm_setup` (EK
 * certificates, platform certificate, PCR banks) with a swtpm-localca configuration in the caller's
 * directory, so nothing under /etc or /var/lib is read or written; then `swtpm socket` on a free
 * loopback TCP port pair (data P, ctrl P+1). `stop()` kills swtpm by its PID.
 *
 * Used by `imakit demo` (the attestation part) and by the tests' swtpm helper. The tools are found
 * in the standard directories (the library does not read PATH).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';

const BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

/** Where `name` is installed, or undefined. */
export function findSwtpmTool(name: 'swtpm' | 'swtpm_setup'): string | undefined {
  for (const d of BIN_DIRS) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** A manufactured TPM state directory and the local CA that signed its EK certificates. */
export interface SwtpmState {
  readonly stateDir: string;
  /** the EK certificates' issuer (CN=swtpm-localca) */
  readonly issuerCert: string;
  /** the local root (CN=swtpm-localca-rootca) */
  readonly rootCert: string;
}

/**
 * Write the private swtpm-localca configuration into DIR and return the `swtpm_setup` arguments
 * that manufacture a TPM state in DIR/state with a local CA in DIR/ca (for callers that run it
 * themselves, e.g. synchronously in tests).
 */
export function swtpmSetupArgs(
  dir: string,
  banks: readonly string[] = ['sha1', 'sha256', 'sha384'],
): { readonly args: readonly string[]; readonly state: SwtpmState } {
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
  const args = [
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
  ];
  const state = Object.freeze({
    stateDir,
    issuerCert: join(ca, 'issuercert.pem'),
    rootCert: join(ca, 'swtpm-localca-rootca-cert.pem'),
  });
  return Object.freeze({ args, state });
}

/**
 * Manufacture a TPM state in DIR/state with a local CA in DIR/ca (about 1.7 s).
 * @throws ImakitError E_TOOL_MISSING (no swtpm_setup), E_TPM_TRANSPORT (swtpm_setup failed)
 */
export async function manufactureSwtpm(
  dir: string,
  banks: readonly string[] = ['sha1', 'sha256', 'sha384'],
): Promise<SwtpmState> {
  const setup = findSwtpmTool('swtpm_setup');
  if (setup === undefined) throw new ImakitError('E_TOOL_MISSING', 'swtpm_setup is not installed');
  const { args, state } = swtpmSetupArgs(dir, banks);
  await new Promise<void>((resolve, reject) =>
    execFile(setup, args, { encoding: 'utf8' }, (err, stdout, stderr) =>
      err
        ? reject(
            new ImakitError('E_TPM_TRANSPORT', `swtpm_setup failed: ${stderr}${stdout}`.trim(), {
              path: state.stateDir,
            }),
          )
        : resolve(),
    ),
  );
  return state;
}

/** Two consecutive free TCP ports on 127.0.0.1 (data, ctrl). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await listenEphemeral();
    if (p < 65535 && (await portFree(p)) && (await portFree(p + 1))) return p;
  }
  throw new ImakitError('E_TPM_TRANSPORT', 'no free TCP port pair on 127.0.0.1 for swtpm');
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

/** A running swtpm. */
export interface SwtpmProcess {
  readonly port: number;
  readonly ctrlPort: number;
  /** imakit's `--tpm` selector for this TPM */
  readonly selector: string;
  readonly pid: number;
  /** SIGTERM by PID (idempotent) */
  readonly stop: () => void;
}

/**
 * Start `swtpm socket` on STATEDIR (manufactured or empty) on a free loopback port pair and wait
 * until both ports accept connections; its log goes to LOGFILE.
 * @throws ImakitError E_TOOL_MISSING (no swtpm), E_TPM_TRANSPORT (it exited or never listened)
 */
export async function startSwtpm(stateDir: string, logFile: string): Promise<SwtpmProcess> {
  const bin = findSwtpmTool('swtpm');
  if (bin === undefined) throw new ImakitError('E_TOOL_MISSING', 'swtpm is not installed');
  const port = await freePortPair();
  const ctrlPort = port + 1;
  const child: ChildProcess = spawn(
    bin,
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
      `file=${logFile},level=1`,
    ],
    { stdio: 'ignore' },
  );
  const pid = child.pid;
  const stop = (): void => {
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  try {
    let up = false;
    for (let i = 0; i < 250 && !up; i++) {
      if (child.exitCode !== null)
        throw new ImakitError('E_TPM_TRANSPORT', `swtpm exited with ${child.exitCode}`, { path: logFile });
      up = (await canConnect(ctrlPort)) && (await canConnect(port));
      if (!up) await new Promise((r) => setTimeout(r, 20));
    }
    if (!up || pid === undefined)
      throw new ImakitError('E_TPM_TRANSPORT', 'swtpm did not start listening in 5 s', { path: logFile });
    return Object.freeze({ port, ctrlPort, selector: `swtpm:127.0.0.1:${port}`, pid, stop });
  } catch (e) {
    stop();
    throw e;
  }
}
