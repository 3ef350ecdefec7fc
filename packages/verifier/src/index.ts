/** imakit's fleet verifier: the app factory, the database and operator tokens. */
export { buildApp, type App, type AppDeps } from './app.ts';
export { openDatabase, type DatabaseTarget, type OpenDatabase } from './db/open.ts';
export { createToken, roleAllows, ROLES, type Role } from './auth.ts';
export { VERIFIER_CATALOGUE, VerifierError, type VerifierErrorCode } from './errors.ts';
export {
  verifyKeylimeEvidence,
  type KeylimeEvidenceResult,
  type KeylimeFailure,
  type KeylimeTpmEvidence,
} from './keylime/evidence.ts';
export {
  httpFetchEvidence,
  startPoller,
  type EvidenceRequest,
  type FetchEvidence,
  type Poller,
  type PollerOptions,
  type PollerStats,
  type PollOutcome,
} from './poller/poller.ts';
export { claimDueAgents, releaseLease, type ClaimedAgent } from './db/leases.ts';
export { ReferenceSetCache } from './refs-store.ts';
