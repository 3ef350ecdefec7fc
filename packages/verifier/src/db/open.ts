/**
 * Open the verifier's database: PGlite in a data directory (the embedded default: zero
 * configuration) or PostgreSQL at a URL, both behind Kysely's PostgresDialect, then apply the
 * migrations. The same code path serves both.
 */
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import type { Database } from './schema.ts';
import { migrationProvider } from './migrations.ts';
import { pglitePool } from './pglite-pool.ts';

export type DatabaseTarget =
  | { readonly kind: 'pglite'; readonly dataDir?: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly max?: number };

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseTarget['kind'];
  close(): Promise<void>;
}

/** Open and migrate. `dataDir` undefined = an in-memory PGlite (tests). */
export async function openDatabase(target: DatabaseTarget): Promise<OpenDatabase> {
  let dialect: PostgresDialect;
  if (target.kind === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const lite = target.dataDir === undefined ? new PGlite() : new PGlite(target.dataDir);
    await lite.waitReady;
    dialect = new PostgresDialect({ pool: pglitePool(lite) as never });
  } else {
    const pg = await import('pg');
    // int8 (bigserial ids, counts) as numbers, as PGlite returns them; ids stay far below 2^53
    pg.default.types.setTypeParser(20, (v: string) => Number(v));
    const pool = new pg.default.Pool({ connectionString: target.url, max: target.max ?? 10 });
    // an idle client's error (the server went away) must not crash the process
    pool.on('error', () => undefined);
    dialect = new PostgresDialect({ pool });
  }
  const db = new Kysely<Database>({ dialect });
  const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  if (error !== undefined) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return { db, kind: target.kind, close: () => db.destroy() };
}
