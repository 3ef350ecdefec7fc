/**
 * `imakit log …`: IMA measurement lists (issue 4 §8).
 *
 *   log show    [LIST] [--bank ALG] [--endian le|be] [--limit N] [--json]
 *   log verify  [LIST] [--pcrs [ALG,]FILE]... [--pcrs-json FILE]... [--bank ALG]... [--ascii FILE]
 *               [--key CERT]... [--checkpoint FILE] [--violations ones|zeros] [--strict] [--json]
 *               [--quote DIR --ak AK --nonce HEX|--nonce-file FILE]   (list bound to a quote: log-quote.ts)
 *   log diff    A B [--json]
 *   log convert IN --to ascii|binary [--endian le|be] [--out FILE] [--json]
 *
 * LIST may be binary (byte order and digest size detected, a `*_runtime_measurements_<alg>` name
 * fixes the bank) or ascii (detected). `log verify` with no LIST reads the live list from
 * securityfs and, without --pcrs, the TPM's PCRs from sysfs.
 *
 * Exit: 0 match / identical / converted, 1 mismatch or verification failed (bad signature,
 * boot_aggregate, ascii/binary differences, lists differ), 2 bad input (malformed list, PCR file or
 * checkpoint), 3 I/O, 5 environment (no securityfs list or TPM PCRs).
 */
import type { Command } from '@commander-js/extra-typings';
import { ImakitError } from '../../errors.ts';
import type { Endian } from '../../core/bytes/bytes.ts';
import { renderAsciiEntry } from '../../core/ima-list/ascii.ts';
import { convertList } from '../../core/ima-list/list-form.ts';
import { diffLists } from '../../core/ima-list/list-diff.ts';
import { findHashAlgo } from '../../core/hash/hash-algo.ts';
import {
  liveListPath,
  loadListFile,
  openAtomic,
  streamListFile,
  writeAtomic,
} from '../../host/attest/attest-input.ts';
import { verifyListFile } from '../../host/attest/list-verify.ts';
import { DEFAULT_TPM_SYSFS } from '../../host/attest/tpm-sysfs.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import { byteProgress, collect, printJson } from './attest-output.ts';
import { entryJson, renderVerify, verifyJson } from './log-render.ts';

const usage = (detail: string): ImakitError => new ImakitError('E_USAGE', detail);

function endianOpt(v: string | undefined): Endian | undefined {
  if (v === undefined) return undefined;
  if (v !== 'le' && v !== 'be') throw usage(`--endian must be le or be (got '${v}')`);
  return v;
}

function bankOpt(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const a = findHashAlgo(v.toLowerCase());
  if (!a) throw usage(`unknown bank '${v}'`);
  return a.name;
}

// ---------------------------------------------------------------------------------------- show

