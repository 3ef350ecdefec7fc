/**
 * The machine side of the attestation tests: a software TPM (swtpm, not manufactured) driven by
 * imakit's TpmClient (tests only), an RSA EK made in it, RSASSA AKs under the EK, and PCR 10
 * extended (sha1 and sha256 banks) with the template digests of IMA entries as the kernel does,
 * and quotes as the verifier's evidence carries them. Test files extend this class with what else
 * they need (a Keylime quote string, a measured boot).
 */
import { parsePcrSelectionText, templateDigest } from 'imakit/core';
import { TpmClient, type LoadedEk } from '../../imakit/src/host/tpm/client.ts';
import { startTestTpm, type TestTpm } from '../../imakit/test/unit/tpm-helpers.ts';

const TPM_SHA1 = 0x0004;
const TPM_SHA256 = 0x000b;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

export class SwtpmMachine {
  constructor(
    readonly tpm: TestTpm,
    readonly client: TpmClient,
    public ek: LoadedEk,
  ) {}
  /** Start a fresh swtpm, open it and create the RSA EK; `this` is the subclass to build. */
  static async start<M extends SwtpmMachine>(
    this: new (tpm: TestTpm, client: TpmClient, ek: LoadedEk) => M,
  ): Promise<M> {
    const tpm = await startTestTpm({ manufacture: false });
    const client = await TpmClient.open(tpm.selector);
    return new this(tpm, client, await client.createEk('rsa'));
  }
  /** A new RSASSA AK under the EK, loaded; `outPrivate` reloads it after a TPM reset. */
  async newAk(): Promise<{ handle: number; publicBytes: Uint8Array; outPrivate: Uint8Array }> {
    const ak = await this.client.createAk(this.ek, 'rsassa');
    return { handle: ak.key.handle, publicBytes: ak.key.publicBytes, outPrivate: ak.outPrivate };
  }
  /** Extend PCR 10 (sha1 and sha256 banks) with each entry's template digest, as the kernel does. */
  async extend(entries: readonly { readonly templateData: Uint8Array }[]): Promise<void> {
    for (const e of entries)
      await this.client.pcrExtend(10, [
        { hashAlg: TPM_SHA1, digest: templateDigest(e.templateData, 'sha1') },
        { hashAlg: TPM_SHA256, digest: templateDigest(e.templateData, 'sha256') },
      ]);
  }
  /** Quote `sel` over `nonceHex` and read the PCR values it covers: evidence's `quote` and `pcrs`. */
  async quote(akHandle: number, nonceHex: string, sel: string) {
    const selection = parsePcrSelectionText(sel);
    const q = await this.client.quote(akHandle, Buffer.from(nonceHex, 'hex'), selection);
    const read = await this.client.pcrRead(selection);
    const pcrs: Record<string, Record<string, string>> = {};
    for (const v of read.values) {
      const bank = v.hashAlg === TPM_SHA1 ? 'sha1' : 'sha256';
      (pcrs[bank] ??= {})[String(v.pcr)] = Buffer.from(v.value).toString('hex');
    }
    return { quote: { attest: b64(q.attest), signature: b64(q.signature) }, pcrs };
  }
  async stop(): Promise<void> {
    await this.client.close();
    this.tpm.stop();
  }
}
