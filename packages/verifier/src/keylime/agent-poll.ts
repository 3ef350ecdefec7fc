/**
 * One pull attestation of a Keylime agent (agents.transport = 'keylime'): ask over Keylime's API
 * (agent-answer.ts) with a fresh nonce, the agent's required PCRs as the mask and `ima_ml_entry`
 * from the stored offset, then run the same pipeline and store the verdict as every agent's
 * (attest-store.ts `storeAttestation`, under the poller's lease).
 *
 * An answer that cannot be read is not a crash and not "unreachable": it is a stored verdict
 * failing with "evidence-malformed" and the field (`storeMalformed`), and the running state is
 * left as it was, so the next poll asks for the same entries again.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { decodeTpmsAttest } from 'imakit/core';
import type { Database } from '../db/schema.ts';
import type { ClaimedAgent } from '../db/leases.ts';
import type { PullLease, StoreOptions } from '../attest-store.ts';
import { lockAgent, storeAttestation, storeVerdict } from '../attest-store.ts';
import type { Failure, Verdict } from '../pipeline/types.ts';
import {
  keylimeRequest,
  keylimeRequestPath,
  readKeylimeAnswer,
  type KeylimeAgentRequest,
} from './agent-answer.ts';

/** Ask a Keylime agent; resolves with the JSON body of a 200 answer. */
export type FetchKeylime = (baseUrl: string, path: string, signal: AbortSignal) => Promise<unknown>;

/** Plain HTTP(S) GET, as Keylime's verifier does with agent mTLS off. */
export const httpFetchKeylime: FetchKeylime = async (baseUrl, path, signal) => {
  const u = new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
  const res = await fetch(u, { signal, headers: { accept: 'application/json' } });
  if (!res.ok) {
    let status = '';
    try {
      status = String(((await res.json()) as { status?: unknown }).status ?? '');
    } catch {
      status = '';
    }
    throw new Error(`${u.origin} answered ${res.status}${status !== '' ? `: ${status}` : ''}`);
  }
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // a 200 that is not JSON is a malformed answer (a verdict), not an unreachable agent
    return { malformedJson: text.slice(0, 200) };
  }
};

/** A Keylime nonce: alphanumeric (rust-keylime refuses others), 40 characters (20 random bytes). */
export function keylimeNonce(): string {
  return randomBytes(20).toString('hex');
}

export type KeylimePollOutcome =
  | { readonly kind: 'verdict'; readonly verdict: Verdict }
  | { readonly kind: 'unreachable'; readonly detail: string };

/**
 * Poll `a` once and store the verdict.
 * @throws VerifierError from the store (V_LEASE_LOST, V_NOT_ENROLLED, …), database errors
 */
export async function attestKeylimeAgent(
  db: Kysely<Database>,
  opts: StoreOptions,
  a: ClaimedAgent,
  lease: PullLease,
  signal: AbortSignal,
  fetchKeylime: FetchKeylime = httpFetchKeylime,
): Promise<KeylimePollOutcome> {
  let req: KeylimeAgentRequest;
  try {
    req = keylimeRequest(a.requirePcrs, keylimeNonce(), { entries: a.offsetEntries, bytes: a.offsetBytes });
  } catch (e) {
    const failure: Failure = {
      step: 'quote',
      code: 'required-pcr-not-quoted',
      message: `the agent's required PCRs (${a.requirePcrs}) have no PCR 10: Keylime's mask must ask for it`,
      field: 'requirePcrs',
      fix: 'fleet update ID --pcrs sha256:10 (one bank, with PCR 10)',
      cause: (e as Error).message,
    };
    return { kind: 'verdict', verdict: await storeMalformed(db, opts, a.id, failure, lease) };
  }
  let body: unknown;
  try {
    body = await fetchKeylime(a.pullUrl, keylimeRequestPath(req), signal);
  } catch (e) {
    return { kind: 'unreachable', detail: e instanceof Error ? e.message : String(e) };
  }
  let r = readKeylimeAnswer(body, req);
  // A TPM reset since the stored state is a new boot whose list restarted: when the agent still
  // answered from the stored entry (the new list is already that long), ask again from entry 0
  // with a fresh nonce, as Keylime's verifier does on a boottime change, instead of failing once.
  if (r.ok && r.entry > 0 && (await resetSinceStored(db, a.id, r.evidence.attest))) {
    req = { ...req, nonce: keylimeNonce(), from: { entries: 0, bytes: 0 } };
    try {
      body = await fetchKeylime(a.pullUrl, keylimeRequestPath(req), signal);
    } catch (e) {
      return { kind: 'unreachable', detail: e instanceof Error ? e.message : String(e) };
    }
    r = readKeylimeAnswer(body, req);
  }
  if (!r.ok) return { kind: 'verdict', verdict: await storeMalformed(db, opts, a.id, r.failure, lease) };
  return { kind: 'verdict', verdict: await storeAttestation(db, opts, a.id, r.evidence, lease) };
}

/**
 * True when `attest` (not yet verified: only used to decide to ask again, the pipeline verifies
 * whatever is stored) carries another TPM resetCount than the stored running state.
 */
async function resetSinceStored(db: Kysely<Database>, agentId: string, attest: Uint8Array): Promise<boolean> {
  const row = await db
    .selectFrom('attest_state')
    .select('boot_reset_count')
    .where('agent_id', '=', agentId)
    .executeTakeFirst();
  if (row?.boot_reset_count === null || row?.boot_reset_count === undefined) return false;
  try {
    return decodeTpmsAttest(attest).clockInfo.resetCount !== Number(row.boot_reset_count);
  } catch {
    return false; // the quote step names what is wrong with it
  }
}

/**
 * Store a failing verdict for an answer that could not be read: no pipeline step ran, the running
 * state is kept; the verdict, the agent's state (and an event when it changed) and the lease's
 * release are one transaction fenced by the lease, as in `storeAttestation`.
 * @throws VerifierError V_NOT_FOUND, V_LEASE_LOST (nothing stored)
 */
export async function storeMalformed(
  db: Kysely<Database>,
  opts: StoreOptions,
  agentId: string,
  failure: Failure,
  lease: PullLease,
): Promise<Verdict> {
  return db.transaction().execute(async (tx) => {
    const agent = await lockAgent(tx, agentId, lease);
    const next = await tx
      .selectFrom('attest_state')
      .select(['next_entries', 'next_bytes'])
      .where('agent_id', '=', agentId)
      .executeTakeFirst();
    const now = new Date();
    const skipped = (step: 'quote' | 'boot' | 'ima' | 'refs') => ({
      step,
      status: 'skipped' as const,
      detail: 'not evaluated: the agent’s answer could not be read',
    });
    const v: Verdict = Object.freeze({
      agentId,
      at: now.toISOString(),
      status: 'fail',
      steps: [
        { step: failure.step, status: 'fail' as const, detail: failure.message },
        ...(['quote', 'boot', 'ima', 'refs'] as const).filter((s) => s !== failure.step).map(skipped),
      ],
      failure,
      notEstablished: ['anything: the agent’s answer could not be read'],
      next: { imaOffset: { entries: Number(next?.next_entries ?? 0), bytes: Number(next?.next_bytes ?? 0) } },
    });
    await storeVerdict(tx, agentId, agent, v, {
      now,
      to: agent.state === 'paused' ? 'paused' : 'failing',
      retention: opts.retention,
      lease,
    });
    return v;
  });
}
