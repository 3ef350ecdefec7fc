/**
 * /v1/dashboard: what the fleet dashboard's pages need in one request each, all read-only.
 *
 * - overview: counts by fleet state, attestations and failures per time bucket, the failures
 *   grouped by cause, the newest events;
 * - agents: the fleet table, filtered, sorted and paged in the database (10,000 rows page in one
 *   query), including by the failure's cause;
 * - failures: current failures grouped by cause (step, code, path, actual digest): one cause on
 *   many hosts ("one bad package") or on one;
 * - agents/:id: the agent with its current failure explained (the reference entries for the path
 *   and their provenance), its verdicts, its PCRs as last sent marked quoted or not, its boot
 *   events, its events;
 * - agents/:id/ima: its stored IMA list with a verdict per entry, searched and paged;
 * - whoami: the token's role, so a read-only viewer sees a read-only page.
 *
 * A fleet state is the stored state, except that a passing agent not attested within two of its
 * intervals is `stale` (its last verdict no longer says anything about now); a failing one stays
 * failing (still the last thing known) and is flagged stale.
 */
import { sql, type Kysely } from 'kysely';
import { Type, type Static } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { eventTypeName, parseEventLog, toHex, ReferenceSetBuilder } from 'imakit/core';
import type { Database } from '../db/schema.ts';
import { VerifierError } from '../errors.ts';
import type { ReferenceSetCache } from '../refs-store.ts';
import { roleOfBearer } from '../auth.ts';
import { readStoredList, storedListDigest } from '../dashboard/evidence-store.ts';
import { ListEvaluationCache, evaluateStoredList, provenanceView } from '../dashboard/evaluate-list.ts';
import { agentView } from './agents.ts';
import { EventBody, eventView } from './events.ts';
import { Agent, AgentId, ErrorBody } from './schemas.ts';

export const FLEET_STATES = ['passing', 'failing', 'stale', 'unenrolled', 'paused'] as const;

/** SQL: the agent is enrolled, not paused, and not attested within two intervals. */
const STALE = sql<boolean>`(a.state not in ('paused', 'unenrolled') and (a.last_attested_at is null or a.last_attested_at < now() - make_interval(secs => a.interval_s * 2)))`;
const VIEW_STATE = sql<string>`(case when a.state = 'passing' and ${STALE} then 'stale' else a.state end)`;
const F_STEP = sql<string | null>`(a.state_reason->'failure'->>'step')`;
const F_CODE = sql<string | null>`(a.state_reason->'failure'->>'code')`;
const F_PATH = sql<string | null>`(a.state_reason->'failure'->>'path')`;
const F_ACTUAL = sql<string | null>`(a.state_reason->'failure'->>'actual')`;

const Cause = Type.Object({
  step: Type.Union([Type.String(), Type.Null()]),
  code: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.String(), Type.Null()]),
  actual: Type.Union([Type.String(), Type.Null()]),
});

const FailureGroup = Type.Object({
  step: Type.Union([Type.String(), Type.Null()]),
  code: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.String(), Type.Null()]),
  actual: Type.Union([Type.String(), Type.Null()]),
  hosts: Type.Integer(),
  /** `fleet`: the same cause on more than one host; `host`: one host */
  scope: Type.Union([Type.Literal('fleet'), Type.Literal('host')]),
  agents: Type.Array(Type.Object({ id: Type.String(), name: Type.String() })),
  since: Type.Union([Type.String(), Type.Null()]),
});
type FailureGroupT = Static<typeof FailureGroup>;

const AgentRow = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  stale: Type.Boolean(),
  referenceSet: Type.Union([Type.String(), Type.Null()]),
  referenceSetName: Type.Union([Type.String(), Type.Null()]),
  lastAttestedAt: Type.Union([Type.String(), Type.Null()]),
  intervalSeconds: Type.Integer(),
  cause: Type.Union([Cause, Type.Null()]),
});

const SORTS = {
  name: sql`a.name`,
  state: VIEW_STATE,
  referenceSet: sql`r.name`,
  lastAttestedAt: sql`a.last_attested_at`,
  cause: F_PATH,
} as const;

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/**
 * Every bucket of the window, empty ones as zeros, so a chart's time axis spans the window the
 * viewer chose and a quiet hour shows as quiet, not as missing.
 */
