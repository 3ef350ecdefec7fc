/**
 * swtpm's control channel (`--ctrl type=tcp,port=P+1` or `type=unixio,path=...`): swtpm's own
 * big-endian protocol, a u32 command code and a body, answered with a u32 result and any payload
 * (swtpm's include/swtpm/tpm_ioctl.h; tpm.md fact (b)). It is how a software TPM is powered on:
 * `CMD_INIT` is TPM_Init, after which the TPM needs TPM2_Startup again. This is not the
 * MS-simulator platform port, which swtpm does not speak.
 */
import { connect, type Socket } from 'node:net';
import { ImakitError } from '../../errors.ts';

/** Control commands used here (tpm_ioctl.h `enum CommandCode`, TCP/unix numbering). */
export const SWTPM_CTRL = Object.freeze({
  GET_CAPABILITY: 1,
  /** TPM_Init; body u32 flags (1 = delete volatile state) */
  INIT: 2,
  /** power off and end the swtpm process */
  SHUTDOWN: 3,
  GET_TPMESTABLISHED: 4,
  /** body u8 locality */
  SET_LOCALITY: 5,
  /** stop the TPM without ending the process */
  STOP: 14,
});

/** Where a ctrl channel listens. */
export type SwtpmCtrlTarget = { readonly host: string; readonly port: number } | { readonly path: string };

/**
 * Send one control command on its own connection and return the payload after the u32 result.
 * @throws ImakitError E_TPM_TRANSPORT (cannot connect, swtpm result non-zero), E_TPM_TIMEOUT,
 *   E_TPM_RESPONSE (shorter than the expected reply)
 */
export function swtpmCtrl(
  target: SwtpmCtrlTarget,
  code: number,
  body: Uint8Array,
  replyBytes: number,
  timeoutMs = 10_000,
): Promise<Uint8Array> {
  const describe =
    'path' in target ? `swtpm ctrl unix:${target.path}` : `swtpm ctrl ${target.host}:${target.port}`;
  const req = new Uint8Array(4 + body.length);
  new DataView(req.buffer).setUint32(0, code);
  req.set(body, 4);
  const want = 4 + replyBytes;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let done = false;
    const s: Socket = connect(target);
    const finish = (err: Error | undefined, out?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      if (err !== undefined) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(
      () =>
        finish(
          new ImakitError('E_TPM_TIMEOUT', `${describe}: no answer to command ${code} after ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    s.once('connect', () => s.write(req));
    s.on('data', (b: Buffer) => {
      chunks.push(b);
      have += b.length;
      if (have < want) return;
      const all = Buffer.concat(chunks);
      const result = all.readUInt32BE(0);
      if (result !== 0)
        finish(
          new ImakitError(
            'E_TPM_TRANSPORT',
            `${describe}: command ${code} failed with TPM result 0x${result.toString(16)}`,
          ),
        );
      else finish(undefined, new Uint8Array(all.subarray(4, want)));
    });
    s.once('error', (e) =>
      finish(new ImakitError('E_TPM_TRANSPORT', `${describe}: ${e.message}`, {}, { cause: e })),
    );
    s.once('close', () =>
      finish(
        new ImakitError(
          'E_TPM_RESPONSE',
          `${describe}: connection closed after ${have} of ${want} reply bytes`,
        ),
      ),
    );
  });
}

/** TPM_Init through the ctrl channel (the TPM then needs TPM2_Startup). */
export async function swtpmInit(target: SwtpmCtrlTarget, deleteVolatile = false): Promise<void> {
  await swtpmCtrl(target, SWTPM_CTRL.INIT, Uint8Array.of(0, 0, 0, deleteVolatile ? 1 : 0), 0);
}
