/**
 * Test helper: build fresh ima-ng / ima-sig lists with node:crypto as the independent oracle for
 * template digests and PCR values (every bank node:crypto knows, sm3 included).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  encodeBinaryList,
  type ListFormat,
  type UntrustedEntry,
} from '../../../../src/core/ima-list/binary.ts';

const NODE_NAME: Record<string, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sm3: 'sm3',
};
const SIZE: Record<string, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64, sm3: 32 };

/** H_bank(parts…) with node:crypto. */
export function nodeHash(bank: string, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(NODE_NAME[bank]!);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function u32(v: number, le = true): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v);
  else b.writeUInt32BE(v);
  return b;
}

/** ima-ng template data for (algo, digest, name); `extra` fields appended (ima-sig: the sig). */
export function imaNgData(
  algo: string,
  digest: Uint8Array,
  name: string,
  extra: Uint8Array[] = [],
  le = true,
): Uint8Array {
  const dng = Buffer.concat([Buffer.from(`${algo}:\0`, 'latin1'), digest]);
  const n = Buffer.from(name + '\0', 'utf8');
  return new Uint8Array(
    Buffer.concat([
      u32(dng.length, le),
      dng,
      u32(n.length, le),
      n,
      ...extra.flatMap((x) => [u32(x.length, le), Buffer.from(x)]),
    ]),
  );
}

/** An `ima-ng` entry on PCR 10 for `templateData`, its template digest in `bank` (default sha1). */
export function imaNgEntry(
  templateData: Uint8Array,
  o: { readonly index?: number; readonly bank?: string } = {},
): UntrustedEntry {
  return {
    index: o.index ?? 0,
    offset: 0,
    pcr: 10,
    digest: nodeHash(o.bank ?? 'sha1', templateData),
    templateName: 'ima-ng',
    templateData,
  };
}

export interface BuiltList {
  readonly bytes: Uint8Array;
  readonly entries: UntrustedEntry[];
  /** bank → PCR → value (computed with node:crypto) */
  readonly pcrs: Map<string, Map<number, Uint8Array>>;
  readonly format: ListFormat;
}

/** Replay entries with node:crypto (violations as 0xff like the kernel). */
export function oraclePcrs(
  entries: readonly UntrustedEntry[],
  banks: readonly string[],
): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const b of banks) {
    const m = new Map<number, Uint8Array>();
    for (const e of entries) {
      const violation = e.digest.every((x) => x === 0);
      const v = violation ? new Uint8Array(SIZE[b]!).fill(0xff) : nodeHash(b, e.templateData);
      m.set(e.pcr, nodeHash(b, m.get(e.pcr) ?? new Uint8Array(SIZE[b]!), v));
    }
    out.set(b, m);
  }
  return out;
}

/**
 * A fresh ima-ng list: a boot_aggregate entry (digest `bootAggregate` or random) then `n` file
 * entries with random sha256 file digests.
 */
export function buildList(
  n: number,
  opts: { bootAggregate?: Uint8Array; banks?: readonly string[]; prefix?: string; bank?: string } = {},
): BuiltList {
  const bank = opts.bank ?? 'sha1';
  const entries: UntrustedEntry[] = [];
  const mk = (data: Uint8Array, i: number): UntrustedEntry => imaNgEntry(data, { index: i, bank });
  entries.push(
    mk(imaNgData('sha256', opts.bootAggregate ?? new Uint8Array(randomBytes(32)), 'boot_aggregate'), 0),
  );
  for (let i = 1; i <= n; i++)
    entries.push(
      mk(imaNgData('sha256', new Uint8Array(randomBytes(32)), `${opts.prefix ?? '/usr/bin/file'}-${i}`), i),
    );
  const format: ListFormat = { endian: 'le', digestSize: SIZE[bank]!, bank };
  const bytes = encodeBinaryList(entries, format);
  return { bytes, entries, pcrs: oraclePcrs(entries, opts.banks ?? ['sha1', 'sha256']), format };
}

/** Encode entries (digests kept). */
export function encode(entries: readonly UntrustedEntry[], format?: ListFormat): Uint8Array {
  return encodeBinaryList(entries, format);
}
