/**
 * `imakit keys …`: CAs and signing certificates, key inspection and conversion, kernel keyrings,
 * and the EVM master/encrypted keys (issue 6; seeds 000, 002, 003).
 *
 *   keys ca      --alg rsa|ec|sm2 [--bits N] [--curve C] [--subject DN] [--days N] [--pass PW] --out DIR
 *                [--profile P]
 *   keys gen     --alg … --ca DIR [--ca-pass PW] --out DIR2 [--code-signing] [--pass PW] [--profile P]
 *
 * `--out` directories are created (0700) when missing. ca/gen warn on stderr (and in `warnings`
 * with --json) when the --profile kernel (default debian-6.1) will not accept the new key, and name
 * the kernels that would; the key is still written.
 *   keys info    FILE [--profile debian-6.1|mainline|linux-M.m] [--pass PW]
 *   keys convert FILE --to pem|der|evmctl [--out FILE]
 *   keys import  CERT --keyring _ima|_evm|.ima|.machine|ID [--create]
 *   keys kmk new --out FILE [--len 32]
 *   keys evmkey new --kmk FILE --out BLOB [--len 32] [--plain-out FILE]
 *   keys evmkey decrypt BLOB --kmk FILE --out FILE
 *
 * Exit: 0 ok, 1 rejected (HMAC mismatch, restricted keyring), 2 bad input, 3 I/O,
 * 4 unsupported (algorithm), 5 environment (keyctl, keyrings, privileges).
 * Private keys, master keys, plaintext EVM keys and blobs are written 0600, atomically, and never
 * over an existing file unless --force.
 */
import type { Command } from '@commander-js/extra-typings';
import { ImakitError, withPath } from '../../errors.ts';
import { normalizeCurve, type GenKeyAlg, type KeySpec } from '../../core/keys/key-gen.ts';
import {
  ACCEPTANCE_SURVEY,
  describeKey,
  kernelKeyProfile,
  type KeyInfo,
  type Acceptance,
} from '../../core/keys/key-info.ts';
import { readKeyFile } from '../../host/keys/key-files.ts';
import {
  convertKeyFile,
  createCaFiles,
  createEvmKeyFiles,
  createSigningKeyFiles,
  decryptEvmKeyFile,
  importCertificateFile,
  writeMasterKeyFile,
} from '../../host/keys/key-issue.ts';
import type { CommandContext, CommandModule } from '../command.ts';

const usage = (detail: string): ImakitError => new ImakitError('E_USAGE', detail);

function keySpec(f: { alg: string; bits?: string; curve?: string }): KeySpec {
  const alg = f.alg.toLowerCase();
  if (alg !== 'rsa' && alg !== 'ec' && alg !== 'sm2')
    throw usage(`--alg must be rsa, ec or sm2 (got '${f.alg}')`);
  const spec: { alg: GenKeyAlg; bits?: number; curve?: 'P-256' | 'P-384' } = { alg };
  if (f.bits !== undefined) {
    if (alg !== 'rsa') throw usage('--bits is only for --alg rsa');
    spec.bits = Number(f.bits);
  }
  if (f.curve !== undefined) {
    if (alg !== 'ec') throw usage('--curve is only for --alg ec');
    spec.curve = normalizeCurve(f.curve);
  }
  return spec;
}

function intOpt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^[0-9]+$/.test(v)) throw usage(`${name} must be a positive integer`);
  return Number(v);
}

function acceptanceText(name: string, a: Acceptance): string[] {
  const verdict =
    a.accepted === true ? 'accepted' : a.accepted === false ? 'REFUSED' : 'accepted if vouched for';
  const out = [`${name}: ${verdict} (keyring ${a.keyring})`];
  for (const r of a.reasons) out.push(`  - ${r}`);
  for (const n of a.notes) out.push(`  note: ${n}`);
  return out;
}

