/**
 * Push mode (issue 13 part 1): the agent asks for a challenge, answers it with evidence and gets a
 * verdict; `runPush` repeats that every interval and backs off (exponential, with jitter) while
 * attempts fail, until its AbortSignal fires.
 *
 *   POST /v1/attest/challenge  → { nonce (hex), pcrs: 'sha256:0-7,10', imaOffset: { entries, bytes }, expiresAt }
 *   POST /v1/attest/evidence   { nonce, quote: { attest, signature }, pcrs: { sha256: { '0': hex } },
 *                                ima: { offsetBytes, entries (base64) }, eventLog?, bootCount }
 *                              → { verdict: { status, steps, failure?, notEstablished, next } }
 *
 * Both with `Authorization: Agent <token>`, a session bound to the AK: issued at enrolment and
 * renewed by a TPM quote when the verifier says it expired (session.ts). The agent sends the list from the
 * verifier's byte offset only; what it sent is recorded in STATE/last.json for `imakit agent status`.
 */
import { join } from 'node:path';
import { fromHex } from '../../core/bytes/bytes.ts';
import { ImakitError } from '../../errors.ts';
import { TpmClient } from '../tpm/client.ts';
import type { AgentConfig } from './config.ts';
import { agentApi, readAgentToken } from './enrol.ts';
import type { ApiClient } from './api-client.ts';
import { bootCount, quotePcrs, readEventLogIfPresent, readListFrom } from './evidence.ts';
import { readSecretFile, writeSecretFile } from './secret-files.ts';
import { renewSession, sessionExpired } from './session.ts';

/** The verifier's challenge. */
export interface Challenge {
  readonly nonce: string;
  readonly pcrs: string;
  readonly imaOffset: { readonly entries: number; readonly bytes: number };
  readonly expiresAt?: string;
}

/** The verifier's verdict, as much of it as the agent looks at. */
export interface AgentVerdict {
  /** the verifier says `pass` or `fail` (packages/verifier, pipeline/types.ts) */
  readonly status: string;
  readonly steps?: unknown;
  readonly failure?: { readonly step?: string; readonly code?: string; readonly [k: string]: unknown };
  readonly notEstablished?: unknown;
  /** when the verifier wants the next attestation (ISO time or seconds) */
  readonly next?: unknown;
}

export interface AttestOutcome {
  readonly verdict: AgentVerdict;
  /** the list bytes sent: from `offsetBytes`, `bytes` long */
  readonly ima: { readonly offsetBytes: number; readonly bytes: number; readonly capped: boolean };
  readonly eventLogBytes: number;
  readonly bootCount: number;
  readonly pcrs: string;
  readonly at: string;
  /** set when a first attempt was refused as `ima-reboot-resend` and the list was sent again from 0 */
  readonly resentAfterReboot?: { readonly offsetBytes: number; readonly bytes: number };
}

/** True when the verdict passed (the verifier's `pass`). */
export const verdictPassed = (v: AgentVerdict): boolean => v.status === 'pass';

/**
 * The verifier found a TPM reset (a new boot) and wants the list of the new boot from its start:
 * `ima-reboot-resend` with `next.imaOffset` {0, 0}.
 */
