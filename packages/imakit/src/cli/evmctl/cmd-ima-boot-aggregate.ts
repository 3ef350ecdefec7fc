/**
 * evmctl `ima_boot_aggregate [--pcrs [alg,]file ...] [TPM-1.2-binary_bios_measurements]`
 * (formats.md §2.2): prints `<alg>:<hex>` per bank (sha1 over PCRs 0-7, sha256 over 0-9), sha1
 * and sha256 only, like evmctl. With a file, replays the event log: a TPM 1.2 SHA-1 log gives
 * sha1 (as evmctl), a crypto-agile log every bank it has (evmctl 1.6.2 reads TPM 1.2 logs only).
 * Exit status as evmctl 1.6.2: 0, or 125 when no PCRs could be read or the log cannot be read.
 */
import { isImakitError, withPath } from '../../errors.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import { kernelBootAggregates } from '../../core/tcg/boot-aggregate.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import { parseEventLog } from '../../core/tcg/event-log.ts';
import { replayEventLog } from '../../core/tcg/replay.ts';
import { readSysfsPcrs } from '../../host/attest/tpm-sysfs.ts';
import type { EvmctlCommand } from './command.ts';
import { EVMCTL_BANKS, readPcrsOptions } from './cmd-ima-measurement.ts';
import { INTERNAL } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_boot_aggregate',
  usage: '[--pcrs hash-algorithm,file] [TPM 1.2 BIOS event log]',
  description: 'Calculate per TPM bank boot_aggregate digests',
  async run(opts, args, io) {
    let pcrs: PcrValues;
    let banks: readonly string[] = EVMCTL_BANKS;
    if (args[0] !== undefined) {
      try {
        const log = withPath(args[0], () => parseEventLog(readBoundedFile(args[0]!, 'event-log')));
        pcrs = replayEventLog(log).pcrs;
      } catch (e) {
        io.stderr(`${isImakitError(e) || e instanceof Error ? e.message : String(e)}\n`);
        io.stderr(`Failed reading the TPM 1.2 event log (${args[0]})\n`);
        return INTERNAL;
      }
      // evmctl reads only TPM 1.2 (SHA-1) logs; a crypto-agile log's banks are all printed, so the
      // value a sha256 list's boot_aggregate entry holds is there to compare (issue 10 item 8)
      banks = [...pcrs.keys()];
    } else {
      try {
        pcrs = opts.pcrs.length > 0 ? readPcrsOptions(opts.pcrs) : readSysfsPcrs({ banks: EVMCTL_BANKS });
      } catch (e) {
        // evmctl: read_tpm_banks fails -> "Failed to read any TPM PCRs", -1 (status 125)
        io.stderr(`${isImakitError(e) || e instanceof Error ? e.message : String(e)}\n`);
        io.stderr('Failed to read any TPM PCRs\n');
        return INTERNAL;
      }
    }
    const vals = kernelBootAggregates(pcrs, banks);
    if (vals.length === 0) {
      io.stderr('Failed to read any TPM PCRs\n');
      return INTERNAL;
    }
    // evmctl prints sha1 first, then sha256; further banks of a crypto-agile log follow
    const order = (b: string): number => (b === 'sha1' ? 0 : b === 'sha256' ? 1 : 2);
    for (const v of vals.sort((a, b) => order(a.bank) - order(b.bank)))
      io.stdout(`${v.bank}:${toHex(v.digest)}\n`);
    return 0;
  },
};
