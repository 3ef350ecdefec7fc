/**
 * Pull-mode polling: claim due agents (db/leases.ts), ask each for evidence over a fresh
 * single-use nonce, run the same verdict pipeline push mode runs and store the verdict the same
 * way (attest-store.ts), which releases the lease. Several processes may poll one PostgreSQL: the
 * leases keep any agent from being attested by two at once, and an agent whose process died is
 * taken over once its lease expires (within `leaseMs + pollMs`).
 *
 * The nonce is made here and compared by the quote verification; it never leaves this process
 * except to the agent, so it needs no row in `nonces` (push mode stores its nonces because the
 * answer arrives in another request, possibly at another process).
 *
 * `fetchEvidence` is injectable (load tests simulate agents); the default is `httpFetchEvidence`,
 * the agent's `GET /v1/evidence` (imakit's host/agent/pull.ts). Agents with transport `keylime`
 * are asked over Keylime's pull API instead (keylime/agent-poll.ts; `fetchKeylime` injectable), and
 * their unreadable answers are stored verdicts, not retries. All the poller's state lives in
 * the closure `startPoller` returns; `stop()` waits for the attestations in flight.
 */
import { Compile } from 'typebox/compile';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { claimDueAgents, releaseLease, type ClaimedAgent } from '../db/leases.ts';
import {
  EvidenceBody,
  evidenceFromBody,
  freshNonce,
  storeAttestation,
  type EvidenceBodyT,
} from '../attest-store.ts';
import { VerifierError } from '../errors.ts';
import type { ReferenceSetCache } from '../refs-store.ts';
import type { Verdict } from '../pipeline/types.ts';
import { attestKeylimeAgent, type FetchKeylime } from '../keylime/agent-poll.ts';

/** What the poller asks an agent for. */
export interface EvidenceRequest {
  readonly agentId: string;
  readonly pullUrl: string;
  /** hex */
  readonly nonce: string;
  readonly pcrs: string;
  readonly offsetBytes: number;
  readonly signal: AbortSignal;
}

/** Fetch an agent's evidence; resolves with the JSON body (validated by the poller). */
export type FetchEvidence = (req: EvidenceRequest) => Promise<unknown>;

/** How one claimed agent ended. */
export type PollOutcome =
  | { readonly kind: 'verdict'; readonly agentId: string; readonly verdict: Verdict }
  | { readonly kind: 'unreachable'; readonly agentId: string; readonly detail: string }
  | { readonly kind: 'evidence-invalid'; readonly agentId: string; readonly detail: string }
  | { readonly kind: 'lease-lost'; readonly agentId: string }
  | { readonly kind: 'skipped'; readonly agentId: string; readonly code: string };

export interface PollerOptions {
  readonly db: Kysely<Database>;
  /** this process's name in the lease (unique per process: host + pid + start time) */
  readonly owner: string;
  readonly refs: ReferenceSetCache;
  /** verdicts kept per agent */
  readonly retention: number;
  readonly fetchEvidence?: FetchEvidence;
  /** how Keylime agents (transport 'keylime') are asked; default plain HTTP GET */
  readonly fetchKeylime?: FetchKeylime;
  /** attestations in flight at once (default 16) */
  readonly concurrency?: number;
  /** how often to look for due agents when idle, ms (default 1000) */
  readonly pollMs?: number;
  /** how long a claim holds an agent, ms (default 30000); a fetch is aborted before it runs out */
  readonly leaseMs?: number;
  /** after an unreachable agent or invalid evidence, ask again after this many ms (default 30000) */
  readonly retryMs?: number;
  /** told about every claimed agent's outcome (tests, metrics) */
  readonly onOutcome?: (o: PollOutcome) => void;
  /** told about a failed claim (the database is down); the poller keeps trying every pollMs */
  readonly onError?: (e: unknown) => void;
}

export interface PollerStats {
  readonly claimed: number;
  readonly verdicts: number;
  readonly unreachable: number;
  readonly evidenceInvalid: number;
  readonly leaseLost: number;
  readonly skipped: number;
  readonly inFlight: number;
}

export interface Poller {
  stats(): PollerStats;
  /** stop claiming and wait for the attestations in flight */
  stop(): Promise<void>;
}

const checkEvidence = Compile(EvidenceBody);

