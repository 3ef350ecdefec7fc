/**
 * What push (routes/attest.ts) and pull (poller/poller.ts) attestation share: the evidence body's
 * schema and its decoding, fresh nonces and their single use (`consumeNonce`, also for AK proofs),
 * and `storeAttestation`, which runs the pure verdict pipeline over the stored state and stores
 * the verdict, the new running state, the agent's state and an event (when the state changed) in
 * one transaction. Its two halves, `lockAgent` and `storeVerdict`, also store the verdict of a
 * Keylime answer that could not be read (keylime/agent-poll.ts).
 *
 * In pull mode the same transaction is fenced by the lease: the agent row is locked, and unless
 * this process still holds an unexpired lease on it (by the database's clock) nothing is stored
 * and `V_LEASE_LOST` is thrown, so a process that stalled past its lease can never store a
 * verdict beside the process that took the agent over. On success the lease is released and the
 * agent is next due one interval later, in the same transaction.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { Type, type Static } from 'typebox';
import type { BootReferenceForm, PcrValues } from 'imakit/core';
import type { Database } from './db/schema.ts';
import { VerifierError } from './errors.ts';
import type { ReferenceSetCache } from './refs-store.ts';
import { runPipeline } from './pipeline/run.ts';
import { EMPTY_STATE, stateFromRow, stateToRow } from './pipeline/state-store.ts';
import type { Evidence, Verdict } from './pipeline/types.ts';
import { recordEvent } from './routes/agents.ts';
import { recordEvidence } from './dashboard/evidence-store.ts';
import { Base64, Hex } from './routes/schemas.ts';

const NONCE_BYTES = 32;

/** A fresh single-use challenge nonce (hex). */
export function freshNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

/**
 * Use up a challenge nonce (hex, lower case) issued to `agentId` for `purpose`: it is deleted
 * whether or not what it answers for then holds, so it is single use. A nonce of another purpose
 * is unknown here (a session nonce never answers for evidence, nor the reverse).
 * @throws VerifierError V_NONCE_UNKNOWN, V_NONCE_OTHER_AGENT, V_NONCE_EXPIRED
 */
export async function consumeNonce(
  db: Kysely<Database>,
  nonceHex: string,
  purpose: 'attest' | 'session',
  agentId: string,
): Promise<void> {
  const used = await db
    .deleteFrom('nonces')
    .where('nonce', '=', nonceHex)
    .where('purpose', '=', purpose)
    .returning(['agent_id', 'expires_at'])
    .executeTakeFirst();
  if (used === undefined) throw new VerifierError('V_NONCE_UNKNOWN', undefined, { field: 'nonce' });
  if (used.agent_id !== agentId)
    throw new VerifierError('V_NONCE_OTHER_AGENT', `the nonce was not issued to agent '${agentId}'`, {
      field: 'nonce',
    });
  if (new Date(used.expires_at).getTime() <= Date.now())
    throw new VerifierError('V_NONCE_EXPIRED', undefined, { field: 'nonce' });
}

/** PCR values as sent: bank → PCR index → hex digest. */
export const PcrsBody = Type.Record(
  Type.String({ pattern: '^(sha1|sha256|sha384|sha512|sm3_256)$' }),
  Type.Record(Type.String({ pattern: '^[0-9]{1,2}$' }), Hex),
);

/** Decode schema-valid PCR values (`PcrsBody`). */
export function pcrValuesFromBody(b: Static<typeof PcrsBody>): PcrValues {
  return new Map(
    Object.entries(b).map(([bank, m]) => [
      bank,
      new Map(Object.entries(m).map(([i, hex]) => [Number(i), new Uint8Array(Buffer.from(hex, 'hex'))])),
    ]),
  );
}

/** The evidence an agent sends (push) or serves (pull, `GET /v1/evidence`). */
export const EvidenceBody = Type.Object(
  {
    nonce: Type.String({ pattern: '^([0-9a-fA-F]{2}){20,32}$' }),
    quote: Type.Object({ attest: Base64, signature: Base64 }, { additionalProperties: false }),
    pcrs: PcrsBody,
    ima: Type.Optional(
      Type.Object(
        {
          offsetBytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
          entries: Base64,
        },
        { additionalProperties: false },
      ),
    ),
    eventLog: Type.Optional(Base64),
    bootCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
  },
  { additionalProperties: false },
);
export type EvidenceBodyT = Static<typeof EvidenceBody>;

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** Decode a schema-valid evidence body into bytes (not yet parsed: the pipeline does that). */
export function evidenceFromBody(b: EvidenceBodyT): Evidence {
  return {
    nonce: new Uint8Array(Buffer.from(b.nonce.toLowerCase(), 'hex')),
    attest: b64(b.quote.attest),
    signature: b64(b.quote.signature),
    pcrs: pcrValuesFromBody(b.pcrs),
    ...(b.ima !== undefined && { ima: { offsetBytes: b.ima.offsetBytes, bytes: b64(b.ima.entries) } }),
    ...(b.eventLog !== undefined && { eventLog: b64(b.eventLog) }),
    ...(b.bootCount !== undefined && { bootCount: b.bootCount }),
  };
}

export interface StoreOptions {
  readonly refs: ReferenceSetCache;
  /** verdicts kept per agent (older ones are deleted) */
  readonly retention: number;
}

/** Pull mode: the lease the verdict is stored under. */
export interface PullLease {
  /** the verifier process holding the lease */
  readonly owner: string;
  /** when the lease was taken (the database's clock): the attestation's start */
  readonly startedAt: Date;
}

