/**
 * A directory of vendor CA certificates (`imakit tpm ek --verify-ca DIR`): every `*.pem`, `*.crt`,
 * `*.cer` and `*.der` file directly in it, PEM (any number of CERTIFICATE blocks) or DER. Other
 * files (README, CRLs under other names) are left alone; a certificate file that does not parse is
 * an error naming it, never silently dropped.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError, fromSystemError, withPath } from '../../errors.ts';
import { looksLikePem, parseCertificate, pemDecode, type Certificate } from '../../core/keys/x509.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';

const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/** One loaded CA certificate and the file it came from. */
export interface CaCertificate {
  readonly file: string;
  readonly cert: Certificate;
}

/**
 * Load the CA certificates of `dir` (sorted by file name).
 * @throws ImakitError E_IO_READ (no such directory), E_KEY_PARSE naming the file, E_USAGE when the
 *   directory holds no certificate file
 */
export function loadCaDir(dir: string): CaCertificate[] {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => CERT_FILE.test(n))
      .sort();
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', dir);
  }
  const out: CaCertificate[] = [];
  for (const n of names) {
    const file = join(dir, n);
    const data = readBoundedFile(file, 'certificate');
    withPath(file, () => {
      if (looksLikePem(data)) {
        const blocks = pemDecode(data).filter((b) => b.label === 'CERTIFICATE');
        if (blocks.length === 0) throw new ImakitError('E_KEY_PARSE', 'no CERTIFICATE block');
        for (const b of blocks) out.push(Object.freeze({ file, cert: parseCertificate(b.der) }));
      } else out.push(Object.freeze({ file, cert: parseCertificate(data) }));
    });
  }
  if (out.length === 0)
    throw new ImakitError('E_USAGE', `${dir}: no CA certificate files (*.pem, *.crt, *.cer, *.der)`);
  return out;
}
