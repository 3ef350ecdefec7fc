/**
 * Inputs shared by the attestation commands (`imakit log`, `eventlog`, `boot-aggregate`): PCR
 * values from files (evmctl `PCR-NN:`, `tpm2_pcrread` output, JSON) or the TPM's sysfs, list files
 * (binary or ascii, detected), the live securityfs list, and atomic output files.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fromSystemError, ImakitError, withPath } from '../../errors.ts';
import type { Endian } from '../../core/bytes/bytes.ts';
import { findHashAlgo } from '../../core/hash/hash-algo.ts';
import { mergePcrValues, parsePcrText, type PcrValues } from '../../core/tcg/pcr-values.ts';
import { decodeList, looksAscii, type LoadedList } from '../../core/ima-list/list-form.ts';
import {
  ChunkScanner,
  cursorToEntry,
  detectListFormat,
  type EntryCursor,
  type ListFormat,
  type UntrustedEntry,
} from '../../core/ima-list/binary.ts';
import { parseEventLog, type TcgEventLog } from '../../core/tcg/event-log.ts';
import { readFileChunks } from './list-file.ts';
import { formatSize, INPUT_CAPS, readBoundedFile, tooLarge, type InputKind } from '../fs/bounded-read.ts';
import { bankFromListName, findImaSecurityfs, listBinaryLists } from './securityfs.ts';
import { DEFAULT_TPM_SYSFS, readSysfsPcrs } from './tpm-sysfs.ts';

/**
 * Read a whole input file, bounded by the cap of its kind (a FIFO or /dev/zero is refused past it).
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE naming the path
 */
export function readInput(path: string, kind: InputKind): Uint8Array {
  return readBoundedFile(path, kind);
}

/** The first (up to) 4 KiB of a file: enough to tell an ascii list from a binary one. */
export function readHead(path: string): Uint8Array {
  for (const c of readFileChunks(path, 4096)) return c;
  return new Uint8Array(0);
}

/**
 * PCR values from `--pcrs [ALG,]FILE` (any supported format; ALG names the bank of a `PCR-NN:`
 * file) and `--pcrs-json FILE`. Returns undefined when none was given.
 * @throws CodecError E_PCR_FILE naming the file and line
 */
export function readPcrOptions(
  specs: readonly string[],
  jsonFiles: readonly string[] = [],
): PcrValues | undefined {
  const parts: PcrValues[] = [];
  for (const spec of [...specs, ...jsonFiles]) {
    const m = /^([A-Za-z0-9_-]+),(.+)$/.exec(spec);
    const bank = m && findHashAlgo(m[1]!.toLowerCase()) ? m[1]!.toLowerCase() : undefined;
    // `sha999,FILE`: an unknown bank, not a file named "sha999,FILE" (unless one exists)
    if (m && bank === undefined && !existsSync(spec))
      throw new ImakitError(
        'E_HASH_UNKNOWN',
        `unknown bank '${m[1]}' in --pcrs ${spec} (banks: sha1, sha256, sha384, sha512, sm3-256, ...)`,
        { token: m[1]! },
      );
    const file = bank ? m![2]! : spec;
    const text = new TextDecoder().decode(readInput(file, 'pcrs'));
    try {
      parts.push(parsePcrText(text, bank));
    } catch (e) {
      if (e instanceof ImakitError)
        throw new ImakitError(e.code, e.detail, { ...e.context, path: file }, { cause: e });
      throw e;
    }
  }
  return parts.length > 0 ? mergePcrValues(...parts) : undefined;
}

/**
 * The TPM's PCRs from sysfs (`<dir>/pcr-<alg>/N`).
 * @throws ImakitError E_TOOL_MISSING naming the path when the TPM exposes no PCRs
 */
export function readTpmPcrs(dir = DEFAULT_TPM_SYSFS, banks?: readonly string[]): PcrValues {
  try {
    return readSysfsPcrs({ dir, banks });
  } catch (e) {
    const path = e instanceof ImakitError && e.context.path !== undefined ? e.context.path : dir;
    throw new ImakitError(
      'E_TOOL_MISSING',
      `no TPM PCRs readable at ${path} (needs a TPM 2.0 with kernel 5.11+ pcr-<alg> files, or give --pcrs)`,
      { path },
      { cause: e },
    );
  }
}

