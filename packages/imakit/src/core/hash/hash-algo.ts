/**
 * The kernel's hash algorithm table (`enum hash_algo`, include/uapi/linux/hash_info.h; formats.md §0.1)
 * mapped to digests this runtime can compute.
 *
 * Ids appear in security.ima (0x04 algo byte), signature headers, sigv3 `ima_file_id` and as bit
 * positions in `appraise_algos=`. Names are the kernel's `hash_algo_name[]` strings, which appear in
 * `d-ng` fields, per-bank list file names, `ima_hash=` and audit records.
 *
 * An algorithm Node cannot compute fails with E_HASH_UNSUPPORTED — never a wrong digest.
 */
import { createHash, type Hash } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { Md4 } from './md4.ts';

export interface HashAlgo {
  /** kernel id (enum hash_algo) */
  readonly id: number;
  /** kernel name (hash_algo_name[]) */
  readonly name: string;
  /** digest size in bytes (hash_digest_size[]) */
  readonly size: number;
  /** other accepted spellings: older kernel names, OpenSSL/evmctl names */
  readonly aliases: readonly string[];
  /** OpenSSL digest name for node:crypto, or 'md4' (pure implementation), or null if unavailable */
  readonly node: string | null;
  /** TPM_ALG_ID of the matching PCR bank, if any */
  readonly tpmAlg: number | null;
}

const algo = (
  id: number,
  name: string,
  size: number,
  node: string | null,
  aliases: string[] = [],
  tpmAlg: number | null = null,
): HashAlgo => Object.freeze({ id, name, size, node, aliases: Object.freeze(aliases), tpmAlg });

/** The table, indexed by kernel id. */
export const HASH_ALGOS: readonly HashAlgo[] = Object.freeze([
  algo(0, 'md4', 16, 'md4'),
  algo(1, 'md5', 16, 'md5'),
  algo(2, 'sha1', 20, 'sha1', [], 0x0004),
  algo(3, 'rmd160', 20, 'ripemd160', ['ripemd160']),
  algo(4, 'sha256', 32, 'sha256', [], 0x000b),
  algo(5, 'sha384', 48, 'sha384', [], 0x000c),
  algo(6, 'sha512', 64, 'sha512', [], 0x000d),
  algo(7, 'sha224', 28, 'sha224'),
  algo(8, 'rmd128', 16, null),
  algo(9, 'rmd256', 32, null),
  algo(10, 'rmd320', 40, null),
  algo(11, 'wp256', 32, null),
  algo(12, 'wp384', 48, null),
  algo(13, 'wp512', 64, null),
  algo(14, 'tgr128', 16, null),
  algo(15, 'tgr160', 20, null),
  algo(16, 'tgr192', 24, null),
  // Old kernels named id 17 `sm3-256` (formats.md pitfall 10); evmctl's hash_info.gen rewrote it to `sm3`.
  algo(17, 'sm3', 32, 'sm3', ['sm3-256', 'sm3_256'], 0x0012),
  algo(18, 'streebog256', 32, null, ['md_gost12_256']),
  algo(19, 'streebog512', 64, null, ['md_gost12_512']),
  algo(20, 'sha3-256', 32, 'sha3-256', [], 0x0027),
  algo(21, 'sha3-384', 48, 'sha3-384', [], 0x0028),
  algo(22, 'sha3-512', 64, 'sha3-512', [], 0x0029),
]);

/** HASH_ALGO__LAST in current mainline: ids >= this are invalid. */
export const HASH_ALGO_LAST = HASH_ALGOS.length;
/** IMA_MAX_DIGEST_SIZE */
export const MAX_DIGEST_SIZE = 64;

const BY_NAME: ReadonlyMap<string, HashAlgo> = new Map(
  HASH_ALGOS.flatMap((a) => [[a.name, a] as const, ...a.aliases.map((n) => [n, a] as const)]),
);

// Quote verification looks banks up per PCR: a map, not a scan of the table.
const BY_TPM_ALG: ReadonlyMap<number, HashAlgo> = new Map(
  HASH_ALGOS.flatMap((a) => (a.tpmAlg === null ? [] : [[a.tpmAlg, a] as const])),
);

/** The algorithm with this kernel id, or undefined. */
export function hashAlgoById(id: number): HashAlgo | undefined {
  return Number.isInteger(id) ? HASH_ALGOS[id] : undefined;
}

/**
 * The algorithm with this name (kernel name or alias; case-sensitive like evmctl and the kernel).
 * @throws ImakitError E_HASH_UNKNOWN
 */
export function hashAlgoByName(name: string): HashAlgo {
  const a = BY_NAME.get(name);
  if (!a) throw new ImakitError('E_HASH_UNKNOWN', `unknown hash algorithm '${name}'`, { token: name });
  return a;
}

/** Lookup without throwing. */
export function findHashAlgo(name: string): HashAlgo | undefined {
  return BY_NAME.get(name);
}

/** The algorithm of a TPM PCR bank (TPM_ALG_ID), or undefined. */
export function hashAlgoByTpmAlg(tpmAlg: number): HashAlgo | undefined {
  return BY_TPM_ALG.get(tpmAlg);
}

/** Accepts a name, id or HashAlgo. */
export type HashAlgoLike = HashAlgo | string | number;

/** Resolve a HashAlgoLike. @throws ImakitError E_HASH_UNKNOWN */
export function resolveHashAlgo(a: HashAlgoLike): HashAlgo {
  if (typeof a === 'string') return hashAlgoByName(a);
  if (typeof a === 'number') {
    const r = hashAlgoById(a);
    if (!r) throw new ImakitError('E_HASH_UNKNOWN', `unknown hash algorithm id ${a}`);
    return r;
  }
  return a;
}

/** True if this runtime can compute the algorithm. */
export function isHashSupported(a: HashAlgoLike): boolean {
  return resolveHashAlgo(a).node !== null;
}

/** An incremental hasher with the node:crypto Hash surface we use. */
export interface Hasher {
  update(data: Uint8Array): Hasher;
  digest(): Uint8Array;
}

class NodeHasher implements Hasher {
  private readonly h: Hash;
  constructor(name: string) {
    this.h = createHash(name);
  }
  update(data: Uint8Array): Hasher {
    this.h.update(data);
    return this;
  }
  digest(): Uint8Array {
    const b = this.h.digest();
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
}

/**
 * A fresh incremental hasher for the algorithm.
 * @throws ImakitError E_HASH_UNSUPPORTED for algorithms this runtime cannot compute (streebog, wp512, ...)
 */
export function createHasher(a: HashAlgoLike): Hasher {
  const alg = resolveHashAlgo(a);
  if (alg.node === null)
    throw new ImakitError(
      'E_HASH_UNSUPPORTED',
      `hash algorithm '${alg.name}' (id ${alg.id}) is not supported by this runtime`,
      { token: alg.name },
    );
  // OpenSSL 3 moved md4 to the legacy provider, which Node does not load: use the pure implementation.
  if (alg.node === 'md4') return new Md4();
  return new NodeHasher(alg.node);
}

/** One-shot digest. */
export function hash(a: HashAlgoLike, ...data: readonly Uint8Array[]): Uint8Array {
  const h = createHasher(a);
  for (const d of data) h.update(d);
  return h.digest();
}
