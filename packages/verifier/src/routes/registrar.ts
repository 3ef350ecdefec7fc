/**
 * /v1/registrar: enrolment by credential activation (TPM 2.0 Part 1 §24). The agent sends its EK
 * and AK public areas; the verifier wraps a fresh 32-byte secret with MakeCredential for the AK's
 * Name under the EK (core makeCredential), which only the TPM holding that EK releases, and only
 * to an object with that Name loaded beside it. The agent activates and sends the secret back;
 * when it matches (constant-time; single use; 5 minutes) the EK and AK are stored and an agent
 * session token is issued (its hash stored, bound to the agent id, expiring; renewed by an AK
 * proof, routes/agent-session.ts).
 *
 * Enrolment of an id no operator added is 404 unless the verifier was built with
 * `autoEnrol: true`, which creates the agent with the default PCRs and no reference set. An agent
 * enrolled with one EK cannot be re-enrolled with another (409): otherwise anyone with a TPM could
 * take over its identity; delete and re-add the agent to move it to new hardware.
 *
 * Does NOT establish: that the EK belongs to a genuine TPM (the EK certificate is stored but its
 * chain is not verified here), only that the AK is resident beside the EK presented.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { decodeTpm2bPublic, isRestrictedSigningKey, makeCredential, tpmPublicName } from 'imakit/core';
import { issueAgentToken } from '../agent-auth.ts';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { recordEvent } from './agents.ts';
import { AgentId, AgentSession, ErrorBody } from './schemas.ts';

const Base64B = { pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const;

const SECRET_BYTES = 32;
const CHALLENGE_TTL_MS = 5 * 60 * 1000;
const DEFAULT_REQUIRE = 'sha256:0-7,10';
const DEFAULT_INTERVAL_S = 60;

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
const same = (a: Uint8Array | null, b: Uint8Array): boolean =>
  a !== null && a.length === b.length && timingSafeEqual(a, b);

export const registrarRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  autoEnrol: boolean;
  /** seconds the session issued at activation lives */
  sessionSeconds: number;
}> = async (app, { db, autoEnrol, sessionSeconds }) => {
  app.post(
    '/v1/registrar/enrol',
    {
      schema: {
        tags: ['registrar'],
        security: [],
        body: Type.Object(
          {
            id: AgentId,
            ekPublic: Type.String({ ...Base64B, maxLength: 4096 }),
            ekCertificate: Type.Optional(Type.String({ ...Base64B, maxLength: 16384 })),
            akPublic: Type.String({ ...Base64B, maxLength: 4096 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            credential: Type.Object({ idObject: Type.String(), encryptedSecret: Type.String() }),
          }),
          400: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.body;
      const ekBytes = b64(req.body.ekPublic);
      const akBytes = b64(req.body.akPublic);
      // malformed public areas are CodecErrors: 400 naming the field (app.ts)
      const ek = decodeTpm2bPublic(ekBytes);
      const ak = decodeTpm2bPublic(akBytes);
      if (!isRestrictedSigningKey(ak))
        throw new VerifierError(
          'V_AK_UNSUITABLE',
          'the AK must be a restricted signing key (restricted|sign, not decrypt)',
          {
            field: 'akPublic',
          },
        );
      const secret = randomBytes(SECRET_BYTES);
      const cred = makeCredential(ek, tpmPublicName(ak), new Uint8Array(secret));
      await db.transaction().execute(async (tx) => {
        const agent = await tx
          .selectFrom('agents')
          .select(['id', 'ek_public'])
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirst();
        if (agent === undefined) {
          if (!autoEnrol)
            throw new VerifierError(
              'V_NOT_FOUND',
              `no agent '${id}': an operator adds it first (POST /v1/agents)`,
              {
                agent: id,
              },
            );
          await tx
            .insertInto('agents')
            .values({
              id,
              name: id,
              state: 'unenrolled',
              state_reason: JSON.stringify({ why: 'added by enrolment (autoEnrol): awaiting activation' }),
              require_pcrs: DEFAULT_REQUIRE,
              interval_s: DEFAULT_INTERVAL_S,
            })
            .execute();
          await recordEvent(tx, id, 'none', 'unenrolled', { why: 'added by enrolment (autoEnrol)' });
        } else if (agent.ek_public !== null && !same(new Uint8Array(agent.ek_public), ekBytes))
          throw new VerifierError('V_AGENT_ENROLLED', `agent '${id}' is enrolled with another EK`, {
            agent: id,
            field: 'ekPublic',
          });
        const row = {
          agent_id: id,
          secret_sha256: sha256(secret),
          ek_public: ekBytes,
          ek_certificate: req.body.ekCertificate === undefined ? null : b64(req.body.ekCertificate),
          ak_public: akBytes,
          expires_at: new Date(Date.now() + CHALLENGE_TTL_MS),
        };
        await tx
          .insertInto('registrar_challenges')
          .values(row)
          .onConflict((oc) => oc.column('agent_id').doUpdateSet(row))
          .execute();
      });
      return reply.status(201).send({
        id,
        credential: {
          idObject: Buffer.from(cred.credentialBlob).toString('base64'),
          encryptedSecret: Buffer.from(cred.secret).toString('base64'),
        },
      });
    },
  );

  app.post(
    '/v1/registrar/activate',
    {
      schema: {
        tags: ['registrar'],
        security: [],
        body: Type.Object(
          { id: AgentId, secret: Type.String({ ...Base64B, maxLength: 256 }) },
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
      const secret = b64(req.body.secret);
      // single use: the challenge is gone whether or not the secret matches
      const ch = await db
        .deleteFrom('registrar_challenges')
        .where('agent_id', '=', id)
        .returningAll()
        .executeTakeFirst();
      if (ch === undefined)
        throw new VerifierError('V_NOT_FOUND', `no enrolment of '${id}' awaits activation`, { agent: id });
      if (new Date(ch.expires_at).getTime() <= Date.now())
        throw new VerifierError('V_CHALLENGE_EXPIRED', undefined, { agent: id });
      if (!same(new Uint8Array(ch.secret_sha256), sha256(secret)))
        throw new VerifierError('V_ACTIVATION_FAILED', undefined, { agent: id, field: 'secret' });
      const session = await db.transaction().execute(async (tx) => {
        const cur = await tx
          .selectFrom('agents')
          .select(['state'])
          .where('id', '=', id)
          .forUpdate()
          .executeTakeFirst();
        if (cur === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
        const reason = { why: 'enrolled: awaiting the first attestation' };
        const to = cur.state === 'paused' ? 'paused' : 'unenrolled';
        await tx
          .updateTable('agents')
          .set({
            ek_public: ch.ek_public,
            ek_certificate: ch.ek_certificate,
            ak_public: ch.ak_public,
            state: to,
            ...(to !== 'paused' && { state_reason: JSON.stringify(reason) }),
            updated_at: new Date(),
          })
          .where('id', '=', id)
          .execute();
        // a new AK: its clock and the running list state start over
        await tx.deleteFrom('attest_state').where('agent_id', '=', id).execute();
        await tx.deleteFrom('nonces').where('agent_id', '=', id).execute();
        await recordEvent(tx, id, cur.state, to, reason);
        return issueAgentToken(tx, id, sessionSeconds);
      });
      return { id, agentToken: session.token, expiresAt: session.expiresAt.toISOString() };
    },
  );
};
