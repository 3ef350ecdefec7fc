/**
 * Extended attribute access on the real machine through fs-xattr (dependencies.md §1), with errors
 * mapped to the catalogue.
 *
 * fs-xattr calls getxattr/setxattr/listxattr, which FOLLOW symlinks (there is no l*xattr variant):
 * callers that must not act on a symlink target `lstat` first (host/inode.ts `readInodeMeta`) and
 * refuse or handle links themselves. Values are binary (NUL bytes allowed) and returned as copies.
 *
 * Writing labels by path lets a symlink swapped in after the content was hashed redirect the write
 * to its target (issue 10 item 15), so labellers use the `f*` variants below on an open file
 * descriptor: fs-xattr has no fd API, so they go through `/proc/self/fd/N`, a magic link that
 * resolves to the open file itself (fsetxattr semantics), whatever the path now names.
 *
 * Error mapping: ENODATA → null/false (absent), ENOTSUP/EOPNOTSUPP → E_XATTR_UNSUPPORTED,
 * EPERM/EACCES → E_PERMISSION, anything else → E_XATTR_READ / E_XATTR_WRITE; all carry the path.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as FsXattr from 'fs-xattr';
import { ImakitError, type ErrorCode } from '../../errors.ts';
import { assertBytes } from '../../core/bytes/bytes.ts';

/**
 * fs-xattr compiles C when installed, so it is an optional dependency: an install without a
 * toolchain must still succeed (scripts/install-native.mjs). Null when absent, and every xattr call
 * then fails with E_XATTR_UNAVAILABLE. A lazily-initialised memo (the library is immutable): loaded
 * on the first xattr call, not at import, so commands that never touch xattrs don't pay for it.
 */
const libMemo: { lib?: typeof FsXattr | null } = {};

function fsXattr(): typeof FsXattr | null {
  const lib = (libMemo.lib ??= loadFsXattr());
  return lib;
}

/** The addon's functions, as fs-xattr's index.js calls them (validation is done by our callers). */
interface XattrAddon {
  get(path: string, attr: string): Promise<Buffer>;
  set(path: string, attr: string, value: Buffer): Promise<void>;
  list(path: string): Promise<string[]>;
  remove(path: string, attr: string): Promise<void>;
  getSync(path: string, attr: string): Buffer;
  setSync(path: string, attr: string, value: Buffer): void;
  listSync(path: string): string[];
  removeSync(path: string, attr: string): void;
}

function loadFsXattr(): typeof FsXattr | null {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('fs-xattr');
  } catch {
    return null; // not installed: reported by xattr calls and `imakit doctor`
  }
  // fs-xattr's entry is an ES module: require() of it starts Node's ESM loader, which builds the
  // ES facade of node:fs and so loads all of node:stream, about 20 ms of a one-file command
  // (issue 10 item 11). Its addon, which that module only wraps with argument checks, is loaded
  // directly; the module itself only if the addon is not where fs-xattr 0.4 puts it.
  try {
    const a = require(join(dirname(entry), 'build/Release/xattr.node')) as XattrAddon;
    if (typeof a.getSync === 'function' && typeof a.listSync === 'function')
      return Object.freeze({
        getAttribute: (p: string, n: string) => a.get(p, n),
        setAttribute: (p: string, n: string, v: Buffer) => a.set(p, n, v),
        listAttributes: (p: string) => a.list(p),
        removeAttribute: (p: string, n: string) => a.remove(p, n),
        getAttributeSync: (p: string, n: string) => a.getSync(p, n),
        setAttributeSync: (p: string, n: string, v: Buffer) => a.setSync(p, n, v),
        listAttributesSync: (p: string) => a.listSync(p),
        removeAttributeSync: (p: string, n: string) => a.removeSync(p, n),
      }) as typeof FsXattr;
  } catch {
    // another layout or an unbuilt addon: fs-xattr's own entry says which
  }
  try {
    return require('fs-xattr') as typeof FsXattr;
  } catch {
    return null; // its addon not built: reported by xattr calls and `imakit doctor`
  }
}

/** True when extended attributes can be read and written (fs-xattr is installed and built). */
export function hasXattrSupport(): boolean {
  return fsXattr() !== null;
}

