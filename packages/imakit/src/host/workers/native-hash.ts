/**
 * SHA-1 and SHA-2 hashers backed by the OpenSSL inside Node (native/imakit_hash.c, built by
 * `npm ci` via binding.gyp), for measurement-list replay: a {@link FastHashProvider} handed to
 * verifyMeasurementList / resumeMeasurementList / ListReplayer. Per call about 0.18 µs against
 * 0.25-0.65 µs for the tuned TypeScript of core/ima-list/fast-hash.ts (SHA extensions, no EVP
 * fetch); at four hashes per entry that is most of the replay's time (the list-replay target is
 * twice evmctl's rate, bench/list-replay.ts).
 *
 * The addon is optional: when it is not built, {@link nativeHashes} returns undefined and replay
 * uses the TypeScript hashers with the same results (a caller may also simply not pass it). At
 * load each algorithm is checked against node:crypto on a few lengths; an addon that disagrees is
 * not used.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ExtendChain, FastHash, FastHashProvider } from '../../core/ima-list/fast-hash.ts';

/** A FastHash method with the algorithm number in front: the addon's calling convention. */
type WithAlg<F> = F extends (...args: infer P) => infer R ? (alg: number, ...args: P) => R : never;

interface HashAddon {
  hashInto: WithAlg<FastHash['hashInto']>;
  hash2Into: WithAlg<FastHash['hash2Into']>;
  /** absent from addons built before it was added: replay then hashes entry by entry */
  hashSpansInto?: WithAlg<NonNullable<FastHash['hashSpansInto']>>;
  extendChainInto?: WithAlg<NonNullable<FastHash['extendChainInto']>>;
}

/** Algorithm numbers of native/imakit_hash.c, with digest sizes. */
const ALGS: Readonly<Record<string, { id: number; size: number }>> = Object.freeze({
  sha1: { id: 1, size: 20 },
  sha256: { id: 2, size: 32 },
  sha384: { id: 3, size: 48 },
  sha512: { id: 4, size: 64 },
});

function nativeHash(addon: HashAddon, id: number, size: number): FastHash {
  const spans = addon.hashSpansInto;
  const chain = addon.extendChainInto;
  return {
    size,
    hashInto: (src, off, len, out, outOff) => addon.hashInto(id, src, off, len, out, outOff),
    hash2Into: (a, aOff, aLen, b, bOff, bLen, out, outOff) =>
      addon.hash2Into(id, a, aOff, aLen, b, bOff, bLen, out, outOff),
    ...(spans !== undefined && {
      hashSpansInto: (src: Uint8Array, sp: Int32Array, count: number, out: Uint8Array, outOff: number) =>
        spans(id, src, sp, count, out, outOff),
    }),
    ...(chain !== undefined && {
      extendChainInto: (...args: Parameters<ExtendChain>) => chain(id, ...args),
    }),
  };
}

/** The addon's answers equal node:crypto's for every algorithm, one- and two-part, several lengths. */
function agreesWithNodeCrypto(addon: HashAddon): boolean {
  const src = new Uint8Array(300);
  for (let i = 0; i < src.length; i++) src[i] = (i * 151 + 7) & 0xff;
  for (const [name, { id, size }] of Object.entries(ALGS))
    for (const len of [0, 1, 55, 56, 64, 100, 128, 129, 300]) {
      const want = createHash(name).update(src.subarray(0, len)).digest();
      const one = new Uint8Array(size + 3);
      addon.hashInto(id, src, 0, len, one, 3);
      const cut = len >> 1;
      const two = new Uint8Array(size);
      addon.hash2Into(id, src, 0, cut, src, cut, len - cut, two, 0);
      if (!want.equals(one.subarray(3)) || !want.equals(two)) return false;
      if (addon.hashSpansInto) {
        // the span between two skipped ones, at the second slot
        const many = new Uint8Array(3 * size).fill(7);
        addon.hashSpansInto(id, src, Int32Array.from([0, -1, 0, len, 5, -1]), 3, many, 0);
        if (!want.equals(many.subarray(size, 2 * size)) || many[0] !== 7 || many[2 * size] !== 7)
          return false;
      }
      if (addon.extendChainInto && len >= 2 * size) {
        // two extends of a zero PCR with src's first 2*size bytes, against hash2Into's
        const pcr = new Uint8Array(size);
        const trace = new Uint8Array(2 * size);
        addon.extendChainInto(id, pcr, 0, src, 0, 2, trace, 0);
        const step = new Uint8Array(size);
        addon.hash2Into(id, step, 0, size, src, 0, size, step, 0);
        const mid = Buffer.from(step);
        addon.hash2Into(id, step, 0, size, src, size, size, step, 0);
        if (!mid.equals(trace.subarray(0, size)) || !Buffer.from(step).equals(pcr)) return false;
      }
    }
  return true;
}

function loadAddon(): HashAddon | undefined {
  const require = createRequire(import.meta.url);
  for (const rel of ['../../../build/Release/imakit_hash.node', '../../../build/Debug/imakit_hash.node']) {
    let m: Partial<HashAddon>;
    try {
      m = require(rel) as Partial<HashAddon>;
    } catch {
      continue; // not built in this configuration: try the next, then the TypeScript hashers
    }
    if (typeof m.hashInto !== 'function' || typeof m.hash2Into !== 'function') continue;
    const addon = m as HashAddon;
    return agreesWithNodeCrypto(addon) ? addon : undefined;
  }
  return undefined;
}

/** The addon, loaded and checked once at import (a worker thread loads its own). */
const ADDON: HashAddon | undefined = loadAddon();

/** True when the native hashers are available. */
export function hasNativeHash(): boolean {
  return ADDON !== undefined;
}

/**
 * A provider of native hashers for sha1, sha256, sha384 and sha512 (other banks: undefined, the
 * defaults), or undefined when the addon is not available.
 */
export function nativeHashes(): FastHashProvider | undefined {
  const a = ADDON;
  if (a === undefined) return undefined;
  return (bank) => {
    const alg = ALGS[bank];
    return alg ? nativeHash(a, alg.id, alg.size) : undefined;
  };
}