/** Text rendering of {@link KeyInfo}. */
export function renderKeyInfo(i: KeyInfo): string {
  const l: string[] = [];
  l.push(`kind:       ${i.kind}`);
  l.push(`algorithm:  ${i.alg}${i.curve ? ' ' + i.curve : ''} (${i.bits} bits)`);
  l.push(
    `key id:     ${i.keyid} (from ${i.keyidSource === 'skid' ? 'the SKID' : 'SHA-1 of the public key'})`,
  );
  if (i.spkiKeyid !== i.keyid) l.push(`evmctl 1.4: ${i.spkiKeyid} (computed from the public key: differs!)`);
  if (i.subject !== undefined)
    l.push(`subject:    ${i.subject}`, `issuer:     ${i.issuer}`, `serial:     ${i.serial}`);
  if (i.notBefore !== undefined) l.push(`validity:   ${i.notBefore} .. ${i.notAfter}`);
  if (i.signatureAlgorithm !== undefined)
    l.push(`signature:  ${i.signatureAlgorithm}${i.selfSigned ? ' (self-signed)' : ''}`);
  if (i.skid !== undefined)
    l.push(`SKID:       ${i.skid}${i.skidIsMethod1 ? ' (SHA-1 of the public key)' : ''}`);
  if (i.akid !== undefined) l.push(`AKID:       ${i.akid}`);
  if (i.basicConstraints) l.push(`basicConstraints: CA:${i.basicConstraints.ca ? 'TRUE' : 'FALSE'}`);
  if (i.keyUsage) l.push(`keyUsage:   ${i.keyUsage.join(', ') || '(none)'}`);
  if (i.extKeyUsage) l.push(`extKeyUsage: ${i.extKeyUsage.join(', ')}`);
  l.push(`profile:    ${i.profile}`);
  l.push(...acceptanceText('IMA', i.ima), ...acceptanceText('EVM', i.evm));
  return l.join('\n') + '\n';
}

/**
 * Warnings for a certificate just made that the target kernel will not take (issue 10 item 9): the
 * reasons from keys info, and which of the surveyed kernels would take it.
 */
export function creationWarnings(der: Uint8Array, profile: string, role: 'signing key' | 'CA'): string[] {
  const info = describeKey(der, { profile });
  const refused = (['ima', 'evm'] as const).filter((w) => info[w].accepted === false);
  if (refused.length === 0) return [];
  const reasons = [...new Set(refused.flatMap((w) => info[w].reasons))];
  const takers = ACCEPTANCE_SURVEY.filter((p) => p !== profile).filter((p) => {
    const other = describeKey(der, { profile: p });
    return refused.every((w) => other[w].accepted !== false);
  });
  return [
    `${profile} will not accept this ${role} for ${refused.map((w) => w.toUpperCase()).join(' or ')} (${info.alg}${info.curve ? ' ' + info.curve : ''}):`,
    ...reasons.map((r) => `  - ${r}`),
    takers.length > 0
      ? `  kernels that would: ${takers.join(', ')} (check with imakit keys info --profile P); or use --alg rsa`
      : '  no kernel imakit knows would take it; use --alg rsa',
  ];
}

function warn(ctx: CommandContext, lines: readonly string[], asJson: boolean): void {
  if (lines.length > 0 && !asJson)
    ctx.io.stderr(lines.map((l, i) => (i === 0 ? `warning: ${l}` : l)).join('\n') + '\n');
}

function json(ctx: CommandContext, v: unknown): void {
  ctx.io.stdout(JSON.stringify(v, null, 2) + '\n');
}