function registerShow(log: Command, ctx: CommandContext): void {
  log
    .command('show')
    .description('print a measurement list (binary or ascii) as ascii lines or JSON')
    .argument('[list]', 'list file (default: the live securityfs list)')
    .option('--bank <alg>', "bank of the list's template digests (default: detected)")
    .option('--endian <order>', 'byte order le|be (default: detected)')
    .option('--limit <n>', 'print at most N entries')
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          const path = file ?? liveListPath();
          const limit = f.limit === undefined ? Infinity : Number(f.limit);
          if (!Number.isInteger(limit) && limit !== Infinity) throw usage('--limit must be an integer');
          // streamed: a list of any length (or a FIFO) is printed with flat memory; entries past
          // --limit are only counted
          const list: ReturnType<typeof entryJson>[] = [];
          const l = streamListFile(
            path,
            { bank: bankOpt(f.bank), endian: endianOpt(f.endian) },
            (e, i, fmt) => {
              if (i >= limit) return;
              if (f.json) list.push(entryJson(e, fmt.endian));
              else ctx.io.stdout(renderAsciiEntry(e, fmt.endian) + '\n');
            },
          );
          if (f.json)
            printJson(ctx.io, {
              file: path,
              kind: l.kind,
              format: l.format,
              evidence: l.evidence,
              entries: l.entries,
              list,
            });
          else ctx.io.stderr(`# ${path}: ${l.evidence}; ${l.entries} entries\n`);
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

// -------------------------------------------------------------------------------------- verify

function registerVerify(log: Command, ctx: CommandContext): void {
  log
    .command('verify')
    .description('replay a measurement list against PCR values and explain any mismatch')
    .argument('[list]', 'binary or ascii list (default: the live securityfs list)')
    .option(
      '--pcrs <[alg,]file>',
      'PCR values: evmctl PCR-NN lines (alg names the bank), tpm2_pcrread output or JSON; repeatable',
      collect,
    )
    .option('--pcrs-json <file>', 'PCR values as JSON {"sha256": {"10": "hex"}}; repeatable', collect)
    .option('--bank <alg>', 'replay only these banks (repeatable; default: every bank given)', collect)
    .option('--ascii <file>', 'cross-check the binary list against this ascii list, entry by entry')
    .option(
      '--key <cert>',
      'verify ima-sig/ima-sigv2/ima-modsig signatures with this certificate (repeatable)',
      collect,
    )
    .option('--checkpoint <file>', 'resume from this checkpoint when it exists; write it back on success')
    .option('--violations <mode>', "extend violations as 'ones' (kernel, default) or 'zeros' (evmctl)")
    .option('--strict', 'do not try kernel quirks (padded SHA-1 banks)')
    .option('--tpm <dir>', `TPM sysfs directory (default ${DEFAULT_TPM_SYSFS})`)
    .option('--securityfs <dir>', 'IMA securityfs directory (default /sys/kernel/security/ima)')
    .option(
      '--refs <file>',
      'evaluate every entry against a reference set (imakit, Keylime runtime policy or allowlist)',
    )
    .option('--refs-sig <file>', 'detached signature of the --refs file (imakit refs sign)')
    .option(
      '--refs-key <cert>',
      'trusted key for the --refs file: refuse it unless signed (--refs-sig or DSSE) by it; repeatable',
      collect,
    )
    .option('--quote <dir>', 'bind the list to this quote (imakit tpm quote --out DIR): PCR 10 from it')
    .option('--ak <ak>', 'with --quote: the AK directory or public key (TPM2B_PUBLIC, PEM, DER)')
    .option('--nonce <hex>', 'with --quote: the nonce sent to the TPM')
    .option('--nonce-file <file>', 'with --quote: the nonce sent to the TPM, raw bytes')
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        async () => {
          const refs =
            f.refs === undefined
              ? undefined
              : (await import('./refs-log.ts')).refsCheck(f.refs, f.key ?? [], f.json === true, f);
          const violations = f.violations ?? 'ones';
          if (violations !== 'ones' && violations !== 'zeros')
            throw usage('--violations must be ones or zeros');
          if (f.quote !== undefined) {
            const lq = await import('./log-quote.ts');
            const q = await lq.verifyWithQuote(file, f, {
              banks: f.bank?.map((b) => bankOpt(b)!),
              ascii: f.ascii,
              keys: f.key,
              checkpoint: f.checkpoint,
              violations,
              strict: f.strict,
              securityfs: f.securityfs,
              progress: (label, total) => byteProgress(ctx.io, label, total, f.json === true),
              entryHook: refs?.hook,
            });
            const qev = refs?.finish();
            lq.renderQuoteReport(ctx.io, q, f.json === true, qev ? { refs: qev } : undefined);
            if (qev && !f.json) (await import('./refs-log.ts')).renderRefs(ctx.io, qev);
            return q.status === 'pass' && (qev?.summary.refused ?? 0) === 0 ? 0 : 1;
          }
          if (f.ak !== undefined || f.nonce !== undefined || f.nonceFile !== undefined)
            throw usage('--ak, --nonce and --nonce-file go with --quote');
          const r = await verifyListFile(file, {
            pcrs: f.pcrs,
            pcrsJson: f.pcrsJson,
            banks: f.bank?.map((b) => bankOpt(b)!),
            ascii: f.ascii,
            keys: f.key,
            checkpoint: f.checkpoint,
            violations,
            strict: f.strict,
            tpm: f.tpm,
            securityfs: f.securityfs,
            progress: (label, total) => byteProgress(ctx.io, label, total, f.json === true),
            entryHook: refs?.hook,
          });
          const ev = refs?.finish();
          if (f.json) printJson(ctx.io, ev ? { ...(verifyJson(r) as object), refs: ev } : verifyJson(r));
          else {
            renderVerify(ctx.io, r);
            if (ev) (await import('./refs-log.ts')).renderRefs(ctx.io, ev);
          }
          return r.status === 'pass' && (ev?.summary.refused ?? 0) === 0 ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

// ---------------------------------------------------------------------------------------- diff

/**
 * File names in lists are untrusted bytes: a terminal must see `\x01`, not a control character
 * (or a flipped byte that renders as nothing).
 */
export function escapeText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\\]/g, (c) =>
    c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** What diverging lists mean: different boots only when their boot_aggregate entries differ. */
function divergence(d: ReturnType<typeof diffLists>): string {
  const at = d.commonPrefix;
  if (d.bootAggregate === 'different')
    return `different boots: the boot_aggregate entries differ (first difference at entry ${at})`;
  const boot = d.bootAggregate === 'same' ? ', same boot_aggregate' : '';
  if (d.differingEntries === 1 && d.a.entries === d.b.entries)
    return `entry ${at} differs (every other entry is equal${boot})`;
  const extra =
    d.a.entries === d.b.entries
      ? ''
      : `; then ${Math.abs(d.a.entries - d.b.entries)} more entries in one list`;
  return `first difference at entry ${at}: ${d.differingEntries} of ${Math.min(d.a.entries, d.b.entries)} entries differ${boot}${extra}`;
}

function registerDiff(log: Command, ctx: CommandContext): void {
  log
    .command('diff')
    .description('compare two measurement lists (binary or ascii) entry by entry')
    .argument('<a>', 'first list')
    .argument('<b>', 'second list')
    .option('--json', 'JSON output')
    .action((pa, pb, f) =>
      ctx.run(
        () => {
          const d = diffLists(loadListFile(pa), loadListFile(pb));
          if (f.json) printJson(ctx.io, d);
          else {
            const out = (s: string): void => ctx.io.stdout(s + '\n');
            out(
              `${pa}: ${d.a.entries} entries; ${pb}: ${d.b.entries} entries; ${d.commonPrefix} equal from the start`,
            );
            if (d.relation === 'identical') out('identical');
            else if (d.relation === 'a-prefix-of-b')
              out(`${pb} extends ${pa} by ${d.b.entries - d.commonPrefix} entries (same boot, later read)`);
            else if (d.relation === 'b-prefix-of-a')
              out(`${pa} extends ${pb} by ${d.a.entries - d.commonPrefix} entries (same boot, later read)`);
            else {
              out(divergence(d));
              for (const x of d.differences.slice(0, 20))
                out(
                  `  entry ${x.entry} ${x.field}:\n    a ${escapeText(x.a).slice(0, 120)}\n    b ${escapeText(x.b).slice(0, 120)}`,
                );
            }
          }
          return d.identical ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

// ------------------------------------------------------------------------------------- convert

function registerConvert(log: Command, ctx: CommandContext): void {
  log
    .command('convert')
    .description('convert a list: ascii <-> binary, canonical (le) <-> big-endian host order')
    .argument('<in>', 'input list (binary or ascii, detected)')
    .requiredOption('--to <form>', 'ascii or binary')
    .option(
      '--endian <order>',
      "byte order of the binary output: le (canonical) or be (default: the input's)",
    )
    .option('--bank <alg>', "bank of the input's template digests (default: detected)")
    .option('--out <file>', 'output file (required for binary output)')
    .option('--json', 'JSON output (a summary)')
    .action((input, f) =>
      ctx.run(
        () => {
          if (f.to !== 'ascii' && f.to !== 'binary') throw usage('--to must be ascii or binary');
          if (f.json && f.out === undefined)
            throw usage('--json needs --out FILE (the list itself goes there)');
          const to = endianOpt(f.endian);
          if (f.to === 'binary' && f.out === undefined) throw usage('binary output needs --out FILE');
          let l: { kind: string; format: { endian: Endian; bank: string }; entries: number };
          let note = '';
          let endian: Endian;
          if (f.to === 'ascii') {
            // streamed: lists of any length convert with flat memory, written atomically
            const w = f.out !== undefined ? openAtomic(f.out) : undefined;
            try {
              l = streamListFile(input, { bank: bankOpt(f.bank) }, (e, _i, fmt) => {
                const line = renderAsciiEntry(e, fmt.endian) + '\n';
                if (w) w.write(line);
                else ctx.io.stdout(line);
              });
            } catch (e) {
              w?.abort();
              throw e;
            }
            w?.commit();
            endian = l.format.endian;
          } else {
            const whole = loadListFile(input, bankOpt(f.bank));
            const c = convertList(whole, f.to, to);
            writeAtomic(f.out!, c.data);
            ({ note, endian } = c);
            l = { kind: whole.kind, format: whole.format, entries: whole.entries.length };
          }
          const summary = {
            input,
            from: { kind: l.kind, endian: l.format.endian, bank: l.format.bank },
            to: { kind: f.to, endian },
            entries: l.entries,
            out: f.out,
            note: note || undefined,
          };
          if (f.json) printJson(ctx.io, summary);
          else if (f.out !== undefined)
            ctx.io.stderr(`${l.entries} entries written to ${f.out}${note ? `; note: ${note}` : ''}\n`);
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

export const command: CommandModule = {
  name: 'log',
  register(program, ctx) {
    const log = program.command('log').description('IMA measurement lists: show, verify, diff, convert');
    registerShow(log, ctx);
    registerVerify(log, ctx);
    registerDiff(log, ctx);
    registerConvert(log, ctx);
  },
};
