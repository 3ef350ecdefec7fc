/**
 * TCG event log codec: the TPM 1.2 SHA-1 format (`TCG_PCR_EVENT`: u32 pcr, u32 type, 20-byte
 * digest, u32 size, data) and the crypto-agile format (a first `TCG_PCR_EVENT` EV_NO_ACTION
 * carrying the `Spec ID Event03` structure with the algorithm list, then `TCG_PCR_EVENT2`: u32 pcr,
 * u32 type, u32 count, count × (u16 alg, digest), u32 size, data). All little-endian (TCG PC Client
 * PFP §10.2.1, §10.2.2). Parsed events are untrusted until replay (replay.ts).
 */
import { CodecError } from '../../errors.ts';
import { ByteReader, concatByteList, latin1 } from '../bytes/bytes.ts';
import { hashAlgoByTpmAlg } from '../hash/hash-algo.ts';
import { EV_NO_ACTION } from './event-types.ts';

/** Caps (style.md practice 2). */
export const MAX_EVENT_DATA = 16 * 1024 * 1024;
export const MAX_EVENT_DIGESTS = 16;

/** One algorithm of the Spec ID event. */
export interface SpecAlgorithm {
  readonly tpmAlg: number;
  readonly digestSize: number;
  /** kernel hash name, or undefined for an algorithm this toolkit does not know */
  readonly bank: string | undefined;
}

/** One event (untrusted). */
export interface TcgEvent {
  readonly index: number;
  readonly offset: number;
  readonly pcr: number;
  readonly type: number;
  /** bank → digest */
  readonly digests: ReadonlyMap<string, Uint8Array>;
  readonly data: Uint8Array;
  /** the raw encoded bytes */
  readonly raw: Uint8Array;
}

/** A parsed log. */
export interface TcgEventLog {
  readonly format: 'tpm12' | 'crypto-agile';
  readonly specAlgorithms: readonly SpecAlgorithm[];
  /** the header event (crypto-agile), kept verbatim */
  readonly header: TcgEvent | undefined;
  readonly events: readonly TcgEvent[];
  /** named quirks observed while parsing */
  readonly quirks: readonly { id: string; event?: number; detail: string }[];
}

/**
 * The `eventSize` u32 and the event data it announces, shared by both event formats. The size is
 * checked against MAX_EVENT_DATA and the remaining bytes before anything is sliced.
 */
function readEventData(r: ByteReader, index: number): Uint8Array {
  const size = r.u32('eventSize', 'le');
  if (size > MAX_EVENT_DATA || size > r.remaining)
    throw new CodecError(
      size > MAX_EVENT_DATA ? 'E_CODEC_TOO_LARGE' : 'E_CODEC_TRUNCATED',
      `event ${index}: data size ${size}`,
      {
        offset: r.offset - 4,
        field: 'eventSize',
        entry: index,
      },
    );
  return r.bytesView(size, 'event');
}

function readLegacy(r: ByteReader, index: number): TcgEvent {
  const start = r.offset;
  const pcr = r.u32('pcrIndex', 'le');
  const type = r.u32('eventType', 'le');
  const digest = r.bytesView(20, 'digest');
  const data = readEventData(r, index);
  return {
    index,
    offset: start,
    pcr,
    type,
    digests: new Map([['sha1', digest]]),
    data,
    raw: r.bytes.subarray(start - r.base, r.pos),
  };
}

function parseSpecId(data: Uint8Array, off: number): SpecAlgorithm[] {
  const r = new ByteReader(data, off);
  r.bytesView(16, 'signature');
  r.u32('platformClass', 'le');
  r.u8('specVersionMinor');
  r.u8('specVersionMajor');
  r.u8('specErrata');
  r.u8('uintnSize');
  const n = r.u32('numberOfAlgorithms', 'le');
  if (n === 0 || n > MAX_EVENT_DIGESTS) r.fail('E_EVENTLOG', `numberOfAlgorithms ${n}`, 'numberOfAlgorithms');
  const algs: SpecAlgorithm[] = [];
  for (let i = 0; i < n; i++) {
    const tpmAlg = r.u16('algorithmId', 'le');
    const digestSize = r.u16('digestSize', 'le');
    const a = hashAlgoByTpmAlg(tpmAlg);
    if (a && a.size !== digestSize)
      r.fail('E_EVENTLOG', `algorithm 0x${tpmAlg.toString(16)} size ${digestSize}`, 'digestSize');
    algs.push({ tpmAlg, digestSize, bank: a?.name });
  }
  const vs = r.u8('vendorInfoSize');
  r.bytesView(vs, 'vendorInfo');
  r.end('TCG_EfiSpecIdEvent');
  return algs;
}

/**
 * Parse a binary_bios_measurements log (either format, detected from the first event).
 * @throws CodecError E_EVENTLOG / E_CODEC_TRUNCATED / E_CODEC_TOO_LARGE naming event index and offset
 */
