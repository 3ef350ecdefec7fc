/**
 * An attestation key on disk, and quotes written next to it.
 *
 * `createAkDir` writes, in DIR:
 *  - `ak.pub`  TPM2B_PUBLIC as the TPM returned it (`tpm2_createak -u` form; `tpm2_checkquote -u` reads it)
 *  - `ak.priv` TPM2B_PRIVATE, wrapped by the EK (only that TPM can load it)
 *  - `ak.pem`  the public key (SubjectPublicKeyInfo)
 *  - `ak.name` the AK's Name, hex (what `tpm2_makecredential -n` takes)
 *  - `ak.json` how to use it again: `{ parent: { kind: 'ek', ek: 'rsa'|'ecc'|'ecc384', name }, scheme,
 *    name, persistent? }`. The AK is re-loaded under the EK regenerated from its TCG template
 *    (CreatePrimary is deterministic), so nothing stays loaded in the TPM between commands; with
 *    `persist` the AK is also made persistent by EvictControl and `persistent` records the handle.
 *
 * `quoteToDir` writes `quote.attest` (raw TPMS_ATTEST), `quote.sig` (raw TPMT_SIGNATURE) and
 * `pcrs.txt` (`bank:index hex` lines), the forms `imakit quote verify` and `tpm2_checkquote -m/-s`
 * read. Every file is written atomically.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { fromHex, toHex } from '../../core/bytes/bytes.ts';
import { decodeTpm2bPublic, tpmPublicName, tpmPublicToPem } from '../../core/tpm/public.ts';
import type { PcrSelection } from '../../core/tpm/pcr-selection.ts';
import { bankName } from '../../core/tpm/pcr-selection.ts';
import type { AkKind, EkKind } from '../../core/tpm/commands/templates.ts';
import type { AttestResult } from '../../core/tpm/commands/attest.ts';
import { writeAtomic } from '../attest/attest-input.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import type { LoadedEk, LoadedKey, TpmClient } from './client.ts';

/** `ak.json`. */
export interface AkInfo {
  readonly parent: { readonly kind: 'ek'; readonly ek: EkKind; readonly name: string };
  readonly scheme: AkKind;
  readonly name: string;
  readonly persistent?: string;
}

export interface CreateAkOptions {
  readonly kind?: AkKind;
  readonly ek?: EkKind;
  /** persist with EvictControl at this handle (0x81000000-0x81ffffff) */
  readonly persist?: number;
}

/** Create an AK under the EK and write it to `dir`. Flushes what it loaded. */
export async function createAkDir(tpm: TpmClient, dir: string, opts: CreateAkOptions = {}): Promise<AkInfo> {
  const ekKind = opts.ek ?? 'rsa';
  const kind = opts.kind ?? 'rsassa';
  const ek = await tpm.createEk(ekKind);
  try {
    const ak = await tpm.createAk(ek, kind);
    try {
      if (opts.persist !== undefined) {
        if (opts.persist >>> 24 !== 0x81)
          throw new ImakitError(
            'E_USAGE',
            `--persist 0x${opts.persist.toString(16)} is not a persistent handle`,
          );
        await tpm.persist(ak.key.handle, opts.persist);
      }
      const info: AkInfo = {
        parent: { kind: 'ek', ek: ekKind, name: toHex(ek.name) },
        scheme: kind,
        name: toHex(ak.key.name),
        ...(opts.persist !== undefined ? { persistent: `0x${opts.persist.toString(16)}` } : {}),
      };
      try {
        mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw fromSystemError(e, 'E_IO_WRITE', dir);
      }
      writeAtomic(join(dir, 'ak.pub'), ak.key.publicBytes);
      writeAtomic(join(dir, 'ak.priv'), ak.outPrivate);
      writeAtomic(join(dir, 'ak.pem'), tpmPublicToPem(ak.key.public));
      writeAtomic(join(dir, 'ak.name'), `${info.name}\n`);
      writeAtomic(join(dir, 'ak.json'), `${JSON.stringify(info, null, 2)}\n`);
      return info;
    } finally {
      await tpm.flush(ak.key.handle);
    }
  } finally {
    await tpm.flush(ek.handle);
  }
}

function readIn(dir: string, name: string): Uint8Array {
  return readBoundedFile(join(dir, name), 'tpm-object');
}

/** Read `ak.json` of an AK directory. @throws ImakitError E_IO_READ, E_USAGE (not an AK dir) */
export function readAkInfo(dir: string): AkInfo {
  const text = new TextDecoder().decode(readIn(dir, 'ak.json'));
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ImakitError('E_USAGE', `not an AK directory: ${(e as Error).message}`, {
      path: join(dir, 'ak.json'),
    });
  }
  const o = v as Partial<AkInfo>;
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.name !== 'string' ||
    o.parent?.kind !== 'ek' ||
    !['rsa', 'ecc', 'ecc384'].includes(o.parent.ek)
  )
    throw new ImakitError('E_USAGE', 'not an AK directory written by imakit tpm ak create', {
      path: join(dir, 'ak.json'),
    });
  return o as AkInfo;
}

