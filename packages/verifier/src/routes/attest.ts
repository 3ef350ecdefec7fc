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
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PcrValues } from 'imakit/core';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import type { ReferenceSetCache } from '../refs-store.ts';
import { runPipeline } from '../pipeline/run.ts';
import { EMPTY_STATE, stateFromRow, stateToRow } from '../pipeline/state-store.ts';
import type { Evidence } from '../pipeline/types.ts';
import { recordEvent } from './agents.ts';
import { Base64, ErrorBody, Hex, VerdictBody } from './schemas.ts';

export interface AttestOptions {
  readonly db: Kysely<Database>;
  readonly refs: ReferenceSetCache;
  /** verdicts kept per agent (older ones are deleted) */
  readonly retention: number;
  readonly nonceTtlSeconds: number;
  /** unexpired challenges an agent may hold at once (more is 429) */
  readonly maxOutstandingNonces: number;
}

const NONCE_BYTES = 32;
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

export const attestRoutes: FastifyPluginAsyncTypebox<AttestOptions> = async (app, opts) => {
  const { db } = opts;

  app.post(
    '/v1/attest/challenge',
    {
      config: { agent: true },
      schema: {
        tags: ['attest'],
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
        const agent = await tx
          .selectFrom('agents')
          .select(['state', 'require_pcrs', 'ak_public'])
          .where('id', '=', agentId)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (agent.ak_public === null)
          throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: agentId });
        if (agent.state === 'paused')
          throw new VerifierError('V_AGENT_PAUSED', undefined, { agent: agentId });
        await tx
          .deleteFrom('nonces')
          .where('agent_id', '=', agentId)
          .where('expires_at', '<=', now)
          .execute();
        const { n } = await tx
          .selectFrom('nonces')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('agent_id', '=', agentId)
          .executeTakeFirstOrThrow();
        if (Number(n) >= opts.maxOutstandingNonces)
          throw new VerifierError(
            'V_RATE_LIMITED',
            `agent '${agentId}' holds ${n} unanswered challenges (at most ${opts.maxOutstandingNonces})`,
            { agent: agentId },
          );
        const nonce = randomBytes(NONCE_BYTES).toString('hex');
        const expiresAt = new Date(now.getTime() + opts.nonceTtlSeconds * 1000);
        await tx.insertInto('nonces').values({ nonce, agent_id: agentId, expires_at: expiresAt }).execute();
        const st = await tx
          .selectFrom('attest_state')
          .select(['next_entries', 'next_bytes'])
          .where('agent_id', '=', agentId)
          .executeTakeFirst();
        return {
          nonce,
          pcrs: agent.require_pcrs,
          imaOffset: { entries: st?.next_entries ?? 0, bytes: Number(st?.next_bytes ?? 0) },
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
        body: Type.Object(
          {
            nonce: Type.String({ pattern: '^([0-9a-fA-F]{2}){20,32}$' }),
            quote: Type.Object({ attest: Base64, signature: Base64 }, { additionalProperties: false }),
            pcrs: Type.Record(
              Type.String({ pattern: '^(sha1|sha256|sha384|sha512|sm3_256)$' }),
              Type.Record(Type.String({ pattern: '^[0-9]{1,2}$' }), Hex),
            ),
            ima: Type.Optional(
              Type.Object(
                {
                  offsetBytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
                  entries: Base64,
                },
                { additionalProperties: false },
              ),
            ),
            eventLog: Type.Optional(Base64),
            bootCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ verdict: VerdictBody }), 403: ErrorBody, 409: ErrorBody },
      },
    },
    async (req) => {
      const agentId = req.agentId!;
      const b = req.body;
      const nonceHex = b.nonce.toLowerCase();
      // single use: the nonce is gone whatever the verdict
      const used = await db
        .deleteFrom('nonces')
        .where('nonce', '=', nonceHex)
        .returning(['agent_id', 'expires_at'])
        .executeTakeFirst();
      if (used === undefined) throw new VerifierError('V_NONCE_UNKNOWN', undefined, { field: 'nonce' });
      if (used.agent_id !== agentId)
        throw new VerifierError('V_NONCE_OTHER_AGENT', `the nonce was not issued to agent '${agentId}'`, {
          field: 'nonce',
        });
      if (new Date(used.expires_at).getTime() <= Date.now())
        throw new VerifierError('V_NONCE_EXPIRED', undefined, { field: 'nonce' });
      const pcrs: PcrValues = new Map(
        Object.entries(b.pcrs).map(([bank, m]) => [
          bank,
          new Map(Object.entries(m).map(([i, hex]) => [Number(i), new Uint8Array(Buffer.from(hex, 'hex'))])),
        ]),
      );
      const evidence: Evidence = {
        nonce: new Uint8Array(Buffer.from(nonceHex, 'hex')),
        attest: b64(b.quote.attest),
        signature: b64(b.quote.signature),
        pcrs,
        ...(b.ima !== undefined && { ima: { offsetBytes: b.ima.offsetBytes, bytes: b64(b.ima.entries) } }),
        ...(b.eventLog !== undefined && { eventLog: b64(b.eventLog) }),
        ...(b.bootCount !== undefined && { bootCount: b.bootCount }),
      };
      const verdict = await db.transaction().execute(async (tx) => {
        const agent = await tx
          .selectFrom('agents')
          .selectAll()
          .where('id', '=', agentId)
          .forUpdate()
          .executeTakeFirstOrThrow();
        if (agent.ak_public === null)
          throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: agentId });
        if (agent.state === 'paused')
          throw new VerifierError('V_AGENT_PAUSED', undefined, { agent: agentId });
        const row = await tx
          .selectFrom('attest_state')
          .selectAll()
          .where('agent_id', '=', agentId)
          .executeTakeFirst();
        const stored = row === undefined ? EMPTY_STATE : stateFromRow(row);
        const set = agent.reference_set === null ? undefined : await opts.refs.get(tx, agent.reference_set);
        const now = new Date();
        const { verdict: v, state } = runPipeline(
          { id: agentId, akPublic: new Uint8Array(agent.ak_public), requirePcrs: agent.require_pcrs },
          stored,
          evidence,
          set,
          now,
        );
        const values = stateToRow(agentId, state);
        await tx
          .insertInto('attest_state')
          .values(values)
          .onConflict((oc) => oc.column('agent_id').doUpdateSet(values))
          .execute();
        const ins = await tx
          .insertInto('verdicts')
          .values({ agent_id: agentId, at: now, status: v.status, verdict: JSON.stringify(v) })
          .returning('id')
          .executeTakeFirstOrThrow();
        // bounded history: keep the newest `retention` verdicts of this agent
        await tx
          .deleteFrom('verdicts')
          .where('agent_id', '=', agentId)
          .where(
            'id',
            'not in',
            tx
              .selectFrom('verdicts')
              .select('id')
              .where('agent_id', '=', agentId)
              .orderBy('id', 'desc')
              .limit(opts.retention),
          )
          .execute();
        const to = v.status === 'pass' ? 'passing' : 'failing';
        const reason =
          v.failure === undefined
            ? { why: 'attestation passed', verdict: Number(ins.id) }
            : {
                why: `${v.failure.step} failed: ${v.failure.code}`,
                verdict: Number(ins.id),
                failure: v.failure,
              };
        await tx
          .updateTable('agents')
          .set({ state: to, state_reason: JSON.stringify(reason), last_attested_at: now, updated_at: now })
          .where('id', '=', agentId)
          .execute();
        if (agent.state !== to) await recordEvent(tx, agentId, agent.state, to, reason);
        return v;
      });
      return { verdict };
    },
  );
};
