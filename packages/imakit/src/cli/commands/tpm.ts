/**
 * `imakit tpm …`: talk to a TPM 2.0 (issue 11 §3-§6).
 *
 *   tpm info                               manufacturer, firmware, PCR banks, algorithms
 *   tpm pcrread [SEL]                      `bank:index hex` lines (default: every allocated bank, 0-23)
 *   tpm ek [--out DIR]                     EK certificates (NV 0x01c00002 RSA, 0x01c0000a ECC P-256,
 *                                          0x01c00016 ECC P-384) and EK names; --out writes ek-*.der
 *   tpm ak create --out DIR [--kind rsassa|rsapss|ecdsa] [--ek rsa|ecc|ecc384] [--persist HANDLE]
 *   tpm quote --ak DIR --nonce HEX --pcrs SEL --out DIR
 *   tpm activate --ak DIR --credential FILE [--out FILE]   (tpm2_makecredential's file format)
 *   tpm ek --verify-ca DIR [--at TIME]     certificates validated to DIR's CAs and against the EK (exit 1 if not)
 *   tpm credential make --ek EK --name HEX --secret HEX --out FILE   (no TPM; tpm-credential.ts)
 *
 * Every subcommand takes `--tpm` (/dev/tpmrm0 default, /dev/tpm0, swtpm:HOST:PORT, unix:PATH) and
 * `--json`. Exit: 0 ok; 2 bad flags or files; 3 I/O; 5 the TPM cannot be reached, timed out,
 * answered malformed bytes or returned an error code (named in the message, with the command).
 */
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import { TPM_PT, tpmAlgName } from '../../core/tpm/constants.ts';
import { bankName, parsePcrSelectionText, type PcrSelection } from '../../core/tpm/pcr-selection.ts';
import { EK_CERT_NV } from '../../core/tpm/commands/nv.ts';
import { decodeToolsCredential } from '../../core/tpm/commands/credential.ts';
import type { AkKind, EkKind } from '../../core/tpm/commands/templates.ts';
import { TpmClient } from '../../host/tpm/client.ts';
import {
  createAkDir,
  formatPcrLines,
  loadAkDir,
  parseNonce,
  quoteToDir,
  readAkInfo,
} from '../../host/tpm/ak-files.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import type { CommandContext, CommandModule } from '../command.ts';

interface Common {
  tpm: string;
  json?: boolean;
}

const TPM_HELP = 'TPM: /dev/tpmrm0 (default), /dev/tpm0, swtpm:HOST:PORT (ctrl PORT+1) or unix:PATH';

