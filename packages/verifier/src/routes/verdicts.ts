/** /v1/agents/:id/verdicts: an agent's attestation history, newest first (bounded retention). */
import type { Kysely } from 'kysely';
import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { AgentId, ErrorBody, VerdictBody } from './schemas.ts';

export const verdictRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  app.get(
    '/v1/agents/:id/verdicts',
    {
      config: { role: 'read' },
      schema: {
        tags: ['agents'],
        params: Type.Object({ id: AgentId }),
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            before: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            verdicts: Type.Array(
              Type.Object({
                id: Type.Integer(),
                at: Type.String(),
                status: Type.String(),
                verdict: VerdictBody,
              }),
            ),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const agent = await db
        .selectFrom('agents')
        .select('id')
        .where('id', '=', req.params.id)
        .executeTakeFirst();
      if (agent === undefined)
        throw new VerifierError('V_NOT_FOUND', `no agent '${req.params.id}'`, { agent: req.params.id });
      let q = db.selectFrom('verdicts').selectAll().where('agent_id', '=', req.params.id);
      if (req.query.before !== undefined) q = q.where('id', '<', req.query.before);
      const rows = await q
        .orderBy('id', 'desc')
        .limit(req.query.limit ?? 50)
        .execute();
      return {
        verdicts: rows.map((r) => ({
          id: Number(r.id),
          at: new Date(r.at).toISOString(),
          status: r.status,
          verdict: r.verdict as Static<typeof VerdictBody>,
        })),
      };
    },
  );
};
