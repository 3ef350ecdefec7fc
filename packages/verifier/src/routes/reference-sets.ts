/**
 * /v1/reference-sets: upload a reference set (the request body is the set's bytes, in any form
 * `imakit log verify --refs` reads: imakit's compact binary or JSON form, a Keylime runtime policy
 * or a DSSE envelope around one, a flat allowlist), list, show, diff. A set's id is the SHA-256 of
 * its bytes, so uploading the same bytes twice gives the same set; many agents share one set,
 * parsed once per process (refs-store.ts).
 *
 * Signed sets: when the verifier is given reference-set keys (`refsKeys`, `imakit verifier serve
 * --refs-key`), every upload must be signed by one of them — a DSSE envelope (Keylime's signed
 * policy) carries its signatures, any other form comes with a detached signature (`imakit refs
 * sign`'s file, base64, in `?signature=`); unsigned is 422 V_REFS_UNSIGNED, a signature that does
 * not verify 422 V_REFS_SIGNATURE, and nothing is stored. Without keys nothing can be checked: a
 * set is stored unchecked and says so, and a detached signature sent anyway is refused rather
 * than silently ignored.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  diffReferenceSets,
  Keyring,
  checkRefsTrust,
  type PublicKey,
  type ReferenceSet,
  type RefsTrustVerdict,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import {
  detectRefsKind,
  parseReferenceSet,
  refsId,
  type ReferenceSetCache,
  type RefsKind,
} from '../refs-store.ts';
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
  /** what the upload verified: the signature's form and the index of the key it verified under */
  signature: Type.Union([
    Type.Object({
      form: Type.Union([Type.Literal('dsse'), Type.Literal('detached')]),
      key: Type.Integer(),
      keyid: Type.Optional(Type.String()),
    }),
    Type.Null(),
  ]),
  notEstablished: Type.Array(Type.String()),
});

interface SignatureCheck {
  readonly form: 'dsse' | 'detached';
  readonly key: number;
  readonly keyid?: string;
}

const UNCHECKED =
  'that the reference set is genuine: no signature was checked (the verifier has no reference-set keys)';
const CHECKED =
  'that the signing key is right for these agents: every reference-set key is trusted for every set';

/**
 * Check an upload's signature against the verifier's keys (see the file's doc).
 * @returns what verified, or null when there are no keys (the set is stored unchecked)
 * @throws VerifierError V_REFS_UNSIGNED, V_REFS_SIGNATURE
 */
function checkSignature(
  body: Uint8Array,
  kind: RefsKind,
  signature: string | undefined,
  keys: readonly PublicKey[],
): SignatureCheck | null {
  if (keys.length === 0) {
    if (signature !== undefined)
      throw new VerifierError(
        'V_REFS_SIGNATURE',
        'a detached signature was sent but the verifier has no reference-set keys to check it with (imakit verifier serve --refs-key)',
        { field: 'querystring/signature' },
      );
    return null;
  }
  const dsse = kind === 'keylime-dsse';
  if (dsse && signature !== undefined)
    throw new VerifierError(
      'V_BAD_REQUEST',
      'a DSSE envelope carries its own signatures: send no ?signature=',
      {
        field: 'querystring/signature',
      },
    );
  const field = dsse ? 'body/signatures' : 'querystring/signature';
  let t: RefsTrustVerdict;
  try {
    const detached =
      signature === undefined ? undefined : { bytes: new Uint8Array(Buffer.from(signature, 'base64')) };
    t = checkRefsTrust(body, kind, keys, detached);
  } catch (e) {
    if (isImakitError(e, 'E_REFS_UNSIGNED')) throw new VerifierError('V_REFS_UNSIGNED', e.detail, { field });
    if (isImakitError(e, 'E_REFS_SIGNATURE'))
      throw new VerifierError('V_REFS_SIGNATURE', e.detail, { field });
    throw e;
  }
  if (t.form === 'dsse') {
    const hit = t.verdict.checked.find((c) => c.key >= 0)!;
    return { form: 'dsse', key: hit.key, ...(hit.keyid !== undefined && { keyid: hit.keyid }) };
  }
  // the key the verdict verified under is the keyring's match for its key id: found, not verified again
  const matched = new Keyring(keys).find(Number.parseInt(t.verdict.keyid, 16));
  return {
    form: 'detached',
    key: matched === undefined ? -1 : keys.indexOf(matched),
    keyid: t.verdict.keyid,
  };
}

function summary(
  id: string,
  name: string,
  body: Uint8Array,
  set: ReferenceSet,
  createdAt: Date | string,
  signature: unknown,
) {
  const sig = (signature ?? null) as SignatureCheck | null;
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
    signature: sig,
    notEstablished: [sig === null ? UNCHECKED : CHECKED],
  };
}

export const referenceSetRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  refs: ReferenceSetCache;
  /** keys every uploaded set must be signed by; none: sets are stored unchecked */
  refsKeys: readonly PublicKey[];
}> = async (app, { db, refs, refsKeys }) => {
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
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            // a detached signature (imakit refs sign), base64: at most RSA-8192's and a header
            signature: Type.Optional(
              Type.String({
                minLength: 4,
                maxLength: 2048,
                pattern: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Summary, 201: Summary, 400: ErrorBody, 422: ErrorBody },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (!(body instanceof Uint8Array) || body.length === 0)
        throw new VerifierError('V_BAD_REQUEST', 'the body must be the reference set’s bytes', {
          field: 'body',
        });
      const id = refsId(body);
      const { kind, set } = parseReferenceSet(body, req.query.name ?? `upload ${id.slice(0, 12)}`);
      const name = req.query.name ?? set.meta.generator ?? `reference set ${id.slice(0, 12)}`;
      // checked before anything is stored: a refused upload leaves no row
      const signature = checkSignature(body, kind, req.query.signature, refsKeys);
      const inserted = await db
        .insertInto('reference_sets')
        .values({ id, name, body, signature: signature === null ? null : JSON.stringify(signature) })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('created_at')
        .executeTakeFirst();
      refs.remember(id, set);
      if (inserted === undefined) {
        // the same bytes again: a signature verified now is recorded on the stored set
        if (signature !== null)
          await db
            .updateTable('reference_sets')
            .set({ signature: JSON.stringify(signature) })
            .where('id', '=', id)
            .execute();
        const row = await load(id);
        return reply
          .status(200)
          .send(summary(id, row.name, body, set, row.created_at, signature ?? row.signature));
      }
      return reply.status(201).send(summary(id, name, body, set, inserted.created_at, signature));
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
      return summary(row.id, row.name, row.body, await refs.get(db, row.id), row.created_at, row.signature);
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
