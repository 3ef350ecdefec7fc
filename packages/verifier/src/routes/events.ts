/** /v1/events: state changes with their reasons, newest first, and acknowledging one. */
import type { Kysely } from 'kysely';
import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { AgentId, ErrorBody } from './schemas.ts';

/** An event as the API shows it (here and in the dashboard's views). */
export const EventBody = Type.Object({
  id: Type.Integer(),
  agentId: Type.String(),
  at: Type.String(),
  from: Type.String(),
  to: Type.String(),
  reason: Type.Unknown(),
  acknowledged: Type.Boolean(),
});
type EventBodyT = Static<typeof EventBody>;

/** An `events` row as read (the dashboard's raw-SQL reads give the same columns). */
export interface EventRow {
  id: number | string;
  agent_id: string;
  at: Date | string;
  from_state: string;
  to_state: string;
  reason: unknown;
  acknowledged: boolean;
}

/** The state change a row records, without its acknowledgement: what the event stream sends. */
export function stateChange(r: EventRow): Omit<EventBodyT, 'acknowledged'> {
  return {
    id: Number(r.id),
    agentId: r.agent_id,
    at: new Date(r.at).toISOString(),
    from: r.from_state,
    to: r.to_state,
    reason: r.reason,
  };
}

/** An event row as the API shows it. */
export function eventView(r: EventRow): EventBodyT {
  return { ...stateChange(r), acknowledged: r.acknowledged };
}

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
        response: { 200: Type.Object({ events: Type.Array(EventBody) }) },
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
      return { events: rows.map(eventView) };
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
