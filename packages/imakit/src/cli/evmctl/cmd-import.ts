/**
 * evmctl `import [--rsa] pubkey keyring` (formats.md §6.2): add a DER certificate as an
 * `asymmetric` key with an empty description (the kernel derives `O: CN: SKID`), or with `--rsa`
 * a `user` key named by the v1 key id (`%llX`) holding the key2bin blob. Prints the new key's
 * serial, like evmctl. The keyring is a serial (decimal or 0x hex) or `@t @p @s @u @us @g`;
 * default `@u`. Failures exit 125 (evmctl maps its negative add_key result there).
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { RSAPublicKey } from '@peculiar/asn1-rsa';
import { ImakitError } from '../../errors.ts';
import { loadPublicKey } from '../../core/keys/keys.ts';
import { looksLikePem, pemDecode } from '../../core/keys/x509.ts';
import { formatKeyIdV1, keyIdV1, rsaKeyBlobV1 } from '../../core/keys/keyid.ts';
import { readKeyFile } from '../../host/keys/key-files.ts';
import { addCertificate, addUserKey, resolveKeyring } from '../../host/keys/keyctl.ts';
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'import',
  usage: '[--rsa] pubkey keyring',
  description: 'Import public key into the keyring.',
  async run(opts, args, io) {
    const file = args[0];
    if (file === undefined) {
      io.stderr('evmctl import: missing pubkey\n');
      return 125;
    }
    try {
      const data = readKeyFile(file);
      const ring = resolveKeyring(args[1] ?? '@u');
      let serial: number;
      if (opts.rsa) {
        const pub = loadPublicKey(data);
        if (pub.alg !== 'rsa')
          throw new ImakitError('E_KEY_TYPE', 'v1 (--rsa) keys must be RSA', { path: file });
        const k = AsnConvert.parse(pub.subjectPublicKey, RSAPublicKey);
        const n = new Uint8Array(k.modulus);
        const e = new Uint8Array(k.publicExponent);
        serial = addUserKey(formatKeyIdV1(keyIdV1(n, e)), rsaKeyBlobV1(n, e), ring);
      } else {
        // evmctl passes the file bytes as they are; the kernel parses DER only, so unwrap PEM here
        const der = looksLikePem(data) ? pemDecode(data).find((b) => b.label === 'CERTIFICATE')?.der : data;
        if (der === undefined)
          throw new ImakitError('E_KEY_PARSE', 'no CERTIFICATE in the PEM file', { path: file });
        serial = addCertificate(der, ring);
      }
      io.stdout(`${serial}\n`);
      return 0;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const code = e instanceof ImakitError ? ` [${e.code}]` : '';
      io.stderr(`add_key failed: ${msg}${code}\n`);
      return 125;
    }
  },
};
