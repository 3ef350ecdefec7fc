/**
 * Agent sessions bound to the AK: a session token is issued when an agent proves it holds the
 * AK enrolled for its id: at activation (the TPM released the credential only to that AK beside
 * the EK), and later by a TPM2_Quote over a fresh single-use nonce signed by that AK
 * (routes/agent-session.ts). It is sent as `Authorization: Agent <token>`, bound to that one
 * agent, and expires (V_SESSION_EXPIRED, 401): a stolen token is worth one session, and only a
 * process with the TPM gets the next. Like operator tokens, a token is 32 random bytes shown
 * once; only its SHA-256 is stored. Tokens from before sessions have no expiry (NULL).
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
  sessionSeconds: number,
): Promise<{ readonly token: string; readonly expiresAt: Date }> {
  const token = `ima_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(Date.now() + sessionSeconds * 1000);
  await tx.deleteFrom('agent_tokens').where('agent_id', '=', agentId).execute();
  await tx
    .insertInto('agent_tokens')
    .values({ token_sha256: sha256(token), agent_id: agentId, expires_at: expiresAt })
    .execute();
  return { token, expiresAt };
}

/** The agent an `Authorization: Agent <token>` header belongs to, or a 401 (none, unknown, expired). */
export async function agentOfToken(db: Kysely<Database>, header: string | undefined): Promise<string> {
  const m = header === undefined ? null : /^Agent ([A-Za-z0-9_-]{1,200})$/.exec(header);
  if (m === null)
    throw new VerifierError('V_UNAUTHENTICATED', 'an agent token is required (Authorization: Agent <token>)');
  const row = await db
    .selectFrom('agent_tokens')
    .select(['agent_id', 'expires_at'])
    .where('token_sha256', '=', sha256(m[1]!))
    .executeTakeFirst();
  if (row === undefined) throw new VerifierError('V_UNAUTHENTICATED', 'the agent token is not known');
  if (row.expires_at !== null && new Date(row.expires_at).getTime() <= Date.now())
    throw new VerifierError(
      'V_SESSION_EXPIRED',
      `the session of agent '${row.agent_id}' expired: prove the AK again (POST /v1/registrar/session)`,
      { agent: row.agent_id },
    );
  return row.agent_id;
}
