/**
 * `imakit boot-aggregate`: the boot_aggregate of every bank and variant (PCRs 0-7 and 0-9), from
 * PCR values, an event log's replay, or the TPM's sysfs; optionally checked against a list's
 * boot_aggregate entry (the last one, pitfall 9), reporting the variant that matched (issue 4 §7).
 *
 *   boot-aggregate [--pcrs [ALG,]FILE]... [--pcrs-json FILE]... [--eventlog LOG] [--tpm DIR]
 *                  [--list LIST] [--json]
 *
 * Exit: 0 computed (and, with --list, matched), 1 no variant matches the list's entry, 2 bad
 * input, 3 I/O, 5 no TPM PCRs readable.
 */
import { ImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import {
  checkBootAggregate,
  computeBootAggregates,
  findBootAggregateClaims,
  type BootAggregateVerdict,
} from '../../core/tcg/boot-aggregate.ts';
import { replayEventLog } from '../../core/tcg/replay.ts';
import {
  loadListFile,
  readEventLogFile,
  readPcrOptions,
  readTpmPcrs,
} from '../../host/attest/attest-input.ts';
import { DEFAULT_TPM_SYSFS } from '../../host/attest/tpm-sysfs.ts';
import type { CommandModule } from '../command.ts';
import { collect, printJson } from './attest-output.ts';

function claimsOf(path: string) {
  const l = loadListFile(path);
  return findBootAggregateClaims(l.entries, l.format.endian);
}

export const command: CommandModule = {
  name: 'boot-aggregate',
  register(program, ctx) {
    program
      .command('boot-aggregate')
      .description("boot_aggregate per bank over PCRs 0-7 and 0-9; check a list's entry")
      .option(
        '--pcrs <[alg,]file>',
        'PCR values (evmctl PCR-NN lines, tpm2_pcrread output or JSON); repeatable',
        collect,
      )
      .option('--pcrs-json <file>', 'PCR values as JSON; repeatable', collect)
      .option('--eventlog <log>', 'compute from a TCG event log replay instead')
      .option('--tpm <dir>', `TPM sysfs directory (default ${DEFAULT_TPM_SYSFS})`)
      .option('--list <list>', "check this measurement list's boot_aggregate entry")
      .option('--json', 'JSON output')
      .action((f) =>
        ctx.run(
          () => {
            let pcrs: PcrValues | undefined;
            let source: string;
            if (f.eventlog !== undefined) {
              pcrs = replayEventLog(readEventLogFile(f.eventlog)).pcrs;
              source = `event log ${f.eventlog}`;
            } else {
              pcrs = readPcrOptions(f.pcrs ?? [], f.pcrsJson ?? []);
              source = 'given PCR files';
              if (!pcrs) {
                pcrs = readTpmPcrs(f.tpm ?? DEFAULT_TPM_SYSFS);
                source = `TPM sysfs ${f.tpm ?? DEFAULT_TPM_SYSFS}`;
              }
            }
            const values = computeBootAggregates(pcrs);
            let check: BootAggregateVerdict | undefined;
            if (f.list !== undefined) {
              const claim = claimsOf(f.list).at(-1);
              if (!claim)
                throw new ImakitError('E_LIST_ENTRY', 'the list has no boot_aggregate entry', {
                  path: f.list,
                });
              check = checkBootAggregate(claim, pcrs);
            }
            const ok = check === undefined || check.status === 'pass';
            if (f.json)
              printJson(ctx.io, {
                status: ok ? 'pass' : 'fail',
                source,
                values: values.map((v) => ({
                  bank: v.bank,
                  variant: v.variant,
                  digest: toHex(v.digest),
                  kernelDefault: v.kernelDefault,
                })),
                check: check && {
                  status: check.status,
                  detail: check.detail,
                  note: check.note,
                  claim: {
                    index: check.claim.index,
                    algo: check.claim.algo,
                    digest: toHex(check.claim.digest),
                  },
                  matched: check.matched && { bank: check.matched.bank, variant: check.matched.variant },
                  notEstablished: check.notEstablished,
                },
              });
            else {
              const out = (s: string): void => ctx.io.stdout(s + '\n');
              out(`# boot_aggregate from ${source} (* = what the current kernel computes for that bank)`);
              for (const v of values)
                out(
                  `${v.kernelDefault ? '*' : ' '} ${v.bank} PCRs ${v.variant === 'pcr0-7' ? '0-7' : '0-9'}: ${toHex(v.digest)}`,
                );
              if (check) out(`${check.status === 'pass' ? 'PASS' : 'FAIL'}  ${f.list}: ${check.detail}`);
            }
            return ok ? 0 : 1;
          },
          { json: f.json === true },
        ),
      );
  },
};
