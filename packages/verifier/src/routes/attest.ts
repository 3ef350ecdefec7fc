/**
 * /v1/attest: push-mode attestation. An agent (Authorization: Agent <token>) asks for a challenge
 * (a fresh single-use nonce that expires, the PCRs to quote, where its IMA list continues), then
 * answers with evidence: the quote, the PCR values, the new list entries, optionally its event log.
 * The verdict pipeline (pipeline/run.ts) runs over the stored state; the verdict, the new state,
 * the agent's state and an event (when the state changed) are stored in one transaction.
 *
 * Malformed evidence CONTENT (quote bytes, list, event log) is a 200 with a failing verdict whose
 * failure code is `evidence-malformed`, naming the field, offset and decoder code: the attempt is
 * in the agent's history. A body that does not match the JSON schema (wrong types, bad base64 or
 * hex) is a 400 V_VALIDATION before any state is touched. A nonce that is unknown, used, expired or
 * another agent's is refused (409/403) and changes nothing but the nonce.
 */
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import type { ReferenceSetCache } from '../refs-store.ts';
import {
  consumeNonce,
  EvidenceBody,
  evidenceFromBody,
  freshNonce,
  storeAttestation,
} from '../attest-store.ts';
import { ErrorBody, VerdictBody } from './schemas.ts';

export interface AttestOptions {
  readonly db: Kysely<Database>;
  readonly refs: ReferenceSetCache;
  /** verdicts kept per agent (older ones are deleted) */
  readonly retention: number;
  readonly nonceTtlSeconds: number;
  /** unexpired challenges an agent may hold at once (more is 429) */
  readonly maxOutstandingNonces: number;
}

export const attestRoutes: FastifyPluginAsyncTypebox<AttestOptions> = async (app, opts) => {
  const { db } = opts;

  app.post(
    '/v1/attest/challenge',
    {
      config: { agent: true },
      schema: {
        tags: ['attest'],
        security: [{ agent: [] }],
        body: Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]),
        response: {
          200: Type.Object({
            nonce: Type.String(),
            pcrs: Type.String(),
            imaOffset: Type.Object({ entries: Type.Integer(), bytes: Type.Integer() }),
            expiresAt: Type.String(),
          }),
          409: ErrorBody,
          429: ErrorBody,
        },
      },
    },
    async (req) => {
      const agentId = req.agentId!;
      const now = new Date();
      return db.transaction().execute(async (tx) => {
        // Four round trips in all (BEGIN, this, the insert, COMMIT): a challenge is half of every
        // attestation. The row lock serialises this agent's challenges, so the bound below holds.
        const agent = await tx
          .selectFrom('agents')
          .leftJoin('attest_state', 'attest_state.agent_id', 'agents.id')
          .select([
            'agents.state',
            'agents.require_pcrs',
            'agents.ak_public',
            'attest_state.next_entries',
            'attest_state.next_bytes',
          ])
          .where('agents.id', '=', agentId)
          .forUpdate('agents')
          .executeTakeFirstOrThrow();
        if (agent.ak_public === null)
          throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: agentId });
        if (agent.state === 'paused')
          throw new VerifierError('V_AGENT_PAUSED', undefined, { agent: agentId });
        const nonce = freshNonce();
        const expiresAt = new Date(now.getTime() + opts.nonceTtlSeconds * 1000);
        // expired challenges go; the new one is stored only while fewer than the bound are live
        const issued = await sql<{ nonce: string }>`
          WITH gone AS (DELETE FROM nonces WHERE agent_id = ${agentId} AND expires_at <= ${now})
          INSERT INTO nonces (nonce, agent_id, expires_at)
          SELECT ${nonce}, ${agentId}, ${expiresAt}
          WHERE (SELECT count(*) FROM nonces WHERE agent_id = ${agentId} AND expires_at > ${now})
            < ${opts.maxOutstandingNonces}
          RETURNING nonce`.execute(tx);
        if (issued.rows.length === 0)
          throw new VerifierError(
            'V_RATE_LIMITED',
            `agent '${agentId}' holds ${opts.maxOutstandingNonces} unanswered challenges (the most allowed)`,
            { agent: agentId },
          );
        return {
          nonce,
          pcrs: agent.require_pcrs,
          imaOffset: { entries: agent.next_entries ?? 0, bytes: Number(agent.next_bytes ?? 0) },
          expiresAt: expiresAt.toISOString(),
        };
      });
    },
  );

  app.post(
    '/v1/attest/evidence',
    {
      config: { agent: true },
      schema: {
        tags: ['attest'],
        security: [{ agent: [] }],
        body: EvidenceBody,
        response: { 200: Type.Object({ verdict: VerdictBody }), 403: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const agentId = req.agentId!;
      const b = req.body;
      const nonceHex = b.nonce.toLowerCase();
      // single use: the nonce is gone whatever the verdict
      // a session nonce (routes/agent-session.ts) never answers for evidence
      await consumeNonce(db, nonceHex, 'attest', agentId);
      const verdict = await storeAttestation(db, opts, agentId, evidenceFromBody(b));
      return { verdict };
    },
  );
};
