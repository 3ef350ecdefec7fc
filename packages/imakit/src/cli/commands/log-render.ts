/**
 * Rendering for `imakit log`: an entry as JSON (template fields decoded where the template is
 * known) and a `log verify` report as text or JSON.
 */
import { toHex, type Endian } from '../../core/bytes/bytes.ts';
import type { UntrustedEntry } from '../../core/ima-list/binary.ts';
import { decodeTemplateFields } from '../../core/ima-list/fields.ts';
import { lookupTemplate } from '../../core/ima-list/templates.ts';
import { checkpointToJson } from '../../core/ima-list/checkpoint.ts';
import type { ListFileReport } from '../../host/attest/list-verify.ts';
import type { CliIo } from '../io.ts';

/** One list entry as JSON. */
export function entryJson(e: UntrustedEntry, endian: Endian): Record<string, unknown> {
  const tpl = lookupTemplate(e.templateName);
  let fields: unknown;
  if (tpl && !tpl.legacy)
    try {
      fields = decodeTemplateFields(tpl, e.templateData, endian, e.offset).map((f) => {
        const { data, ...rest } = f as { data: Uint8Array } & Record<string, unknown>;
        return { ...rest, hex: toHex(data) };
      });
    } catch (err) {
      fields = { error: (err as Error).message };
    }
  return {
    index: e.index,
    offset: e.offset,
    pcr: e.pcr,
    digest: toHex(e.digest),
    templateName: e.templateName,
    interpreted: tpl !== undefined,
    fields,
    templateData: toHex(e.templateData),
  };
}

/** A `log verify` report as text. */
export function renderVerify(io: CliIo, r: ListFileReport): void {
  const out = (s: string): void => io.stdout(s + '\n');
  out(`${r.status === 'pass' ? 'PASS' : 'FAIL'}  ${r.list} against PCRs from ${r.pcrSource}`);
  if (r.resume) {
    const z = r.resume;
    if (z.restart) out(`  restart: ${z.restart.detail}`);
    out(
      `  resumed at entry ${z.resumedFrom.entries} (byte ${z.resumedFrom.offset}): ${z.newEntries} new entries, ${z.skippedEntries} already covered`,
    );
    out(`  ${z.detail}`);
    for (const b of z.banks) for (const p of b.pcrs) out(pcrLine(b.bank, b.mode, p));
  }
  const v = r.verdict;
  if (v) {
    out(`  format: ${v.format.evidence}`);
    out(
      `  ${v.entries} entries, ${v.violations} violations (extended as ${v.violationMode === 'ones' ? '0xff, like the kernel' : 'zeros, like evmctl'})`,
    );
    for (const b of v.banks) for (const p of b.pcrs) out(pcrLine(b.bank, b.mode, p));
    if (v.status !== 'pass') out(`  why: ${v.detail}`);
    for (const d of v.diagnosis) {
      const where = [
        d.entry !== undefined ? `entry ${d.entry}` : '',
        d.offset !== undefined ? `byte ${d.offset}` : '',
        d.field ? `field '${d.field}'` : '',
      ]
        .filter(Boolean)
        .join(', ');
      out(`  [${d.kind}]${where ? ` ${where}:` : ''} ${d.detail}`);
      if (d.expected !== undefined || d.actual !== undefined)
        out(`      expected ${d.expected ?? '-'}\n      actual   ${d.actual ?? '-'}`);
    }
  }
  if (r.bootAggregate) out(`  boot_aggregate: ${r.bootAggregate.status}: ${r.bootAggregate.detail}`);
  if (r.bootAggregateSkipped) out(`  boot_aggregate: ${r.bootAggregateSkipped}`);
  if (r.signatures) {
    const by = new Map<string, number>();
    for (const s of r.signatures) by.set(s.status, (by.get(s.status) ?? 0) + 1);
    out(`  signatures: ${[...by].map(([k, n]) => `${n} ${k}`).join(', ') || 'none in the list'}`);
    for (const s of r.signatures
      .filter((x) => x.status !== 'pass' && x.status !== 'no-signature')
      .slice(0, 20))
      out(`    entry ${s.index} ${s.name}: ${s.status}: ${s.detail}`);
  }
  if (r.crossCheck) {
    out(
      `  ascii cross-check: ${r.crossCheck.length === 0 ? 'every entry agrees' : `${r.crossCheck.length} differences`}`,
    );
    for (const d of r.crossCheck.slice(0, 20))
      out(`    entry ${d.entry} ${d.field}: ascii ${d.ascii.slice(0, 80)} / binary ${d.binary.slice(0, 80)}`);
  }
  if (r.checkpointWritten) out(`  checkpoint written to ${r.checkpointWritten}`);
  if (v) for (const n of v.notEstablished) out(`  not established: ${n}`);
}

function pcrLine(
  bank: string,
  mode: string,
  p: {
    pcr: number;
    status: string;
    value: Uint8Array;
    expected: Uint8Array | undefined;
    matchedThrough: number | undefined;
    entries: number;
  },
): string {
  const m = mode === 'strict' ? '' : ` (${mode})`;
  const head = `  ${bank}${m} PCR ${p.pcr}: ${p.status}`;
  const tail =
    p.status === 'prefix'
      ? ` through entry ${p.matchedThrough} of ${p.entries}`
      : p.status === 'match'
        ? ` (${p.entries} entries)`
        : '';
  return (
    head +
    tail +
    `\n      replayed ${toHex(p.value)}` +
    (p.expected ? `\n      given    ${toHex(p.expected)}` : '')
  );
}

/** A `log verify` report as JSON. */
export function verifyJson(r: ListFileReport): unknown {
  const v = r.verdict;
  return {
    status: r.status,
    list: r.list,
    pcrSource: r.pcrSource,
    verdict: v && {
      status: v.status,
      code: v.code,
      detail: v.detail,
      format: v.format,
      entries: v.entries,
      violations: v.violations,
      violationMode: v.violationMode,
      quirks: v.quirks,
      banks: v.banks,
      mismatches: v.mismatches,
      diagnosis: v.diagnosis,
      notEstablished: v.notEstablished,
    },
    resume: r.resume && { ...r.resume, full: undefined, checkpoint: checkpointToJson(r.resume.checkpoint) },
    bootAggregate: r.bootAggregate && {
      status: r.bootAggregate.status,
      detail: r.bootAggregate.detail,
      matched: r.bootAggregate.matched,
      claim: r.bootAggregate.claim,
    },
    bootAggregateSkipped: r.bootAggregateSkipped,
    signatures: r.signatures?.map((s) => ({
      index: s.index,
      name: s.name,
      status: s.status,
      detail: s.detail,
    })),
    crossCheck: r.crossCheck,
    checkpointWritten: r.checkpointWritten,
  };
}
