/**
 * Files that hold secrets (the agent's token, the verifier's admin token and TLS key): written
 * 0600 through a temporary file created with that mode (never readable by others, not even for a
 * moment), then renamed into place.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { readBoundedText } from '../fs/bounded-read.ts';

/**
 * Write `data` to `path` with mode 0600 (directories made 0700).
 * @throws ImakitError E_IO_WRITE
 */
export function writeSecretFile(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw fromSystemError(e, 'E_IO_WRITE', path);
  }
}

/**
 * The trimmed text of a secret file, or undefined when it does not exist.
 * @throws ImakitError E_IO_READ (anything but ENOENT)
 */
export function readSecretFile(path: string): string | undefined {
  try {
    return readBoundedText(path, 'agent-state').trim();
  } catch (e) {
    const cause = e instanceof ImakitError ? e.cause : e;
    if ((cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw fromSystemError(e, 'E_IO_READ', path);
  }
}
