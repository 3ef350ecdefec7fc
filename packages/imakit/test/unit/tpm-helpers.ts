/**
 * A software TPM per test (tpm.md "The TPM that was built"): optionally manufactured by
 * `swtpm_setup` (EK certificates, platform certificate, PCR banks) with a private swtpm-localca
 * configuration in the test's temp dir, so nothing under /etc or /var/lib is read or written; then
 * `swtpm socket` on a free TCP port pair (data P, ctrl P+1). The caller calls `stop()` in finally:
 * it kills swtpm by its PID and removes the directory. The manufacturing configuration and the
 * swtpm process are the library's (src/host/tpm/swtpm-process.ts, also used by `imakit demo`).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, swtpmSetupArgs, type SwtpmProcess } from '../../src/host/tpm/swtpm-process.ts';

export { freePortPair } from '../../src/host/tpm/swtpm-process.ts';

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
  const { args, state } = swtpmSetupArgs(dir, banks);
  const r = spawnSync('swtpm_setup', [...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`swtpm_setup failed (${r.status}): ${r.stderr}${r.stdout}`);
  return state;
}

/** Start a software TPM (manufactured unless `manufacture: false`) on a free port pair. */
export async function startTestTpm(opts: TestTpmOptions = {}): Promise<TestTpm> {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-'));
  let swtpm: SwtpmProcess | undefined;
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
    swtpm = await startSwtpm(stateDir, join(dir, 'swtpm.log'));
    const { port, ctrlPort, pid } = swtpm;
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
        swtpm?.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    swtpm?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
