/**
 * Simulated agents for the fleet benchmark: software RSA-2048 AKs (a small pool shared by many
 * agents: making 10,000 RSA keys would take minutes and changes nothing the verifier does per
 * quote) and, per agent, an `ima-ng` list that grows by `entriesPerAttestation` entries each time,
 * with its running sha256 PCR 10 and a TPM clock that only moves forward. The entries are files of
 * the benchmark's reference set with their allowed digests, so every attestation should pass.
 * Not a TPM: see test/soft-tpm.ts.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ReferenceSetBuilder, encodeBinaryList, encodeRefsBinary, joinTemplateData, utf8 } from 'imakit/core';
import { TPM_ALG } from '../../imakit/src/core/tpm/constants.ts';
import { encodeTpm2bPublic, tpmPublicName, type TpmtPublicRsa } from '../../imakit/src/core/tpm/public.ts';
import { softAkCommon, softQuote } from '../test/soft-tpm.ts';

export interface RsaAk {
  readonly key: KeyObject;
  readonly akPublic: Uint8Array;
  readonly name: Uint8Array;
}

/** An RSA-2048 restricted signing key with RSASSA-SHA256, described as a TPM2B_PUBLIC. */
export function rsaAk(): RsaAk {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub: TpmtPublicRsa = {
    type: 'rsa',
    ...softAkCommon(TPM_ALG.RSASSA),
    keyBits: 2048,
    exponent: 0,
    modulus: new Uint8Array(Buffer.from(jwk.n!, 'base64url')),
  };
  return { key: privateKey, akPublic: encodeTpm2bPublic(pub), name: tpmPublicName(pub) };
}

/** The reference set's files: path i and its allowed sha256 digest (a function of i). */
export function refPath(i: number): string {
  return `/usr/lib/fleet/d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(6, '0')}.so`;
}
function refDigest(i: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`file ${i}`).digest());
}

/** The compact imakit reference set of `paths` files. */
export function fleetReferenceSet(paths: number): Uint8Array {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256', logHashAlgo: 'sha1' });
  for (let i = 0; i < paths; i++)
    b.addDigest(refPath(i), { algo: 'sha256', digest: refDigest(i), provenance: { kind: 'rootfs' } });
  return encodeRefsBinary(b.build());
}

/** One simulated machine: its list so far is summarised by the byte offset and PCR 10. */
export class SimAgent {
  private offset = 0;
  private pcr10 = new Uint8Array(32);
  private clock = 0n;
  private next: number;

  constructor(
    private readonly ak: RsaAk,
    private readonly paths: number,
    seed: number,
  ) {
    this.next = (seed * 7919) % paths;
  }

  /**
   * The push evidence answering `nonceHex` with `count` new entries appended to the list. The
   * state advances only through `commit()`, after the verifier accepted it.
   */
  evidence(nonceHex: string, count: number): { body: string; commit: () => void } {
    const entries = [];
    let pcr = this.pcr10;
    let next = this.next;
    for (let k = 0; k < count; k++) {
      const i = next;
      next = (next + 1) % this.paths;
      const templateData = joinTemplateData(
        [new Uint8Array([...utf8('sha256:'), 0, ...refDigest(i)]), new Uint8Array([...utf8(refPath(i)), 0])],
        'le',
      );
      const sha1 = new Uint8Array(createHash('sha1').update(templateData).digest());
      const sha256 = createHash('sha256').update(templateData).digest();
      pcr = new Uint8Array(createHash('sha256').update(pcr).update(sha256).digest());
      entries.push({ index: 0, offset: 0, pcr: 10, digest: sha1, templateName: 'ima-ng', templateData });
    }
    const list = encodeBinaryList(entries);
    const now = BigInt(Date.now());
    const clock = now > this.clock ? now : this.clock + 1n;
    const q = softQuote({
      name: this.ak.name,
      clock,
      nonce: new Uint8Array(Buffer.from(nonceHex, 'hex')),
      pcr10: pcr,
      key: this.ak.key,
      sigAlg: 'rsassa',
    });
    const body = JSON.stringify({
      nonce: nonceHex,
      quote: {
        attest: Buffer.from(q.attest).toString('base64'),
        signature: Buffer.from(q.signature).toString('base64'),
      },
      pcrs: { sha256: { '10': Buffer.from(pcr).toString('hex') } },
      ima: { offsetBytes: this.offset, entries: Buffer.from(list).toString('base64') },
    });
    return {
      body,
      commit: () => {
        this.offset += list.length;
        this.pcr10 = pcr;
        this.clock = clock;
        this.next = next;
      },
    };
  }
}
