/**
 * The verifier's one error catalogue (style.md practice 6): every error a route returns has a
 * stable code, an HTTP status and a message; the error handler (app.ts) maps these codes, imakit's
 * own codes (their catalogue carries an HTTP status too) and fastify's validation errors to one
 * JSON shape, `{ error: { code, message, ...context } }`, and never returns a stack or a 500 for
 * bad input.
 */
export const VERIFIER_CATALOGUE = Object.freeze({
  V_BAD_REQUEST: { http: 400, message: 'the request is malformed' },
  V_REFS_UNSIGNED: {
    http: 422,
    message: 'reference-set keys are configured: a set must be signed by one of them',
  },
  V_REFS_SIGNATURE: {
    http: 422,
    message: "the reference set's signature does not verify under the verifier's reference-set keys",
  },
  V_VALIDATION: { http: 400, message: 'the request does not match its schema' },
  V_UNAUTHENTICATED: { http: 401, message: 'a bearer token is required' },
  V_FORBIDDEN: { http: 403, message: "the token's role does not allow this" },
  V_SESSION_EXPIRED: { http: 401, message: "the agent's session expired: prove the AK again" },
  V_AK_PROOF_FAILED: { http: 403, message: 'the quote does not prove possession of the enrolled AK' },
  V_NOT_FOUND: { http: 404, message: 'no such resource' },
  V_AGENT_EXISTS: { http: 409, message: 'an agent with this id exists' },
  V_REFERENCE_SET_IN_USE: { http: 409, message: 'the reference set is assigned to agents' },
  V_NOT_ENROLLED: { http: 409, message: 'the agent has no enrolled attestation key' },
  V_AGENT_ENROLLED: { http: 409, message: 'the agent is enrolled with another EK' },
  V_AGENT_PAUSED: { http: 409, message: 'the agent is paused' },
  V_NONCE_UNKNOWN: { http: 409, message: 'the nonce is unknown or was already used' },
  V_NONCE_EXPIRED: { http: 409, message: 'the nonce expired' },
  V_NONCE_OTHER_AGENT: { http: 403, message: 'the nonce was issued to another agent' },
  V_AK_UNSUITABLE: { http: 400, message: 'the AK is not a restricted signing key' },
  V_ACTIVATION_FAILED: { http: 403, message: 'the activated secret does not match' },
  V_CHALLENGE_EXPIRED: { http: 409, message: 'the enrolment challenge expired' },
  V_BODY_TOO_LARGE: { http: 413, message: 'the request body is too large' },
  V_RATE_LIMITED: { http: 429, message: 'too many requests' },
  V_LEASE_LOST: { http: 409, message: "the pull lease on the agent expired or is another process's" },
  V_DATABASE_UNAVAILABLE: { http: 503, message: 'the database is unavailable' },
  V_INTERNAL: { http: 500, message: 'internal error' },
} as const);

export type VerifierErrorCode = keyof typeof VERIFIER_CATALOGUE;

/** An error a route raises on purpose; `context` names the field, agent or resource concerned. */
export class VerifierError extends Error {
  readonly code: VerifierErrorCode;
  readonly context: Readonly<Record<string, unknown>>;
  constructor(code: VerifierErrorCode, detail?: string, context: Record<string, unknown> = {}) {
    super(detail ?? VERIFIER_CATALOGUE[code].message);
    this.name = 'VerifierError';
    this.code = code;
    this.context = Object.freeze({ ...context });
  }
  get http(): number {
    return VERIFIER_CATALOGUE[this.code].http;
  }
}
