/**
 * Real quotes from a software TPM, made by tpm2-tools (never by imakit): an EK, AKs from
 * `tpm2_createak` (RSASSA, RSA-PSS, ECDSA P-256, a second RSASSA), an unrestricted signing key,
 * and `tpm2_quote` over sha256:0-7,10 + sha1:10 (10 PCRs, two banks). Every object is persisted
 * so swtpm's three object slots never run out (tpm.md gotcha 1).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestTpm, type TestTpm } from '../../tpm-helpers.ts';

export const SELECTION = 'sha256:0,1,2,3,4,5,6,7,10+sha1:10';

export interface AkFiles {
  readonly handle: string;
  /** TPM2B_PUBLIC */
  readonly pub: string;
  readonly tpmt: string;
  readonly pem: string;
  /** tpm2_readpublic's name, hex */
  readonly name: string;
}

export interface QuoteFiles {
  readonly msg: string;
  readonly sig: string;
  /** tpm2_quote -o (serialized) */
  readonly pcrsBin: string;
  /** tpm2_quote's stdout (YAML with a pcrs: section) */
  readonly yaml: string;
  /** `bank:index hex` lines made from the YAML */
  readonly pcrsTxt: string;
  readonly nonce: string;
}

const flush = (t: TestTpm): void => {
  t.tool('tpm2_flushcontext', ['-t']);
};

export function makeAk(t: TestTpm, id: string, handle: string, alg: string, scheme: string): AkFiles {
  const d = t.dir;
  t.tool('tpm2_createak', [
    '-C',
    '0x81010001',
    '-c',
    join(d, `${id}.ctx`),
    '-G',
    alg,
    '-g',
    'sha256',
    '-s',
    scheme,
  ]);
  flush(t);
  t.tool('tpm2_evictcontrol', ['-c', join(d, `${id}.ctx`), handle]);
  flush(t);
  return readAk(t, id, handle);
}

export function readAk(t: TestTpm, id: string, handle: string): AkFiles {
  const d = t.dir;
  const out = t.tool('tpm2_readpublic', [
    '-c',
    handle,
    '-o',
    join(d, `${id}.pub`),
    '-n',
    join(d, `${id}.name`),
  ]);
  t.tool('tpm2_readpublic', ['-c', handle, '-f', 'tpmt', '-o', join(d, `${id}.tpmt`)]);
  t.tool('tpm2_readpublic', ['-c', handle, '-f', 'pem', '-o', join(d, `${id}.pem`)]);
  const name = /^name: ([0-9a-f]+)$/m.exec(out)?.[1];
  if (!name) throw new Error(`no name in tpm2_readpublic output: ${out}`);
  return { handle, pub: join(d, `${id}.pub`), tpmt: join(d, `${id}.tpmt`), pem: join(d, `${id}.pem`), name };
}

/** `bank:index hex` lines from tpm2_quote's YAML pcrs: section (parsed here, independently of imakit). */
function yamlToLines(yaml: string): string {
  const lines: string[] = [];
  let bank = '';
  let inPcrs = false;
  for (const l of yaml.split('\n')) {
    if (/^pcrs:/.test(l)) inPcrs = true;
    else if (/^\S/.test(l)) inPcrs = false;
    if (!inPcrs) continue;
    const b = /^ {2}(\w+):\s*$/.exec(l);
    if (b) bank = b[1]!;
    const v = /^ {4}(\d+)\s*: 0x([0-9A-Fa-f]+)/.exec(l);
    if (v) lines.push(`${bank}:${v[1]} ${v[2]!.toLowerCase()}`);
  }
  return lines.join('\n') + '\n';
}

export function makeQuote(
  t: TestTpm,
  id: string,
  ak: AkFiles,
  nonce: string,
  opts: { scheme?: string; selection?: string } = {},
): QuoteFiles {
  const d = t.dir;
  const f = (s: string): string => join(d, `${id}.${s}`);
  const args = [
    '-c',
    ak.handle,
    '-l',
    opts.selection ?? SELECTION,
    '-q',
    nonce,
    '-m',
    f('msg'),
    '-s',
    f('sig'),
  ];
  args.push('-o', f('pcrs.bin'), '-g', 'sha256');
  if (opts.scheme) args.push('--scheme', opts.scheme);
  const yaml = t.tool('tpm2_quote', args);
  flush(t);
  writeFileSync(f('yaml'), yaml);
  writeFileSync(f('pcrs.txt'), yamlToLines(yaml));
  return {
    msg: f('msg'),
    sig: f('sig'),
    pcrsBin: f('pcrs.bin'),
    yaml: f('yaml'),
    pcrsTxt: f('pcrs.txt'),
    nonce,
  };
}

export interface QuoteWorld {
  readonly tpm: TestTpm;
  readonly rsa: AkFiles;
  readonly pss: AkFiles;
  readonly ecc: AkFiles;
  readonly rsa2: AkFiles;
  readonly qRsa: QuoteFiles;
  readonly qPss: QuoteFiles;
  readonly qEcc: QuoteFiles;
  readonly qRsa2: QuoteFiles;
}

/** Start a TPM and make the AKs and one quote per AK. The caller stops `tpm`. */
export async function makeQuoteWorld(): Promise<QuoteWorld> {
  const tpm = await startTestTpm({ manufacture: false });
  try {
    tpm.tool('tpm2_createek', ['-c', '0x81010001', '-G', 'rsa', '-u', join(tpm.dir, 'ek.pub')]);
    flush(tpm);
    tpm.tool('tpm2_pcrextend', [`10:sha256=${'ab'.repeat(32)},sha1=${'cd'.repeat(20)}`]);
    tpm.tool('tpm2_pcrextend', [`3:sha256=${'12'.repeat(32)}`]);
    const rsa = makeAk(tpm, 'rsa', '0x81000010', 'rsa', 'rsassa');
    const pss = makeAk(tpm, 'pss', '0x81000011', 'rsa', 'rsapss');
    const ecc = makeAk(tpm, 'ecc', '0x81000012', 'ecc', 'ecdsa');
    const rsa2 = makeAk(tpm, 'rsa2', '0x81000013', 'rsa', 'rsassa');
    return {
      tpm,
      rsa,
      pss,
      ecc,
      rsa2,
      qRsa: makeQuote(tpm, 'q-rsa', rsa, '11223344556677'),
      qPss: makeQuote(tpm, 'q-pss', pss, 'a1b2c3d4', { scheme: 'rsapss' }),
      qEcc: makeQuote(tpm, 'q-ecc', ecc, 'deadbeef00'),
      qRsa2: makeQuote(tpm, 'q-rsa2', rsa2, '11223344556677'),
    };
  } catch (e) {
    tpm.stop();
    throw e;
  }
}

export const read = (p: string): Uint8Array => new Uint8Array(readFileSync(p));