function registerCa(keys: Command, ctx: CommandContext): void {
  keys
    .command('ca')
    .description(
      'create a self-signed CA (DIR/ca.pem, DIR/ca.der, DIR/ca.key.pem) to build into a kernel or enrol',
    )
    .option('--alg <alg>', 'rsa | ec | sm2', 'rsa')
    .option('--bits <n>', 'RSA modulus size (2048, 3072, 4096)')
    .option('--curve <name>', 'EC curve (P-256, P-384)')
    .option(
      '--subject <dn>',
      "subject, e.g. 'O=example,CN=IMA CA' or '/O=example/CN=IMA CA'",
      'O=imakit,CN=imakit IMA CA',
    )
    .option('--days <n>', 'validity in days', '3650')
    .option('--pass <pw>', 'encrypt the private key (PKCS#8, AES-256-CBC)')
    .requiredOption('--out <dir>', 'output directory (created, mode 0700, when missing)')
    .option('--profile <p>', 'target kernel to check the key against (as keys info)', 'debian-6.1')
    .option('--force', 'overwrite existing files')
    .option('--json', 'JSON output')
    .action((f) =>
      ctx.run(
        () => {
          kernelKeyProfile(f.profile);
          const out = createCaFiles({
            spec: keySpec(f),
            subject: f.subject,
            days: intOpt(f.days, '--days', 3650),
            pass: f.pass,
            outDir: f.out,
            write: { overwrite: f.force === true },
          });
          const warnings = creationWarnings(readKeyFile(out.der, 'certificate'), f.profile, 'CA');
          warn(ctx, warnings, f.json === true);
          if (f.json) json(ctx, { ...out, issuer: undefined, profile: f.profile, warnings });
          else
            ctx.io.stdout(
              `CA ${out.subject} (${out.alg}${out.curve ? ' ' + out.curve : ''}), key id ${out.keyid}\n  ${out.cert}\n  ${out.der}\n  ${out.key} (0600)\n` +
                `Build into a kernel with CONFIG_SYSTEM_TRUSTED_KEYS="${out.cert}".\n`,
            );
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerGen(keys: Command, ctx: CommandContext): void {
  keys
    .command('gen')
    .description(
      'create an IMA/EVM signing key and a certificate signed by a CA (DIR2/key.pem, cert.pem, cert.der)',
    )
    .option('--alg <alg>', 'rsa | ec | sm2', 'rsa')
    .option('--bits <n>', 'RSA modulus size')
    .option('--curve <name>', 'EC curve (P-256, P-384)')
    .option('--subject <dn>', 'subject name', 'O=imakit,CN=imakit IMA signing key')
    .option('--days <n>', 'validity in days', '3650')
    .requiredOption('--ca <dir>', 'CA directory (ca.pem and ca.key.pem, from `keys ca`)')
    .option('--ca-pass <pw>', 'passphrase of the CA key')
    .option('--pass <pw>', 'encrypt the new private key')
    .option('--code-signing', 'add extendedKeyUsage codeSigning')
    .requiredOption('--out <dir>', 'output directory (created, mode 0700, when missing)')
    .option('--profile <p>', 'target kernel to check the key against (as keys info)', 'debian-6.1')
    .option('--force', 'overwrite existing files')
    .option('--json', 'JSON output')
    .action((f) =>
      ctx.run(
        () => {
          kernelKeyProfile(f.profile);
          const out = createSigningKeyFiles({
            spec: keySpec(f),
            subject: f.subject,
            days: intOpt(f.days, '--days', 3650),
            pass: f.pass,
            outDir: f.out,
            write: { overwrite: f.force === true },
            caDir: f.ca,
            caPass: f.caPass,
            codeSigning: f.codeSigning === true,
          });
          const warnings = creationWarnings(readKeyFile(out.der, 'certificate'), f.profile, 'signing key');
          warn(ctx, warnings, f.json === true);
          if (f.json) json(ctx, { ...out, profile: f.profile, warnings });
          else
            ctx.io.stdout(
              `signing key ${out.subject} (${out.alg}${out.curve ? ' ' + out.curve : ''}), key id ${out.keyid}, issued by ${out.issuer}\n` +
                `  ${out.key} (0600)\n  ${out.cert}\n  ${out.der} (for keyctl padd asymmetric / imakit keys import)\n`,
            );
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerInfo(keys: Command, ctx: CommandContext): void {
  keys
    .command('info')
    .argument('<file>', 'certificate, public key or private key (PEM or DER)')
    .description(
      'algorithm, key id as the kernel computes it, extensions, and whether a kernel would accept it',
    )
    .option('--profile <p>', 'kernel profile: debian-6.1, mainline, linux-M.m', 'debian-6.1')
    .option('--pass <pw>', 'passphrase of an encrypted private key')
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          const bytes = readKeyFile(file);
          const info: KeyInfo = withPath(file, () =>
            describeKey(bytes, {
              profile: f.profile,
              ...(f.pass === undefined ? {} : { passphrase: f.pass }),
            }),
          );
          if (f.json) json(ctx, { file, ...info });
          else ctx.io.stdout(renderKeyInfo(info));
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerConvert(keys: Command, ctx: CommandContext): void {
  keys
    .command('convert')
    .argument('<file>', 'certificate, public or private key')
    .description(
      'convert between PEM and DER, or to the v1 key blob evmctl convert writes (FILE.bin, FILE.keyid)',
    )
    .requiredOption('--to <form>', 'pem | der | evmctl')
    .option('--out <file>', 'output file (for evmctl: the prefix; default FILE)')
    .option('--force', 'overwrite existing files')
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          if (f.to !== 'evmctl' && f.to !== 'pem' && f.to !== 'der')
            throw usage(`--to must be pem, der or evmctl (got '${f.to}')`);
          const written = convertKeyFile(file, f.to, f.out, { overwrite: f.force === true });
          if (f.json) json(ctx, { written });
          else ctx.io.stdout(written.map((p) => `wrote ${p}\n`).join(''));
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerImport(keys: Command, ctx: CommandContext): void {
  keys
    .command('import')
    .argument('<cert>', 'X.509 certificate (DER or PEM)')
    .description('load a certificate into a kernel keyring (keyctl padd asymmetric)')
    .requiredOption('--keyring <name>', '_ima, _evm, .ima, .machine, @u, or a serial number')
    .option('--create', 'create _ima/_evm under @u if missing')
    .option('--json', 'JSON output')
    .action((file, f) =>
      ctx.run(
        () => {
          const r = importCertificateFile(file, f.keyring, f.create === true);
          if (f.json)
            json(ctx, {
              serial: r.serial,
              keyring: f.keyring,
              keyringId: r.keyringId,
              keyid: r.keyid,
              subject: r.subject,
            });
          else ctx.io.stdout(`${r.serial}\n`);
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerKmk(keys: Command, ctx: CommandContext): void {
  keys
    .command('kmk')
    .description('kernel master key (user:kmk)')
    .command('new')
    .description('write a random master key (load with: keyctl padd user kmk @u < FILE)')
    .requiredOption('--out <file>', 'output file (0600), e.g. /etc/keys/kmk')
    .option('--len <n>', 'length in bytes', '32')
    .option('--force', 'overwrite')
    .option('--json', 'JSON output')
    .action((f) =>
      ctx.run(
        () => {
          const len = intOpt(f.len, '--len', 32);
          if (len < 1 || len > 32767) throw usage('--len must be 1..32767');
          writeMasterKeyFile(f.out, len, { overwrite: f.force === true });
          if (f.json) json(ctx, { written: f.out, len });
          else
            ctx.io.stdout(
              `wrote ${f.out} (${len} bytes, 0600); load it with: keyctl padd user kmk @u < ${f.out}\n`,
            );
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerEvmKey(keys: Command, ctx: CommandContext): void {
  const ek = keys
    .command('evmkey')
    .description('the encrypted evm-key (kernel encrypted-key "default" format)');
  ek.command('new')
    .description(
      'a random EVM key wrapped under the master key (load with keyctl add encrypted evm-key "load $(cat BLOB)" @u)',
    )
    .requiredOption('--kmk <file>', 'master key file')
    .requiredOption('--out <file>', 'blob file (like /etc/keys/evm-key)')
    .option('--len <n>', 'EVM key length in bytes (20..128 for EVM)', '32')
    .option('--master-desc <desc>', 'master key description', 'user:kmk')
    .option('--plain-out <file>', 'also write the plain EVM key (0600) for offline HMAC labelling')
    .option('--force', 'overwrite')
    .option('--json', 'JSON output')
    .action((f) =>
      ctx.run(
        () => {
          const len = intOpt(f.len, '--len', 32);
          if (len < 20 || len > 128) throw usage('--len must be 20..128 (EVM uses at most 128 bytes)');
          const loadCommand = createEvmKeyFiles({
            kmk: f.kmk,
            out: f.out,
            len,
            masterDesc: f.masterDesc,
            plainOut: f.plainOut,
            write: { overwrite: f.force === true },
          });
          if (f.json) json(ctx, { written: f.out, plain: f.plainOut, len, loadCommand });
          else
            ctx.io.stdout(
              `wrote ${f.out}; load it with: keyctl add encrypted evm-key "load $(cat ${f.out})" @u\n`,
            );
          return 0;
        },
        { json: f.json === true },
      ),
    );
  ek.command('decrypt')
    .argument('<blob>', 'exported encrypted key (keyctl pipe output, /etc/keys/evm-key)')
    .description('verify the HMAC and decrypt the blob with the master key')
    .requiredOption('--kmk <file>', 'master key file')
    .requiredOption('--out <file>', 'plain key output (0600)')
    .option('--force', 'overwrite')
    .option('--json', 'JSON output')
    .action((blob, f) =>
      ctx.run(
        () => {
          const len = decryptEvmKeyFile(blob, f.kmk, f.out, { overwrite: f.force === true });
          if (f.json) json(ctx, { written: f.out, len });
          else ctx.io.stdout(`wrote ${f.out} (${len} bytes, 0600)\n`);
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

export const command: CommandModule = {
  name: 'keys',
  register(program, ctx) {
    const keys = program
      .command('keys')
      .description('signing CAs and certificates, kernel keyrings, EVM key blobs');
    registerCa(keys, ctx);
    registerGen(keys, ctx);
    registerInfo(keys, ctx);
    registerConvert(keys, ctx);
    registerImport(keys, ctx);
    registerKmk(keys, ctx);
    registerEvmKey(keys, ctx);
  },
};
