/**
 * Agent tokens: issued by the registrar when an agent proves its AK sits beside its EK
 * (activation), sent as `Authorization: Agent <token>`, bound to that one agent. Like operator
 * tokens, a token is 32 random bytes shown once; only its SHA-256 is stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from './db/schema.ts';
import { VerifierError } from './errors.ts';

const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

/**
 * Issue a token for `agentId` (inside the caller's transaction); earlier tokens of the agent are
 * revoked, so a re-enrolled agent's old credentials stop working.
 * @returns the token text (the only time it exists in clear)
 */
export async function issueAgentToken(
  tx: Kysely<Database> | Transaction<Database>,
  agentId: string,
): Promise<string> {
  const token = `ima_${randomBytes(32).toString('base64url')}`;
  await tx.deleteFrom('agent_tokens').where('agent_id', '=', agentId).execute();
  await tx
    .insertInto('agent_tokens')
    .values({ token_sha256: sha256(token), agent_id: agentId })
    .execute();
  return token;
}

/** The agent an `Authorization: Agent <token>` header belongs to, or a 401. */
export async function agentOfToken(db: Kysely<Database>, header: string | undefined): Promise<string> {
  const m = header === undefined ? null : /^Agent ([A-Za-z0-9_-]{1,200})$/.exec(header);
  if (m === null)
    throw new VerifierError('V_UNAUTHENTICATED', 'an agent token is required (Authorization: Agent <token>)');
  const row = await db
    .selectFrom('agent_tokens')
    .select('agent_id')
    .where('token_sha256', '=', sha256(m[1]!))
    .executeTakeFirst();
  if (row === undefined) throw new VerifierError('V_UNAUTHENTICATED', 'the agent token is not known');
  return row.agent_id;
}
