/** GET /health: the process answers and whether its database does (503 when it does not). */
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { OpenDatabase } from '../db/open.ts';

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  database: Type.Object({ kind: Type.String(), up: Type.Boolean() }),
});

export const healthRoutes: FastifyPluginAsyncTypebox<{ database: OpenDatabase }> = async (
  app,
  { database },
) => {
  app.get(
    '/health',
    { schema: { tags: ['health'], security: [], response: { 200: Health, 503: Health } } },
    async (_req, reply) => {
      let up = true;
      try {
        await sql`select 1`.execute(database.db);
      } catch {
        up = false;
      }
      return reply
        .status(up ? 200 : 503)
        .send({ status: up ? 'ok' : 'degraded', database: { kind: database.kind, up } });
    },
  );
};