function wantsResendFromStart(v: AgentVerdict, sentFrom: number): boolean {
  return v.status !== 'pass' && v.failure?.code === 'ima-reboot-resend' && sentFrom !== 0;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function checkChallenge(c: unknown): Challenge {
  const o = c as Partial<Challenge> | undefined;
  if (
    typeof o?.nonce !== 'string' ||
    !/^[0-9a-fA-F]{2,128}$/.test(o.nonce) ||
    typeof o.pcrs !== 'string' ||
    typeof o.imaOffset?.bytes !== 'number' ||
    !Number.isSafeInteger(o.imaOffset.bytes) ||
    o.imaOffset.bytes < 0
  )
    throw new ImakitError('E_API_UNAVAILABLE', 'the challenge lacks a hex nonce, pcrs or imaOffset.bytes', {
      field: 'challenge',
    });
  return o as Challenge;
}

/** Collect evidence for `ch` (the list from ch.imaOffset.bytes, a quote over ch.pcrs with ch.nonce). */
export async function collectEvidence(
  c: AgentConfig,
  ch: Challenge,
  tpm: TpmClient,
): Promise<{
  body: Record<string, unknown>;
  ima: AttestOutcome['ima'];
  eventLogBytes: number;
  bootCount: number;
}> {
  const list = readListFrom(c.imaList, ch.imaOffset.bytes);
  const eventLog = readEventLogIfPresent(c.eventLog);
  const boots = bootCount(c.bootIdPath, c.stateDir);
  // the quote after the list read: entries measured in between are in the PCR but not in the bytes
  // sent, which the verifier sees as a list that is behind the quote and asks again from its offset
  const q = await quotePcrs(tpm, c.akDir, fromHex(ch.nonce), ch.pcrs);
  return {
    body: {
      nonce: ch.nonce,
      quote: { attest: b64(q.quote.attest), signature: b64(q.quote.signature) },
      pcrs: q.pcrs,
      ima: { offsetBytes: list.offsetBytes, entries: b64(list.bytes) },
      ...(eventLog !== undefined ? { eventLog: b64(eventLog) } : {}),
      bootCount: boots,
    },
    ima: { offsetBytes: list.offsetBytes, bytes: list.bytes.length, capped: list.capped },
    eventLogBytes: eventLog?.length ?? 0,
    bootCount: boots,
  };
}

/**
 * One attestation: challenge, evidence, verdict. Records it in STATE/last.json. A verdict of
 * `ima-reboot-resend` (the TPM was reset since the verifier's offset) is answered once more at
 * once, with the whole list from offset 0; the outcome is the second verdict.
 * @throws ImakitError E_AGENT_NOT_ENROLLED, E_API_*, E_TPM_*, E_IO_READ (the list)
 */
export async function attestOnce(c: AgentConfig, opts: { tpm?: TpmClient } = {}): Promise<AttestOutcome> {
  let api = agentApi(c, readAgentToken(c));
  const tpm = opts.tpm ?? (await TpmClient.open(c.tpm));
  let ch: Challenge;
  let ev: Awaited<ReturnType<typeof collectEvidence>>;
  let verdict: AgentVerdict;
  let resent: AttestOutcome['resentAfterReboot'];
  try {
    try {
      ch = checkChallenge(await api.request('POST', '/v1/attest/challenge', {}));
    } catch (e) {
      // the session ended: prove the AK for a new one (session.ts) and ask again, once
      if (!sessionExpired(e)) throw e;
      api = agentApi(c, await renewSession(c, tpm));
      ch = checkChallenge(await api.request('POST', '/v1/attest/challenge', {}));
    }
    ev = await collectEvidence(c, ch, tpm);
    verdict = await sendEvidence(api, ev.body);
    // after a TPM reset the offset the challenge gave belongs to the previous boot: the verifier
    // refuses it and asks for the new boot's list from its start, which is sent at once (a new
    // challenge: the nonce was used)
    if (wantsResendFromStart(verdict, ev.ima.offsetBytes)) {
      resent = { offsetBytes: ev.ima.offsetBytes, bytes: ev.ima.bytes };
      const ch2 = checkChallenge(await api.request('POST', '/v1/attest/challenge', {}));
      ch = { ...ch2, imaOffset: { entries: 0, bytes: 0 } };
      ev = await collectEvidence(c, ch, tpm);
      verdict = await sendEvidence(api, ev.body);
    }
  } finally {
    if (opts.tpm === undefined) await tpm.close();
  }
  const outcome: AttestOutcome = Object.freeze({
    verdict,
    ima: ev.ima,
    eventLogBytes: ev.eventLogBytes,
    bootCount: ev.bootCount,
    pcrs: ch.pcrs,
    at: new Date().toISOString(),
    ...(resent !== undefined ? { resentAfterReboot: resent } : {}),
  });
  writeSecretFile(join(c.stateDir, 'last.json'), `${JSON.stringify(outcome)}\n`);
  return outcome;
}

async function sendEvidence(api: ApiClient, body: Record<string, unknown>): Promise<AgentVerdict> {
  const r = await api.request<{ verdict?: AgentVerdict }>('POST', '/v1/attest/evidence', body);
  if (typeof r.verdict?.status !== 'string')
    throw new ImakitError('E_API_UNAVAILABLE', 'the verifier answered evidence without a verdict', {
      field: 'verdict',
    });
  return r.verdict;
}

/** What `imakit agent status` shows: enrolment and the last attestation. */
export interface AgentStatus {
  readonly id: string;
  readonly verifier: string;
  readonly enrolled: boolean;
  readonly akDir: string;
  readonly last: AttestOutcome | undefined;
}

/** Local status (no network, no TPM). */
export function agentStatus(c: AgentConfig): AgentStatus {
  const token = readSecretFile(join(c.stateDir, 'agent-token'));
  const lastText = readSecretFile(join(c.stateDir, 'last.json'));
  let last: AttestOutcome | undefined;
  if (lastText !== undefined)
    try {
      last = JSON.parse(lastText) as AttestOutcome;
    } catch {
      last = undefined;
    }
  return Object.freeze({
    id: c.id,
    verifier: c.verifier,
    enrolled: token !== undefined && token !== '',
    akDir: c.akDir,
    last,
  });
}

/** Exponential backoff with full jitter: a random wait in [base/2, base] where base = min(max, 2^n s). */
export function backoffMs(failures: number, maxSeconds: number, random: () => number = Math.random): number {
  const base = Math.min(maxSeconds, 2 ** Math.min(failures, 30)) * 1000;
  return Math.round(base / 2 + (random() * base) / 2);
}

export interface PushEvents {
  onVerdict?(o: AttestOutcome): void;
  onError?(e: unknown, retryInMs: number): void;
}

/**
 * Attest every `intervalSeconds` until `signal` aborts; after an error wait `backoffMs(n)` instead.
 * Resolves when aborted (never rejects for attempt errors: they go to `onError`).
 */
export async function runPush(
  c: AgentConfig,
  signal: AbortSignal,
  events: PushEvents = {},
  random: () => number = Math.random,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    let waitMs: number;
    try {
      const o = await attestOnce(c);
      failures = 0;
      events.onVerdict?.(o);
      waitMs = c.intervalSeconds * 1000;
    } catch (e) {
      failures++;
      waitMs = backoffMs(failures, c.maxBackoffSeconds, random);
      events.onError?.(e, waitMs);
    }
    await sleep(waitMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
