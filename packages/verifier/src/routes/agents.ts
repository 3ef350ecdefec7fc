/**
 * /v1/agents: add an agent with the PCRs it must quote and the reference set it is held to, list
 * (server-side filter, sort and paging: a fleet of 10,000 pages in one query), show, update
 * references in place without resetting attestation state, pause/resume, delete. Every state
 * change is recorded as an event with its reason.
 */
import { createHash, randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AgentsTable, Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import { bootReferenceForm, decodeBootReference, type BootReferenceForm } from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import { checkKeylimeAgent } from '../keylime/agent-add.ts';
import {
  AGENT_STATES,
  Agent,
  AgentId,
  BootReferenceBody,
  ErrorBody,
  KeylimeAgentAddress,
  PcrSelectionText,
  PullUrl,
  type AgentT,
} from './schemas.ts';

const DEFAULT_REQUIRE = 'sha256:0-7,10';
/** Keylime agents quote one bank; IMA's PCR 10 by default (the agent adds its data PCR 16). */
const KEYLIME_REQUIRE = 'sha256:10';
const DEFAULT_INTERVAL_S = 60;

const toIso = (d: Date | string | null): string | null =>
  d === null ? null : (d instanceof Date ? d : new Date(d)).toISOString();

/** The API shape of a stored agent. */
export function agentView(row: Selectable<AgentsTable>, now: Date): AgentT {
  const last = row.last_attested_at === null ? null : new Date(row.last_attested_at);
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    stateReason: row.state_reason,
    referenceSet: row.reference_set,
    requirePcrs: row.require_pcrs,
    intervalSeconds: row.interval_s,
    enrolled: row.ak_public !== null,
    createdAt: toIso(row.created_at)!,
    updatedAt: toIso(row.updated_at)!,
    lastAttestedAt: toIso(row.last_attested_at),
    pullUrl: row.pull_url,
    bootReference:
      row.boot_reference === null || row.boot_reference_form === null
        ? null
        : {
            form: row.boot_reference_form,
            bytes: row.boot_reference.length,
            sha256: createHash('sha256').update(row.boot_reference).digest('hex'),
          },
    transport: row.transport,
    stale:
      row.state !== 'paused' &&
      row.state !== 'unenrolled' &&
      (last === null || now.getTime() - last.getTime() > 2 * row.interval_s * 1000),
  };
}

/** Record a state change (inside the caller's transaction). */
export async function recordEvent(
  tx: Kysely<Database> | Transaction<Database>,
  agentId: string,
  from: string,
  to: string,
  reason: Record<string, unknown>,
): Promise<void> {
  await tx
    .insertInto('events')
    .values({ agent_id: agentId, from_state: from, to_state: to, reason: JSON.stringify(reason) })
    .execute();
}

const SORTS = {
  name: 'name',
  state: 'state',
  lastAttestedAt: 'last_attested_at',
  createdAt: 'created_at',
} as const;

