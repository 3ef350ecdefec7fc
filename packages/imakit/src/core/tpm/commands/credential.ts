/**
 * TPM2_ActivateCredential (Part 3 §12.5): the TPM decrypts a credential made for (EK, AK name) and
 * releases the secret only if the AK named in it is loaded in this TPM. `activateHandle` (the AK)
 * is in the ADMIN role, `keyHandle` (the EK) in the USER role: an EK with userWithAuth clear needs
 * its policy session there (tpm.md "Credential activation").
 *
 * Also the tpm2-tools credential file (`tpm2_makecredential -o`): u32 0xBADCC0DE ‖ u32 1 ‖
 * TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET.
 */
import { CodecError } from '../../../errors.ts';
import { TPM_CC } from '../constants.ts';
import { TpmReader, TpmWriter } from '../marshal.ts';
import { commandSpec, params, type TpmAuth, type TpmCommandSpec } from './frame.ts';

/** A credential: TPM2B_ID_OBJECT contents and TPM2B_ENCRYPTED_SECRET contents (no size prefixes). */
export interface Credential {
  readonly credentialBlob: Uint8Array;
  readonly secret: Uint8Array;
}

/** tpm2-tools' credential file magic and version (lib/files.c `files_save_credential`... ). */
export const TPM2_TOOLS_CRED_MAGIC = 0xbadcc0de;
export const TPM2_TOOLS_CRED_VERSION = 1;

/** Decode a `tpm2_makecredential -o` file. @throws CodecError */
export function decodeToolsCredential(bytes: Uint8Array): Credential {
  const r = new TpmReader(bytes);
  const magic = r.u32('magic');
  if (magic !== TPM2_TOOLS_CRED_MAGIC)
    throw new CodecError('E_CODEC_BAD_VALUE', `magic 0x${magic.toString(16)} is not 0xbadcc0de`, {
      offset: 0,
      field: 'magic',
    });
  const version = r.u32('version');
  if (version !== TPM2_TOOLS_CRED_VERSION)
    throw new CodecError('E_CODEC_BAD_VERSION', `credential file version ${version}`, {
      offset: 4,
      field: 'version',
    });
  const credentialBlob = r.tpm2b('credentialBlob', 1024).slice();
  const secret = r.tpm2b('secret', 1024).slice();
  r.end('credential file');
  return Object.freeze({ credentialBlob, secret });
}

/** Encode a credential in tpm2-tools' file form. */
export function encodeToolsCredential(c: Credential): Uint8Array {
  return new TpmWriter()
    .u32(TPM2_TOOLS_CRED_MAGIC)
    .u32(TPM2_TOOLS_CRED_VERSION)
    .tpm2b(c.credentialBlob)
    .tpm2b(c.secret)
    .finish();
}

/** TPM2_ActivateCredential(activateHandle, keyHandle, credentialBlob, secret) → certInfo. */
export function activateCredentialCommand(
  activateHandle: number,
  keyHandle: number,
  credential: Credential,
  activateAuth: TpmAuth,
  keyAuth: TpmAuth,
): TpmCommandSpec<Uint8Array> {
  return commandSpec({
    code: TPM_CC.ActivateCredential,
    handles: [activateHandle, keyHandle],
    auths: [activateAuth, keyAuth],
    params: params((w) => w.tpm2b(credential.credentialBlob).tpm2b(credential.secret)),
    responseHandles: 0,
    parse: (r) => r.tpm2b('certInfo', 64).slice(),
  });
}