/**
 * Run the pipeline on `evidence` (already bound to a nonce the caller checked or made) and store
 * everything in one transaction.
 * @throws VerifierError V_NOT_ENROLLED, V_AGENT_PAUSED; V_LEASE_LOST (pull) when the lease expired
 * or another process holds it: nothing was stored
 */
export async function storeAttestation(
  db: Kysely<Database>,
  opts: StoreOptions,
  agentId: string,
  evidence: Evidence,
  lease?: PullLease,
): Promise<Verdict> {
  return db.transaction().execute(async (tx) => {
    const agent = await lockAgent(tx, agentId, lease);
    if (agent.ak_public === null) throw new VerifierError('V_NOT_ENROLLED', undefined, { agent: agentId });
    if (agent.state === 'paused') throw new VerifierError('V_AGENT_PAUSED', undefined, { agent: agentId });
    const row = await tx
      .selectFrom('attest_state')
      .selectAll()
      .where('agent_id', '=', agentId)
      .executeTakeFirst();
    const stored = row === undefined ? EMPTY_STATE : stateFromRow(row);
    const set = agent.reference_set === null ? undefined : await opts.refs.get(tx, agent.reference_set);
    const now = new Date();
    const { verdict: v, state } = runPipeline(
      {
        id: agentId,
        akPublic: new Uint8Array(agent.ak_public),
        requirePcrs: agent.require_pcrs,
        ...(agent.boot_reference !== null &&
          agent.boot_reference_form !== null && {
            bootReference: {
              form: agent.boot_reference_form as BootReferenceForm,
              bytes: new Uint8Array(agent.boot_reference),
            },
          }),
      },
      stored,
      evidence,
      set,
      now,
    );
    const values = stateToRow(agentId, state);
    await tx
      .insertInto('attest_state')
      .values(values)
      .onConflict((oc) => oc.column('agent_id').doUpdateSet(values))
      .execute();
    // what the dashboard shows beyond the verdict: the PCRs as sent, the covered list prefix
    await recordEvidence(tx, agentId, evidence, v);
    await storeVerdict(tx, agentId, agent, v, {
      now,
      to: v.status === 'pass' ? 'passing' : 'failing',
      retention: opts.retention,
      ...(lease !== undefined && { lease }),
    });
    return v;
  });
}

/**
 * Lock the agent's row for the rest of the transaction; in pull mode (`lease` given) check this
 * process still holds an unexpired lease on it, by the database's clock.
 * @throws VerifierError V_NOT_FOUND; V_LEASE_LOST when the lease expired or another process holds it
 */
export async function lockAgent(tx: Transaction<Database>, agentId: string, lease?: PullLease) {
  const agent = await tx
    .selectFrom('agents')
    .selectAll()
    .select(sql<boolean>`lease_until > clock_timestamp()`.as('lease_live'))
    .where('id', '=', agentId)
    .forUpdate()
    .executeTakeFirst();
  if (agent === undefined)
    throw new VerifierError('V_NOT_FOUND', `no agent '${agentId}'`, { agent: agentId });
  if (lease !== undefined && (agent.lease_owner !== lease.owner || agent.lease_live !== true))
    throw new VerifierError(
      'V_LEASE_LOST',
      `the lease on agent '${agentId}' is no longer held by '${lease.owner}'`,
      { agent: agentId, owner: agent.lease_owner },
    );
  return agent;
}

/** How `storeVerdict` stores one verdict. */
export interface VerdictStore {
  /** the verdict's time, also the agent's last attestation */
  readonly now: Date;
  /** the agent's state from now on */
  readonly to: string;
  /** verdicts kept per agent (older ones are deleted) */
  readonly retention: number;
  /** pull mode: the verdict is stored under this lease, which is released */
  readonly lease?: PullLease;
}

/**
 * Inside the transaction that locked the agent (`lockAgent`): store the verdict (keeping the
 * newest `retention`), set the agent's state with the verdict as its reason, and record an event
 * when the state changed; in pull mode release the lease, the agent being due one interval later.
 */
export async function storeVerdict(
  tx: Transaction<Database>,
  agentId: string,
  agent: { readonly state: string; readonly interval_s: number },
  v: Verdict,
  { now, to, retention, lease }: VerdictStore,
): Promise<void> {
  const ins = await tx
    .insertInto('verdicts')
    .values({
      agent_id: agentId,
      at: now,
      status: v.status,
      verdict: JSON.stringify(v),
      ...(lease !== undefined && { started_at: lease.startedAt, owner: lease.owner }),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  // bounded history: keep the newest `retention` verdicts of this agent
  await tx
    .deleteFrom('verdicts')
    .where('agent_id', '=', agentId)
    .where(
      'id',
      'not in',
      tx
        .selectFrom('verdicts')
        .select('id')
        .where('agent_id', '=', agentId)
        .orderBy('id', 'desc')
        .limit(retention),
    )
    .execute();
  const reason =
    v.failure === undefined
      ? { why: 'attestation passed', verdict: Number(ins.id) }
      : { why: `${v.failure.step} failed: ${v.failure.code}`, verdict: Number(ins.id), failure: v.failure };
  await tx
    .updateTable('agents')
    .set({
      state: to,
      state_reason: JSON.stringify(reason),
      last_attested_at: now,
      updated_at: now,
      ...(lease !== undefined && {
        lease_owner: null,
        lease_until: null,
        next_due: sql<Date>`now() + make_interval(secs => ${agent.interval_s})`,
      }),
    })
    .where('id', '=', agentId)
    .execute();
  if (agent.state !== to) await recordEvent(tx, agentId, agent.state, to, reason);
}