export const agentRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  const load = async (id: string) => {
    const row = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
    return row;
  };

  app.post(
    '/v1/agents',
    {
      config: { role: 'operate' },
      schema: {
        tags: ['agents'],
        body: Type.Object(
          {
            id: Type.Optional(AgentId),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            requirePcrs: Type.Optional(PcrSelectionText),
            referenceSet: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
            bootReference: Type.Optional(BootReferenceBody),
            intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
            /** a Keylime agent (its pull API at http://HOST:PORT), polled with the AK given */
            keylimeAgent: Type.Optional(KeylimeAgentAddress),
            /** base64 TPM2B_PUBLIC or SubjectPublicKeyInfo DER of that agent's AK (with keylimeAgent) */
            akPublic: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$', maxLength: 8192 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Agent, 400: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const id = req.body.id ?? randomUUID();
      if (req.body.referenceSet !== undefined) await requireReferenceSet(db, req.body.referenceSet);
      const boot =
        req.body.bootReference === undefined ? undefined : checkBootReference(req.body.bootReference);
      const keylime =
        req.body.keylimeAgent === undefined && req.body.akPublic === undefined
          ? undefined
          : checkKeylimeAgent(
              req.body.keylimeAgent,
              req.body.akPublic,
              req.body.requirePcrs ?? KEYLIME_REQUIRE,
            );
      const row = await db.transaction().execute(async (tx) => {
        const inserted = await tx
          .insertInto('agents')
          .values({
            id,
            name: req.body.name ?? id,
            state: 'unenrolled',
            state_reason: JSON.stringify({ why: 'no attestation key enrolled yet' }),
            reference_set: req.body.referenceSet ?? null,
            ...(boot !== undefined && { boot_reference: boot.bytes, boot_reference_form: boot.form }),
            require_pcrs: req.body.requirePcrs ?? (keylime !== undefined ? KEYLIME_REQUIRE : DEFAULT_REQUIRE),
            interval_s: req.body.intervalSeconds ?? DEFAULT_INTERVAL_S,
            ...(keylime !== undefined && {
              transport: 'keylime',
              pull_url: keylime.pullUrl,
              ak_public: keylime.akPublic,
              state_reason: JSON.stringify({
                why: 'Keylime agent added with its AK: awaiting the first attestation',
              }),
            }),
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .returningAll()
          .executeTakeFirst();
        if (inserted === undefined)
          throw new VerifierError('V_AGENT_EXISTS', `agent '${id}' exists`, { agent: id });
        await recordEvent(tx, id, 'none', 'unenrolled', {
          why: keylime !== undefined ? `added: Keylime agent at ${req.body.keylimeAgent}` : 'added',
        });
        return inserted;
      });
      return reply.status(201).send(agentView(row, new Date()));
    },
  );

  app.get(
    '/v1/agents',
    {
      config: { role: 'read' },
      schema: {
        tags: ['agents'],
        querystring: Type.Object(
          {
            state: Type.Optional(Type.Union(AGENT_STATES.map((s) => Type.Literal(s)))),
            q: Type.Optional(Type.String({ maxLength: 200 })),
            referenceSet: Type.Optional(Type.String({ maxLength: 64 })),
            sort: Type.Optional(Type.Union(Object.keys(SORTS).map((s) => Type.Literal(s)))),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ total: Type.Integer(), agents: Type.Array(Agent) }) },
      },
    },
    async (req) => {
      const { state, q, referenceSet, sort = 'name', order = 'asc', limit = 100, offset = 0 } = req.query;
      let base = db.selectFrom('agents');
      if (state !== undefined) base = base.where('state', '=', state);
      if (referenceSet !== undefined) base = base.where('reference_set', '=', referenceSet);
      if (q !== undefined) base = base.where(sql<boolean>`strpos(lower(name), lower(${q})) > 0`);
      const column = SORTS[sort as keyof typeof SORTS];
      const [rows, count] = await Promise.all([
        base.selectAll().orderBy(column, order).orderBy('id').limit(limit).offset(offset).execute(),
        base.select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow(),
      ]);
      const now = new Date();
      return { total: Number(count.n), agents: rows.map((r) => agentView(r, now)) };
    },
  );

  app.get(
    '/v1/agents/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['agents'],
        params: Type.Object({ id: AgentId }),
        response: { 200: Agent, 404: ErrorBody },
      },
    },
    async (req) => agentView(await load(req.params.id), new Date()),
  );

  app.patch(
    '/v1/agents/:id',
    {
      config: { role: 'operate' },
      schema: {
        tags: ['agents'],
        params: Type.Object({ id: AgentId }),
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            requirePcrs: Type.Optional(PcrSelectionText),
            referenceSet: Type.Optional(
              Type.Union([Type.String({ pattern: '^[0-9a-f]{64}$' }), Type.Null()]),
            ),
            intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
            pullUrl: Type.Optional(Type.Union([PullUrl, Type.Null()])),
            bootReference: Type.Optional(Type.Union([BootReferenceBody, Type.Null()])),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Agent, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      await load(req.params.id);
      const b = req.body;
      if (typeof b.referenceSet === 'string') await requireReferenceSet(db, b.referenceSet);
      if (typeof b.pullUrl === 'string') checkPullUrl(b.pullUrl);
      const boot = b.bootReference == null ? b.bootReference : checkBootReference(b.bootReference);
      // references and settings change in place: the running attestation state is kept
      const row = await db
        .updateTable('agents')
        .set({
          ...(b.name !== undefined && { name: b.name }),
          ...(b.requirePcrs !== undefined && { require_pcrs: b.requirePcrs }),
          ...(b.referenceSet !== undefined && { reference_set: b.referenceSet }),
          ...(b.intervalSeconds !== undefined && { interval_s: b.intervalSeconds }),
          // a new boot reference applies from the next attestation; the running state is kept
          ...(boot !== undefined && {
            boot_reference: boot?.bytes ?? null,
            boot_reference_form: boot?.form ?? null,
          }),
          // a new pull endpoint is polled at once
          ...(b.pullUrl !== undefined && { pull_url: b.pullUrl, next_due: sql<Date>`now()` }),
          updated_at: new Date(),
        })
        .where('id', '=', req.params.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return agentView(row, new Date());
    },
  );

  for (const action of ['pause', 'resume'] as const)
    app.post(
      `/v1/agents/:id/${action}`,
      {
        config: { role: 'operate' },
        schema: {
          tags: ['agents'],
          params: Type.Object({ id: AgentId }),
          // the body is optional: a bare POST pauses or resumes
          body: Type.Union([
            Type.Null(),
            Type.Object(
              { reason: Type.Optional(Type.String({ maxLength: 500 })) },
              { additionalProperties: false },
            ),
          ]),
          response: { 200: Agent, 404: ErrorBody },
        },
      },
      async (req) => {
        const row = await db.transaction().execute(async (tx) => {
          const cur = await tx
            .selectFrom('agents')
            .selectAll()
            .where('id', '=', req.params.id)
            .forUpdate()
            .executeTakeFirst();
          if (cur === undefined)
            throw new VerifierError('V_NOT_FOUND', `no agent '${req.params.id}'`, { agent: req.params.id });
          // resuming returns to unenrolled or to "awaiting attestation": the next verdict decides
          const to = action === 'pause' ? 'paused' : cur.ak_public === null ? 'unenrolled' : 'failing';
          const reason =
            action === 'pause'
              ? { why: 'paused by an operator', note: req.body?.reason ?? null }
              : { why: 'resumed: awaiting the next attestation' };
          if (cur.state === to) return cur;
          const updated = await tx
            .updateTable('agents')
            .set({ state: to, state_reason: JSON.stringify(reason), updated_at: new Date() })
            .where('id', '=', cur.id)
            .returningAll()
            .executeTakeFirstOrThrow();
          await recordEvent(tx, cur.id, cur.state, to, reason);
          return updated;
        });
        return agentView(row, new Date());
      },
    );

  app.delete(
    '/v1/agents/:id',
    {
      config: { role: 'operate' },
      schema: {
        tags: ['agents'],
        params: Type.Object({ id: AgentId }),
        response: { 204: Type.Null(), 404: ErrorBody },
      },
    },
    async (req, reply) => {
      await db.transaction().execute(async (tx) => {
        const gone = await tx
          .deleteFrom('agents')
          .where('id', '=', req.params.id)
          .returning('state')
          .executeTakeFirst();
        if (gone === undefined)
          throw new VerifierError('V_NOT_FOUND', `no agent '${req.params.id}'`, { agent: req.params.id });
        await recordEvent(tx, req.params.id, gone.state, 'deleted', { why: 'deleted by an operator' });
      });
      return reply.status(204).send(null);
    },
  );
};

/** The pattern admits the shape; the URL parser decides (a host that does not parse is refused). */
function checkPullUrl(text: string): void {
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '')
    throw new VerifierError('V_VALIDATION', `body/pullUrl is not an http(s) URL: '${text}'`, {
      field: 'body/pullUrl',
    });
}

/**
 * A boot reference as sent: decoded with core (its form detected unless given), so a malformed
 * one is a 400 naming the field, line or offset before anything is stored.
 */
function checkBootReference(b: { form?: BootReferenceForm; data: string }): {
  form: BootReferenceForm;
  bytes: Uint8Array;
} {
  const bytes = new Uint8Array(Buffer.from(b.data, 'base64'));
  try {
    return { form: decodeBootReference(bytes, b.form ?? bootReferenceForm(bytes)).form, bytes };
  } catch (e) {
    if (!isImakitError(e)) throw e;
    throw new VerifierError('V_VALIDATION', `body/bootReference: ${e.message}`, {
      ...e.context,
      ...(e.context.field !== undefined && { in: e.context.field }),
      field: 'body/bootReference',
      cause: e.code,
    });
  }
}

async function requireReferenceSet(db: Kysely<Database>, id: string): Promise<void> {
  const found = await db.selectFrom('reference_sets').select('id').where('id', '=', id).executeTakeFirst();
  if (found === undefined)
    throw new VerifierError('V_NOT_FOUND', `no reference set '${id}'`, {
      field: 'referenceSet',
      referenceSet: id,
    });
}
