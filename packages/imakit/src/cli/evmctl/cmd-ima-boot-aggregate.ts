/**
 * evmctl `ima_boot_aggregate [--pcrs [alg,]file ...] [TPM-1.2-binary_bios_measurements]`
 * (formats.md §2.2): prints `<alg>:<hex>` per bank (sha1 over PCRs 0-7, sha256 over 0-9), sha1
 * and sha256 only, like evmctl. With a file, replays a TPM 1.2 SHA-1 event log (sha1 only).
 */
import { readFileSync } from 'node:fs';
import { isImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import { kernelBootAggregates } from '../../core/tcg/boot-aggregate.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import { parseEventLog } from '../../core/tcg/event-log.ts';
import { replayEventLog } from '../../core/tcg/replay.ts';
import { readSysfsPcrs } from '../../host/attest/tpm-sysfs.ts';
import type { EvmctlCommand } from './command.ts';
import { readPcrsOptions } from './cmd-ima-measurement.ts';

export const command: EvmctlCommand = {
  name: 'ima_boot_aggregate',
  usage: '[--pcrs hash-algorithm,file] [TPM 1.2 BIOS event log]',
  description: 'Calculate per TPM bank boot_aggregate digests',
  async run(opts, args, io) {
    let pcrs: PcrValues;
    try {
      if (args[0] !== undefined) {
        const log = parseEventLog(new Uint8Array(readFileSync(args[0])));
        pcrs = replayEventLog(log).pcrs;
        pcrs = new Map([...pcrs].filter(([b]) => b === 'sha1'));
      } else
        pcrs =
          opts.pcrs.length > 0 ? readPcrsOptions(opts.pcrs) : readSysfsPcrs({ banks: ['sha1', 'sha256'] });
    } catch (e) {
      io.stderr(`${isImakitError(e) || e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    const vals = kernelBootAggregates(pcrs, ['sha1', 'sha256']);
    if (vals.length === 0) {
      io.stderr('No PCR banks read\n');
      return 1;
    }
    // evmctl prints sha1 first, then sha256
    for (const v of vals.sort((a, b) => (a.bank === 'sha1' ? -1 : b.bank === 'sha1' ? 1 : 0)))
      io.stdout(`${v.bank}:${toHex(v.digest)}\n`);
    return 0;
  },
};