/**
 * Make the AK in `dir` usable: its persistent handle, or Load under the regenerated EK. The caller
 * flushes `loaded` when it is not persistent (`TpmClient.close` does that too).
 * @throws ImakitError E_VERIFY_NAME... E_KEY_MISMATCH when the TPM's AK is not the one on disk
 */
export async function loadAkDir(
  tpm: TpmClient,
  dir: string,
): Promise<{ key: LoadedKey; transient: boolean }> {
  const info = readAkInfo(dir);
  const pubBytes = readIn(dir, 'ak.pub');
  const expectName = toHex(tpmPublicName(decodeTpm2bPublic(pubBytes)));
  if (info.persistent !== undefined) {
    const key = await tpm.persistentKey(Number(info.persistent));
    if (toHex(key.name) !== expectName)
      throw new ImakitError('E_KEY_MISMATCH', `the key at ${info.persistent} is not the AK in ${dir}`);
    return { key, transient: false };
  }
  // the EK persisted at its TCG handle (EK Credential Profile §2.2.1.4) when it is the parent: saves
  // a CreatePrimary (about 50 ms for RSA on swtpm, seconds on some hardware)
  const persisted = await persistedEk(tpm, info);
  if (persisted !== undefined) {
    const key = await tpm.loadUnderEk(persisted, readIn(dir, 'ak.priv'), pubBytes);
    return { key, transient: true };
  }
  const ek = await tpm.createEk(info.parent.ek);
  try {
    if (toHex(ek.name) !== info.parent.name)
      throw new ImakitError(
        'E_KEY_MISMATCH',
        `this TPM's ${info.parent.ek} EK is not the AK's parent (another TPM?)`,
        {
          path: dir,
        },
      );
    const key = await tpm.loadUnderEk(ek, readIn(dir, 'ak.priv'), pubBytes);
    return { key, transient: true };
  } finally {
    await tpm.flush(ek.handle);
  }
}

/** TCG persistent EK handles (RSA 0x81010001, ECC P-256 0x81010002; swtpm's P-384 at 0x81010016). */
const EK_PERSISTENT: Readonly<Record<EkKind, number>> = Object.freeze({
  rsa: 0x81010001,
  ecc: 0x81010002,
  ecc384: 0x81010016,
});

/** The AK's parent EK at its persistent handle, if it is there and has the recorded name. */
async function persistedEk(tpm: TpmClient, info: AkInfo): Promise<LoadedEk | undefined> {
  const handle = EK_PERSISTENT[info.parent.ek];
  if (!(await tpm.handles(0x81000000)).includes(handle)) return undefined;
  const key = await tpm.persistentKey(handle);
  return toHex(key.name) === info.parent.name ? Object.freeze({ ...key, kind: info.parent.ek }) : undefined;
}

/** The `bank:index hex` text of PCR values. */
export function formatPcrLines(
  values: readonly { hashAlg: number; pcr: number; value: Uint8Array }[],
): string {
  return values.map((v) => `${bankName(v.hashAlg)}:${v.pcr} ${toHex(v.value)}\n`).join('');
}

export interface QuoteFiles {
  readonly attest: string;
  readonly signature: string;
  readonly pcrs: string;
  readonly quote: AttestResult;
}

/**
 * Quote `sel` with the AK in `akDir` over `nonce`, read the PCRs, and write the three files to
 * `outDir`. The PCRs are read right after the quote: a PCR extended in between makes
 * `imakit quote verify` fail with a digest mismatch (it never passes wrongly).
 */
export async function quoteToDir(
  tpm: TpmClient,
  akDir: string,
  nonce: Uint8Array,
  sel: PcrSelection,
  outDir: string,
): Promise<QuoteFiles> {
  const { key, transient } = await loadAkDir(tpm, akDir);
  let quote: AttestResult;
  try {
    quote = await tpm.quote(key.handle, nonce, sel);
  } finally {
    if (transient) await tpm.flush(key.handle);
  }
  const pcrs = await tpm.pcrRead(sel);
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', outDir);
  }
  const files = {
    attest: join(outDir, 'quote.attest'),
    signature: join(outDir, 'quote.sig'),
    pcrs: join(outDir, 'pcrs.txt'),
  };
  writeAtomic(files.attest, quote.attest);
  writeAtomic(files.signature, quote.signature);
  writeAtomic(files.pcrs, formatPcrLines(pcrs.values));
  return { ...files, quote };
}

/** Parse a hex nonce flag. @throws ImakitError E_USAGE */
export function parseNonce(hex: string): Uint8Array {
  try {
    const n = fromHex(hex);
    if (n.length > 64) throw new RangeError('longer than 64 bytes');
    return n;
  } catch (e) {
    throw new ImakitError('E_USAGE', `--nonce ${hex}: ${(e as Error).message}`);
  }
}
