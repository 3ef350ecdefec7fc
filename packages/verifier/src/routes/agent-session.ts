/**
 * /v1/registrar/session: renew an agent's session by proving possession of its enrolled AK.
 *
 *  1. `POST /v1/registrar/session/challenge {id}` → a fresh nonce (single use, 2 minutes, marked
 *     `session` so it never answers for evidence), and a PCR selection to quote.
 *  2. The agent quotes that selection with the nonce as qualifying data (TPM2_Quote: only the TPM
 *     holding the AK can sign it, and the AK is restricted, so nothing but the TPM can make a
 *     TPMS_ATTEST it signs) and sends `POST /v1/registrar/session {id, nonce, quote, pcrs}`.
 *  3. The quote is verified under the AK enrolled for `id` (core verifyQuote, as the pipeline
 *     does); on success earlier tokens of the agent are revoked and a session token is issued.
 *
 * Failures: unknown agent 404; not enrolled 409; a nonce unknown/used (409), expired (409), issued
 * to another agent (403); a quote that does not verify under this agent's AK — another agent's AK,
 * another nonce, a forged signature — 403 V_AK_PROOF_FAILED naming the reason.
 *
 * Establishes: whoever asked holds a TPM with this agent's AK loaded, now. Does NOT establish
 * anything about the machine's state: that is what attestation is for.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { decodeTpm2bPublic, prepareQuoteAk, verifyQuote } from 'imakit/core';
import { issueAgentToken } from '../agent-auth.ts';
import { consumeNonce, freshNonce, PcrsBody, pcrValuesFromBody } from '../attest-store.ts';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { AgentId, AgentSession, Base64, ErrorBody } from './schemas.ts';

const NONCE_TTL_MS = 2 * 60 * 1000;
/** unanswered session challenges one agent may hold */
const MAX_OUTSTANDING = 4;
/** what the proof quotes: one PCR, the smallest quote every TPM 2.0 makes */
const PROOF_PCRS = 'sha256:0';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

export const agentSessionRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  sessionSeconds: number;
}> = async (app, { db, sessionSeconds }) => {
  app.post(
    '/v1/registrar/session/challenge',
    {
      schema: {
        tags: ['registrar'],
        security: [],
        body: Type.Object({ id: AgentId }, { additionalProperties: false }),
        response: {
          200: Type.Object({ nonce: Type.String(), pcrs: Type.String(), expiresAt: Type.String() }),
          404: ErrorBody,
          409: ErrorBody,
          429: ErrorBody,
        },
      },
    },
    async (req) => {
      const { id } = req.body;
      const now = new Date();
      return db.transaction().execute(async (tx) => {
        const agent = await tx
          .selectFrom('agents')
          .select(['ak_public'])
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirst();
        if (agent === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
        if (agent.ak_public === null) throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: id });
        await tx.deleteFrom('nonces').where('agent_id', '=', id).where('expires_at', '<=', now).execute();
        const { n } = await tx
          .selectFrom('nonces')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('agent_id', '=', id)
          .where('purpose', '=', 'session')
          .executeTakeFirstOrThrow();
        if (Number(n) >= MAX_OUTSTANDING)
          throw new VerifierError(
            'V_RATE_LIMITED',
            `agent '${id}' holds ${n} unanswered session challenges (at most ${MAX_OUTSTANDING})`,
            { agent: id },
          );
        const nonce = freshNonce();
        const expiresAt = new Date(now.getTime() + NONCE_TTL_MS);
        await tx
          .insertInto('nonces')
          .values({ nonce, agent_id: id, expires_at: expiresAt, purpose: 'session' })
          .execute();
        return { nonce, pcrs: PROOF_PCRS, expiresAt: expiresAt.toISOString() };
      });
    },
  );

  app.post(
    '/v1/registrar/session',
    {
      schema: {
        tags: ['registrar'],
        security: [],
        body: Type.Object(
          {
            id: AgentId,
            nonce: Type.String({ pattern: '^([0-9a-fA-F]{2}){20,32}$' }),
            quote: Type.Object(
              {
                attest: Type.String({ ...Base64, maxLength: 4096 }),
                signature: Type.String({ ...Base64, maxLength: 4096 }),
              },
              { additionalProperties: false },
            ),
            pcrs: PcrsBody,
          },
          { additionalProperties: false },
        ),
        response: {
          200: AgentSession,
          403: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
        },
      },
    },
    async (req) => {
      const { id } = req.body;
      const nonceHex = req.body.nonce.toLowerCase();
      // single use: the nonce is gone whether or not the proof holds
      await consumeNonce(db, nonceHex, 'session', id);
      const agent = await db.selectFrom('agents').select('ak_public').where('id', '=', id).executeTakeFirst();
      if (agent === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
      if (agent.ak_public === null) throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: id });
      const v = verifyQuote(prepareQuoteAk(decodeTpm2bPublic(new Uint8Array(agent.ak_public))), {
        attest: b64(req.body.quote.attest),
        signature: b64(req.body.quote.signature),
        nonce: new Uint8Array(Buffer.from(nonceHex, 'hex')),
        pcrs: pcrValuesFromBody(req.body.pcrs),
      });
      if (v.status === 'fail') {
        const first = v.failures[0]!;
        throw new VerifierError(
          'V_AK_PROOF_FAILED',
          `the quote does not prove agent '${id}' holds its enrolled AK: ${first.detail}`,
          { agent: id, reason: first.code, field: 'quote' },
        );
      }
      const session = await db.transaction().execute((tx) => issueAgentToken(tx, id, sessionSeconds));
      return { id, agentToken: session.token, expiresAt: session.expiresAt.toISOString() };
    },
  );
};
