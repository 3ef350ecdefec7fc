/**
 * Step 2, measured boot: when the agent sends its TCG event log, replay it into PCRs 0-9 and
 * compare with the values the quote proved; then, when the agent has a boot reference (a golden
 * log, PCR values or a Keylime mb_refstate: core compareBootReference), compare the boot with it
 * over the PCRs the quote proved. A reference of PCR values needs no log: the quoted values are
 * compared directly.
 *
 * Establishes: the event log is the one that produced the quoted PCRs 0-9 (those quoted), and with
 * a reference, that the quoted boot matches it. Does NOT establish that the boot chain is
 * acceptable when no reference is configured, nor anything about PCRs the quote omits (a reference
 * naming such a PCR fails: `boot-pcr-not-quoted`).
 */
import {
  compareBootReference,
  compareEventLogPcrs,
  decodeBootReference,
  parseEventLog,
  replayEventLog,
  type BootReferenceForm,
  type TcgEventLog,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { Failure, StepResult, StepVerdict } from './types.ts';

/** An agent's stored boot reference: its bytes and form (decoded here, per attestation). */
export interface StoredBootReference {
  readonly form: BootReferenceForm;
  readonly bytes: Uint8Array;
}

const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;

/** Check the event log against the quote, then against the reference. Pure; never throws for bad evidence. */
export function bootStep(
  eventLog: Uint8Array | undefined,
  verified: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
  reference?: StoredBootReference,
): StepResult {
  const noReference =
    'that the boot chain is acceptable: no measured-boot reference is configured for the agent';
  if (eventLog === undefined) {
    if (reference !== undefined) return againstReference(reference, undefined, verified, []);
    return {
      verdict: { step: 'boot', status: 'skipped', detail: 'no event log was sent' },
      notEstablished: ['the boot chain (PCRs 0-9): no event log was sent', noReference],
    };
  }
  let replay;
  let log: TcgEventLog;
  try {
    log = parseEventLog(eventLog);
    replay = replayEventLog(log);
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
      notEstablished: reference === undefined ? [noReference] : [],
    };
  }
  const cmp = compareEventLogPcrs(
    replay,
    new Map([...verified].map(([bank, m]) => [bank, new Map(m)])),
    BOOT_PCRS,
  );
  const notEstablished = reference === undefined ? [noReference] : [];
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
  if (reference !== undefined) return againstReference(reference, log, verified, notEstablished);
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

/**
 * The boot against the agent's reference: a failure names the PCR, the agent's event (index,
 * type, digest), what the reference expected there and what would make it pass.
 */
function againstReference(
  reference: StoredBootReference,
  log: TcgEventLog | undefined,
  verified: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
  notEstablished: readonly string[],
): StepResult {
  let ref;
  try {
    ref = decodeBootReference(reference.bytes, reference.form);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    // stored references were decoded when they were set: this is a reference the code now refuses
    return {
      verdict: { step: 'boot', status: 'fail', detail: `the boot reference cannot be read: ${e.message}` },
      failure: {
        step: 'boot',
        code: 'boot-reference-unreadable',
        cause: e.code,
        message: e.message,
        field: 'bootReference',
        fix: 'set the boot reference again (imakit fleet update ID --boot-ref FILE)',
      },
      notEstablished: [...notEstablished, 'the boot chain: the reference could not be read'],
    };
  }
  const r = compareBootReference(ref, { ...(log !== undefined && { log }), quoted: verified });
  const all = [...notEstablished, ...r.notEstablished];
  if (log === undefined && ref.form === 'pcrs')
    all.push('which boot events produced the PCR values: no event log was sent');
  const first = r.mismatches[0];
  if (first !== undefined) {
    const failure: Failure = {
      step: 'boot',
      code: first.code,
      message: first.message,
      field: `pcr ${first.pcr}`,
      ...(first.event !== undefined && { entry: first.event.index }),
      ...(first.expected !== undefined && { expected: first.expected }),
      actual: first.event ?? first.actual ?? null,
      fix: first.fix,
    };
    const verdict: StepVerdict = {
      step: 'boot',
      status: 'fail',
      detail: `the boot differs from the agent's ${ref.form} reference: ${first.message}`,
      reference: ref.form,
      mismatches: r.mismatches,
    };
    return { verdict, failure, notEstablished: all };
  }
  return {
    verdict: {
      step: 'boot',
      status: 'pass',
      detail: `the quoted boot matches the agent's ${ref.form} reference (${r.checked.join('; ')})`,
      reference: ref.form,
    },
    notEstablished: all,
  };
}
