/**
 * The one reader for small input files (keys, certificates, policies, PCR files, scenarios...).
 *
 * `readFileSync` reads until EOF: `--key /dev/zero` or a FIFO that never closes grows the process
 * to gigabytes until the OOM killer ends it (issue 10 item 3; ima-evm-utils' sign_verify.test runs
 * `evmctl verify --key /dev/zero`). Every input kind has a cap that fits it; a regular file larger
 * than the cap is refused from its size before anything is read, and anything else (a character
 * device, a FIFO, a securityfs file reporting size 0) is read only up to the cap and refused past
 * it. Lists of any length are streamed elsewhere (host/attest/list-file.ts), never read here.
 */
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { fromSystemError, ImakitError } from '../../errors.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Size caps per input kind, in bytes. Each is far above any real input of the kind and far below
 * what would hurt the machine.
 */
export const INPUT_CAPS = Object.freeze({
  /** private or public key, PEM or DER (an RSA-16384 PEM is 13 KiB) */
  key: 1 * MiB,
  /** an X.509 certificate or a PEM bundle of a few */
  certificate: 1 * MiB,
  /** the kmk, an encrypted evm-key blob, a plain HMAC key (the kernel's encrypted keys are <= 4 KiB) */
  'evm-key': 64 * KiB,
  /** a `.sig` file or an xattr value file (XATTR_SIZE_MAX is 64 KiB) */
  signature: 64 * KiB,
  /** an IMA policy text (the kernel reads a policy write in pages; real policies are KiB) */
  policy: 16 * MiB,
  /** PCR values: evmctl `PCR-NN:` lines, tpm2_pcrread output, JSON (all banks: a few KiB) */
  pcrs: 1 * MiB,
  /** an `imakit emulate` scenario (JSON), or a file's contents named by one */
  scenario: 64 * MiB,
  /** an `imakit vm run` workload (JSON) */
  workload: 16 * MiB,
  /** a TCG firmware event log (real ones are 10-100 KiB; a long-running TPM 1.2 log a few MiB) */
  'event-log': 16 * MiB,
  /** a `log verify --checkpoint` file (JSON, one line per bank) */
  checkpoint: 16 * MiB,
  /**
   * a whole measurement list held in memory (log diff/convert, an ascii list): about 10 M entries.
   * `imakit log verify` and `log show` of a binary list stream and have no cap.
   */
  'measurement-list': 1024 * MiB,
  /** standard input of `evmctl sign_hash` (one `HASH FILE` line per file) */
  stdin: 256 * MiB,
  /**
   * a reference set (`--refs`, `refs sign|verify|merge|diff|impact|convert`): the compact form of
   * 1 M paths is ~83 MiB, a Keylime JSON policy of as many ~150 MiB; V8 holds no string over
   * ~512 MiB, so a JSON form past that could not be parsed anyway
   */
  'reference-set': 512 * MiB,
  /** a file of an AK directory (`ak.pub`, `ak.priv`, `ak.name`, `ak.json`: TPM2B structures are < 4 KiB) */
  'tpm-object': 64 * KiB,
  /** an OCI index, manifest or config, or a `docker save` manifest.json (containerd caps them at 4 MiB) */
  'oci-json': 4 * MiB,
  /** dpkg's `status`, `info/<pkg>.list` or `.md5sums` (a large system's status is ~10 MiB, the longest .list a few MiB) */
  'dpkg-db': 64 * MiB,
  /** `rpmdb.sqlite`, loaded whole by sql.js (a large system's is ~100-300 MiB) */
  rpmdb: 2048 * MiB,
  /** an `imakit agent --config` file, JSON or `key = value` (a dozen settings: well under 1 KiB) */
  config: 1 * MiB,
  /** a token or JSON state file the agent or verifier wrote (admin-token, agent-token, last.json, boot.json) */
  'agent-state': 1 * MiB,
  /** a one-line /proc or sysfs value (`/proc/sys/kernel/random/boot_id` is 37 bytes) */
  'proc-value': 4 * KiB,
});

/** The kinds of bounded inputs. */
export type InputKind = keyof typeof INPUT_CAPS;

/** How a kind is named in messages. */
const KIND_NAMES: Readonly<Record<InputKind, string>> = Object.freeze({
  key: 'a key',
  certificate: 'a certificate',
  'evm-key': 'an EVM key or master key',
  signature: 'a signature file',
  policy: 'a policy',
  pcrs: 'a PCR file',
  scenario: 'a scenario file',
  workload: 'a workload file',
  'event-log': 'an event log',
  checkpoint: 'a checkpoint',
  'measurement-list': 'a measurement list read whole',
  stdin: 'standard input',
  'reference-set': 'a reference set',
  'tpm-object': 'a TPM object file',
  'oci-json': 'an OCI JSON document',
  'dpkg-db': 'a dpkg database file',
  rpmdb: 'an RPM database',
  config: 'a config file',
  'agent-state': 'an agent state file',
  'proc-value': 'a /proc value',
});

