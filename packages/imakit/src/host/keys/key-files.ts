/**
 * Writing key material to disk without ever exposing it.
 *
 * Secrets (private keys, /etc/keys/kmk, plaintext EVM keys) are written to a temporary file
 * created with O_EXCL and mode 0600 in the destination directory, fsynced, and then renamed (or
 * hard-linked, when overwriting is not allowed) into place: the file is never world-readable,
 * not even for a moment, and readers never see half a key. Public material (certificates, public
 * keys, encrypted blobs) gets 0644 the same way. `fchmod` is explicit, so the process umask can't
 * widen or narrow the result.
 */
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
  constants,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { readBoundedFile, type InputKind } from '../fs/bounded-read.ts';

/** Mode of secret files. */
export const SECRET_MODE = 0o600;
/** Mode of public files. */
export const PUBLIC_MODE = 0o644;

/** Options for the writers. */
export interface WriteKeyFileOptions {
  /** replace an existing file (default false: refuse with E_IO_WRITE, never clobber a key) */
  readonly overwrite?: boolean;
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'utf8')) : data;
}

/** Mode of directories created for key material (`keys ca --out ca/` when ca/ does not exist). */
export const KEY_DIR_MODE = 0o700;

/**
 * Create the directory a key file goes into when it is missing, 0700 (and its missing parents):
 * `imakit keys ca --out ca/` must work on a fresh checkout (issue 10 item 5). An existing directory
 * is left as it is. The mode is set explicitly, so the umask cannot widen it.
 * @throws ImakitError E_IO_WRITE naming the directory
 */
export function ensureKeyDir(dir: string): void {
  try {
    const first = mkdirSync(dir, { recursive: true, mode: KEY_DIR_MODE });
    if (first === undefined) return;
    // every directory from `first` down to `dir` is new: tighten each (mkdir's mode is umasked)
    for (let d = resolve(dir); ; d = dirname(d)) {
      chmodSync(d, KEY_DIR_MODE);
      if (d === resolve(first) || d === dirname(d)) break;
    }
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', dir);
  }
}

function writeAtomic(path: string, data: Uint8Array | string, mode: number, opts: WriteKeyFileOptions): void {
  const bytes = toBytes(data);
  ensureKeyDir(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    // O_EXCL: never reuse (or follow a symlink planted at) the temporary name
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      SECRET_MODE,
    );
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', path);
  }
  try {
    try {
      fchmodSync(fd, mode);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (opts.overwrite === true) renameSync(tmp, path);
    else {
      try {
        linkSync(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST')
          throw new ImakitError(
            'E_IO_WRITE',
            'file exists (refusing to overwrite key material; --force replaces it)',
            { path },
          );
        throw e;
      }
      unlinkSync(tmp);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never created
    }
    throw fromSystemError(e, 'E_IO_WRITE', path);
  }
}

/**
 * Write a secret (private key, master key, plaintext EVM key) with mode 0600, atomically.
 * @throws ImakitError E_IO_WRITE (exists without `overwrite`, or any write error)
 */
export function writeSecretFile(
  path: string,
  data: Uint8Array | string,
  opts: WriteKeyFileOptions = {},
): void {
  writeAtomic(path, data, SECRET_MODE, opts);
}

/**
 * Write public material (certificate, public key, encrypted blob) with mode 0644, atomically.
 * @throws ImakitError E_IO_WRITE
 */
export function writePublicFile(
  path: string,
  data: Uint8Array | string,
  opts: WriteKeyFileOptions = {},
): void {
  writeAtomic(path, data, PUBLIC_MODE, opts);
}

/**
 * Read a key, certificate or blob file, bounded by the cap of its kind (`--key /dev/zero` is
 * refused after 1 MiB instead of read forever).
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE
 */
export function readKeyFile(
  path: string,
  kind: Extract<InputKind, 'key' | 'certificate' | 'evm-key'> = 'key',
): Uint8Array {
  return readBoundedFile(path, kind);
}
