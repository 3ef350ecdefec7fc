/**
 * The stored form of an agent's running state (attest_state rows) and back. The IMA checkpoint is
 * stored in core's checkpoint JSON (checkpointToJson / parseCheckpoint, which re-checks it on the
 * way in); learned keys as base64 DER.
 */
import { checkpointToJson, parseCheckpoint, type EvaluationState } from 'imakit/core';
import type { Selectable } from 'kysely';
import type { AttestStateTable } from '../db/schema.ts';
import type { StoredState } from './types.ts';

/** The state of an agent with no row yet. */
export const EMPTY_STATE: StoredState = Object.freeze({ next: Object.freeze({ entries: 0, bytes: 0 }) });

/** Read a stored row. @throws CodecError E_CHECKPOINT when the stored checkpoint is corrupt */
export function stateFromRow(row: Selectable<AttestStateTable> | undefined): StoredState {
  if (row === undefined) return EMPTY_STATE;
  const refs = row.refs_state as { learned?: { keyring: string; index: number; der: string }[] } | null;
  const refsState: EvaluationState | undefined =
    refs === null || refs.learned === undefined
      ? undefined
      : {
          learned: refs.learned.map((l) => ({
            keyring: l.keyring,
            index: l.index,
            der: new Uint8Array(Buffer.from(l.der, 'base64')),
          })),
        };
  return {
    ...(row.checkpoint !== null && { checkpoint: parseCheckpoint(JSON.stringify(row.checkpoint)) }),
    ...(refsState !== undefined && { refsState }),
    ...(row.last_attest !== null && { lastAttest: new Uint8Array(row.last_attest) }),
    ...(row.boot_reset_count !== null && { bootResetCount: Number(row.boot_reset_count) }),
    ...(row.boot_count !== null && { bootCount: row.boot_count }),
    next: { entries: row.next_entries, bytes: Number(row.next_bytes) },
  };
}

/** The row values for a state. */
export function stateToRow(agentId: string, s: StoredState) {
  return {
    agent_id: agentId,
    checkpoint: s.checkpoint === undefined ? null : JSON.stringify(checkpointToJson(s.checkpoint)),
    refs_state:
      s.refsState === undefined
        ? null
        : JSON.stringify({
            learned: s.refsState.learned.map((l) => ({
              keyring: l.keyring,
              index: l.index,
              der: Buffer.from(l.der).toString('base64'),
            })),
          }),
    last_attest: s.lastAttest ?? null,
    boot_reset_count: s.bootResetCount ?? null,
    boot_count: s.bootCount ?? null,
    next_entries: s.next.entries,
    next_bytes: s.next.bytes,
    updated_at: new Date(),
  };
}