/** The agent's pull endpoint over HTTP(S): `GET {pullUrl}/v1/evidence?nonce&pcrs&offset`. */
export const httpFetchEvidence: FetchEvidence = async (req) => {
  const u = new URL(`${req.pullUrl.replace(/\/+$/, '')}/v1/evidence`);
  u.searchParams.set('nonce', req.nonce);
  u.searchParams.set('pcrs', req.pcrs);
  u.searchParams.set('offset', String(req.offsetBytes));
  const res = await fetch(u, { signal: req.signal, headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${u.origin} answered ${res.status}`);
  return res.json();
};

/** Start polling. */
export function startPoller(o: PollerOptions): Poller {
  const concurrency = o.concurrency ?? 16;
  const pollMs = o.pollMs ?? 1000;
  const leaseMs = o.leaseMs ?? 30_000;
  const retryMs = o.retryMs ?? 30_000;
  const fetchEvidence = o.fetchEvidence ?? httpFetchEvidence;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw new RangeError(`concurrency must be ≥ 1, not ${concurrency}`);
  if (pollMs <= 0 || leaseMs <= 0 || retryMs <= 0)
    throw new RangeError('pollMs, leaseMs, retryMs must be > 0');
  const counts = { claimed: 0, verdicts: 0, unreachable: 0, evidenceInvalid: 0, leaseLost: 0, skipped: 0 };
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let stopWait: (() => void) | undefined;
  // set while the loop waits for a free slot after a full claim: a finished attestation ends the wait
  let wake: (() => void) | undefined;

  const tell = (out: PollOutcome): void => {
    if (out.kind === 'verdict') counts.verdicts++;
    else if (out.kind === 'unreachable') counts.unreachable++;
    else if (out.kind === 'evidence-invalid') counts.evidenceInvalid++;
    else if (out.kind === 'lease-lost') counts.leaseLost++;
    else counts.skipped++;
    o.onOutcome?.(out);
  };

  // a store that refused: a lost lease is now another process's to release; any other refusal
  // (paused, not enrolled, deleted) releases the lease so the agent is retried later
  const refused = async (a: ClaimedAgent, e: unknown): Promise<PollOutcome> => {
    if (!(e instanceof VerifierError)) throw e;
    if (e.code === 'V_LEASE_LOST') return { kind: 'lease-lost', agentId: a.id };
    await releaseLease(o.db, o.owner, a.id, retryMs);
    return { kind: 'skipped', agentId: a.id, code: e.code };
  };

  const attest = async (a: ClaimedAgent): Promise<PollOutcome> => {
    const nonce = freshNonce();
    // the fetch must end while the lease is live, with a margin for storing the verdict
    const budget = Math.max(1, a.leaseUntil.getTime() - a.claimedAt.getTime() - Math.min(1000, leaseMs / 4));
    const signal = AbortSignal.timeout(budget);
    if (a.transport === 'keylime') return attestKeylime(a, signal);
    let body: unknown;
    try {
      body = await fetchEvidence({
        agentId: a.id,
        pullUrl: a.pullUrl,
        nonce,
        pcrs: a.requirePcrs,
        offsetBytes: a.offsetBytes,
        signal,
      });
    } catch (e) {
      await releaseLease(o.db, o.owner, a.id, retryMs);
      return { kind: 'unreachable', agentId: a.id, detail: e instanceof Error ? e.message : String(e) };
    }
    if (!checkEvidence.Check(body)) {
      const first = [...checkEvidence.Errors(body)][0];
      await releaseLease(o.db, o.owner, a.id, retryMs);
      return {
        kind: 'evidence-invalid',
        agentId: a.id,
        detail:
          `${first?.instancePath ?? ''} ${first?.message ?? 'does not match the evidence schema'}`.trim(),
      };
    }
    const ev = body as EvidenceBodyT;
    if (ev.nonce.toLowerCase() !== nonce) {
      // the quote would fail on it anyway; this names the cause plainly
      await releaseLease(o.db, o.owner, a.id, retryMs);
      return { kind: 'evidence-invalid', agentId: a.id, detail: 'the evidence answers another nonce' };
    }
    try {
      const verdict = await storeAttestation(
        o.db,
        { refs: o.refs, retention: o.retention },
        a.id,
        evidenceFromBody(ev),
        { owner: o.owner, startedAt: a.claimedAt },
      );
      return { kind: 'verdict', agentId: a.id, verdict };
    } catch (e) {
      return refused(a, e);
    }
  };

  // Keylime's pull API (keylime/agent-poll.ts): an unreadable answer is a stored verdict
  const attestKeylime = async (a: ClaimedAgent, signal: AbortSignal): Promise<PollOutcome> => {
    try {
      const r = await attestKeylimeAgent(
        o.db,
        { refs: o.refs, retention: o.retention },
        a,
        { owner: o.owner, startedAt: a.claimedAt },
        signal,
        o.fetchKeylime,
      );
      if (r.kind === 'verdict') return { kind: 'verdict', agentId: a.id, verdict: r.verdict };
      await releaseLease(o.db, o.owner, a.id, retryMs);
      return { kind: 'unreachable', agentId: a.id, detail: r.detail };
    } catch (e) {
      return refused(a, e);
    }
  };

  const run = (a: ClaimedAgent): void => {
    const p: Promise<void> = attest(a)
      .then(tell, (e: unknown) => {
        // a database failure mid-attestation: nothing was stored; the lease expires and the agent
        // is claimed again
        o.onError?.(e);
      })
      .finally(() => {
        inFlight.delete(p);
        wake?.();
      });
    inFlight.add(p);
  };

  const sleep = (ms: number, wakeable: boolean): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = wakeable ? done : undefined;
      stopWait = done;
    });

  const loop = async (): Promise<void> => {
    while (!stopped) {
      const free = concurrency - inFlight.size;
      let full = false;
      if (free > 0) {
        try {
          const got = await claimDueAgents(o.db, o.owner, free, leaseMs);
          counts.claimed += got.length;
          for (const a of got) run(a);
          full = got.length === free;
        } catch (e) {
          o.onError?.(e);
        }
      }
      if (stopped) break;
      // a full claim means more may be due: claim again as soon as a slot frees; else wait pollMs
      if (full && inFlight.size < concurrency) continue;
      await sleep(pollMs, full);
    }
  };
  const looping = loop();

  return Object.freeze({
    stats: (): PollerStats => Object.freeze({ ...counts, inFlight: inFlight.size }),
    async stop(): Promise<void> {
      stopped = true;
      stopWait?.();
      await looping;
      await Promise.allSettled([...inFlight]);
    },
  });
}
