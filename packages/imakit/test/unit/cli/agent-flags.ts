/**
 * Test helper: the flags `imakit agent enrol|run` take in the tests, for an agent whose files live
 * in `dir` (its state, AK directory, measurement list and boot id there); the boot id file is
 * written here, so a test names the boot it simulates.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AgentFlagsOptions {
  readonly verifier: string;
  readonly tpm: string;
  readonly dir: string;
  /** written to DIR/boot_id */
  readonly bootId: string;
  /** an event log file, or `none` */
  readonly eventlog: string;
  /** keep the AK in DIR/ak (`--ak`); without it the agent's default is used */
  readonly akDir?: boolean;
  readonly id?: string;
}

/** The agent's flags and the list file it reads (DIR/binary_runtime_measurements, not yet written). */
export function agentFlags(o: AgentFlagsOptions): { flags: string[]; listFile: string } {
  const listFile = join(o.dir, 'binary_runtime_measurements');
  writeFileSync(join(o.dir, 'boot_id'), `${o.bootId}\n`);
  const flags = [
    '--verifier',
    o.verifier,
    '--id',
    o.id ?? 'host-1',
    '--tpm',
    o.tpm,
    '--state',
    join(o.dir, 'state'),
    ...(o.akDir === true ? ['--ak', join(o.dir, 'ak')] : []),
    '--ima-list',
    listFile,
    '--eventlog',
    o.eventlog,
    '--boot-id',
    join(o.dir, 'boot_id'),
  ];
  return { flags, listFile };
}
