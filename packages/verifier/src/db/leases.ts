/**
 * Pull-mode leases: several verifier processes share one PostgreSQL and each agent is attested by
 * at most one of them at a time. A process claims due agents in one statement (`FOR UPDATE SKIP
 * LOCKED`: rows another process is claiming right now are skipped, not waited for) and stamps them
 * with its name and an expiry. The lease ends when the verdict is stored (attest-store.ts releases
 * it in the verdict's transaction and sets the next due time) or, for a process that died or
 * stalled, when it expires: the agent is due at once and any process takes it over.
 *
 * All times are the database's clock (`now()`), never a process's own, so processes on machines
 * whose clocks disagree still agree on who holds what. On PGlite (one connection) the same
 * statement runs; there is nothing to skip.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** An agent this process now holds, with what its challenge needs. */
export interface ClaimedAgent {
  readonly id: string;
  /** base URL of the agent's evidence endpoint */
  readonly pullUrl: string;
  /** PCR selection the quote must cover */
  readonly requirePcrs: string;
  /** where the agent's IMA list continues (bytes) */
  readonly offsetBytes: number;
  /** where the agent's IMA list continues (entries; Keylime's `ima_ml_entry`) */
  readonly offsetEntries: number;
  /** `imakit` or `keylime` (migration 0004) */
  readonly transport: string;
  readonly intervalSeconds: number;
  /** when the lease was taken (database clock) */
  readonly claimedAt: Date;
  /** when the lease expires unless the verdict is stored first (database clock) */
  readonly leaseUntil: Date;
}

/**
 * Claim up to `n` due agents for `owner` for `leaseMs` milliseconds. Due: not paused, enrolled,
 * with a pull URL, `next_due` passed, and no live lease. Oldest due first.
 */
export async function claimDueAgents(
  db: Kysely<Database>,
  owner: string,
  n: number,
  leaseMs: number,
): Promise<readonly ClaimedAgent[]> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`n must be a count, not ${n}`);
  if (!Number.isSafeInteger(leaseMs) || leaseMs <= 0)
    throw new RangeError(`leaseMs must be > 0, not ${leaseMs}`);
  if (n === 0) return [];
  const r = await sql<{
    id: string;
    pull_url: string;
    require_pcrs: string;
    interval_s: number;
    next_bytes: number | string | null;
    next_entries: number | string | null;
    transport: string;
    claimed_at: Date | string;
    lease_until: Date | string;
  }>`
    WITH due AS (
      SELECT id FROM agents
      WHERE state <> 'paused' AND ak_public IS NOT NULL AND pull_url IS NOT NULL
        AND next_due <= now() AND (lease_until IS NULL OR lease_until < now())
      ORDER BY next_due
      LIMIT ${n}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE agents AS a
    SET lease_owner = ${owner}, lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    FROM due
    WHERE a.id = due.id
    RETURNING a.id, a.pull_url, a.require_pcrs, a.interval_s, a.transport, a.lease_until,
      now() AS claimed_at,
      (SELECT s.next_bytes FROM attest_state AS s WHERE s.agent_id = a.id) AS next_bytes,
      (SELECT s.next_entries FROM attest_state AS s WHERE s.agent_id = a.id) AS next_entries`.execute(db);
  return Object.freeze(
    r.rows.map((row) =>
      Object.freeze({
        id: row.id,
        pullUrl: row.pull_url,
        requirePcrs: row.require_pcrs,
        offsetBytes: Number(row.next_bytes ?? 0),
        offsetEntries: Number(row.next_entries ?? 0),
        transport: row.transport,
        intervalSeconds: row.interval_s,
        claimedAt: new Date(row.claimed_at),
        leaseUntil: new Date(row.lease_until),
      }),
    ),
  );
}

/**
 * Give a lease back without a verdict (the agent could not be reached, or its evidence did not
 * match the schema): the agent is due again after `retryMs`. Only the holder's lease is released.
 * @returns whether this process still held the lease
 */
export async function releaseLease(
  db: Kysely<Database>,
  owner: string,
  agentId: string,
  retryMs: number,
): Promise<boolean> {
  const r = await db
    .updateTable('agents')
    .set({
      lease_owner: null,
      lease_until: null,
      next_due: sql<Date>`now() + make_interval(secs => ${retryMs / 1000})`,
    })
    .where('id', '=', agentId)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
