/**
 * What the agent collects for one attestation: the measurement list from a byte offset, the TCG
 * event log, the boot count, and a quote with the PCR values.
 *
 * The list is read from the verifier's offset only: open, then positioned reads from that offset
 * to EOF (securityfs lists report size 0, so EOF ends the read, not the stat size). Bytes before
 * the offset are never read by the agent; on securityfs the kernel's seq_file seeks by walking its
 * records without copying them out. Entries that arrive while the read runs may end the read inside
 * an entry: the verifier consumes whole entries and asks for the rest from the last whole one.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import { bankName, parsePcrSelectionText } from '../../core/tpm/pcr-selection.ts';
import type { TpmClient } from '../tpm/client.ts';
import { loadAkDir } from '../tpm/ak-files.ts';
import { readBoundedText } from '../fs/bounded-read.ts';
import { readSecretFile, writeSecretFile } from './secret-files.ts';

/**
 * The most list bytes sent in one piece of evidence: base64 makes 4/3 of it, and the verifier's
 * default body limit is 64 MiB. A longer backlog goes over several attestations.
 */
export const MAX_LIST_BYTES_PER_EVIDENCE = 32 * 1024 * 1024;
/** An event log larger than this is not a firmware log (they are tens of KiB). */
export const MAX_EVENT_LOG_BYTES = 16 * 1024 * 1024;
const READ_CHUNK = 1 << 20;

export interface ListSlice {
  /** where the bytes start in the list */
  readonly offsetBytes: number;
  readonly bytes: Uint8Array;
  /** true when the read stopped at the cap, not at EOF */
  readonly capped: boolean;
}

/**
 * Read `path` from byte `offset` to EOF (at most `cap` bytes), by positioned reads.
 * @throws ImakitError E_IO_READ, E_USAGE (negative offset)
 */
export function readListFrom(path: string, offset: number, cap = MAX_LIST_BYTES_PER_EVIDENCE): ListSlice {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new ImakitError('E_USAGE', `list offset ${offset}: expected a non-negative integer`, { path });
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  const parts: Uint8Array[] = [];
  let have = 0;
  let capped = false;
  try {
    for (;;) {
      if (have >= cap) {
        capped = true;
        break;
      }
      const buf = new Uint8Array(Math.min(READ_CHUNK, cap - have));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, offset + have);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
      if (n === 0) break;
      parts.push(n === buf.length ? buf : buf.subarray(0, n));
      have += n;
    }
  } finally {
    closeSync(fd);
  }
  const bytes = new Uint8Array(have);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return Object.freeze({ offsetBytes: offset, bytes, capped });
}

/**
 * The TCG event log, or undefined when the file does not exist (no TPM driver log: a VM without
 * one, a container).
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE
 */
export function readEventLog(path: string): Uint8Array | undefined {
  const s = readListFrom(path, 0, MAX_EVENT_LOG_BYTES + 1);
  if (s.bytes.length > MAX_EVENT_LOG_BYTES)
    throw new ImakitError('E_IO_TOO_LARGE', `event log larger than ${MAX_EVENT_LOG_BYTES} bytes`, { path });
  return s.bytes;
}

/** The event log if the file exists. */
export function readEventLogIfPresent(path: string | undefined): Uint8Array | undefined {
  if (path === undefined) return undefined;
  try {
    return readEventLog(path);
  } catch (e) {
    if ((e as { cause?: { code?: unknown } }).cause?.code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Boots counted by the agent: the kernel's boot id changes at every boot; a change from the one
 * recorded in STATE/boot.json adds one. The first run counts 1. (The TPM's resetCount, in every
 * quote's clockInfo, is the verifier's independent count.)
 * @throws ImakitError E_IO_READ (the boot id file), E_IO_WRITE (the state)
 */
export function bootCount(bootIdPath: string, stateDir: string): number {
  let bootId: string;
  try {
    bootId = readBoundedText(bootIdPath, 'proc-value').trim();
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', bootIdPath);
  }
  const file = join(stateDir, 'boot.json');
  let prev: { bootId?: unknown; count?: unknown } = {};
  const text = readSecretFile(file);
  if (text !== undefined)
    try {
      prev = JSON.parse(text) as typeof prev;
    } catch {
      prev = {};
    }
  const prevCount = typeof prev.count === 'number' && Number.isSafeInteger(prev.count) ? prev.count : 0;
  if (prev.bootId === bootId && prevCount > 0) return prevCount;
  const count = prevCount + 1;
  writeSecretFile(file, `${JSON.stringify({ bootId, count })}\n`);
  return count;
}

/** A quote over the asked PCRs with the nonce, and the PCR values read right after it. */
export interface QuoteEvidence {
  readonly quote: { readonly attest: Uint8Array; readonly signature: Uint8Array };
  /** `{ sha256: { '0': hex, … } }` */
  readonly pcrs: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * Quote `pcrs` (text, `sha256:0-7,10`) over `nonce` with the AK in `akDir`. A PCR extended between
 * the quote and the read makes the verifier's digest check fail: it never passes wrongly, and the
 * next attestation succeeds.
 * @throws ImakitError E_USAGE (bad selection), TPM errors (E_TPM_*), E_KEY_MISMATCH (AK of another TPM)
 */
export async function quotePcrs(
  tpm: TpmClient,
  akDir: string,
  nonce: Uint8Array,
  pcrs: string,
): Promise<QuoteEvidence> {
  const sel = parsePcrSelectionText(pcrs);
  const { key, transient } = await loadAkDir(tpm, akDir);
  let quote;
  try {
    quote = await tpm.quote(key.handle, nonce, sel);
  } finally {
    if (transient) await tpm.flush(key.handle);
  }
  const values = await tpm.pcrRead(sel);
  const out: Record<string, Record<string, string>> = {};
  for (const v of values.values) (out[bankName(v.hashAlg)] ??= {})[String(v.pcr)] = toHex(v.value);
  return Object.freeze({ quote: { attest: quote.attest, signature: quote.signature }, pcrs: out });
}
