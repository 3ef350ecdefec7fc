/**
 * PGlite behind the `pg.Pool` shape Kysely's `PostgresDialect` uses, so the embedded database and
 * PostgreSQL share one dialect, one query builder and one set of migrations. PGlite is a single
 * connection: a mutex hands it to one Kysely "connection" at a time, which keeps transactions
 * (BEGIN ... COMMIT on one connection) from interleaving.
 */
import type { PGlite } from '@electric-sql/pglite';

interface QueryResultLike {
  readonly rows: unknown[];
  readonly rowCount: number;
  readonly command: string;
}

/** The subset of `pg.PoolClient` Kysely calls. */
export interface PoolClientLike {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResultLike>;
  release(): void;
}

/** The subset of `pg.Pool` Kysely calls. */
export interface PoolLike {
  connect(): Promise<PoolClientLike>;
  end(): Promise<void>;
}

/** A pool of one: `connect()` waits until the previous holder released the connection. */
export function pglitePool(db: PGlite): PoolLike {
  let tail: Promise<void> = Promise.resolve();
  return {
    async connect(): Promise<PoolClientLike> {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const prev = tail;
      tail = prev.then(() => held);
      await prev;
      let released = false;
      return {
        async query(sql, params) {
          const r = await db.query<Record<string, unknown>>(sql, params as unknown[] | undefined);
          // pg reports the verb; Kysely reads numAffectedRows from rowCount for writes
          const command = (/^\s*(\w+)/.exec(sql)?.[1] ?? '').toUpperCase();
          const rowCount = command === 'SELECT' ? r.rows.length : (r.affectedRows ?? r.rows.length);
          return { rows: r.rows, rowCount, command };
        },
        release() {
          if (released) return;
          released = true;
          release();
        },
      };
    },
    async end() {
      await tail;
      await db.close();
    },
  };
}
