/**
 * Schema migrations, in code so the same list runs on PGlite and PostgreSQL (Kysely's Migrator
 * with an in-memory provider; no files are read at run time). Append new migrations; never edit
 * one that has shipped.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const initial: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('state_reason', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
      .addColumn('ek_public', 'bytea')
      .addColumn('ak_public', 'bytea')
      .addColumn('reference_set', 'text')
      .addColumn('require_pcrs', 'text', (c) => c.notNull())
      .addColumn('interval_s', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('last_attested_at', 'timestamptz')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'timestamptz')
      .execute();
    await db.schema.createIndex('agents_state').on('agents').columns(['state', 'name']).execute();
    await db.schema
      .createTable('reference_sets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('body', 'bytea', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    await db.schema
      .createTable('events')
      .addColumn('id', 'bigserial', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('from_state', 'text', (c) => c.notNull())
      .addColumn('to_state', 'text', (c) => c.notNull())
      .addColumn('reason', 'jsonb', (c) => c.notNull())
      .addColumn('acknowledged', 'boolean', (c) => c.notNull().defaultTo(false))
      .execute();
    await db.schema.createIndex('events_agent').on('events').columns(['agent_id', 'id']).execute();
    await db.schema
      .createTable('tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_sha256', 'bytea', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
  },
};

/**
 * Attestation: the running state per agent (the IMA checkpoint the next evidence resumes from, the
 * last verified quote for clock/reset monotonicity, the reset count the checkpoint belongs to),
 * single-use nonces, the verdict history, registrar challenges and agent tokens.
 */
const attestation: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('agents').addColumn('ek_certificate', 'bytea').execute();
    await db.schema
      .createTable('attest_state')
      .addColumn('agent_id', 'text', (c) => c.primaryKey().references('agents.id').onDelete('cascade'))
      .addColumn('checkpoint', 'jsonb')
      .addColumn('refs_state', 'jsonb')
      .addColumn('last_attest', 'bytea')
      .addColumn('boot_reset_count', 'bigint')
      .addColumn('boot_count', 'integer')
      .addColumn('next_entries', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    await db.schema
      .createTable('nonces')
      .addColumn('nonce', 'text', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
      .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('nonces_agent').on('nonces').columns(['agent_id', 'expires_at']).execute();
    await db.schema
      .createTable('verdicts')
      .addColumn('id', 'bigserial', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
      .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('verdict', 'jsonb', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('verdicts_agent').on('verdicts').columns(['agent_id', 'id']).execute();
    await db.schema
      .createTable('registrar_challenges')
      .addColumn('agent_id', 'text', (c) => c.primaryKey().references('agents.id').onDelete('cascade'))
      .addColumn('secret_sha256', 'bytea', (c) => c.notNull())
      .addColumn('ek_public', 'bytea', (c) => c.notNull())
      .addColumn('ek_certificate', 'bytea')
      .addColumn('ak_public', 'bytea', (c) => c.notNull())
      .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('agent_tokens')
      .addColumn('token_sha256', 'bytea', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    await db.schema.createIndex('agent_tokens_agent').on('agent_tokens').columns(['agent_id']).execute();
  },
};

/**
 * Pull mode and scale-out: the agent's evidence endpoint, when it is next due (several verifier
 * processes lease due agents from one PostgreSQL, db/leases.ts), and on each verdict when the
 * attestation started and which process made it (a pull verdict; push verdicts leave both null).
 */
const pull: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('agents')
      .addColumn('pull_url', 'text')
      .addColumn('next_due', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    await sql`CREATE INDEX agents_pull_due ON agents (next_due) WHERE pull_url IS NOT NULL`.execute(db);
    await db.schema
      .alterTable('verdicts')
      .addColumn('started_at', 'timestamptz')
      .addColumn('owner', 'text')
      .execute();
  },
};

/**
 * Agent sessions and measured-boot references: an agent token may expire (a session the agent
 * renews by proving possession of its AK with a TPM quote over a fresh nonce; tokens issued before
 * keep NULL, no expiry); a nonce carries what it was issued for (`attest` evidence or a `session`
 * proof), so one is never accepted for the other; an agent may carry a boot reference (a golden
 * TCG event log, expected PCR values, or a Keylime mb_refstate) as bytes with its form.
 */
const sessionsAndBootReference: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('agent_tokens').addColumn('expires_at', 'timestamptz').execute();
    await db.schema
      .alterTable('nonces')
      .addColumn('purpose', 'text', (c) => c.notNull().defaultTo('attest'))
      .execute();
    await db.schema
      .alterTable('agents')
      .addColumn('boot_reference', 'bytea')
      .addColumn('boot_reference_form', 'text')
      .execute();
  },
};

/**
 * The dashboard: per agent, the last evidence as sent (PCR values with the selection the verified
 * quote covered, the event log) and the IMA list prefix the quotes covered, in chunks appended as
 * attestations pass the ima step (a refused chunk is replaced when it is sent again; a new boot
 * starts over), so the agent page and the impact preview evaluate what the agent really ran.
 * Indexes for the fleet overview (verdicts by time) and the agents table (sort by last
 * attestation, filter by reference set).
 */
const dashboard: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('agent_evidence')
      .addColumn('agent_id', 'text', (c) => c.primaryKey().references('agents.id').onDelete('cascade'))
      .addColumn('at', 'timestamptz', (c) => c.notNull())
      .addColumn('pcrs', 'jsonb', (c) => c.notNull())
      .addColumn('quoted', 'text')
      .addColumn('event_log', 'bytea')
      .execute();
    await db.schema
      .createTable('ima_chunks')
      .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id').onDelete('cascade'))
      .addColumn('start_offset', 'bigint', (c) => c.notNull())
      .addColumn('start_entry', 'integer', (c) => c.notNull())
      .addColumn('entries', 'integer', (c) => c.notNull())
      .addColumn('bytes', 'bytea', (c) => c.notNull())
      .addPrimaryKeyConstraint('ima_chunks_pk', ['agent_id', 'start_offset'])
      .execute();
    await db.schema.createIndex('verdicts_at').on('verdicts').columns(['at']).execute();
    await db.schema.createIndex('agents_last_attested').on('agents').columns(['last_attested_at']).execute();
    await db.schema.createIndex('agents_reference_set').on('agents').columns(['reference_set']).execute();
  },
};

/**
 * Keylime interop: how the verifier talks to a pull agent. `imakit` agents serve imakit's
 * `GET /v1/evidence`; `keylime` agents serve Keylime's pull API (`GET /v2.N/quotes/integrity`, as
 * rust-keylime does) and were added with their AK (no imakit enrolment). Additive: existing rows
 * are imakit agents.
 */
const keylimeAgents: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('agents')
      .addColumn('transport', 'text', (c) => c.notNull().defaultTo('imakit'))
      .execute();
  },
};

/**
 * Signed reference sets: what the upload established about the set's signature (`{form, key,
 * keyid}` when it verified under one of the verifier's reference-set keys; null when none was
 * checked). Additive: sets uploaded before stay unchecked.
 */
const refsSignature: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('reference_sets').addColumn('signature', 'jsonb').execute();
  },
};

/** Every migration, by name in apply order. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001-initial': initial,
  '0002-attestation': attestation,
  '0003-pull': pull,
  '0004-sessions-boot-reference': sessionsAndBootReference,
  '0006-keylime-agents': keylimeAgents,
  '0007-dashboard': dashboard,
  '0008-refs-signature': refsSignature,
});

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => ({ ...MIGRATIONS }),
};
