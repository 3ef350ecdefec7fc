/**
 * Enrolment as an agent does it (routes/registrar.ts), for tests with a software TPM: send the EK
 * and AK, activate the credential in the TPM (TPM2_ActivateCredential), send the secret back.
 */
import assert from 'node:assert/strict';
import type { App } from '../src/index.ts';
import type { SwtpmMachine } from './swtpm-machine.ts';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * Enrol `id` with `ak` (asserting the registrar made a credential) and activate it.
 * @returns the secret the TPM released and the registrar's answer to it (not asserted)
 */
export async function enrolInTpm(
  app: App,
  m: SwtpmMachine,
  id: string,
  ak: { readonly handle: number; readonly publicBytes: Uint8Array },
) {
  const enrol = await app.inject({
    method: 'POST',
    url: '/v1/registrar/enrol',
    payload: { id, ekPublic: b64(m.ek.publicBytes), akPublic: b64(ak.publicBytes) },
  });
  assert.equal(enrol.statusCode, 201, enrol.body);
  const cred = enrol.json().credential;
  const secret = await m.client.activateCredential(ak.handle, m.ek, {
    credentialBlob: Buffer.from(cred.idObject, 'base64'),
    secret: Buffer.from(cred.encryptedSecret, 'base64'),
  });
  const activated = await app.inject({
    method: 'POST',
    url: '/v1/registrar/activate',
    payload: { id, secret: b64(secret) },
  });
  return { secret, activated };
}
