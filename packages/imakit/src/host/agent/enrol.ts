/**
 * Enrolment with the verifier's registrar (issue 13 part 1): prove that a new AK lives in the same
 * TPM as the EK.
 *
 *  1. The EK is regenerated from its TCG template (CreatePrimary is deterministic); its certificate
 *     is read from NV when the TPM has one (RSA 0x01c00002, ECC 0x01c0000a, P-384 0x01c00016).
 *  2. The AK is created under the EK into the AK directory, or the one already there is reused
 *     (loaded under this TPM's EK, so an AK directory of another TPM is refused).
 *  3. POST /v1/registrar/enrol {id, ekPublic, ekCertificate?, akPublic} (TPM2B_PUBLIC bytes, DER,
 *     base64) → a credential bound to the AK's Name and sealed to the EK (MakeCredential).
 *  4. TPM2_ActivateCredential releases the secret only when the AK named is loaded in the TPM that
 *     holds the EK; POST /v1/registrar/activate {id, secret} → the agent's token, stored 0600 in
 *     STATE/agent-token.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../core/bytes/bytes.ts';
import { EK_CERT_NV } from '../../core/tpm/commands/nv.ts';
import type { EkKind } from '../../core/tpm/commands/templates.ts';
import { ImakitError } from '../../errors.ts';
import { TpmClient } from '../tpm/client.ts';
import { createAkDir, loadAkDir, readAkInfo } from '../tpm/ak-files.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import type { AgentConfig } from './config.ts';
import { apiClient, readCaFile, type ApiClient } from './api-client.ts';
import { readSecretFile, writeSecretFile } from './secret-files.ts';

const EK_NV: Readonly<Record<EkKind, number>> = Object.freeze({
  rsa: EK_CERT_NV.RSA_2048,
  ecc: EK_CERT_NV.ECC_P256,
  ecc384: EK_CERT_NV.ECC_P384_H3,
});

export interface EnrolResult {
  readonly id: string;
  readonly akName: string;
  /** true when an AK already in the AK directory was reused */
  readonly akReused: boolean;
  readonly ekCertificate: boolean;
  readonly tokenPath: string;
}

/** The agent token file. */
export const agentTokenPath = (c: AgentConfig): string => join(c.stateDir, 'agent-token');

/** An API client for the agent, optionally with its token. */
export function agentApi(c: AgentConfig, token?: string): ApiClient {
  return apiClient({
    baseUrl: c.verifier,
    ...(token !== undefined ? { authorization: `Agent ${token}` } : {}),
    ...(c.tls.ca !== undefined ? { ca: readCaFile(c.tls.ca) } : {}),
    ...(c.tls.insecure ? { insecure: true } : {}),
  });
}

/**
 * The stored agent token.
 * @throws ImakitError E_AGENT_NOT_ENROLLED when there is none
 */
export function readAgentToken(c: AgentConfig): string {
  const t = readSecretFile(agentTokenPath(c));
  if (t === undefined || t === '')
    throw new ImakitError(
      'E_AGENT_NOT_ENROLLED',
      `no agent token at ${agentTokenPath(c)}: run imakit agent enrol`,
    );
  return t;
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
function unb64(s: unknown, field: string): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s))
    throw new ImakitError('E_API_UNAVAILABLE', `the registrar's answer has no base64 '${field}'`, { field });
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/**
 * Enrol this machine's TPM with the registrar.
 * @throws ImakitError E_TPM_* (the TPM), E_API_REJECTED / E_API_UNAVAILABLE (the registrar),
 *   E_KEY_MISMATCH (an AK directory of another TPM), E_IO_WRITE (the AK or token files)
 */
export async function enrol(c: AgentConfig): Promise<EnrolResult> {
  const api = agentApi(c);
  const tpm = await TpmClient.open(c.tpm);
  try {
    const akReused = existsSync(join(c.akDir, 'ak.json'));
    const ekKind = akReused ? readAkInfo(c.akDir).parent.ek : c.ek;
    if (!akReused) await createAkDir(tpm, c.akDir, { ek: ekKind, kind: 'rsassa' });
    const info = readAkInfo(c.akDir);
    const akPublic = readBoundedFile(join(c.akDir, 'ak.pub'), 'signature');
    const nvs = new Set(await tpm.handles(0x01000000));
    const ekCert = nvs.has(EK_NV[ekKind]) ? await tpm.nvReadAll(EK_NV[ekKind]) : undefined;
    const ek = await tpm.createEk(ekKind);
    try {
      if (toHex(ek.name) !== info.parent.name)
        throw new ImakitError('E_KEY_MISMATCH', `the AK in ${c.akDir} was made under another TPM's EK`, {
          path: c.akDir,
        });
      const r = await api.request<{
        id?: unknown;
        credential?: { idObject?: unknown; encryptedSecret?: unknown };
      }>('POST', '/v1/registrar/enrol', {
        id: c.id,
        ekPublic: b64(ek.publicBytes),
        ...(ekCert !== undefined ? { ekCertificate: b64(ekCert) } : {}),
        akPublic: b64(akPublic),
      });
      const credential = {
        credentialBlob: unb64(r.credential?.idObject, 'credential.idObject'),
        secret: unb64(r.credential?.encryptedSecret, 'credential.encryptedSecret'),
      };
      const { key, transient } = await loadAkDir(tpm, c.akDir);
      let secret: Uint8Array;
      try {
        secret = await tpm.activateCredential(key.handle, ek, credential);
      } finally {
        if (transient) await tpm.flush(key.handle);
      }
      const a = await api.request<{ agentToken?: unknown }>('POST', '/v1/registrar/activate', {
        id: c.id,
        secret: b64(secret),
      });
      if (typeof a.agentToken !== 'string' || a.agentToken === '')
        throw new ImakitError('E_API_UNAVAILABLE', "the registrar's answer has no agentToken", {
          field: 'agentToken',
        });
      writeSecretFile(agentTokenPath(c), `${a.agentToken}\n`);
      return Object.freeze({
        id: c.id,
        akName: info.name,
        akReused,
        ekCertificate: ekCert !== undefined,
        tokenPath: agentTokenPath(c),
      });
    } finally {
      await tpm.flush(ek.handle);
    }
  } finally {
    await tpm.close();
  }
}