/** `1 MiB`, `64 KiB`, `123 bytes`. */
export function formatSize(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

function fileKind(st: Stats): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a file';
}

/**
 * The error for an input over its cap: names the file, the kind and the cap.
 * @param what e.g. "is 2 GiB" or "is a character device that gave more than that"
 */
export function tooLarge(path: string, kind: InputKind, cap: number, what: string): ImakitError {
  return new ImakitError(
    'E_IO_TOO_LARGE',
    `${what}: the cap for ${KIND_NAMES[kind]} is ${formatSize(cap)} (is this the right file?)`,
    { path },
  );
}

/** Options of {@link readBoundedFile}. */
export interface BoundedReadOptions {
  /** override the kind's cap (tests; a caller with a tighter limit) */
  readonly cap?: number;
  /**
   * Called once with the first `bytes` bytes (or the whole input when shorter), before the rest is
   * read: a check that throws there refuses a wrong file (a device, a different format) without
   * reading up to the cap. Used by the measurement-list reader, whose cap is large.
   */
  readonly probe?: { readonly bytes: number; readonly check: (head: Uint8Array) => void };
}

/**
 * Read a whole input file of a known kind, refusing it past the kind's cap.
 * A FIFO blocks in open() until a writer appears, as with any reader.
 * @throws ImakitError E_IO_READ (open/read failed), E_IO_NOT_REGULAR (a directory),
 *   E_IO_TOO_LARGE (over the cap: the path, kind and cap named)
 */
export function readBoundedFile(path: string, kind: InputKind, opts: BoundedReadOptions = {}): Uint8Array {
  const cap = opts.cap ?? INPUT_CAPS[kind];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', path);
    }
    if (st.isDirectory())
      throw new ImakitError('E_IO_NOT_REGULAR', 'is a directory, expected a file', { path });
    if (st.isFile() && st.size > cap) throw tooLarge(path, kind, cap, `is ${formatSize(st.size)}`);
    // Regular files: their size (plus one byte to notice growth); size-0 pseudo files (sysfs,
    // securityfs, /proc) and devices/FIFOs: grow as data arrives, up to cap + 1.
    let buf = new Uint8Array(Math.min(cap + 1, st.isFile() && st.size > 0 ? st.size + 1 : 64 * KiB));
    let len = 0;
    let probed = opts.probe === undefined;
    for (;;) {
      if (!probed && len >= opts.probe!.bytes) {
        probed = true;
        opts.probe!.check(buf.subarray(0, len));
      }
      if (len === buf.length) {
        if (buf.length > cap) break;
        const next = new Uint8Array(Math.min(cap + 1, buf.length * 2));
        next.set(buf);
        buf = next;
      }
      let n: number;
      try {
        n = readSync(fd, buf, len, buf.length - len, null);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
      if (n === 0) break;
      len += n;
    }
    if (!probed) opts.probe!.check(buf.subarray(0, len));
    if (len > cap)
      throw tooLarge(
        path,
        kind,
        cap,
        st.isFile()
          ? `grew past ${formatSize(cap)} while read`
          : `is ${fileKind(st)} giving more than ${formatSize(cap)}`,
      );
    // a regular file read whole leaves the one byte that watched for growth: a view, not a copy
    // (a copy briefly doubles a large set's memory); a pseudo file's buffer may be mostly empty
    return len === buf.length ? buf : buf.length - len <= 1 ? buf.subarray(0, len) : buf.slice(0, len);
  } finally {
    closeSync(fd);
  }
}

/** {@link readBoundedFile} decoded as UTF-8 text. */
export function readBoundedText(path: string, kind: InputKind, opts: BoundedReadOptions = {}): string {
  return new TextDecoder('utf-8').decode(readBoundedFile(path, kind, opts));
}

/**
 * Collect a stream (standard input) up to a cap.
 * @param what how the source is named in the error (e.g. "standard input")
 * @throws ImakitError E_IO_TOO_LARGE past the cap
 */
export async function readBoundedStream(
  stream: AsyncIterable<Uint8Array | string>,
  kind: InputKind,
  what: string,
  opts: BoundedReadOptions = {},
): Promise<Uint8Array> {
  const cap = opts.cap ?? INPUT_CAPS[kind];
  const chunks: Uint8Array[] = [];
  let len = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? new Uint8Array(Buffer.from(c, 'utf8')) : c;
    len += b.length;
    if (len > cap) throw tooLarge(what, kind, cap, `gave more than ${formatSize(cap)}`);
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
