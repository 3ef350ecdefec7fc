/** /v1/events: state changes with their reasons, newest first, and acknowledging one. */
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { AgentId, ErrorBody } from './schemas.ts';

const Event = Type.Object({
  id: Type.Integer(),
  agentId: Type.String(),
  at: Type.String(),
  from: Type.String(),
  to: Type.String(),
  reason: Type.Unknown(),
  acknowledged: Type.Boolean(),
});

export const eventRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  app.get(
    '/v1/events',
    {
      config: { role: 'read' },
      schema: {
        tags: ['events'],
        querystring: Type.Object(
          {
            agent: Type.Optional(AgentId),
            before: Type.Optional(Type.Integer({ minimum: 1 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ events: Type.Array(Event) }) },
      },
    },
    async (req) => {
      let q = db.selectFrom('events').selectAll();
      if (req.query.agent !== undefined) q = q.where('agent_id', '=', req.query.agent);
      if (req.query.before !== undefined) q = q.where('id', '<', req.query.before);
      const rows = await q
        .orderBy('id', 'desc')
        .limit(req.query.limit ?? 100)
        .execute();
      return {
        events: rows.map((r) => ({
          id: Number(r.id),
          agentId: r.agent_id,
          at: new Date(r.at).toISOString(),
          from: r.from_state,
          to: r.to_state,
          reason: r.reason,
          acknowledged: r.acknowledged,
        })),
      };
    },
  );

  app.post(
    '/v1/events/:id/ack',
    {
      config: { role: 'operate' },
      schema: {
        tags: ['events'],
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 204: Type.Null(), 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const r = await db
        .updateTable('events')
        .set({ acknowledged: true })
        .where('id', '=', req.params.id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0)
        throw new VerifierError('V_NOT_FOUND', `no event ${req.params.id}`, { event: req.params.id });
      return reply.status(204).send(null);
    },
  );
};
