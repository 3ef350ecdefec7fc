/**
 * The verifier's tables as Kysely sees them. Column types are what the application reads back
 * after `normalise` in open.ts: PGlite and node-postgres disagree on int8 (number vs string) and
 * bytea (Uint8Array vs Buffer), so int8 columns are read through `::int`/Number() and bytea as
 * Uint8Array either way.
 */
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

/** An attested machine and its running attestation state. */
export interface AgentsTable {
  id: string;
  name: string;
  /** unenrolled | passing | failing | paused */
  state: string;
  /** why the state is what it is (the failing step and entry, or the pause reason) */
  state_reason: ColumnType<unknown, string | undefined, string>;
  ek_public: Uint8Array | null;
  ak_public: Uint8Array | null;
  /** content hash of the reference set the agent is held to */
  reference_set: string | null;
  /** PCR selection the quote must cover, e.g. `sha256:0-7,10` */
  require_pcrs: string;
  /** seconds between attestations; an agent not attested for 2 intervals is stale */
  interval_s: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_attested_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** pull-mode lease: which verifier process holds the agent and until when */
  lease_owner: string | null;
  lease_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** A reference set, stored once and shared by many agents (id = SHA-256 of its bytes). */
export interface ReferenceSetsTable {
  id: string;
  name: string;
  body: Uint8Array;
  created_at: Timestamp;
}

/** State changes with their reasons (the events feed). */
export interface EventsTable {
  id: Generated<number>;
  agent_id: string;
  at: Timestamp;
  from_state: string;
  to_state: string;
  reason: ColumnType<unknown, string, string>;
  acknowledged: Generated<boolean>;
}

/** Operator tokens: only the SHA-256 of a token is stored. */
export interface TokensTable {
  id: string;
  token_sha256: Uint8Array;
  /** read | operate | admin */
  role: string;
  created_at: Timestamp;
}

export interface Database {
  agents: AgentsTable;
  reference_sets: ReferenceSetsTable;
  events: EventsTable;
  tokens: TokensTable;
}
