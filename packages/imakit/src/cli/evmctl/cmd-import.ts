/**
 * evmctl `import [--rsa] pubkey keyring` (formats.md §6.2): add a DER certificate as an
 * `asymmetric` key with an empty description (the kernel derives `O: CN: SKID`), or with `--rsa`
 * a `user` key named by the v1 key id (`%llX`) holding the key2bin blob. Prints the new key's
 * serial, like evmctl. The keyring is a serial (decimal or 0x hex) or `@t @p @s @u @us @g`;
 * default `@u`. A key file that cannot be read or parsed exits 1, a failed add_key 125 (evmctl
 * 1.6.2: read_pub_pkey failing returns 1, add_key's negative result maps to 125).
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { RSAPublicKey } from '@peculiar/asn1-rsa';
import { ImakitError } from '../../errors.ts';
import { loadPublicKey } from '../../core/keys/keys.ts';
import { looksLikePem, parseCertificate, pemDecode } from '../../core/keys/x509.ts';
import { formatKeyIdV1, keyIdV1, rsaKeyBlobV1 } from '../../core/keys/keyid.ts';
import { readKeyFile } from '../../host/keys/key-files.ts';
import { addCertificate, addUserKey, resolveKeyring } from '../../host/keys/keyctl.ts';
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'import',
  usage: '[--rsa] pubkey keyring',
  description: 'Import public key into the keyring.',
  async run(opts, args, io) {
    // evmctl 1.6.2's default without arguments (use_x509: v2 signatures are the default)
    const file = args[0] ?? '/etc/keys/x509_evm.der';
    let data: Uint8Array;
    let der: Uint8Array | undefined;
    let pub: ReturnType<typeof loadPublicKey> | undefined;
    try {
      data = readKeyFile(file, 'certificate');
      if (opts.rsa) pub = loadPublicKey(data);
      // evmctl passes the file bytes as they are; the kernel parses DER only, so unwrap PEM here
      else {
        der = looksLikePem(data) ? pemDecode(data).find((b) => b.label === 'CERTIFICATE')?.der : data;
        if (der === undefined)
          throw new ImakitError(
            'E_KEY_PARSE',
            'no CERTIFICATE in the PEM file (import takes an X.509 certificate)',
            {
              path: file,
            },
          );
        parseCertificate(der);
      }
    } catch (e) {
      // evmctl: a key it cannot read or parse returns 1; only a failed add_key is -1 (125)
      io.stderr(
        `${e instanceof Error ? e.message : String(e)}${e instanceof ImakitError ? ` [${e.code}]` : ''}\n`,
      );
      return 1;
    }
    try {
      const ring = resolveKeyring(args[1] ?? '@u');
      let serial: number;
      if (pub !== undefined) {
        if (pub.alg !== 'rsa')
          throw new ImakitError('E_KEY_TYPE', 'v1 (--rsa) keys must be RSA', { path: file });
        const k = AsnConvert.parse(pub.subjectPublicKey, RSAPublicKey);
        const n = new Uint8Array(k.modulus);
        const e = new Uint8Array(k.publicExponent);
        serial = addUserKey(formatKeyIdV1(keyIdV1(n, e)), rsaKeyBlobV1(n, e), ring);
      } else serial = addCertificate(der!, ring);
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
