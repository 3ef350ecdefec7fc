/**
 * Step 3, IMA: the new entries of the measurement list, from the stored offset, replayed in every
 * quoted bank on top of the stored running PCRs, compared with the quoted PCR 10 after every
 * entry. The list may run ahead of the quote (the kernel appends between the read and the quote):
 * the prefix the quote covers is kept, the rest is asked for again. A TPM reset (resetCount) means
 * a new boot: the running state starts over and the list must be sent from its start.
 *
 * Establishes: the covered entries' template data extends, from the stored running value, to the
 * PCR 10 value the quote signed. Does NOT establish what the files are (the refs step), nor
 * anything about entries past the covered prefix.
 */
import {
  DEFAULT_FORMAT,
  ListResumer,
  detectListFormat,
  emptyCheckpoint,
  newCursor,
  scanEntry,
  toHex,
  type ListCheckpoint,
  type ListFormat,
  type PcrValues,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { Failure, ImaOffset, StepResult, StoredState } from './types.ts';

const IMA_PCR = 10;

/** A covered new entry: its absolute index and offset, and where it sits in the sent bytes. */
export interface CoveredEntry {
  readonly index: number;
  readonly offset: number;
  readonly start: number;
  readonly end: number;
}

export interface ImaStepResult extends StepResult {
  /** the checkpoint to store when the whole verdict passes */
  readonly checkpoint?: ListCheckpoint;
  /** the new entries the quote covers, for the refs step (over `bytes`) */
  readonly covered: readonly CoveredEntry[];
  readonly bytes: Uint8Array;
  readonly format: ListFormat;
  readonly next: ImaOffset;
}

const fail = (
  f: Omit<Failure, 'step'>,
  next: ImaOffset,
  notEstablished: string[],
  format: ListFormat = DEFAULT_FORMAT,
): ImaStepResult => ({
  verdict: { step: 'ima', status: 'fail', detail: f.message },
  failure: { step: 'ima', ...f },
  notEstablished,
  covered: [],
  bytes: new Uint8Array(0),
  format,
  next,
});

/**
 * Verify the new IMA entries against the verified PCR 10 values. Pure; never throws for bad
 * evidence (a malformed list is a failure naming the entry, offset and field).
 * @param reboot the quote step found a TPM reset since the stored state
 */
export function imaStep(
  stored: StoredState,
  ima: { readonly offsetBytes: number; readonly bytes: Uint8Array } | undefined,
  verified: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
  reboot: boolean,
): ImaStepResult {
  const notEstablished: string[] = [];
  const quoted = [...verified].filter(([, m]) => m.has(IMA_PCR)).map(([bank]) => bank);
  const startOver = reboot || stored.checkpoint === undefined;
  const here: ImaOffset = startOver
    ? { entries: 0, bytes: 0 }
    : { entries: stored.checkpoint!.entries, bytes: stored.checkpoint!.offset };
  if (quoted.length === 0) {
    notEstablished.push('runtime integrity (IMA): PCR 10 is not in the quote, so no list entry was verified');
    return {
      verdict: { step: 'ima', status: 'skipped', detail: 'PCR 10 is not quoted' },
      notEstablished,
      covered: [],
      bytes: new Uint8Array(0),
      format: stored.checkpoint?.format ?? DEFAULT_FORMAT,
      next: here,
    };
  }
  // the list format: from the first bytes of a list sent from its start, else as stored
  let format = startOver ? DEFAULT_FORMAT : stored.checkpoint!.format;
  if (startOver && ima !== undefined && ima.offsetBytes === 0 && ima.bytes.length > 0) {
    try {
      format = detectListFormat(ima.bytes).format;
    } catch {
      format = DEFAULT_FORMAT; // the scan below names what is wrong
    }
  }
  const cp = startOver ? emptyCheckpoint(format, quoted) : stored.checkpoint!;
  const banks = cp.banks.map((b) => b.bank).filter((b) => quoted.includes(b));
  for (const b of quoted)
    if (!banks.includes(b))
      notEstablished.push(
        `IMA in bank ${b}: no running value is stored for it (this boot's list was first verified without it)`,
      );
  if (banks.length === 0)
    return fail(
      {
        code: 'ima-bank-not-replayed',
        message: `the stored running PCRs are for ${cp.banks.map((b) => b.bank).join(', ')}; the quote covers PCR 10 only in ${quoted.join(', ')}`,
        fix: `quote PCR 10 in ${cp.banks.map((b) => b.bank).join(' or ')} (or reboot to start a new running state)`,
      },
      here,
      notEstablished,
      format,
    );
  const expected: PcrValues = new Map(
    banks.map((b) => [b, new Map([[IMA_PCR, verified.get(b)!.get(IMA_PCR)!]])] as const),
  );
  const running = (bank: string): Uint8Array =>
    cp.state.pcrs.get(bank)?.get(IMA_PCR) ?? new Uint8Array(verified.get(bank)!.get(IMA_PCR)!.length);

  if (ima === undefined) {
    const behind = banks.filter((b) => toHex(running(b)) !== toHex(expected.get(b)!.get(IMA_PCR)!));
    if (behind.length === 0)
      return {
        verdict: {
          step: 'ima',
          status: 'pass',
          detail: 'no new entries: PCR 10 is where the stored list left it',
        },
        notEstablished,
        checkpoint: cp,
        covered: [],
        bytes: new Uint8Array(0),
        format,
        next: here,
      };
    const b = behind[0]!;
    return fail(
      {
        code: 'ima-entries-missing',
        message: `PCR 10 (${b}) moved past the stored running value but no list entries were sent`,
        offset: here.bytes,
        entry: here.entries,
        expected: toHex(expected.get(b)!.get(IMA_PCR)!),
        actual: toHex(running(b)),
        fix: `send the measurement list from byte ${here.bytes} (entry ${here.entries})`,
      },
      here,
      notEstablished,
      format,
    );
  }
  if (reboot && ima.offsetBytes !== 0)
    return fail(
      {
        code: 'ima-reboot-resend',
        message:
          'the TPM was reset (a new boot) but the list was sent from a later offset, not from its start',
        offset: ima.offsetBytes,
        field: 'ima.offsetBytes',
        expected: 0,
        actual: ima.offsetBytes,
        fix: 'send the whole measurement list of the new boot (offset 0)',
      },
      { entries: 0, bytes: 0 },
      notEstablished,
      format,
    );
  if (ima.offsetBytes > cp.offset)
    return fail(
      {
        code: 'ima-offset-gap',
        message: `the entries start at byte ${ima.offsetBytes}, after the stored offset ${cp.offset}: entries in between are missing`,
        offset: ima.offsetBytes,
        field: 'ima.offsetBytes',
        expected: cp.offset,
        actual: ima.offsetBytes,
        fix: `send the list from byte ${cp.offset} (entry ${cp.entries})`,
      },
      here,
      notEstablished,
      format,
    );

  // pass 1: replay everything sent, comparing with the quoted PCR 10 after every entry
  const r1 = new ListResumer(cp, { expected });
  try {
    const f = r1.feedRange(ima.bytes, ima.offsetBytes);
    if (!r1.restart && f.consumed < ima.bytes.length)
      return fail(
        {
          code: 'evidence-malformed',
          cause: 'E_CODEC_TRUNCATED',
          message: `the last entry is cut short: ${ima.bytes.length - f.consumed} bytes after byte ${ima.offsetBytes + f.consumed}`,
          offset: ima.offsetBytes + f.consumed,
          field: 'ima.entries',
          fix: 'send whole entries only',
        },
        here,
        notEstablished,
        format,
      );
  } catch (e) {
    if (!isImakitError(e)) throw e;
    const ctx = e.toJSON() as { offset?: number; entry?: number; field?: string };
    return fail(
      {
        code: e.code === 'E_CHECKPOINT' ? 'ima-offset-misaligned' : 'evidence-malformed',
        cause: e.code,
        message: e.message,
        ...(ctx.offset !== undefined && { offset: ctx.offset }),
        ...(ctx.entry !== undefined && { entry: ctx.entry }),
        field: ctx.field === undefined ? 'ima.entries' : `ima.entries: ${ctx.field}`,
        fix:
          e.code === 'E_CHECKPOINT'
            ? `send the list from byte ${cp.offset} (entry ${cp.entries})`
            : 'send the binary measurement list exactly as securityfs gives it',
      },
      here,
      notEstablished,
      format,
    );
  }
  if (r1.restart)
    return fail(
      {
        code: 'ima-list-restarted',
        message: `${r1.restart.detail}, but the TPM was not reset: the list was rewritten`,
        ...(r1.restart.entry !== undefined && { entry: r1.restart.entry }),
        ...(r1.restart.offset !== undefined && { offset: r1.restart.offset }),
        fix: 'a list that changes without a TPM reset cannot be trusted; investigate the machine',
      },
      here,
      notEstablished,
      format,
    );
  const mm = r1.mismatches[0];
  if (mm !== undefined)
    return fail(
      {
        code: 'ima-template-digest',
        message: `entry ${mm.index}: the template data does not hash to its listed digest (${mm.bank})`,
        entry: mm.index,
        offset: mm.offset,
        expected: toHex(mm.listed),
        actual: toHex(mm.computed),
        fix: 'the list was altered in transit or on the machine',
      },
      here,
      notEstablished,
      format,
    );
  const fed = r1.checkpoint();
  const outcome = r1.outcome();
  let through: number | undefined;
  for (const b of banks) {
    const o = outcome.find((x) => x.bank === b)?.pcrs.find((p) => p.pcr === IMA_PCR);
    const q = expected.get(b)!.get(IMA_PCR)!;
    // no entry ever extended PCR 10: only the empty list (zero) matches
    const t =
      o === undefined ? (toHex(running(b)) === toHex(q) ? fed.entries - 1 : undefined) : o.matchedThrough;
    if (t === undefined)
      return fail(
        {
          code: 'ima-replay-mismatch',
          message: `no prefix of the ${fed.entries - cp.entries} new entries replays to the quoted PCR 10 (${b}) from the stored running value`,
          entry: cp.entries,
          offset: cp.offset,
          expected: toHex(q),
          actual: toHex(o?.value ?? running(b)),
          fix: `the list does not match the TPM: entries are missing or altered at or after entry ${cp.entries} (byte ${cp.offset})`,
        },
        here,
        notEstablished,
        format,
      );
    if (through !== undefined && through !== t)
      return fail(
        {
          code: 'ima-bank-disagreement',
          message: `the banks cover different prefixes of the list (through entries ${through} and ${t})`,
          expected: through,
          actual: t,
          fix: 'every bank the kernel extends must replay the same entries',
        },
        here,
        notEstablished,
        format,
      );
    through = t;
  }
  // pass 2: the covered prefix only, for the state to store and the entries to evaluate
  const covered: CoveredEntry[] = [];
  const c = newCursor();
  let pos = 0;
  let index = -1;
  let cut = 0;
  for (;;) {
    const abs = ima.offsetBytes + pos;
    const next = scanEntry(ima.bytes, pos, ima.bytes.length, cp.format, 0, ima.offsetBytes, c);
    if (next < 0) break;
    if (abs === cp.offset) index = cp.entries;
    if (index >= 0) {
      if (index > through!) break;
      covered.push({ index, offset: abs, start: pos, end: next });
      index++;
    }
    pos = next;
    cut = next;
  }
  const r2 = new ListResumer(cp);
  r2.feedRange(ima.bytes.subarray(0, cut), ima.offsetBytes);
  const cpNew = r2.checkpoint();
  const ahead = fed.entries - cpNew.entries;
  if (ahead > 0)
    notEstablished.push(
      `entries ${cpNew.entries}..${fed.entries - 1} (from byte ${cpNew.offset}): the list ran ahead of the quote; they will be asked for again`,
    );
  return {
    verdict: {
      step: 'ima',
      status: 'pass',
      detail:
        `${covered.length} new entries replay to the quoted PCR 10 in ${banks.join(', ')}` +
        (ahead > 0 ? `; ${ahead} more ran ahead of the quote and are not covered yet` : ''),
      banks,
      from: here,
      covered: { entries: cpNew.entries, bytes: cpNew.offset },
      ...(ahead > 0 && { ahead }),
      ...(startOver && {
        restart: reboot ? 'new boot: replayed from the start of the list' : 'first attestation',
      }),
    },
    notEstablished,
    checkpoint: cpNew,
    covered,
    bytes: ima.bytes,
    format: cp.format,
    next: { entries: cpNew.entries, bytes: cpNew.offset },
  };
}
