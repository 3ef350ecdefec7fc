/**
 * `imakit eventlog …`: TCG event logs (`binary_bios_measurements`, issue 4 §6).
 *
 *   eventlog show   [LOG] [--json]
 *   eventlog replay [LOG] [--pcrs [ALG,]FILE]... [--pcrs-json FILE]... [--tpm DIR] [--no-tpm]
 *                   [--pcr N]... [--json]
 *
 * LOG defaults to /sys/kernel/security/tpm0/binary_bios_measurements. `replay` computes every bank
 * the log carries and, when PCR values are given (or read from the TPM's sysfs unless --no-tpm),
 * compares PCRs 0-9 (or --pcr). Events whose data is not covered by their digest are marked
 * untrusted; firmware quirks are named.
 *
 * Exit: 0 replay matches (or nothing to compare and no covered data mismatched), 1 mismatch or an
 * event whose covered data does not hash to its digest, 2 malformed log or PCR file, 3 I/O.
 */
import type { Command } from '@commander-js/extra-typings';
import { ImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import { compareEventLogPcrs, replayEventLog } from '../../core/tcg/replay.ts';
import {
  decodeEventData,
  digestCoversData,
  EV_NO_ACTION,
  eventTypeName,
} from '../../core/tcg/event-types.ts';
import { computeBootAggregates } from '../../core/tcg/boot-aggregate.ts';
import { DEFAULT_TPM_SYSFS } from '../../host/attest/tpm-sysfs.ts';
import { readEventLogFile, readPcrOptions, readTpmPcrs } from '../../host/attest/attest-input.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import { collect, pcrJson, printJson } from './attest-output.ts';

/** Default location of the firmware event log. */
export const DEFAULT_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';

function trustOf(type: number): 'not-extended' | 'digest-covers-data' | 'data-untrusted' {
  return type === EV_NO_ACTION
    ? 'not-extended'
    : digestCoversData(type)
      ? 'digest-covers-data'
      : 'data-untrusted';
}

function registerShow(ev: Command, ctx: CommandContext): void {
  ev.command('show')
    .description('print the events of a TCG event log with decoded data')
    .argument('[log]', `event log (default ${DEFAULT_EVENT_LOG})`)
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          const path = file ?? DEFAULT_EVENT_LOG;
          const log = readEventLogFile(path);
          const events = log.events.map((e) => ({
            index: e.index,
            offset: e.offset,
            pcr: e.pcr,
            type: eventTypeName(e.type),
            typeCode: e.type,
            digests: Object.fromEntries([...e.digests].map(([b, d]) => [b, toHex(d)])),
            trust: trustOf(e.type),
            data: decodeEventData(e.type, e.data),
            dataSize: e.data.length,
          }));
          if (f.json)
            printJson(ctx.io, {
              file: path,
              format: log.format,
              specAlgorithms: log.specAlgorithms,
              quirks: log.quirks,
              events,
            });
          else {
            const out = (s: string): void => ctx.io.stdout(s + '\n');
            out(
              `# ${path}: ${log.format} log, ${log.events.length} events, banks ${log.specAlgorithms.map((a) => a.bank ?? `0x${a.tpmAlg.toString(16)}`).join(', ')}`,
            );
            for (const q of log.quirks)
              out(`# quirk ${q.id}${q.event !== undefined ? ` (event ${q.event})` : ''}: ${q.detail}`);
            for (const e of events) {
              out(`${String(e.index).padStart(4)} PCR ${String(e.pcr).padStart(2)} ${e.type} [${e.trust}]`);
              for (const [b, d] of Object.entries(e.digests)) out(`       ${b}: ${d}`);
              out(`       data (${e.dataSize} bytes): ${JSON.stringify(e.data).slice(0, 300)}`);
            }
          }
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerReplay(ev: Command, ctx: CommandContext): void {
  ev.command('replay')
    .description('replay a TCG event log per bank and compare with PCR values')
    .argument('[log]', `event log (default ${DEFAULT_EVENT_LOG})`)
    .option(
      '--pcrs <[alg,]file>',
      'PCR values (evmctl PCR-NN lines, tpm2_pcrread output or JSON); repeatable',
      collect,
    )
    .option('--pcrs-json <file>', 'PCR values as JSON; repeatable', collect)
    .option(
      '--tpm <dir>',
      `read PCRs from this TPM sysfs directory (default ${DEFAULT_TPM_SYSFS} when no --pcrs)`,
    )
    .option('--no-tpm', 'do not read the TPM: only print the replayed values')
    .option('--pcr <n>', 'PCR index to compare (repeatable; default 0-9)', collect)
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          const path = file ?? DEFAULT_EVENT_LOG;
          const log = readEventLogFile(path);
          const replay = replayEventLog(log);
          let expected: PcrValues | undefined = readPcrOptions(f.pcrs ?? [], f.pcrsJson ?? []);
          if (!expected && f.tpm !== false)
            expected = readTpmPcrs(typeof f.tpm === 'string' ? f.tpm : DEFAULT_TPM_SYSFS);
          const idx = (f.pcr ?? []).map((x) => {
            const n = Number(x);
            if (!Number.isInteger(n) || n < 0 || n > 23)
              throw new ImakitError('E_USAGE', `--pcr ${x}: not a PCR index`);
            return n;
          });
          const indexes = idx.length > 0 ? idx : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
          const cmp = expected ? compareEventLogPcrs(replay, expected, indexes) : undefined;
          const aggregates = computeBootAggregates(replay.pcrs);
          const ok = replay.dataMismatches.length === 0 && (cmp === undefined || cmp.status === 'pass');
          if (f.json)
            printJson(ctx.io, {
              status: ok ? 'pass' : 'fail',
              file: path,
              format: log.format,
              pcrs: pcrJson(replay.pcrs),
              comparison: cmp,
              dataMismatches: replay.dataMismatches,
              quirks: replay.quirks,
              skippedBanks: replay.skippedBanks,
              bootAggregates: aggregates.map((a) => ({
                bank: a.bank,
                variant: a.variant,
                digest: toHex(a.digest),
                kernelDefault: a.kernelDefault,
              })),
              notEstablished: [
                'that the PCR values came from a TPM (no quote was verified)',
                'that event data not covered by its digest (code, images, device paths) is true',
              ],
            });
          else {
            const out = (s: string): void => ctx.io.stdout(s + '\n');
            out(`${ok ? 'PASS' : 'FAIL'}  ${path}: ${log.format} log, ${log.events.length} events`);
            for (const q of replay.quirks)
              out(`  quirk ${q.id}${q.event !== undefined ? ` (event ${q.event})` : ''}: ${q.detail}`);
            for (const b of replay.skippedBanks) out(`  bank ${b}: not computable here, skipped`);
            for (const [bank, m] of replay.pcrs)
              for (const [i, v] of [...m].sort((a, b) => a[0] - b[0])) {
                const c = cmp?.results.find((r) => r.bank === bank && r.pcr === i);
                out(
                  `  ${bank} PCR ${String(i).padStart(2)}: ${toHex(v)}${c ? `  ${c.status}${c.status === 'mismatch' ? ` (given ${c.expected})` : ''}` : ''}`,
                );
              }
            for (const d of replay.dataMismatches)
              out(
                `  event ${d.index} (${d.type}): its data does not hash to its ${d.bank} digest although the digest covers the data`,
              );
            for (const a of aggregates.filter((x) => x.kernelDefault))
              out(
                `  boot_aggregate ${a.bank} (PCRs ${a.variant === 'pcr0-7' ? '0-7' : '0-9'}): ${toHex(a.digest)}`,
              );
          }
          return ok ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

export const command: CommandModule = {
  name: 'eventlog',
  register(program, ctx) {
    const ev = program.command('eventlog').description('TCG event logs: show, replay');
    registerShow(ev, ctx);
    registerReplay(ev, ctx);
  },
};
