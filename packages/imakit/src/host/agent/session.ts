/**
 * The agent's session with the verifier, bound to its AK (the verifier's routes/agent-session.ts):
 * enrolment's activation issues the first session token; when it expires (the verifier answers
 * 401 V_SESSION_EXPIRED) the agent asks for a session challenge, quotes the PCR selection it names
 * with the challenge's nonce as qualifying data (only the TPM holding the AK can sign that), and
 * gets a new token, stored 0600 in STATE/agent-token in place of the old one.
 */
import { fromHex } from '../../core/bytes/bytes.ts';
import { ImakitError } from '../../errors.ts';
import type { TpmClient } from '../tpm/client.ts';
import { ApiError } from './api-client.ts';
import type { AgentConfig } from './config.ts';
import { agentApi, agentTokenPath } from './enrol.ts';
import { quotePcrs } from './evidence.ts';
import { writeSecretFile } from './secret-files.ts';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** True when the verifier refused a request because the agent's session ended. */
export const sessionExpired = (e: unknown): boolean =>
  e instanceof ApiError && e.status === 401 && e.apiCode === 'V_SESSION_EXPIRED';

/**
 * Prove possession of the AK and store the new session token.
 * @returns the new token
 * @throws ImakitError E_API_REJECTED (the proof was refused: V_AK_PROOF_FAILED, a re-enrolled
 *   agent), E_API_UNAVAILABLE, E_TPM_*, E_IO_WRITE
 */
export async function renewSession(c: AgentConfig, tpm: TpmClient): Promise<string> {
  const api = agentApi(c);
  const ch = await api.request<{ nonce?: unknown; pcrs?: unknown }>(
    'POST',
    '/v1/registrar/session/challenge',
    { id: c.id },
  );
  if (
    typeof ch.nonce !== 'string' ||
    !/^([0-9a-fA-F]{2}){20,32}$/.test(ch.nonce) ||
    typeof ch.pcrs !== 'string'
  )
    throw new ImakitError('E_API_UNAVAILABLE', 'the session challenge lacks a hex nonce or pcrs', {
      field: 'challenge',
    });
  const q = await quotePcrs(tpm, c.akDir, fromHex(ch.nonce), ch.pcrs);
  const r = await api.request<{ agentToken?: unknown }>('POST', '/v1/registrar/session', {
    id: c.id,
    nonce: ch.nonce,
    quote: { attest: b64(q.quote.attest), signature: b64(q.quote.signature) },
    pcrs: q.pcrs,
  });
  if (typeof r.agentToken !== 'string' || r.agentToken === '')
    throw new ImakitError('E_API_UNAVAILABLE', "the verifier's session answer has no agentToken", {
      field: 'agentToken',
    });
  writeSecretFile(agentTokenPath(c), `${r.agentToken}\n`);
  return r.agentToken;
}
