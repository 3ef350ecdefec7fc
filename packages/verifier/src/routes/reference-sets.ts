/**
 * /v1/reference-sets: upload a reference set (the request body is the set's bytes, in any form
 * `imakit log verify --refs` reads: imakit's compact binary or JSON form, a Keylime runtime policy
 * or a DSSE envelope around one, a flat allowlist), list, show, diff. A set's id is the SHA-256 of
 * its bytes, so uploading the same bytes twice gives the same set; many agents share one set,
 * parsed once per process (refs-store.ts).
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { diffReferenceSets, type ReferenceSet } from 'imakit/core';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { detectRefsKind, parseReferenceSet, refsId, type ReferenceSetCache } from '../refs-store.ts';
import { ErrorBody } from './schemas.ts';

const RefsId = Type.String({ pattern: '^[0-9a-f]{64}$' });

const Summary = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.String(),
  bytes: Type.Integer(),
  paths: Type.Integer(),
  keys: Type.Integer(),
  excludes: Type.Integer(),
  hashAlgo: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  notEstablished: Type.Array(Type.String()),
});

const NOT_ESTABLISHED = Object.freeze([
  'that the reference set is genuine: a signature on it (DSSE) is not verified by the verifier',
]);

function summary(id: string, name: string, body: Uint8Array, set: ReferenceSet, createdAt: Date | string) {
  return {
    id,
    name,
    kind: detectRefsKind(body),
    bytes: body.length,
    paths: set.digests.size,
    keys: set.keys.length,
    excludes: set.excludes.length,
    hashAlgo: set.hashAlgo ?? null,
    createdAt: new Date(createdAt).toISOString(),
    notEstablished: [...NOT_ESTABLISHED],
  };
}

export const referenceSetRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  refs: ReferenceSetCache;
}> = async (app, { db, refs }) => {
  // the body is the set's bytes, whatever its content type (hashed exactly as sent)
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const load = async (id: string) => {
    const row = await db.selectFrom('reference_sets').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined)
      throw new VerifierError('V_NOT_FOUND', `no reference set '${id}'`, { referenceSet: id });
    return row;
  };

  app.post(
    '/v1/reference-sets',
    {
      config: { role: 'operate' },
      schema: {
        tags: ['reference-sets'],
        querystring: Type.Object(
          { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Summary, 201: Summary, 400: ErrorBody },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (!(body instanceof Uint8Array) || body.length === 0)
        throw new VerifierError('V_BAD_REQUEST', 'the body must be the reference set’s bytes', {
          field: 'body',
        });
      const id = refsId(body);
      const { set } = parseReferenceSet(body, req.query.name ?? `upload ${id.slice(0, 12)}`);
      const name = req.query.name ?? set.meta.generator ?? `reference set ${id.slice(0, 12)}`;
      const inserted = await db
        .insertInto('reference_sets')
        .values({ id, name, body })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('created_at')
        .executeTakeFirst();
      refs.remember(id, set);
      if (inserted === undefined) {
        const row = await load(id);
        return reply.status(200).send(summary(id, row.name, body, set, row.created_at));
      }
      return reply.status(201).send(summary(id, name, body, set, inserted.created_at));
    },
  );

  app.get(
    '/v1/reference-sets',
    {
      config: { role: 'read' },
      schema: {
        tags: ['reference-sets'],
        response: {
          200: Type.Object({
            referenceSets: Type.Array(
              Type.Object({
                id: Type.String(),
                name: Type.String(),
                bytes: Type.Integer(),
                agents: Type.Integer(),
                createdAt: Type.String(),
              }),
            ),
          }),
        },
      },
    },
    async () => {
      const rows = await db
        .selectFrom('reference_sets as r')
        .select([
          'r.id',
          'r.name',
          'r.created_at',
          sql<number>`octet_length(r.body)`.as('bytes'),
          sql<number>`(select count(*)::int from agents a where a.reference_set = r.id)`.as('agents'),
        ])
        .orderBy('r.created_at', 'desc')
        .orderBy('r.id')
        .execute();
      return {
        referenceSets: rows.map((r) => ({
          id: r.id,
          name: r.name,
          bytes: Number(r.bytes),
          agents: Number(r.agents),
          createdAt: new Date(r.created_at).toISOString(),
        })),
      };
    },
  );

  app.get(
    '/v1/reference-sets/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['reference-sets'],
        params: Type.Object({ id: RefsId }),
        response: { 200: Summary, 404: ErrorBody },
      },
    },
    async (req) => {
      const row = await load(req.params.id);
      return summary(row.id, row.name, row.body, await refs.get(db, row.id), row.created_at);
    },
  );

  app.get(
    '/v1/reference-sets/:a/diff/:b',
    {
      config: { role: 'read' },
      schema: {
        tags: ['reference-sets'],
        params: Type.Object({ a: RefsId, b: RefsId }),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            added: Type.Integer(),
            removed: Type.Integer(),
            changed: Type.Integer(),
            unchanged: Type.Integer(),
            packages: Type.Array(Type.Unknown()),
            other: Type.Array(Type.String()),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const [a, b] = await Promise.all([refs.get(db, req.params.a), refs.get(db, req.params.b)]);
      const d = diffReferenceSets(a, b);
      return {
        from: req.params.a,
        to: req.params.b,
        added: d.added,
        removed: d.removed,
        changed: d.changed,
        unchanged: d.unchanged,
        packages: [...d.packages],
        other: [...d.other],
      };
    },
  );
};
