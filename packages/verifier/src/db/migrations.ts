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

/** Every migration, by name in apply order. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001-initial': initial,
});

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => ({ ...MIGRATIONS }),
};