export function fillBuckets(
  rows: readonly { t: number | string; pass: number | string; fail: number | string }[],
  bucket: number,
  hours: number,
  nowMs: number,
): { bucketSeconds: number; t: number[]; pass: number[]; fail: number[] } {
  const end = Math.floor(nowMs / 1000 / bucket) * bucket;
  const start = Math.floor((nowMs / 1000 - hours * 3600) / bucket) * bucket;
  const at = new Map(rows.map((r) => [Number(r.t), r]));
  const out = { bucketSeconds: bucket, t: [] as number[], pass: [] as number[], fail: [] as number[] };
  for (let t = start; t <= end; t += bucket) {
    const r = at.get(t);
    out.t.push(t);
    out.pass.push(Number(r?.pass ?? 0));
    out.fail.push(Number(r?.fail ?? 0));
  }
  return out;
}

/** Current failures grouped by cause, most hosts first. */
async function failureGroups(db: Kysely<Database>, limit: number): Promise<FailureGroupT[]> {
  const rows = await db
    .selectFrom('agents as a')
    .select([
      F_STEP.as('step'),
      F_CODE.as('code'),
      F_PATH.as('path'),
      F_ACTUAL.as('actual'),
      sql<number>`count(*)::int`.as('hosts'),
      sql<Date | string | null>`min(a.updated_at)`.as('since'),
      sql<unknown>`(array_agg(json_build_object('id', a.id, 'name', a.name) order by a.name))[1:5]`.as(
        'agents',
      ),
    ])
    .where('a.state', '=', 'failing')
    .groupBy([F_STEP, F_CODE, F_PATH, F_ACTUAL])
    .orderBy(sql`count(*)`, 'desc')
    .orderBy(F_PATH)
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    step: r.step,
    code: r.code,
    path: r.path,
    actual: r.actual,
    hosts: Number(r.hosts),
    scope: Number(r.hosts) > 1 ? 'fleet' : 'host',
    agents: (r.agents as { id: string; name: string }[] | null) ?? [],
    since: iso(r.since),
  }));
}

/** `sha256:0-7,10+sha1:10` → the set of `bank:index` it covers. */
export function quotedPcrs(selection: string | null): Set<string> {
  const out = new Set<string>();
  if (selection === null) return out;
  for (const part of selection.split('+')) {
    const [bank, list] = part.split(':');
    if (bank === undefined || list === undefined) continue;
    for (const r of list.split(',')) {
      const [a, b] = r.split('-').map(Number);
      if (a === undefined || !Number.isInteger(a)) continue;
      for (let i = a; i <= (b ?? a); i++) out.add(`${bank}:${i}`);
    }
  }
  return out;
}

