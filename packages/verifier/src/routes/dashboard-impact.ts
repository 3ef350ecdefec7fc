/**
 * POST /v1/dashboard/impact: before a reference set is assigned to a group of agents, what would
 * it conclude on each of them? Each agent's stored list (the prefix its verified quotes covered)
 * is evaluated against the candidate set from its first stored entry; the answer says which agents
 * would pass, which would fail and on which entries, and which have no stored list to judge.
 *
 * Read-only (role `read`): nothing is assigned. The group is named by agent ids, or by the set the
 * agents hold now (`from`), or by a fleet state; at most `limit` agents are evaluated (the answer
 * says when more matched).
 */
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import type { ReferenceSetCache } from '../refs-store.ts';
import { readStoredList } from '../dashboard/evidence-store.ts';
import { evaluateStoredList } from '../dashboard/evaluate-list.ts';
import { AgentId, ErrorBody } from './schemas.ts';

const RefsId = Type.String({ pattern: '^[0-9a-f]{64}$' });
const MAX_LISTED = 10;

export const dashboardImpactRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  refs: ReferenceSetCache;
}> = async (app, { db, refs }) => {
  app.post(
    '/v1/dashboard/impact',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        body: Type.Object(
          {
            referenceSet: RefsId,
            agents: Type.Optional(Type.Array(AgentId, { minItems: 1, maxItems: 1000 })),
            from: Type.Optional(Type.Union([RefsId, Type.Literal('none')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            referenceSet: Type.String(),
            matched: Type.Integer(),
            evaluated: Type.Integer(),
            wouldPass: Type.Integer(),
            wouldFail: Type.Integer(),
            noList: Type.Integer(),
            results: Type.Array(
              Type.Object({
                agentId: Type.String(),
                name: Type.String(),
                state: Type.String(),
                outcome: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('no-list')]),
                entries: Type.Integer(),
                refused: Type.Integer(),
                unusable: Type.Union([
                  Type.Object({ code: Type.String(), message: Type.String() }),
                  Type.Null(),
                ]),
                first: Type.Array(
                  Type.Object({
                    entry: Type.Integer(),
                    offset: Type.Integer(),
                    path: Type.String(),
                    reason: Type.String(),
                    actual: Type.Union([Type.String(), Type.Null()]),
                  }),
                ),
              }),
            ),
            notEstablished: Type.Array(Type.String()),
          }),
          400: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const b = req.body;
      const set = await refs.get(db, b.referenceSet);
      const limit = b.limit ?? 200;
      let q = db.selectFrom('agents').select(['id', 'name', 'state']);
      if (b.agents !== undefined) q = q.where('id', 'in', b.agents);
      if (b.from === 'none') q = q.where('reference_set', 'is', null);
      else if (b.from !== undefined) q = q.where('reference_set', '=', b.from);
      const [rows, count] = await Promise.all([
        q.orderBy('name').orderBy('id').limit(limit).execute(),
        q
          .clearSelect()
          .select(sql<number>`count(*)::int`.as('n'))
          .executeTakeFirstOrThrow(),
      ]);
      const results = [];
      for (const a of rows) {
        const list = await readStoredList(db, a.id);
        if (list === undefined) {
          results.push({
            agentId: a.id,
            name: a.name,
            state: a.state,
            outcome: 'no-list' as const,
            entries: 0,
            refused: 0,
            unusable: null,
            first: [],
          });
          continue;
        }
        const e = evaluateStoredList(set, list, false);
        const refused = e.verdicts.filter((v) => v.status === 'refused');
        results.push({
          agentId: a.id,
          name: a.name,
          state: a.state,
          outcome: e.unusable === undefined && refused.length === 0 ? ('pass' as const) : ('fail' as const),
          entries: e.entries,
          refused: refused.length,
          unusable: e.unusable ?? null,
          first: refused.slice(0, MAX_LISTED).map((v) => ({
            entry: v.index,
            offset: e.offsets.get(v.index) ?? -1,
            path: v.path,
            reason: v.reason,
            actual: v.digest === undefined ? null : `${v.algo}:${v.digest}`,
          })),
        });
      }
      return {
        referenceSet: b.referenceSet,
        matched: Number(count.n),
        evaluated: results.length,
        wouldPass: results.filter((r) => r.outcome === 'pass').length,
        wouldFail: results.filter((r) => r.outcome === 'fail').length,
        noList: results.filter((r) => r.outcome === 'no-list').length,
        results,
        notEstablished: [
          'entries the agents have not sent yet: only the list prefix covered by verified quotes is stored',
          'the boot and quote steps: only the reference evaluation is previewed',
        ],
      };
    },
  );
};
