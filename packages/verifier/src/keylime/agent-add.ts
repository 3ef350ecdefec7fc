/**
 * Adding a Keylime agent (`POST /v1/agents` with `keylimeAgent` and `akPublic`; `imakit fleet add
 * --keylime-agent HOST:PORT --ak FILE`): the agent already has an AK its Keylime registrar
 * enrolled, so the AK is given, not enrolled here. It is a TPM2B_PUBLIC (the registrar's
 * `aik_tpm`, or `ak.pub` of `imakit tpm ak create`) or a public key (SubjectPublicKeyInfo DER, from
 * a PEM). A TPM2B_PUBLIC lets the quote step check the key is a restricted signing key; a bare
 * public key cannot say so, and verdicts say it is not established.
 */
import { createPublicKey } from 'node:crypto';
import { decodeTpm2bPublic, parsePcrSelectionText, prepareQuoteAk } from 'imakit/core';
import { VerifierError } from '../errors.ts';

/** DER SEQUENCE: a SubjectPublicKeyInfo; a TPM2B_PUBLIC starts with its u16 size (0x00 or 0x01). */
const DER_SEQUENCE = 0x30;

/** The AK as stored, ready for the quote step. @throws on a key that cannot be used */
export function storedAkKey(ak: Uint8Array): ReturnType<typeof prepareQuoteAk> {
  if (ak[0] === DER_SEQUENCE)
    return prepareQuoteAk(createPublicKey({ key: Buffer.from(ak), format: 'der', type: 'spki' }));
  return prepareQuoteAk(decodeTpm2bPublic(ak));
}

/**
 * Check a Keylime agent's address, AK and PCRs.
 * @throws VerifierError V_VALIDATION naming the field
 */
export function checkKeylimeAgent(
  address: string | undefined,
  akPublicB64: string | undefined,
  requirePcrs: string,
): { pullUrl: string; akPublic: Uint8Array } {
  const bad = (field: string, message: string): never => {
    throw new VerifierError('V_VALIDATION', `${field}: ${message}`, { field });
  };
  if (address === undefined) return bad('body/keylimeAgent', 'is required with akPublic');
  if (akPublicB64 === undefined)
    return bad('body/akPublic', 'is required with keylimeAgent (the agent’s AK)');
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (!(port >= 1 && port <= 65535)) bad('body/keylimeAgent', `port ${port} is not 1-65535`);
  const akPublic = new Uint8Array(Buffer.from(akPublicB64, 'base64'));
  try {
    storedAkKey(akPublic);
  } catch (e) {
    bad('body/akPublic', `is neither a usable TPM2B_PUBLIC nor a public key: ${(e as Error).message}`);
  }
  let sel;
  try {
    sel = parsePcrSelectionText(requirePcrs);
  } catch (e) {
    return bad('body/requirePcrs', (e as Error).message);
  }
  const banks = sel.filter((s) => s.pcrs.length > 0);
  if (banks.length !== 1 || !banks[0]!.pcrs.includes(10) || banks[0]!.pcrs.some((p) => p > 23))
    bad(
      'body/requirePcrs',
      `a Keylime agent quotes one bank and must be asked for PCR 10 (IMA): ${requirePcrs} is not like sha256:10 or sha256:0-7,10`,
    );
  return { pullUrl: `http://${address}`, akPublic };
}
