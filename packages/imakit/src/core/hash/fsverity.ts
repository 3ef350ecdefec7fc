/**
 * fs-verity file digests computed in TypeScript (formats.md §3.3; Documentation/filesystems/
 * fsverity.rst, fs/verity/hash_algs.c and fs/verity/enable.c; `../vectors/fsverity_ref.py`).
 *
 * A Merkle tree over `blockSize` data blocks (last block zero-padded); each level's hashes are packed
 * into zero-padded blocks until a level has one block; the root is that block's hash (all-zero for
 * an empty file). The file digest is H(256-byte descriptor). With a salt, the salt (zero-padded to
 * the hash's input block size) is hashed before every tree block, and stored in the descriptor.
 *
 * The hasher streams: memory is one pending block per tree level, never the file size.
 */
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import { assertBytes } from '../bytes/bytes.ts';

/** fs-verity's own algorithm numbering (FS_VERITY_HASH_ALG_*), not the kernel's `enum hash_algo`. */
export const FSVERITY_HASH_ALG = Object.freeze({ sha256: 1, sha512: 2 } as const);

/** Algorithms fs-verity supports. */
export type FsVerityAlgo = keyof typeof FSVERITY_HASH_ALG;

interface AlgoInfo {
  readonly digestSize: number;
  /** the hash's input block size: the salt is zero-padded to a multiple of it */
  readonly hashBlockSize: number;
  /** kernel `enum hash_algo` id (used in sigv3 `ima_file_id`, formats.md §3.3) */
  readonly kernelId: number;
}

const ALGOS: Readonly<Record<FsVerityAlgo, AlgoInfo>> = Object.freeze({
  sha256: Object.freeze({ digestSize: 32, hashBlockSize: 64, kernelId: 4 }),
  sha512: Object.freeze({ digestSize: 64, hashBlockSize: 128, kernelId: 6 }),
});

/** Size of `struct fsverity_descriptor`. */
export const FSVERITY_DESCRIPTOR_SIZE = 256;
/** Root hash field width in the descriptor. */
const ROOT_HASH_FIELD = 64;
/** Maximum salt size (FS_VERITY_MAX_SALT_SIZE). */
export const FSVERITY_MAX_SALT_SIZE = 32;
/** Default Merkle tree block size (what `fsverity digest` and the kernel vectors use). */
export const FSVERITY_DEFAULT_BLOCK_SIZE = 4096;

/** Options of {@link FsVerityHasher}. */
export interface FsVerityOptions {
  /** tree block size, a power of two in 1024..65536 (default 4096) */
  blockSize?: number;
  /** salt, at most 32 bytes (default none) */
  salt?: Uint8Array;
}

/** The kernel `enum hash_algo` id of an fs-verity algorithm (sha256 → 4, sha512 → 6). */
export function fsverityKernelHashId(algo: FsVerityAlgo): number {
  return algoInfo(algo).kernelId;
}

function algoInfo(algo: FsVerityAlgo): AlgoInfo {
  if (!Object.hasOwn(ALGOS, algo)) throw new RangeError(`fs-verity hash algorithm must be sha256 or sha512`);
  return ALGOS[algo];
}

/** Fields of the descriptor (`struct fsverity_descriptor`, include/uapi/linux/fsverity.h). */
export interface FsVerityDescriptorFields {
  readonly algo: FsVerityAlgo;
  readonly blockSize: number;
  readonly dataSize: bigint;
  /** root hash (digest-size bytes; zero for an empty file) */
  readonly rootHash: Uint8Array;
  readonly salt?: Uint8Array;
}

/**
 * The 256-byte descriptor whose hash is the file digest: u8 version=1, u8 hash_algorithm,
 * u8 log2(block size), u8 salt_size, u32 reserved (sig_size, zero when digesting), u64 LE data size,
 * root hash padded to 64, salt padded to 32, 144 zero bytes.
 */
export function fsverityDescriptor(f: FsVerityDescriptorFields): Uint8Array {
  const info = algoInfo(f.algo);
  const logBs = log2BlockSize(f.blockSize);
  assertBytes(f.rootHash, info.digestSize, 'rootHash');
  const salt = f.salt ?? new Uint8Array(0);
  assertSalt(salt);
  if (typeof f.dataSize !== 'bigint' || f.dataSize < 0n || f.dataSize > 0xffffffffffffffffn)
    throw new RangeError('dataSize must be a u64 bigint');
  const d = new Uint8Array(FSVERITY_DESCRIPTOR_SIZE);
  const dv = new DataView(d.buffer);
  d[0] = 1; // version
  d[1] = FSVERITY_HASH_ALG[f.algo];
  d[2] = logBs;
  d[3] = salt.length;
  // 4..7: __le32 sig_size / reserved, zero
  dv.setBigUint64(8, f.dataSize, true);
  d.set(f.rootHash, 16);
  d.set(salt, 16 + ROOT_HASH_FIELD);
  return d;
}

function log2BlockSize(bs: number): number {
  if (!Number.isInteger(bs) || bs < 1024 || bs > 65536 || (bs & (bs - 1)) !== 0)
    throw new RangeError(`fs-verity block size must be a power of two in 1024..65536, got ${bs}`);
  return Math.log2(bs);
}

function assertSalt(salt: Uint8Array): void {
  assertBytes(salt, undefined, 'salt');
  if (salt.length > FSVERITY_MAX_SALT_SIZE)
    throw new RangeError(
      `fs-verity salt must be at most ${FSVERITY_MAX_SALT_SIZE} bytes, got ${salt.length}`,
    );
}