export function parseEventLog(bytes: Uint8Array): TcgEventLog {
  const r = new ByteReader(bytes);
  const quirks: { id: string; event?: number; detail: string }[] = [];
  if (bytes.length > 65536)
    quirks.push({
      id: 'log-over-64k',
      detail: `log is ${bytes.length} bytes (older kernels truncated logs at 64 KiB)`,
    });
  const events: TcgEvent[] = [];
  if (bytes.length === 0) return { format: 'tpm12', specAlgorithms: [], header: undefined, events, quirks };
  const first = readLegacy(r, 0);
  const isAgile = first.type === EV_NO_ACTION && latin1(first.data.subarray(0, 16)) === 'Spec ID Event03\0';
  if (first.type !== EV_NO_ACTION)
    quirks.push({
      id: 'first-event-not-no-action',
      event: 0,
      detail: `first event is type 0x${first.type.toString(16)}, not EV_NO_ACTION: TPM 1.2 SHA-1 format`,
    });
  if (!isAgile) {
    events.push(first);
    while (r.remaining > 0) events.push(readLegacy(r, events.length));
    return {
      format: 'tpm12',
      specAlgorithms: [{ tpmAlg: 4, digestSize: 20, bank: 'sha1' }],
      header: undefined,
      events,
      quirks,
    };
  }
  const algs = parseSpecId(first.data, first.offset + 32);
  const sizes = new Map(algs.map((a) => [a.tpmAlg, a]));
  let index = 1;
  while (r.remaining > 0) {
    const start = r.offset;
    const pcr = r.u32('pcrIndex', 'le');
    const type = r.u32('eventType', 'le');
    const count = r.u32('digests.count', 'le');
    if (count > MAX_EVENT_DIGESTS)
      throw new CodecError('E_EVENTLOG', `event ${index}: ${count} digests`, {
        offset: r.offset - 4,
        field: 'digests.count',
        entry: index,
      });
    const digests = new Map<string, Uint8Array>();
    for (let i = 0; i < count; i++) {
      const alg = r.u16('hashAlg', 'le');
      const spec = sizes.get(alg);
      if (!spec)
        throw new CodecError(
          'E_EVENTLOG',
          `event ${index}: algorithm 0x${alg.toString(16)} not in the Spec ID event`,
          {
            offset: r.offset - 2,
            field: 'hashAlg',
            entry: index,
          },
        );
      const d = r.bytesView(spec.digestSize, 'digest');
      digests.set(spec.bank ?? `tpm_alg_${alg}`, d);
    }
    const data = readEventData(r, index);
    events.push({ index, offset: start, pcr, type, digests, data, raw: bytes.subarray(start, r.offset) });
    index++;
  }
  return { format: 'crypto-agile', specAlgorithms: algs, header: first, events, quirks };
}

/** Encode a log back to bytes (exact inverse of parseEventLog). */
export function encodeEventLog(log: TcgEventLog): Uint8Array {
  // A list, not a spread: a firmware log can hold more events than a call takes arguments.
  return concatByteList([...(log.header ? [log.header.raw] : []), ...log.events.map((e) => e.raw)]);
}

/** Build a crypto-agile event (for tests and tools). */
export function encodeAgileEvent(
  pcr: number,
  type: number,
  digests: readonly [number, Uint8Array][],
  data: Uint8Array,
): Uint8Array {
  const b = Buffer.alloc(12 + digests.reduce((n, [, d]) => n + 2 + d.length, 0) + 4 + data.length);
  let p = b.writeUInt32LE(pcr, 0);
  p = b.writeUInt32LE(type, p);
  p = b.writeUInt32LE(digests.length, p);
  for (const [alg, d] of digests) {
    p = b.writeUInt16LE(alg, p);
    b.set(d, p);
    p += d.length;
  }
  p = b.writeUInt32LE(data.length, p);
  b.set(data, p);
  return new Uint8Array(b);
}

/** Build the Spec ID header event for the given (tpmAlg, size) list. */
export function encodeSpecIdHeader(algs: readonly [number, number][]): Uint8Array {
  const spec = Buffer.alloc(16 + 4 + 4 + 4 + algs.length * 4 + 1);
  spec.write('Spec ID Event03\0', 0, 'latin1');
  let p = 16;
  p = spec.writeUInt32LE(0, p); // platformClass
  spec[p++] = 0; // minor
  spec[p++] = 2; // major
  spec[p++] = 0; // errata
  spec[p++] = 2; // uintnSize (UINT64)
  p = spec.writeUInt32LE(algs.length, p);
  for (const [a, s] of algs) {
    p = spec.writeUInt16LE(a, p);
    p = spec.writeUInt16LE(s, p);
  }
  spec[p] = 0;
  const h = Buffer.alloc(32 + spec.length);
  h.writeUInt32LE(0, 0);
  h.writeUInt32LE(EV_NO_ACTION, 4);
  h.writeUInt32LE(spec.length, 28);
  h.set(spec, 32);
  return new Uint8Array(h);
}