export const dashboardRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  refs: ReferenceSetCache;
}> = async (app, { db, refs }) => {
  const evaluations = new ListEvaluationCache(2);
  app.get(
    '/v1/whoami',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        response: { 200: Type.Object({ role: Type.String() }), 401: ErrorBody },
      },
    },
    async (req) => ({ role: await roleOfBearer(db, req.headers.authorization) }),
  );

  app.get(
    '/v1/dashboard/overview',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        querystring: Type.Object(
          { hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 31 })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            now: Type.String(),
            counts: Type.Object({
              total: Type.Integer(),
              passing: Type.Integer(),
              failing: Type.Integer(),
              stale: Type.Integer(),
              unenrolled: Type.Integer(),
              paused: Type.Integer(),
            }),
            series: Type.Object({
              bucketSeconds: Type.Integer(),
              t: Type.Array(Type.Integer()),
              pass: Type.Array(Type.Integer()),
              fail: Type.Array(Type.Integer()),
            }),
            failures: Type.Array(FailureGroup),
            events: Type.Array(EventBody),
          }),
        },
      },
    },
    async (req) => {
      const hours = req.query.hours ?? 6;
      // about 60 buckets over the window (bars a chart can show), at least a minute each
      const bucket = Math.max(60, Math.round((hours * 3600) / 60 / 60) * 60);
      const [counts, series, failures, events] = await Promise.all([
        db
          .selectFrom('agents as a')
          .select([
            sql<number>`count(*)::int`.as('total'),
            sql<number>`(count(*) filter (where ${VIEW_STATE} = 'passing'))::int`.as('passing'),
            sql<number>`(count(*) filter (where ${VIEW_STATE} = 'failing'))::int`.as('failing'),
            sql<number>`(count(*) filter (where ${VIEW_STATE} = 'stale'))::int`.as('stale'),
            sql<number>`(count(*) filter (where a.state = 'unenrolled'))::int`.as('unenrolled'),
            sql<number>`(count(*) filter (where a.state = 'paused'))::int`.as('paused'),
          ])
          .executeTakeFirstOrThrow(),
        db
          .selectFrom('verdicts')
          .select([
            sql<number>`(floor(extract(epoch from at) / ${bucket}) * ${bucket})::bigint`.as('t'),
            sql<number>`(count(*) filter (where status = 'pass'))::int`.as('pass'),
            sql<number>`(count(*) filter (where status = 'fail'))::int`.as('fail'),
          ])
          .where('at', '>', sql<Date>`now() - make_interval(hours => ${hours})`)
          .groupBy(sql`1`)
          .orderBy(sql`1`)
          .execute(),
        failureGroups(db, 10),
        db.selectFrom('events').selectAll().orderBy('id', 'desc').limit(15).execute(),
      ]);
      return {
        now: new Date().toISOString(),
        counts: {
          total: Number(counts.total),
          passing: Number(counts.passing),
          failing: Number(counts.failing),
          stale: Number(counts.stale),
          unenrolled: Number(counts.unenrolled),
          paused: Number(counts.paused),
        },
        series: fillBuckets(series, bucket, hours, Date.now()),
        failures,
        events: events.map(eventView),
      };
    },
  );

  app.get(
    '/v1/dashboard/failures',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ groups: Type.Array(FailureGroup) }) },
      },
    },
    async (req) => ({ groups: await failureGroups(db, req.query.limit ?? 100) }),
  );

  app.get(
    '/v1/dashboard/agents',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        querystring: Type.Object(
          {
            state: Type.Optional(Type.Union(FLEET_STATES.map((s) => Type.Literal(s)))),
            q: Type.Optional(Type.String({ maxLength: 200 })),
            referenceSet: Type.Optional(Type.String({ pattern: '^([0-9a-f]{64}|none)$' })),
            code: Type.Optional(Type.String({ maxLength: 100 })),
            path: Type.Optional(Type.String({ maxLength: 4096 })),
            sort: Type.Optional(Type.Union(Object.keys(SORTS).map((s) => Type.Literal(s)))),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ total: Type.Integer(), agents: Type.Array(AgentRow) }),
          400: ErrorBody,
        },
      },
    },
    async (req) => {
      const { state, q, referenceSet, code, path, sort = 'name', order = 'asc' } = req.query;
      const limit = req.query.limit ?? 50;
      const offset = req.query.offset ?? 0;
      let base = db.selectFrom('agents as a').leftJoin('reference_sets as r', 'r.id', 'a.reference_set');
      if (state !== undefined) base = base.where(sql<boolean>`${VIEW_STATE} = ${state}`);
      if (referenceSet === 'none') base = base.where('a.reference_set', 'is', null);
      else if (referenceSet !== undefined) base = base.where('a.reference_set', '=', referenceSet);
      if (q !== undefined && q !== '')
        base = base.where(sql<boolean>`(strpos(lower(a.name), lower(${q})) > 0 or strpos(a.id, ${q}) > 0)`);
      if (code !== undefined) base = base.where(sql<boolean>`${F_CODE} = ${code}`);
      if (path !== undefined) base = base.where(sql<boolean>`${F_PATH} = ${path}`);
      const dir = order === 'desc' ? sql`desc nulls last` : sql`asc nulls last`;
      const [rows, count] = await Promise.all([
        base
          .select([
            'a.id',
            'a.name',
            'a.state',
            'a.reference_set',
            'a.last_attested_at',
            'a.interval_s',
            'r.name as reference_set_name',
            VIEW_STATE.as('view_state'),
            STALE.as('stale'),
            F_STEP.as('f_step'),
            F_CODE.as('f_code'),
            F_PATH.as('f_path'),
            F_ACTUAL.as('f_actual'),
          ])
          .orderBy(sql`${SORTS[sort as keyof typeof SORTS]} ${dir}`)
          .orderBy('a.id')
          .limit(limit)
          .offset(offset)
          .execute(),
        base.select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow(),
      ]);
      return {
        total: Number(count.n),
        agents: rows.map((r) => ({
          id: r.id,
          name: r.name,
          state: r.view_state,
          stale: r.stale === true,
          referenceSet: r.reference_set,
          referenceSetName: r.reference_set_name ?? null,
          lastAttestedAt: iso(r.last_attested_at),
          intervalSeconds: r.interval_s,
          cause:
            r.state === 'failing' && r.f_code !== null
              ? { step: r.f_step, code: r.f_code, path: r.f_path, actual: r.f_actual }
              : null,
        })),
      };
    },
  );

  app.get(
    '/v1/dashboard/agents/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        params: Type.Object({ id: AgentId }),
        response: {
          200: Type.Object({
            agent: Agent,
            state: Type.String(),
            referenceSetName: Type.Union([Type.String(), Type.Null()]),
            failure: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
            reference: Type.Union([
              Type.Object({
                path: Type.String(),
                referenceSet: Type.String(),
                digests: Type.Array(
                  Type.Object({
                    algo: Type.String(),
                    digest: Type.String(),
                    provenance: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
                  }),
                ),
              }),
              Type.Null(),
            ]),
            verdicts: Type.Array(
              Type.Object({
                id: Type.Integer(),
                at: Type.String(),
                status: Type.String(),
                code: Type.Union([Type.String(), Type.Null()]),
                step: Type.Union([Type.String(), Type.Null()]),
                path: Type.Union([Type.String(), Type.Null()]),
                entry: Type.Union([Type.Integer(), Type.Null()]),
              }),
            ),
            notEstablished: Type.Array(Type.String()),
            steps: Type.Array(Type.Unknown()),
            pcrs: Type.Union([
              Type.Object({
                at: Type.String(),
                quoted: Type.Union([Type.String(), Type.Null()]),
                banks: Type.Array(
                  Type.Object({
                    bank: Type.String(),
                    pcrs: Type.Array(
                      Type.Object({ index: Type.Integer(), value: Type.String(), quoted: Type.Boolean() }),
                    ),
                  }),
                ),
              }),
              Type.Null(),
            ]),
            boot: Type.Union([
              Type.Object({
                events: Type.Array(
                  Type.Object({
                    index: Type.Integer(),
                    pcr: Type.Integer(),
                    type: Type.String(),
                    digests: Type.Record(Type.String(), Type.String()),
                    size: Type.Integer(),
                  }),
                ),
                error: Type.Union([Type.String(), Type.Null()]),
              }),
              Type.Null(),
            ]),
            list: Type.Union([
              Type.Object({ entries: Type.Integer(), firstEntry: Type.Integer(), bytes: Type.Integer() }),
              Type.Null(),
            ]),
            events: Type.Array(EventBody),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const id = req.params.id;
      const row = await db
        .selectFrom('agents as a')
        .selectAll('a')
        .select(VIEW_STATE.as('view_state'))
        .where('a.id', '=', id)
        .executeTakeFirst();
      if (row === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
      const [verdicts, evidence, chunks, events, setRow] = await Promise.all([
        db
          .selectFrom('verdicts')
          .select(['id', 'at', 'status', 'verdict'])
          .where('agent_id', '=', id)
          .orderBy('id', 'desc')
          .limit(100)
          .execute(),
        db.selectFrom('agent_evidence').selectAll().where('agent_id', '=', id).executeTakeFirst(),
        db
          .selectFrom('ima_chunks')
          .select([
            sql<number>`coalesce(sum(entries), 0)::int`.as('entries'),
            sql<number | null>`min(start_entry)`.as('first'),
            sql<number>`coalesce(sum(octet_length(bytes)), 0)::bigint`.as('bytes'),
          ])
          .where('agent_id', '=', id)
          .executeTakeFirstOrThrow(),
        db
          .selectFrom('events')
          .selectAll()
          .where('agent_id', '=', id)
          .orderBy('id', 'desc')
          .limit(30)
          .execute(),
        row.reference_set === null
          ? Promise.resolve(undefined)
          : db
              .selectFrom('reference_sets')
              .select('name')
              .where('id', '=', row.reference_set)
              .executeTakeFirst(),
      ]);
      const reason = row.state_reason as { failure?: Record<string, unknown> } | null;
      const failure = row.state === 'failing' && reason?.failure !== undefined ? reason.failure : null;
      // the reference entries for the failing path, with where each came from
      let reference = null;
      if (failure !== null && typeof failure.path === 'string' && row.reference_set !== null) {
        const set = await refs.get(db, row.reference_set);
        const allowed = set.digests.get(failure.path) ?? [];
        reference = {
          path: failure.path,
          referenceSet: row.reference_set,
          digests: allowed.map((d) => ({
            algo: d.algo,
            digest: toHex(d.digest),
            provenance: provenanceView(set.provenances[d.provenance]),
          })),
        };
      }
      const last = verdicts[0]?.verdict as { notEstablished?: string[]; steps?: unknown[] } | undefined;
      let pcrs = null;
      if (evidence !== undefined) {
        const quoted = quotedPcrs(evidence.quoted);
        const sent = evidence.pcrs as Record<string, Record<string, string>>;
        pcrs = {
          at: new Date(evidence.at).toISOString(),
          quoted: evidence.quoted,
          banks: Object.entries(sent).map(([bank, m]) => ({
            bank,
            pcrs: Object.entries(m)
              .map(([i, value]) => ({ index: Number(i), value, quoted: quoted.has(`${bank}:${i}`) }))
              .sort((a, b) => a.index - b.index),
          })),
        };
      }
      let boot = null;
      if (evidence?.event_log != null) {
        try {
          const log = parseEventLog(new Uint8Array(evidence.event_log));
          boot = {
            events: log.events.map((e) => ({
              index: e.index,
              pcr: e.pcr,
              type: eventTypeName(e.type),
              digests: Object.fromEntries([...e.digests].map(([b, d]) => [b, toHex(d)])),
              size: e.data.length,
            })),
            error: null,
          };
        } catch (e) {
          boot = { events: [], error: (e as Error).message };
        }
      }
      const now = new Date();
      return {
        agent: agentView(row, now),
        state: row.view_state,
        referenceSetName: setRow?.name ?? null,
        failure,
        reference,
        verdicts: verdicts.map((v) => {
          const f = (v.verdict as { failure?: Record<string, unknown> }).failure;
          return {
            id: Number(v.id),
            at: new Date(v.at).toISOString(),
            status: v.status,
            code: typeof f?.code === 'string' ? f.code : null,
            step: typeof f?.step === 'string' ? f.step : null,
            path: typeof f?.path === 'string' ? f.path : null,
            entry: typeof f?.entry === 'number' ? f.entry : null,
          };
        }),
        notEstablished: last?.notEstablished ?? [],
        steps: last?.steps ?? [],
        pcrs,
        boot,
        list:
          chunks.first === null
            ? null
            : {
                entries: Number(chunks.entries),
                firstEntry: Number(chunks.first),
                bytes: Number(chunks.bytes),
              },
        events: events.map(eventView),
      };
    },
  );

  app.get(
    '/v1/dashboard/reference-sets/:id',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 4096 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            id: Type.String(),
            name: Type.String(),
            createdAt: Type.String(),
            meta: Type.Record(Type.String(), Type.Unknown()),
            hashAlgo: Type.Union([Type.String(), Type.Null()]),
            paths: Type.Integer(),
            keys: Type.Integer(),
            excludes: Type.Array(Type.String()),
            agents: Type.Integer(),
            provenances: Type.Array(
              Type.Object({ provenance: Type.Record(Type.String(), Type.String()), paths: Type.Integer() }),
            ),
            provenanceCount: Type.Integer(),
            matches: Type.Array(
              Type.Object({
                path: Type.String(),
                digests: Type.Array(
                  Type.Object({
                    algo: Type.String(),
                    digest: Type.String(),
                    provenance: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
                  }),
                ),
              }),
            ),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const id = req.params.id;
      const row = await db
        .selectFrom('reference_sets as r')
        .select([
          'r.name',
          'r.created_at',
          sql<number>`(select count(*)::int from agents a where a.reference_set = r.id)`.as('agents'),
        ])
        .where('r.id', '=', id)
        .executeTakeFirst();
      if (row === undefined)
        throw new VerifierError('V_NOT_FOUND', `no reference set '${id}'`, { referenceSet: id });
      const set = await refs.get(db, id);
      // paths per provenance (a package, an image layer, a rootfs), most paths first
      const per = new Map<number, Set<string>>();
      const q = req.query.q?.toLowerCase();
      const limit = req.query.limit ?? 50;
      const matches = [];
      for (const path of set.digests.paths()) {
        const refsOf = set.digests.get(path) ?? [];
        for (const d of refsOf) {
          let s = per.get(d.provenance);
          if (s === undefined) per.set(d.provenance, (s = new Set()));
          s.add(path);
        }
        if (q !== undefined && q !== '' && matches.length < limit && path.toLowerCase().includes(q))
          matches.push({
            path,
            digests: refsOf.map((d) => ({
              algo: d.algo,
              digest: toHex(d.digest),
              provenance: provenanceView(set.provenances[d.provenance]),
            })),
          });
      }
      const provenances = [...per]
        .sort((a, b) => b[1].size - a[1].size)
        .slice(0, 500)
        .map(([i, s]) => ({ provenance: provenanceView(set.provenances[i]) ?? {}, paths: s.size }));
      return {
        id,
        name: row.name,
        createdAt: new Date(row.created_at).toISOString(),
        meta: { ...set.meta },
        hashAlgo: set.hashAlgo ?? null,
        paths: set.digests.size,
        keys: set.keys.length,
        excludes: set.excludes.map((e) => e.pattern),
        agents: Number(row.agents),
        provenances,
        provenanceCount: per.size,
        matches,
      };
    },
  );

  app.get(
    '/v1/dashboard/agents/:id/ima',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        params: Type.Object({ id: AgentId }),
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 4096 })),
            status: Type.Optional(Type.Union([Type.Literal('allowed'), Type.Literal('refused')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            referenceSet: Type.Union([Type.String(), Type.Null()]),
            listEntries: Type.Integer(),
            firstEntry: Type.Integer(),
            total: Type.Integer(),
            entries: Type.Array(
              Type.Object({
                index: Type.Integer(),
                offset: Type.Integer(),
                path: Type.String(),
                template: Type.String(),
                status: Type.String(),
                reason: Type.String(),
                algo: Type.Union([Type.String(), Type.Null()]),
                digest: Type.Union([Type.String(), Type.Null()]),
                keyId: Type.Union([Type.String(), Type.Null()]),
                provenance: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
              }),
            ),
            unusable: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
            notEstablished: Type.Array(Type.String()),
          }),
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const id = req.params.id;
      const agent = await db
        .selectFrom('agents')
        .select(['reference_set'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (agent === undefined) throw new VerifierError('V_NOT_FOUND', `no agent '${id}'`, { agent: id });
      const digest = await storedListDigest(db, id);
      const empty = {
        referenceSet: agent.reference_set,
        listEntries: 0,
        firstEntry: 0,
        total: 0,
        entries: [],
        unusable: null,
        notEstablished: ['no list entry covered by a verified quote is stored for this agent'],
      };
      if (digest === undefined) return empty;
      // without a set every entry is read (path, digest) but none is judged
      const set =
        agent.reference_set === null
          ? new ReferenceSetBuilder().build()
          : await refs.get(db, agent.reference_set);
      const e = await evaluations.get(`${id}\n${agent.reference_set ?? ''}\n${digest}`, async () => {
        const list = await readStoredList(db, id);
        return list === undefined ? undefined : evaluateStoredList(set, list, true);
      });
      if (e === undefined) return empty;
      const judged = agent.reference_set !== null;
      const q = req.query.q?.toLowerCase();
      const matching = e.verdicts.filter(
        (v) =>
          (q === undefined || q === '' || v.path.toLowerCase().includes(q)) &&
          (req.query.status === undefined || (judged && v.status === req.query.status)),
      );
      const offset = req.query.offset ?? 0;
      const page = matching.slice(offset, offset + (req.query.limit ?? 100));
      return {
        referenceSet: agent.reference_set,
        listEntries: e.stored,
        firstEntry: e.firstEntry,
        total: matching.length,
        entries: page.map((v) => ({
          index: v.index,
          offset: e.offsets.get(v.index) ?? -1,
          path: v.path,
          template: v.template,
          status: judged ? v.status : 'not-evaluated',
          reason: judged ? v.reason : 'no reference set',
          algo: v.algo ?? null,
          digest: v.digest ?? null,
          keyId: v.keyId ?? null,
          provenance: judged ? provenanceView(v.provenance) : null,
        })),
        unusable: e.unusable ?? null,
        notEstablished: judged
          ? [...e.notEstablished]
          : ['that the measured files are acceptable: the agent has no reference set'],
      };
    },
  );
};
