/**
 * Replay a TCG event log per bank into PCR values, and compare with given PCRs.
 *
 * EV_NO_ACTION events are not extended; a StartupLocality EV_NO_ACTION sets PCR 0's initial value
 * to the locality in its last byte (PC Client PFP §10.4.5.3) — a tolerated firmware quirk, named.
 * Events whose digest covers their data have that data checked; others (code and image
 * measurements) keep their data marked untrusted. Establishes: the log's digests extend to the
 * computed values (and the given PCRs when they match). Does NOT establish that the PCRs came from
 * a TPM, nor that event data not covered by digests is true.
 */
import { bytesEqual, toHex } from '../bytes/bytes.ts';
import { findHashAlgo, hash } from '../hash/hash-algo.ts';
import type { PcrValues } from './pcr-values.ts';
import {
  decodeEventData,
  digestCoversData,
  EV_NO_ACTION,
  EV_POST_CODE,
  eventTypeName,
} from './event-types.ts';
import type { TcgEventLog } from './event-log.ts';

/** Replay result. */
export interface EventLogReplay {
  readonly pcrs: Map<string, Map<number, Uint8Array>>;
  /** events whose data is covered by the digest and does not hash to it */
  readonly dataMismatches: readonly { index: number; bank: string; type: string }[];
  readonly quirks: readonly { id: string; event?: number; detail: string }[];
  /** banks in the log this runtime cannot compute */
  readonly skippedBanks: readonly string[];
}

/** Replay every bank of the log. */
export function replayEventLog(log: TcgEventLog): EventLogReplay {
  const pcrs = new Map<string, Map<number, Uint8Array>>();
  const quirks = [...log.quirks];
  const dataMismatches: { index: number; bank: string; type: string }[] = [];
  const banks = log.specAlgorithms
    .map((a) => a.bank)
    .filter((b): b is string => b !== undefined && findHashAlgo(b)?.node != null);
  const skippedBanks = log.specAlgorithms
    .filter((a) => !a.bank || findHashAlgo(a.bank)?.node == null)
    .map((a) => a.bank ?? `tpm_alg_${a.tpmAlg}`);
  for (const b of banks) pcrs.set(b, new Map());
  for (const e of log.events) {
    if (e.type === EV_NO_ACTION) {
      const d = decodeEventData(e.type, e.data);
      if (d.kind === 'startup-locality' && banks.some((b) => pcrs.get(b)!.has(0))) {
        // the locality sets PCR 0's STARTING value; after an extend it cannot apply (PFP §10.4.5.3)
        quirks.push({
          id: 'startup-locality-late',
          event: e.index,
          detail: `StartupLocality event after PCR 0 was extended: ignored`,
        });
      } else if (d.kind === 'startup-locality') {
        quirks.push({
          id: 'startup-locality',
          event: e.index,
          detail: `PCR 0 starts at locality ${d.locality}`,
        });
        for (const b of banks) {
          const v = new Uint8Array(findHashAlgo(b)!.size);
          v[v.length - 1] = d.locality;
          pcrs.get(b)!.set(0, v);
        }
      }
      continue;
    }
    if (e.type === EV_POST_CODE && e.data.length % 2 === 1 && e.data.length !== 1)
      quirks.push({
        id: 'odd-post-code',
        event: e.index,
        detail: `EV_POST_CODE with ${e.data.length} bytes of data`,
      });
    for (const b of banks) {
      const d = e.digests.get(b);
      if (!d) continue;
      const m = pcrs.get(b)!;
      const size = d.length;
      const cur = m.get(e.pcr) ?? new Uint8Array(size);
      m.set(e.pcr, hash(b, cur, d));
      if (digestCoversData(e.type) && !bytesEqual(hash(b, e.data), d))
        dataMismatches.push({ index: e.index, bank: b, type: eventTypeName(e.type) });
    }
  }
  return { pcrs, dataMismatches, quirks, skippedBanks };
}

/** Compare a replay with PCR values: per bank and PCR, match or not. */
export function compareEventLogPcrs(
  replay: EventLogReplay,
  expected: PcrValues,
  pcrIndexes: readonly number[],
): {
  status: 'pass' | 'fail';
  results: { bank: string; pcr: number; status: 'match' | 'mismatch'; replayed: string; expected: string }[];
} {
  const results: {
    bank: string;
    pcr: number;
    status: 'match' | 'mismatch';
    replayed: string;
    expected: string;
  }[] = [];
  for (const [bank, m] of expected) {
    const r = replay.pcrs.get(bank);
    if (!r) continue;
    for (const i of pcrIndexes) {
      const e = m.get(i);
      if (!e) continue;
      const v = r.get(i) ?? new Uint8Array(e.length);
      results.push({
        bank,
        pcr: i,
        status: bytesEqual(v, e) ? 'match' : 'mismatch',
        replayed: toHex(v),
        expected: toHex(e),
      });
    }
  }
  return {
    status: results.length > 0 && results.every((x) => x.status === 'match') ? 'pass' : 'fail',
    results,
  };
}
