/**
 * Step 2, measured boot: when the agent sends its TCG event log, replay it into PCRs 0-9 and
 * compare with the values the quote proved. A per-agent boot reference (which firmware, loader
 * and kernel are acceptable) is a later addition: until then the verdict says so.
 *
 * Establishes: the event log is the one that produced the quoted PCRs 0-9 (those quoted). Does
 * NOT establish that the boot chain is acceptable, nor anything about PCRs 0-9 the quote omits.
 */
import { compareEventLogPcrs, parseEventLog, replayEventLog } from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { StepResult } from './types.ts';

const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;

/** Check the event log against the quote. Pure; never throws for bad evidence. */
export function bootStep(
  eventLog: Uint8Array | undefined,
  verified: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
): StepResult {
  const noReference =
    'that the boot chain is acceptable: no measured-boot reference is configured for the agent';
  if (eventLog === undefined)
    return {
      verdict: { step: 'boot', status: 'skipped', detail: 'no event log was sent' },
      notEstablished: ['the boot chain (PCRs 0-9): no event log was sent', noReference],
    };
  let replay;
  try {
    replay = replayEventLog(parseEventLog(eventLog));
  } catch (e) {
    if (!isImakitError(e)) throw e;
    const ctx = e.toJSON() as { offset?: number; entry?: number; field?: string };
    return {
      verdict: { step: 'boot', status: 'fail', detail: e.message },
      failure: {
        step: 'boot',
        code: 'evidence-malformed',
        cause: e.code,
        message: e.message,
        ...(ctx.offset !== undefined && { offset: ctx.offset }),
        ...(ctx.entry !== undefined && { entry: ctx.entry }),
        field: ctx.field === undefined ? 'eventLog' : `eventLog: ${ctx.field}`,
        fix: 'send binary_bios_measurements exactly as securityfs gives it',
      },
      notEstablished: [noReference],
    };
  }
  const cmp = compareEventLogPcrs(
    replay,
    new Map([...verified].map(([bank, m]) => [bank, new Map(m)])),
    BOOT_PCRS,
  );
  const notEstablished = [noReference];
  const compared = new Set(cmp.results.map((r) => `${r.bank}:${r.pcr}`));
  const uncovered = [...verified.keys()].flatMap((bank) =>
    BOOT_PCRS.filter((i) => !compared.has(`${bank}:${i}`) && replay.pcrs.get(bank)?.has(i)).map(
      (i) => `${bank}:${i}`,
    ),
  );
  if (uncovered.length > 0)
    notEstablished.push(`event-log PCRs ${uncovered.join(', ')}: not in the quote, so not compared`);
  if (cmp.results.length === 0)
    notEstablished.push('the boot chain: the quote covers none of PCRs 0-9 the log extends');
  const bad = cmp.results.find((r) => r.status === 'mismatch');
  if (bad !== undefined)
    return {
      verdict: {
        step: 'boot',
        status: 'fail',
        detail: `the event log replays ${bad.bank} PCR ${bad.pcr} to a value the quote does not show`,
        mismatches: cmp.results.filter((r) => r.status === 'mismatch'),
      },
      failure: {
        step: 'boot',
        code: 'boot-replay-mismatch',
        message: `event log replay of ${bad.bank} PCR ${bad.pcr} differs from the quoted value`,
        field: `pcrs.${bad.bank}.${bad.pcr}`,
        expected: bad.expected,
        actual: bad.replayed,
        fix: 'send the event log of the current boot, unaltered',
      },
      notEstablished,
    };
  return {
    verdict: {
      step: 'boot',
      status: cmp.results.length === 0 ? 'skipped' : 'pass',
      detail:
        cmp.results.length === 0
          ? 'the quote covers none of the PCRs the event log extends'
          : `the event log replays to the quoted ${cmp.results.map((r) => `${r.bank}:${r.pcr}`).join(', ')}`,
      ...(replay.quirks.length > 0 && { quirks: replay.quirks.map((q) => q.id) }),
    },
    notEstablished,
  };
}