/**
 * Write a file atomically (temporary file + rename); on failure the temporary file is removed, so
 * nothing half-written is left. @throws ImakitError E_IO_WRITE
 */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  const w = openAtomic(path);
  try {
    w.write(data);
  } catch (e) {
    w.abort();
    throw e;
  }
  w.commit();
}

/** A file written piece by piece and put in place only when complete. */
export interface AtomicWriter {
  write(data: Uint8Array | string): void;
  /** rename into place */
  commit(): void;
  /** remove the temporary file (after a failure) */
  abort(): void;
}

/**
 * Start writing `path` through a temporary file beside it (streamed conversions of lists of any
 * length); readers see the old file or the whole new one, never a part.
 * @throws ImakitError E_IO_WRITE
 */
export function openAtomic(path: string): AtomicWriter {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', path);
  }
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write(data) {
      try {
        const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        let off = 0;
        while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_WRITE', path);
      }
    },
    commit() {
      try {
        close();
        renameSync(tmp, path);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw fromSystemError(e, 'E_IO_WRITE', path);
      }
    },
    abort() {
      close();
      rmSync(tmp, { force: true });
    },
  };
}

/** File size, or 0 when unknown (securityfs files report 0). */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Read and decode a list file, ascii or binary (detected). A `*_runtime_measurements_<alg>` name
 * fixes the bank unless `bank` is given.
 * @throws ImakitError E_IO_READ; CodecError for a malformed list
 */
export function loadListFile(path: string, bank?: string, endian?: Endian): LoadedList {
  const hints = { bank, endian, nameBank: bankFromListName(path) };
  // a binary list's first entries are checked before the rest is read: /dev/zero or an event log
  // is refused at once, not after reading up to the (large) cap of a list held in memory
  const bytes = readBoundedFile(path, 'measurement-list', {
    probe: {
      bytes: LIST_PROBE_BYTES,
      check: (head) => {
        if (!looksAscii(head))
          try {
            withPath(path, () => detectListFormat(head, { bank: bank ?? hints.nameBank, endian }));
          } catch (e) {
            throw withLookalike(e, head, 'measurement-list');
          }
      },
    },
  });
  return { path, ...decodeList(bytes, hints) };
}

/** How much of a list is probed before it is read whole (decodeList detects from 64 KiB too). */
const LIST_PROBE_BYTES = 64 * 1024;

/** What {@link streamListFile} found. */
export interface StreamedList {
  readonly path: string;
  readonly kind: 'binary' | 'ascii';
  readonly format: ListFormat;
  readonly evidence: string;
  readonly entries: number;
}

/**
 * Visit every entry of a list file in order, binary lists streamed in 1 MiB reads with flat memory
 * (any length, a FIFO, the live securityfs list); an ascii list is read whole (bounded by the
 * measurement-list cap). `onEntry` gets each entry, its index and the list's format.
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE; CodecError for a malformed list (with the path,
 *   and what the file looks like when it is recognisably something else)
 */
