/**
 * The AK of a Keylime agent as `imakit fleet add --keylime-agent … --ak FILE` reads it: a
 * TPM2B_PUBLIC (Keylime's registrar `aik_tpm` decoded from base64, or `ak.pub` of `imakit tpm ak
 * create`) or a PEM public key (`ak.pem`). A PEM key becomes SubjectPublicKeyInfo DER, the form the
 * verifier takes beside TPM2B_PUBLIC.
 */
import { createPublicKey } from 'node:crypto';
import { ImakitError, isImakitError } from '../../errors.ts';
import { decodeTpm2bPublic } from '../../core/tpm/public.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';

/**
 * Read `path`: TPM2B_PUBLIC bytes as they are, or a PEM public key as SPKI DER.
 * @throws ImakitError E_IO_READ / E_IO_TOO_LARGE; E_KEY_PARSE naming the path when it is neither
 */
export function readAkPublicFile(path: string): { bytes: Uint8Array; form: 'tpm2b-public' | 'spki' } {
  const raw = readBoundedFile(path, 'tpm-object');
  const text = new TextDecoder('latin1').decode(raw.subarray(0, 64));
  if (text.trimStart().startsWith('-----BEGIN')) {
    try {
      const der = createPublicKey(new TextDecoder().decode(raw)).export({ type: 'spki', format: 'der' });
      return { bytes: new Uint8Array(der), form: 'spki' };
    } catch (e) {
      throw new ImakitError(
        'E_KEY_PARSE',
        `${path}: not a PEM public key: ${(e as Error).message}`,
        { path },
        { cause: e },
      );
    }
  }
  try {
    decodeTpm2bPublic(raw);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    throw new ImakitError(
      'E_KEY_PARSE',
      `${path}: neither a PEM public key nor a TPM2B_PUBLIC (${e.message})`,
      { path },
      { cause: e },
    );
  }
  return { bytes: raw, form: 'tpm2b-public' };
}
