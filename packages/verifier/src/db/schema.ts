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
  /** the EK certificate (DER) the agent presented at enrolment; its chain is not verified here */
  ek_certificate: Uint8Array | null;
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
  /** pull mode: the agent's evidence endpoint (base URL; `/v1/evidence` is appended) */
  pull_url: ColumnType<string | null, string | null | undefined, string | null>;
  /** pull mode: when the agent is next due for attestation */
  next_due: ColumnType<Date, Date | string | undefined, Date | string>;
  /** the measured-boot reference (core BootReference bytes), and its form */
  boot_reference: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
  /** eventlog | pcrs | keylime-mb-refstate */
  boot_reference_form: ColumnType<string | null, string | null | undefined, string | null>;
  /** pull mode: `imakit` (GET /v1/evidence) or `keylime` (Keylime's pull API; migration 0006) */
  transport: ColumnType<string, string | undefined, string>;
}

/** A reference set, stored once and shared by many agents (id = SHA-256 of its bytes). */
export interface ReferenceSetsTable {
  id: string;
  name: string;
  body: Uint8Array;
  created_at: Timestamp;
  /** what the upload verified of its signature (JSON), null when nothing was checked */
  signature: ColumnType<unknown, string | null | undefined, string | null>;
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

/** JSON column: read back as a value, written as JSON text. */
type Json = ColumnType<unknown, string | null | undefined, string | null>;
type Int8 = ColumnType<number | string | null, number | null | undefined, number | null>;

/**
 * An agent's running attestation state: where its IMA list continues (a core ListCheckpoint as
 * JSON: entries, byte offset, running PCRs per bank, first/last entry fingerprints), what the
 * reference evaluation learned (keys measured onto keyrings), the last verified quote (its clock
 * info orders the next one), and the TPM reset count the checkpoint belongs to (a larger one in a
 * quote is a reboot).
 */
export interface AttestStateTable {
  agent_id: string;
  checkpoint: Json;
  refs_state: Json;
  last_attest: Uint8Array | null;
  boot_reset_count: Int8;
  /** the agent's own boot counter (untrusted: the quote does not cover it) */
  boot_count: number | null;
  /** where the next evidence starts (the challenge's imaOffset) */
  next_entries: ColumnType<number, number | undefined, number>;
  next_bytes: ColumnType<number | string, number | undefined, number>;
  updated_at: Timestamp;
}

/** Single-use challenge nonces, each bound to one agent, with an expiry. */
export interface NoncesTable {
  nonce: string;
  agent_id: string;
  expires_at: Timestamp;
  /** attest (evidence answers it) | session (an AK proof answers it) */
  purpose: ColumnType<string, string | undefined, string>;
}

/** Every verdict, newest kept (bounded per agent). */
export interface VerdictsTable {
  id: Generated<number>;
  agent_id: string;
  at: Timestamp;
  status: string;
  verdict: ColumnType<unknown, string, string>;
  /** pull mode: when the attestation started (the lease was taken) */
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** pull mode: the verifier process that made the verdict */
  owner: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A MakeCredential challenge awaiting activation (one per agent, expires). */
export interface RegistrarChallengesTable {
  agent_id: string;
  secret_sha256: Uint8Array;
  ek_public: Uint8Array;
  ek_certificate: Uint8Array | null;
  ak_public: Uint8Array;
  expires_at: Timestamp;
}

/** Agent tokens: only the SHA-256 is stored, bound to one agent. */
export interface AgentTokensTable {
  token_sha256: Uint8Array;
  agent_id: string;
  created_at: Timestamp;
  /** when the session ends (NULL: a token issued before sessions, no expiry) */
  expires_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** The dashboard's copy of an agent's last evidence (migration 0007). */
export interface AgentEvidenceTable {
  agent_id: string;
  at: Timestamp;
  /** the PCR values as sent: bank → index → hex (only `quoted` of them are established) */
  pcrs: ColumnType<unknown, string, string>;
  /** the selection the verified quote covered; null when the quote did not verify */
  quoted: string | null;
  event_log: Uint8Array | null;
}

/** A run of IMA list entries a verified quote covered (migration 0007). */
export interface ImaChunksTable {
  agent_id: string;
  start_offset: ColumnType<number | string, number, number>;
  start_entry: number;
  entries: number;
  bytes: Uint8Array;
}

export interface Database {
  agents: AgentsTable;
  reference_sets: ReferenceSetsTable;
  events: EventsTable;
  tokens: TokensTable;
  attest_state: AttestStateTable;
  nonces: NoncesTable;
  verdicts: VerdictsTable;
  registrar_challenges: RegistrarChallengesTable;
  agent_tokens: AgentTokensTable;
  agent_evidence: AgentEvidenceTable;
  ima_chunks: ImaChunksTable;
}
