/**
 * A software "TPM" for load tests: an ECDSA P-256 restricted signing AK made with node:crypto,
 * described as a TPM2B_PUBLIC, and quotes over PCR sha256:10 encoded as the TPMS_ATTEST a TPM
 * signs (core's encoders), signed as a TPMT_SIGNATURE. Core's verifyQuote accepts them like a
 * TPM's: same bytes, same checks (nonce, PCR digest, clock monotonicity). Not a TPM: the key is in
 * memory; only for simulating many agents where swtpm per agent would be too slow.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { encodeBinaryList, templateDigest } from 'imakit/core';
import { imaNgEntry } from './kernel-fixture.ts';
import { encodeTpmsAttest } from '../../imakit/src/core/tpm/attest.ts';
import { encodeTpm2bPublic, tpmPublicName, type TpmtPublicEcc } from '../../imakit/src/core/tpm/public.ts';
import { encodeTpmtSignature } from '../../imakit/src/core/tpm/signature.ts';
import {
  TPM_ALG,
  TPM_ECC_CURVE,
  TPM_GENERATED_VALUE,
  TPM_ST,
  TPMA_OBJECT,
} from '../../imakit/src/core/tpm/constants.ts';

export interface SoftAgent {
  /** TPM2B_PUBLIC of the AK */
  readonly akPublic: Uint8Array;
  /**
   * The evidence body (push form) answering `nonceHex`: a quote of sha256:10 and the IMA list from
   * `offsetBytes` (one ima-ng entry; an empty list's checkpoint does not round-trip through core's
   * checkpoint JSON today, so every simulated machine has measured one file).
   */
  evidence(nonceHex: string, offsetBytes?: number): Record<string, unknown>;
}

const b64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

/**
 * What a TPM's AK template has whatever the key type (tpm2_createak's defaults): a restricted
 * signing key made in the TPM, SHA-256 names, signing with `scheme` and SHA-256.
 */
export function softAkCommon(scheme: typeof TPM_ALG.ECDSA | typeof TPM_ALG.RSASSA) {
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes:
      TPMA_OBJECT.fixedTPM |
      TPMA_OBJECT.fixedParent |
      TPMA_OBJECT.sensitiveDataOrigin |
      TPMA_OBJECT.userWithAuth |
      TPMA_OBJECT.restricted |
      TPMA_OBJECT.sign,
    authPolicy: new Uint8Array(0),
    symmetric: { algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 },
    scheme: { scheme, hashAlg: TPM_ALG.SHA256 },
  };
}

export function softAgent(): SoftAgent {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub: TpmtPublicEcc = {
    type: 'ecc',
    ...softAkCommon(TPM_ALG.ECDSA),
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
    x: b64u(jwk.x!),
    y: b64u(jwk.y!),
  };
  const name = tpmPublicName(pub);
  let clock = 0n;
  const entry = imaNgEntry('/usr/bin/sim', new Uint8Array(32).fill(0x5a));
  const { templateData } = entry;
  const list = encodeBinaryList([entry]);
  const pcr10 = new Uint8Array(
    createHash('sha256').update(new Uint8Array(32)).update(templateDigest(templateData, 'sha256')).digest(),
  );
  const quote = (key: KeyObject, nonce: Uint8Array) => {
    // the TPM clock only moves forward (the verifier refuses a repeated or earlier clock)
    const now = BigInt(Date.now());
    clock = now > clock ? now : clock + 1n;
    return softQuote({ name, clock, nonce, pcr10, key, sigAlg: 'ecdsa' });
  };
  return {
    akPublic: encodeTpm2bPublic(pub),
    evidence(nonceHex, offsetBytes = 0) {
      const q = quote(privateKey, new Uint8Array(Buffer.from(nonceHex, 'hex')));
      return {
        nonce: nonceHex,
        quote: {
          attest: Buffer.from(q.attest).toString('base64'),
          signature: Buffer.from(q.signature).toString('base64'),
        },
        pcrs: { sha256: { '10': Buffer.from(pcr10).toString('hex') } },
        ima: {
          offsetBytes: Math.min(offsetBytes, list.length),
          entries: Buffer.from(list.subarray(Math.min(offsetBytes, list.length))).toString('base64'),
        },
      };
    },
  };
}

/**
 * A TPMS_ATTEST quoting sha256:10 with `pcr10` and its TPMT_SIGNATURE by `key`: ECDSA P-256
 * (r‖s halves) or RSASSA-SHA256 (RSA-2048 AKs, as the fleet benchmark uses).
 */
export function softQuote(q: {
  readonly name: Uint8Array;
  readonly clock: bigint;
  readonly nonce: Uint8Array;
  readonly pcr10: Uint8Array;
  readonly key: KeyObject;
  readonly sigAlg: 'ecdsa' | 'rsassa';
}): { attest: Uint8Array; signature: Uint8Array } {
  const attest = encodeTpmsAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: q.name,
    extraData: q.nonce,
    clockInfo: { clock: q.clock, resetCount: 1, restartCount: 0, safe: true },
    firmwareVersion: 0n,
    attested: {
      kind: 'quote',
      pcrSelect: [{ hashAlg: TPM_ALG.SHA256, sizeofSelect: 3, pcrs: [10] }],
      pcrDigest: new Uint8Array(createHash('sha256').update(q.pcr10).digest()),
    },
  });
  if (q.sigAlg === 'rsassa') {
    const sig = new Uint8Array(sign('sha256', attest, q.key));
    return {
      attest,
      signature: encodeTpmtSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig }),
    };
  }
  const rs = sign('sha256', attest, { key: q.key, dsaEncoding: 'ieee-p1363' });
  const signature = encodeTpmtSignature({
    sigAlg: TPM_ALG.ECDSA,
    hashAlg: TPM_ALG.SHA256,
    r: new Uint8Array(rs.subarray(0, 32)),
    s: new Uint8Array(rs.subarray(32)),
  });
  return { attest, signature };
}
