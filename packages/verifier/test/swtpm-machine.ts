/**
 * The machine side of the attestation tests: a software TPM (swtpm, not manufactured) driven by
 * imakit's TpmClient (tests only), an RSA EK made in it, RSASSA AKs under the EK, and PCR 10
 * extended (sha1 and sha256 banks) with the template digests of IMA entries as the kernel does.
 * Test files extend this class with the quote format they need.
 */
import { templateDigest } from 'imakit/core';
import { TpmClient, type LoadedEk } from '../../imakit/src/host/tpm/client.ts';
import { startTestTpm, type TestTpm } from '../../imakit/test/unit/tpm-helpers.ts';

const TPM_SHA1 = 0x0004;
const TPM_SHA256 = 0x000b;

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
  async stop(): Promise<void> {
    await this.client.close();
    this.tpm.stop();
  }
}