async function withTpm<T>(f: Common, fn: (c: TpmClient) => Promise<T>): Promise<T> {
  const c = await TpmClient.open(f.tpm);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const out = (ctx: CommandContext, f: Common, json: unknown, text: string): void =>
  ctx.io.stdout(f.json === true ? `${JSON.stringify(json, null, 2)}\n` : text);

function ascii(v: number | undefined): string {
  if (v === undefined) return '';
  return String.fromCharCode((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff).replace(
    /[^\x20-\x7e]/g,
    '',
  );
}

async function info(f: Common, ctx: CommandContext): Promise<number> {
  const r = await withTpm(f, async (c) => {
    await c.startup();
    const fixed = await c.properties(TPM_PT.FAMILY_INDICATOR);
    const banks = (await c.pcrBanks()).filter((b) => b.pcrs.length > 0);
    const algs = await c.algorithms();
    const fw1 = fixed.get(TPM_PT.FIRMWARE_VERSION_1) ?? 0;
    const fw2 = fixed.get(TPM_PT.FIRMWARE_VERSION_2) ?? 0;
    return {
      tpm: c.describe,
      manufacturer: ascii(fixed.get(TPM_PT.MANUFACTURER)),
      vendor: [TPM_PT.VENDOR_STRING_1, TPM_PT.VENDOR_STRING_2, TPM_PT.VENDOR_STRING_3, TPM_PT.VENDOR_STRING_4]
        .map((p) => ascii(fixed.get(p)))
        .join(''),
      firmwareVersion: `${fw1 >>> 16}.${fw1 & 0xffff}.${fw2 >>> 16}.${fw2 & 0xffff}`,
      specRevision: (fixed.get(TPM_PT.REVISION) ?? 0) / 100,
      pcrBanks: banks.map((b) => ({ bank: bankName(b.hashAlg), pcrs: b.pcrs.length })),
      algorithms: algs.map((a) => tpmAlgName(a.alg).toLowerCase()),
    };
  });
  out(
    ctx,
    f,
    r,
    `tpm: ${r.tpm}\nmanufacturer: ${r.manufacturer}\nvendor: ${r.vendor}\nfirmware: ${r.firmwareVersion}\n` +
      `spec revision: ${r.specRevision}\nPCR banks: ${r.pcrBanks.map((b) => `${b.bank} (${b.pcrs})`).join(', ')}\n` +
      `algorithms: ${r.algorithms.join(' ')}\n`,
  );
  return 0;
}

async function allocated(c: TpmClient): Promise<PcrSelection> {
  return (await c.pcrBanks()).filter((b) => b.pcrs.length > 0);
}

async function pcrread(sel: string | undefined, f: Common, ctx: CommandContext): Promise<number> {
  const values = await withTpm(
    f,
    async (c) =>
      (await c.pcrRead(sel !== undefined ? parsePcrSelectionText(sel) : await allocated(c))).values,
  );
  out(
    ctx,
    f,
    { pcrs: values.map((v) => ({ bank: bankName(v.hashAlg), index: v.pcr, value: toHex(v.value) })) },
    formatPcrLines(values),
  );
  return 0;
}

const EK_KINDS: readonly { kind: EkKind; nv: number }[] = [
  { kind: 'rsa', nv: EK_CERT_NV.RSA_2048 },
  { kind: 'ecc', nv: EK_CERT_NV.ECC_P256 },
  { kind: 'ecc384', nv: EK_CERT_NV.ECC_P384_H3 },
];

async function ek(
  f: Common & { out?: string; verifyCa?: string; at?: string },
  ctx: CommandContext,
): Promise<number> {
  const v = f.verifyCa !== undefined ? await import('./tpm-credential.ts') : undefined;
  const cas =
    f.verifyCa !== undefined ? (await import('../../host/tpm/ca-dir.ts')).loadCaDir(f.verifyCa) : [];
  const at = v?.atTime(f.at);
  const rows = await withTpm(f, async (c) => {
    const nvs = new Set(await c.handles(0x01000000));
    const res = [];
    for (const { kind, nv } of EK_KINDS) {
      const key = await c.createEk(kind);
      await c.flush(key.handle);
      const cert = nvs.has(nv) ? await c.nvReadAll(nv) : undefined;
      let file: string | undefined;
      if (cert !== undefined && f.out !== undefined) {
        file = join(f.out, `ek-${kind}.der`);
        try {
          writeFileSync(file, cert);
        } catch (e) {
          throw fromSystemError(e, 'E_IO_WRITE', file);
        }
      }
      const check = v && cert !== undefined ? v.checkEkCertificate(cert, key.public, cas, at!) : undefined;
      res.push({
        kind,
        name: toHex(key.name),
        nvIndex: `0x${nv.toString(16).padStart(8, '0')}`,
        certificate: cert !== undefined ? { bytes: cert.length, ...(file ? { file } : {}) } : null,
        ...(check ? { verification: check } : {}),
      });
    }
    return res;
  });
  out(
    ctx,
    f,
    { eks: rows },
    rows
      .map(
        (r) =>
          `${r.kind}: name ${r.name}\n  certificate at ${r.nvIndex}: ${r.certificate ? `${r.certificate.bytes} bytes${r.certificate.file ? ` -> ${r.certificate.file}` : ''}` : 'none'}\n` +
          (r.verification && v ? v.renderEkCheck(r.verification) : ''),
      )
      .join(''),
  );
  // --verify-ca: every certificate present must validate and certify this TPM's EK; none at all fails
  if (v === undefined) return 0;
  const checked = rows.filter((r) => r.verification !== undefined);
  return checked.length > 0 && checked.every((r) => r.verification!.status === 'pass') ? 0 : 1;
}

const AK_KINDS: readonly AkKind[] = ['rsassa', 'rsapss', 'ecdsa'];
const EK_NAMES: readonly EkKind[] = ['rsa', 'ecc', 'ecc384'];

async function akCreate(
  f: Common & { out: string; kind: string; ek: string; persist?: string },
  ctx: CommandContext,
): Promise<number> {
  if (!AK_KINDS.includes(f.kind as AkKind))
    throw new ImakitError('E_USAGE', `--kind ${f.kind}: one of ${AK_KINDS.join(', ')}`);
  if (!EK_NAMES.includes(f.ek as EkKind))
    throw new ImakitError('E_USAGE', `--ek ${f.ek}: one of ${EK_NAMES.join(', ')}`);
  let persist: number | undefined;
  if (f.persist !== undefined) {
    persist = /^0x[0-9a-f]{8}$/i.test(f.persist) ? Number(f.persist) : NaN;
    if (!Number.isInteger(persist))
      throw new ImakitError('E_USAGE', `--persist ${f.persist}: expected 0x81xxxxxx`);
  }
  const info = await withTpm(f, (c) =>
    createAkDir(c, f.out, {
      kind: f.kind as AkKind,
      ek: f.ek as EkKind,
      ...(persist !== undefined ? { persist } : {}),
    }),
  );
  out(
    ctx,
    f,
    { dir: f.out, ...info },
    `AK ${info.scheme} under the ${info.parent.ek} EK: name ${info.name}${info.persistent ? `, persistent at ${info.persistent}` : ''}\n` +
      `wrote ${['ak.pub', 'ak.priv', 'ak.pem', 'ak.name', 'ak.json'].map((n) => join(f.out, n)).join(' ')}\n`,
  );
  return 0;
}

async function quote(
  f: Common & { ak: string; nonce: string; pcrs: string; out: string },
  ctx: CommandContext,
): Promise<number> {
  const nonce = parseNonce(f.nonce);
  const sel = parsePcrSelectionText(f.pcrs);
  readAkInfo(f.ak);
  const files = await withTpm(f, (c) => quoteToDir(c, f.ak, nonce, sel, f.out));
  out(
    ctx,
    f,
    { attest: files.attest, signature: files.signature, pcrs: files.pcrs },
    `wrote ${files.attest} ${files.signature} ${files.pcrs}\n`,
  );
  return 0;
}

async function activate(
  f: Common & { ak: string; credential: string; out?: string },
  ctx: CommandContext,
): Promise<number> {
  const info = readAkInfo(f.ak);
  const cred = decodeToolsCredential(readBoundedFile(f.credential, 'signature'));
  const secret = await withTpm(f, async (c) => {
    const { key, transient } = await loadAkDir(c, f.ak);
    const ekKey = await c.createEk(info.parent.ek);
    try {
      return await c.activateCredential(key.handle, ekKey, cred);
    } finally {
      await c.flush(ekKey.handle);
      if (transient) await c.flush(key.handle);
    }
  });
  if (f.out !== undefined)
    try {
      writeFileSync(f.out, secret);
    } catch (e) {
      throw fromSystemError(e, 'E_IO_WRITE', f.out);
    }
  out(
    ctx,
    f,
    { secret: toHex(secret), ...(f.out ? { file: f.out } : {}) },
    f.out ? `wrote ${f.out}\n` : `${toHex(secret)}\n`,
  );
  return 0;
}

export const command: CommandModule = {
  name: 'tpm',
  register(program, ctx) {
    const tpm = program.command('tpm').description('talk to a TPM 2.0: PCRs, EK certificates, AKs, quotes');
    // generic over the command so --tpm/--json join the command's inferred options
    const common = <A extends unknown[], O extends OptionValues, G extends OptionValues>(
      c: Command<A, O, G>,
    ) => c.option('--tpm <where>', TPM_HELP, '/dev/tpmrm0').option('--json', 'JSON output');
    const run = (body: () => Promise<number>, f: Common): Promise<void> =>
      ctx.run(body, { json: f.json === true });
    common(tpm.command('info').description('manufacturer, firmware, PCR banks, algorithms')).action((f) =>
      run(() => info(f, ctx), f),
    );
    common(
      tpm
        .command('pcrread')
        .description("PCR values as 'bank:index hex' lines")
        .argument('[selection]', 'e.g. sha256:0-7,10+sha1:10 (default: every allocated bank)'),
    ).action((sel, f) => run(() => pcrread(sel, f, ctx), f));
    common(
      tpm
        .command('ek')
        .description('EK names and certificates (TCG NV indices)')
        .option('--out <dir>', 'write the certificates as ek-rsa.der, ek-ecc.der, ek-ecc384.der')
        .option(
          '--verify-ca <dir>',
          "validate each certificate to a CA in DIR and against the TPM's EK (exit 1 if not)",
        )
        .option('--at <time>', 'judge certificate validity at this ISO 8601 time (default now)'),
    ).action((f) => run(() => ek(f, ctx), f));
    const credential = tpm
      .command('credential')
      .description('credentials for ActivateCredential (no TPM needed)');
    credential
      .command('make')
      .description(
        "MakeCredential offline: tpm2-tools' credential file for imakit tpm activate / tpm2_activatecredential",
      )
      .requiredOption('--ek <file>', "the EK's public area: TPM2B_PUBLIC (tpm2_readpublic -o) or TPMT_PUBLIC")
      .option('--name <hex>', "the AK's Name (nameAlg ‖ digest), hex")
      .option('--name-file <file>', "the AK's Name: raw (tpm2_createak -n) or hex text (imakit's ak.name)")
      .option('--secret <hex>', 'the secret, 1-64 bytes, hex')
      .option('--secret-file <file>', 'the secret, raw bytes')
      .requiredOption('--out <file>', 'the credential file to write')
      .option('--json', 'JSON output')
      .action((f) =>
        ctx.run(
          async () => {
            const r = (await import('./tpm-credential.ts')).credentialMake(f);
            ctx.io.stdout(
              f.json === true ? `${JSON.stringify(r, null, 2)}\n` : `wrote ${r.file} (${r.bytes} bytes)\n`,
            );
            return 0;
          },
          { json: f.json === true },
        ),
      );
    const ak = tpm.command('ak').description('attestation keys');
    common(
      ak
        .command('create')
        .description(
          'create a restricted signing key under the EK: ak.pub, ak.priv, ak.pem, ak.name, ak.json',
        )
        .requiredOption('--out <dir>', 'directory to write the AK files to')
        .option('--kind <kind>', 'rsassa, rsapss or ecdsa', 'rsassa')
        .option('--ek <kind>', 'parent EK template: rsa, ecc or ecc384', 'rsa')
        .option('--persist <handle>', 'also persist with EvictControl at this handle (0x81xxxxxx)'),
    ).action((f) => run(() => akCreate(f, ctx), f));
    common(
      tpm
        .command('quote')
        .description('quote PCRs: quote.attest, quote.sig, pcrs.txt')
        .requiredOption('--ak <dir>', 'AK directory (imakit tpm ak create)')
        .requiredOption('--nonce <hex>', 'qualifying data')
        .requiredOption('--pcrs <selection>', 'e.g. sha256:0-7,10')
        .requiredOption('--out <dir>', 'directory to write to'),
    ).action((f) => run(() => quote(f, ctx), f));
    common(
      tpm
        .command('activate')
        .description('ActivateCredential through the EK (tpm2_makecredential output)')
        .requiredOption('--ak <dir>', 'AK directory')
        .requiredOption('--credential <file>', 'credential file (tpm2-tools format)')
        .option('--out <file>', 'write the secret here instead of printing it'),
    ).action((f) => run(() => activate(f, ctx), f));
  },
};