function xattrLib(path: string): typeof FsXattr {
  const lib = fsXattr();
  if (lib === null)
    throw new ImakitError(
      'E_XATTR_UNAVAILABLE',
      'the optional dependency fs-xattr is not installed (it needs a C toolchain at install time)',
      { path },
    );
  return lib;
}

// the names the code below calls, bound to the loaded library
const getAttributeSync = (p: string, n: string): Buffer => xattrLib(p).getAttributeSync(p, n);
const setAttributeSync = (p: string, n: string, v: Buffer): void => xattrLib(p).setAttributeSync(p, n, v);
const removeAttributeSync = (p: string, n: string): void => xattrLib(p).removeAttributeSync(p, n);
const listAttributesSync = (p: string): string[] => xattrLib(p).listAttributesSync(p);
const getAttribute = (p: string, n: string): Promise<Buffer> => xattrLib(p).getAttribute(p, n);
const setAttribute = (p: string, n: string, v: Buffer): Promise<void> => xattrLib(p).setAttribute(p, n, v);
const removeAttribute = (p: string, n: string): Promise<void> => xattrLib(p).removeAttribute(p, n);
const listAttributes = (p: string): Promise<string[]> => xattrLib(p).listAttributes(p);

function errnoOf(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function isAbsent(e: unknown): boolean {
  const c = errnoOf(e);
  return c === 'ENODATA' || c === 'ENOATTR';
}

/** Map an fs-xattr failure to the catalogue. */
function mapError(e: unknown, code: ErrorCode, path: string, name?: string): ImakitError {
  if (e instanceof ImakitError) return e;
  const errno = errnoOf(e);
  const msg = e instanceof Error ? e.message : String(e);
  const what = name === undefined ? msg : `${name}: ${msg}`;
  const detail = errno ? `${errno}: ${what}` : what;
  const ctx = name === undefined ? { path } : { path, field: name };
  if (errno === 'ENOTSUP' || errno === 'EOPNOTSUPP')
    return new ImakitError('E_XATTR_UNSUPPORTED', detail, ctx, { cause: e });
  if (errno === 'EPERM' || errno === 'EACCES') {
    // libc's EPERM text ("not permitted for this type of object") hides the usual causes
    const hint =
      errno === 'EPERM' && code === 'E_XATTR_WRITE' && name?.startsWith('security.') === true
        ? ' (security.* xattrs need CAP_SYS_ADMIN; as root, EVM or an LSM refused the value)'
        : '';
    return new ImakitError('E_PERMISSION', detail + hint, ctx, { cause: e });
  }
  return new ImakitError(code, detail, ctx, { cause: e });
}

function toBytes(b: Buffer): Uint8Array {
  // copy out of the addon's buffer so callers own plain bytes
  return new Uint8Array(b);
}

function checkArgs(path: string, name?: string): void {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  if (name !== undefined && (typeof name !== 'string' || name.length === 0))
    throw new TypeError('xattr name must be a non-empty string');
}

/**
 * Read one xattr (follows symlinks).
 * @returns the value, or null when the file has no such attribute
 * @throws ImakitError E_XATTR_UNSUPPORTED, E_PERMISSION, E_XATTR_READ (ENOENT etc.)
 * @example getXattr('/usr/bin/ls', 'security.ima')
 */
export function getXattr(path: string, name: string): Uint8Array | null {
  checkArgs(path, name);
  try {
    return toBytes(getAttributeSync(path, name));
  } catch (e) {
    if (isAbsent(e)) return null;
    throw mapError(e, 'E_XATTR_READ', path, name);
  }
}

/**
 * Write one xattr (follows symlinks); creates or replaces.
 * @throws ImakitError E_XATTR_UNSUPPORTED, E_PERMISSION (e.g. security.* without CAP_SYS_ADMIN, or
 *   EVM refusing a 0x02 value), E_XATTR_WRITE
 */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  checkArgs(path, name);
  assertBytes(value, undefined, 'value');
  try {
    setAttributeSync(path, name, Buffer.from(value.buffer, value.byteOffset, value.length));
  } catch (e) {
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/**
 * Remove one xattr (follows symlinks).
 * @returns true if it was removed, false if it was absent
 * @throws ImakitError E_XATTR_UNSUPPORTED, E_PERMISSION, E_XATTR_WRITE
 */
export function removeXattr(path: string, name: string): boolean {
  checkArgs(path, name);
  try {
    removeAttributeSync(path, name);
    return true;
  } catch (e) {
    if (isAbsent(e)) return false;
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/**
 * Names of all xattrs the caller may see (follows symlinks). Unprivileged callers do not see
 * `trusted.*`.
 * @throws ImakitError E_XATTR_UNSUPPORTED, E_PERMISSION, E_XATTR_READ
 */
export function listXattrs(path: string): string[] {
  checkArgs(path);
  try {
    return listAttributesSync(path);
  } catch (e) {
    throw mapError(e, 'E_XATTR_READ', path);
  }
}

/**
 * The values of those `names` that are present, in a Map keyed by name (the shape
 * `evmInput({xattrs})` takes). Like the kernel (`vfs_getxattr_alloc`), names are read directly, not
 * filtered through listxattr; an absent name is simply missing from the map.
 * @throws ImakitError as {@link getXattr}
 */
export function readXattrSet(path: string, names: readonly string[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const n of names) {
    const v = getXattr(path, n);
    if (v !== null) out.set(n, v);
  }
  return out;
}

/** Async {@link getXattr}. */
export async function getXattrAsync(path: string, name: string): Promise<Uint8Array | null> {
  checkArgs(path, name);
  try {
    return toBytes(await getAttribute(path, name));
  } catch (e) {
    if (isAbsent(e)) return null;
    throw mapError(e, 'E_XATTR_READ', path, name);
  }
}

/** Async {@link setXattr}. */
export async function setXattrAsync(path: string, name: string, value: Uint8Array): Promise<void> {
  checkArgs(path, name);
  assertBytes(value, undefined, 'value');
  try {
    await setAttribute(path, name, Buffer.from(value.buffer, value.byteOffset, value.length));
  } catch (e) {
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/** Async {@link removeXattr}. */
export async function removeXattrAsync(path: string, name: string): Promise<boolean> {
  checkArgs(path, name);
  try {
    await removeAttribute(path, name);
    return true;
  } catch (e) {
    if (isAbsent(e)) return false;
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/** Async {@link listXattrs}. */
export async function listXattrsAsync(path: string): Promise<string[]> {
  checkArgs(path);
  try {
    return await listAttributes(path);
  } catch (e) {
    throw mapError(e, 'E_XATTR_READ', path);
  }
}

/** The magic link that resolves to the file open on `fd` (not to whatever its path names now). */
export function fdPath(fd: number): string {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`fd must be a file descriptor, got ${fd}`);
  return `/proc/self/fd/${fd}`;
}

/**
 * fgetxattr: read one xattr of the file open on `fd`; errors name `path`.
 * @returns the value, or null when absent
 * @throws ImakitError as {@link getXattr}
 */
export function fgetXattr(fd: number, name: string, path: string): Uint8Array | null {
  checkArgs(path, name);
  try {
    return toBytes(getAttributeSync(fdPath(fd), name));
  } catch (e) {
    if (isAbsent(e)) return null;
    throw mapError(e, 'E_XATTR_READ', path, name);
  }
}

/**
 * fsetxattr: write one xattr on the file open on `fd`, never on what `path` names now.
 * @throws ImakitError as {@link setXattr}
 */
export function fsetXattr(fd: number, name: string, value: Uint8Array, path: string): void {
  checkArgs(path, name);
  assertBytes(value, undefined, 'value');
  try {
    setAttributeSync(fdPath(fd), name, Buffer.from(value.buffer, value.byteOffset, value.length));
  } catch (e) {
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/**
 * fremovexattr on the file open on `fd`.
 * @returns true if removed, false if absent
 * @throws ImakitError as {@link removeXattr}
 */
export function fremoveXattr(fd: number, name: string, path: string): boolean {
  checkArgs(path, name);
  try {
    removeAttributeSync(fdPath(fd), name);
    return true;
  } catch (e) {
    if (isAbsent(e)) return false;
    throw mapError(e, 'E_XATTR_WRITE', path, name);
  }
}

/**
 * flistxattr on the file open on `fd`.
 * @throws ImakitError as {@link listXattrs}
 */
export function flistXattrs(fd: number, path: string): string[] {
  checkArgs(path);
  try {
    return listAttributesSync(fdPath(fd));
  } catch (e) {
    throw mapError(e, 'E_XATTR_READ', path);
  }
}