export function streamListFile(
  path: string,
  hints: { readonly bank?: string; readonly endian?: Endian },
  onEntry: (e: UntrustedEntry, index: number, format: ListFormat) => void,
): StreamedList {
  const nameBank = bankFromListName(path);
  const chunks = readFileChunks(path);
  const head: Uint8Array[] = [];
  let headLen = 0;
  let done = false;
  while (headLen < LIST_PROBE_BYTES) {
    const n = chunks.next();
    if (n.done === true) {
      done = true;
      break;
    }
    head.push(n.value);
    headLen += n.value.length;
  }
  const first = head.length === 1 ? head[0]! : new Uint8Array(Buffer.concat(head));
  if (looksAscii(first)) {
    // ascii lists are line-oriented text: collected (bounded), then decoded
    let len = headLen;
    const all = [...head];
    for (const c of done ? [] : chunks) {
      len += c.length;
      if (len > INPUT_CAPS['measurement-list'])
        throw tooLarge(
          path,
          'measurement-list',
          INPUT_CAPS['measurement-list'],
          `is more than ${formatSize(INPUT_CAPS['measurement-list'])}`,
        );
      all.push(c);
    }
    const d = withPath(path, () => decodeList(new Uint8Array(Buffer.concat(all)), { ...hints, nameBank }));
    d.entries.forEach((e, i) => onEntry(e, i, d.format));
    return { path, kind: d.kind, format: d.format, evidence: d.evidence, entries: d.entries.length };
  }
  let det: ReturnType<typeof detectListFormat>;
  try {
    det = withPath(path, () =>
      detectListFormat(first, { bank: hints.bank ?? nameBank, endian: hints.endian }),
    );
  } catch (e) {
    throw withLookalike(e, first, 'measurement-list');
  }
  const fmt = det.format;
  const scanner = new ChunkScanner(fmt);
  let index = 0;
  const visit = (c: EntryCursor): void => onEntry(cursorToEntry(c, fmt.digestSize), index++, fmt);
  withPath(path, () => {
    scanner.push(first, visit);
    if (!done) for (const c of chunks) scanner.push(c, visit);
    scanner.end();
  });
  return { path, kind: 'binary', format: fmt, evidence: det.evidence, entries: index };
}

/**
 * The live measurement list in securityfs: the classic `binary_runtime_measurements` when present,
 * else the first per-bank list.
 * @param dir the IMA securityfs directory (default: found under /sys/kernel/security)
 * @throws ImakitError E_TOOL_MISSING when there is none (securityfs not mounted, IMA off, not root)
 */
export function liveListPath(dir?: string): string {
  const d = findImaSecurityfs(dir ? [dir] : undefined);
  if (!d)
    throw new ImakitError(
      'E_TOOL_MISSING',
      `no IMA measurement list at ${dir ?? '/sys/kernel/security/ima'}/binary_runtime_measurements (securityfs not mounted, IMA off, or not root); give a LIST file`,
      { path: join(dir ?? '/sys/kernel/security/ima', 'binary_runtime_measurements') },
    );
  const lists = listBinaryLists(d);
  const classic = join(d, 'binary_runtime_measurements');
  return existsSync(classic) ? classic : [...lists.values()][0]!;
}

/**
 * Read and parse a TCG event log file; parse errors name the file.
 * @throws ImakitError E_IO_READ; CodecError/ImakitError from the parser with `path` set
 */
export function readEventLogFile(path: string): TcgEventLog {
  const bytes = readInput(path, 'event-log');
  try {
    return withPath(path, () => parseEventLog(bytes));
  } catch (e) {
    throw withLookalike(e, bytes, 'event-log');
  }
}

/**
 * What a file that failed to parse as `expected` looks like instead, when that is recognisable
 * (issue 10 item 10: `eventlog show` on an IMA list said only "data size 761359721").
 */
export function lookalike(head: Uint8Array, expected: 'event-log' | 'measurement-list'): string | undefined {
  const text = new TextDecoder('latin1').decode(head.subarray(0, 256));
  if (expected !== 'event-log') {
    // TCG PC Client: the first event of a crypto-agile log is EV_NO_ACTION "Spec ID Event03";
    // a TPM 1.2 log starts with PCR 0 and EV_S_CRTM_VERSION/EV_POST_CODE/EV_SEPARATOR events
    if (text.includes('Spec ID Event03')) return 'a crypto-agile TCG event log; use imakit eventlog show';
    return undefined;
  }
  if (looksAscii(head)) return 'an IMA ascii measurement list; use imakit log show';
  try {
    const d = detectListFormat(head.subarray(0, LIST_PROBE_BYTES));
    return `an IMA binary measurement list (${d.format.bank} template digests); use imakit log show`;
  } catch {
    return undefined;
  }
}

function withLookalike(e: unknown, head: Uint8Array, expected: 'event-log' | 'measurement-list'): unknown {
  if (!(e instanceof ImakitError)) return e;
  const like = lookalike(head, expected);
  if (like === undefined) return e;
  return new ImakitError(e.code, `${e.detail}; this looks like ${like}`, e.context, { cause: e });
}
