/**
 * evmctl `convert KEY`: write the v1 ("digsig", formats.md §3.4) key blob `KEY.bin` and its key id
 * `KEY.keyid` (`%llX`, what `evmctl import --rsa` names the kernel `user` key) for an RSA public key
 * (PEM SubjectPublicKeyInfo; an X.509 certificate in PEM or DER is accepted too).
 */
import { createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import { ImakitError } from '../../errors.ts';
import { formatKeyIdV1, keyIdV1, rsaKeyBlobV1 } from '../../core/keys/keyid.ts';
import type { EvmctlCommand } from './command.ts';

function b64url(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

/** The RSA public key of a PEM/DER certificate or PEM public key, as a JWK. */
function readRsaJwk(inkey: string): JsonWebKey {
  let data: Buffer;
  try {
    data = Buffer.from(readBoundedFile(inkey, 'key'));
  } catch (e) {
    if (e instanceof ImakitError && e.code === 'E_IO_TOO_LARGE') throw e;
    throw new ImakitError('E_IO_READ', `Failed to open: ${inkey} (${(e as Error).message})`, {
      path: inkey,
    });
  }
  let jwk: JsonWebKey;
  try {
    const key = data.includes('-----BEGIN CERTIFICATE')
      ? new X509Certificate(data).publicKey
      : data.includes('-----BEGIN')
        ? createPublicKey(data)
        : new X509Certificate(data).publicKey;
    jwk = key.export({ format: 'jwk' });
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `cannot read an RSA public key: ${(e as Error).message}`, {
      path: inkey,
    });
  }
  if (jwk.kty !== 'RSA' || jwk.n === undefined || jwk.e === undefined)
    throw new ImakitError('E_KEY_TYPE', 'v1 key blobs exist only for RSA keys', { path: inkey });
  return jwk;
}

export const command: EvmctlCommand = {
  name: 'convert',
  usage: 'key',
  description: 'convert public key into the keyring. (deprecated)',
  async run(opts, args, io) {
    const inkey = args[0] ?? '/etc/keys/pubkey_evm.pem';
    let jwk: JsonWebKey;
    try {
      jwk = readRsaJwk(inkey);
    } catch (e) {
      // evmctl: read_pub_key failing returns 1 (an unreadable or non-RSA key), not -1 (125)
      io.stderr(`${(e as Error).message}${e instanceof ImakitError ? ` [${e.code}]` : ''}\n`);
      return 1;
    }
    const n = b64url(jwk.n!);
    const e = b64url(jwk.e!);
    const blob = rsaKeyBlobV1(n, e);
    const name = formatKeyIdV1(keyIdV1(n, e));
    if (opts.verbose > 0) io.stderr(`keyid: ${name}\n`);
    writeFileSync(`${inkey}.bin`, blob);
    writeFileSync(`${inkey}.keyid`, name);
    io.stderr(`Writing to ${inkey}.bin\nWriting to ${inkey}.keyid\n`);
    return 0;
  },
};