/**
 * Incremental fs-verity digest: `update()` with the file's bytes in order, then `digest()` once.
 * Memory: one block per tree level (a 1 TiB file with sha256 and 4 KiB blocks has 5 levels).
 * @example new FsVerityHasher('sha256').update(data).digest()
 */
export class FsVerityHasher {
  readonly algo: FsVerityAlgo;
  readonly blockSize: number;
  private readonly info: AlgoInfo;
  private readonly salt: Uint8Array;
  /** hash state after the padded salt (copied for every block), or null without salt */
  private readonly saltState: Hash | null;
  /** the partial data block */
  private readonly pending: Uint8Array;
  private pendingLen = 0;
  /** levels[i]: the block being filled with hashes of level-i blocks (level 0 = data) */
  private readonly levels: Uint8Array[] = [];
  private readonly fill: number[] = [];
  /** number of level-i blocks hashed so far */
  private readonly counts: number[] = [];
  private size = 0n;
  private done = false;

  constructor(algo: FsVerityAlgo = 'sha256', opts: FsVerityOptions = {}) {
    this.info = algoInfo(algo);
    this.algo = algo;
    this.blockSize = opts.blockSize ?? FSVERITY_DEFAULT_BLOCK_SIZE;
    log2BlockSize(this.blockSize);
    this.salt = opts.salt ?? new Uint8Array(0);
    assertSalt(this.salt);
    if (this.salt.length > 0) {
      // fs/verity/hash_algs.c fsverity_prepare_hash_state(): salt zero-padded to the hash block size
      const padLen = Math.ceil(this.salt.length / this.info.hashBlockSize) * this.info.hashBlockSize;
      const padded = new Uint8Array(padLen);
      padded.set(this.salt);
      this.saltState = createHash(algo).update(padded);
    } else this.saltState = null;
    this.pending = new Uint8Array(this.blockSize);
  }

  /** Feed the next bytes of the file. */
  update(chunk: Uint8Array): this {
    if (this.done) throw new Error('FsVerityHasher: update() after digest()');
    assertBytes(chunk, undefined, 'chunk');
    const bs = this.blockSize;
    this.size += BigInt(chunk.length);
    let off = 0;
    if (this.pendingLen > 0) {
      const n = Math.min(bs - this.pendingLen, chunk.length);
      this.pending.set(chunk.subarray(0, n), this.pendingLen);
      this.pendingLen += n;
      off = n;
      if (this.pendingLen < bs) return this;
      this.push(0, this.hashBlock(this.pending));
      this.pendingLen = 0;
    }
    // whole blocks straight from the chunk, no copy
    while (chunk.length - off >= bs) {
      this.push(0, this.hashBlock(chunk.subarray(off, off + bs)));
      off += bs;
    }
    if (off < chunk.length) {
      this.pending.set(chunk.subarray(off), 0);
      this.pendingLen = chunk.length - off;
    }
    return this;
  }

  /** The Merkle tree root hash (digest-size bytes, zero for an empty file). Ends the hasher. */
  rootHash(): Uint8Array {
    if (this.done) throw new Error('FsVerityHasher: already finished');
    this.done = true;
    const ds = this.info.digestSize;
    if (this.size === 0n) return new Uint8Array(ds);
    if (this.pendingLen > 0) {
      this.pending.fill(0, this.pendingLen);
      this.push(0, this.hashBlock(this.pending));
      this.pendingLen = 0;
    }
    for (let i = 0; ; i++) {
      if (this.counts[i] === 1) return this.levels[i]!.slice(0, ds);
      const f = this.fill[i]!;
      if (f > 0) {
        const blk = this.levels[i]!;
        blk.fill(0, f);
        this.fill[i] = 0;
        this.push(i + 1, this.hashBlock(blk));
      }
    }
  }

  /** The fs-verity file digest (what `fsverity digest` prints). Ends the hasher. */
  digest(): Uint8Array {
    const size = this.size;
    const rootHash = this.rootHash();
    const desc = fsverityDescriptor({
      algo: this.algo,
      blockSize: this.blockSize,
      dataSize: size,
      rootHash,
      salt: this.salt,
    });
    const d = createHash(this.algo).update(desc).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  }

  private hashBlock(block: Uint8Array): Uint8Array {
    // one-shot crypto.hash avoids a Hash object per block (~20% faster for 4 KiB blocks)
    if (this.saltState === null) return oneShotHash(this.algo, block, 'buffer');
    return this.saltState.copy().update(block).digest();
  }

  /** Append a hash of a level-`level` block to that level's hash block. */
  private push(level: number, h: Uint8Array): void {
    let lvl = level;
    let digest = h;
    for (;;) {
      if (this.levels.length <= lvl) {
        this.levels.push(new Uint8Array(this.blockSize));
        this.fill.push(0);
        this.counts.push(0);
      }
      this.counts[lvl]!++;
      const blk = this.levels[lvl]!;
      blk.set(digest, this.fill[lvl]!);
      this.fill[lvl]! += digest.length;
      if (this.fill[lvl]! + digest.length <= this.blockSize) return;
      // the hash block is full (no room for another digest): it is a complete next-level block
      this.fill[lvl] = 0;
      digest = this.hashBlock(blk);
      lvl++;
    }
  }
}

/**
 * One-shot fs-verity file digest.
 * @example toHex(fsverityDigest(utf8('hello world\n'))) // '37061ef2…cd92'
 */
export function fsverityDigest(
  data: Uint8Array,
  algo: FsVerityAlgo = 'sha256',
  opts: FsVerityOptions = {},
): Uint8Array {
  return new FsVerityHasher(algo, opts).update(data).digest();
}
