/**
 * The verifier's side of `imakit tpm`:
 *
 *   tpm credential make --ek EK --name HEX|--name-file FILE --secret HEX|--secret-file FILE --out FILE
 *       MakeCredential offline (no TPM): writes tpm2-tools' credential file, which
 *       `imakit tpm activate` and `tpm2_activatecredential -i` read. EK is a TPM2B_PUBLIC
 *       (`tpm2_readpublic -o`, `tpm2_createek -u`) or TPMT_PUBLIC file.
 *   tpm ek --verify-ca DIR [--at TIME]
 *       the EK certificates read from the TPM, each validated to a CA of DIR and compared with the
 *       TPM's EK public key (helpers used by tpm.ts).
 *
 * Exit: 0 written / every certificate valid; 1 a certificate did not validate or does not certify
 * the EK; 2 bad flags or files.
 */
import { ImakitError, withPath } from '../../errors.ts';
import { fromHex, toHex } from '../../core/bytes/bytes.ts';
import { decodeTpm2bPublic, decodeTpmtPublic, type TpmtPublic } from '../../core/tpm/public.ts';
import { makeCredential } from '../../core/tpm/make-credential.ts';
import { encodeToolsCredential } from '../../core/tpm/commands/credential.ts';
import { parseCertificate } from '../../core/keys/x509.ts';
import { ekCertMatchesPublic, verifyEkCertChain, type EkChainVerdict } from '../../core/tpm/ek-cert-chain.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import { writeAtomic } from '../../host/attest/attest-input.ts';
import type { CaCertificate } from '../../host/tpm/ca-dir.ts';

/** Flags of `tpm credential make`. */
export interface MakeFlags {
  ek: string;
  name?: string;
  nameFile?: string;
  secret?: string;
  secretFile?: string;
  out: string;
  json?: boolean;
}

const usage = (d: string): ImakitError => new ImakitError('E_USAGE', d);

function one(hex: string | undefined, file: string | undefined, flag: string): Uint8Array {
  if ((hex === undefined) === (file === undefined))
    throw usage(`give exactly one of --${flag} and --${flag}-file`);
  return hex !== undefined
    ? fromHex(hex.replace(/^0x/i, ''), `--${flag}`)
    : readBoundedFile(file!, 'signature');
}

/** An EK public area from a TPM2B_PUBLIC or TPMT_PUBLIC file. */
function readEkPublic(file: string): TpmtPublic {
  const b = readBoundedFile(file, 'key');
  return withPath(file, () => {
    try {
      return decodeTpm2bPublic(b);
    } catch {
      return decodeTpmtPublic(b);
    }
  });
}

/** `tpm credential make`: the file written and what it was made for. */
export function credentialMake(f: MakeFlags): {
  file: string;
  ekNameAlg: number;
  name: string;
  bytes: number;
} {
  const ek = readEkPublic(f.ek);
  // imakit AK dirs keep ak.name as hex text; tpm2_createak -n writes the raw Name
  const rawName = one(f.name, f.nameFile, 'name');
  const text = new TextDecoder('latin1').decode(rawName).trim();
  const name =
    f.nameFile !== undefined && /^([0-9a-f]{2})+$/i.test(text) ? fromHex(text, '--name-file') : rawName;
  const secret = one(f.secret, f.secretFile, 'secret');
  if (secret.length === 0 || secret.length > 64) throw usage(`the secret is ${secret.length} bytes (1..64)`);
  if (name.length < 2) throw usage('--name: a TPM Name is nameAlg ‖ digest (e.g. 000b…)');
  const file = encodeToolsCredential(makeCredential(ek, name, secret));
  writeAtomic(f.out, file);
  return { file: f.out, ekNameAlg: ek.nameAlg, name: toHex(name), bytes: file.length };
}

/** One EK certificate's validation, for `tpm ek --verify-ca`. */
export interface EkCertCheck {
  readonly chain: EkChainVerdict;
  /** the certificate's key is the TPM's EK */
  readonly keyMatches: boolean;
  readonly status: 'pass' | 'fail';
}

/** Validate an EK certificate (DER from NV) against the CA set and the TPM's EK public area. */
export function checkEkCertificate(
  der: Uint8Array,
  ek: TpmtPublic,
  cas: readonly CaCertificate[],
  at: Date,
): EkCertCheck {
  const cert = parseCertificate(der);
  const chain = verifyEkCertChain(
    cert,
    cas.map((c) => c.cert),
    at,
  );
  const keyMatches = ekCertMatchesPublic(cert, ek);
  return { chain, keyMatches, status: chain.status === 'pass' && keyMatches ? 'pass' : 'fail' };
}

/** `--at TIME` (ISO 8601) or now. */
export function atTime(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) throw usage(`--at ${at}: not an ISO 8601 time`);
  return d;
}

/** Text lines for one checked certificate. */
export function renderEkCheck(c: EkCertCheck): string {
  const lines = [
    `  chain: ${c.chain.status === 'pass' ? 'PASS' : `FAIL ${c.chain.code}`}: ${c.chain.detail}`,
    ...c.chain.chain.map((l, i) => `    ${i}: ${l.subject} (serial ${l.serialHex}, until ${l.notAfter})`),
    `  key: ${c.keyMatches ? "the certificate's key is this TPM's EK" : "FAIL the certificate's key is NOT this TPM's EK"}`,
  ];
  return lines.join('\n') + '\n';
}
