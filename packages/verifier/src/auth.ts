/**
 * Operator tokens with roles. A token is 32 random bytes shown once (base64url); only its SHA-256
 * is stored. Roles are ordered: `read` sees everything and changes nothing, `operate` may add,
 * update, pause and delete agents and upload reference sets, `admin` may also manage tokens.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from './db/schema.ts';
import { VerifierError } from './errors.ts';

export const ROLES = ['read', 'operate', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** True when `have` allows what `need` requires. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

/** Create a token with `role`; returns the token text (the only time it exists in clear). */
export async function createToken(db: Kysely<Database>, role: Role): Promise<string> {
  const token = `imk_${randomBytes(32).toString('base64url')}`;
  await db
    .insertInto('tokens')
    .values({ id: randomUUID(), token_sha256: sha256(token), role })
    .execute();
  return token;
}

/** The role of the bearer token in an `Authorization` header value, or a 401. */
export async function roleOfBearer(db: Kysely<Database>, header: string | undefined): Promise<Role> {
  const m = header === undefined ? null : /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header);
  if (m === null) throw new VerifierError('V_UNAUTHENTICATED');
  const row = await db
    .selectFrom('tokens')
    .select('role')
    .where('token_sha256', '=', sha256(m[1]!))
    .executeTakeFirst();
  if (row === undefined) throw new VerifierError('V_UNAUTHENTICATED', 'the bearer token is not known');
  return row.role as Role;
}
