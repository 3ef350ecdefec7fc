/**
 * How command bytes reach a TPM 2.0 and its response comes back. Every transport here carries the
 * same raw framing (tpm.md fact (a)): the command bytes go in bare and the response comes back bare;
 * its 10-byte header's `size` says how long it is, and that size is checked before anything else is
 * read. A transport does one command at a time; `TpmClient` serialises its callers.
 *
 * - `/dev/tpmrm0`: the kernel's resource manager flushes what a connection loaded when it closes.
 * - `/dev/tpm0`, swtpm over TCP, a unix socket: nothing is flushed for us (tpm.md gotcha 1), so the
 *   client flushes every object and session it loads (`managed: false`).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { ImakitError } from '../../errors.ts';

/** TPM response header: tag u16, size u32, responseCode u32 (TPM 2.0 Part 1 §18.2, Part 3 §5.2). */
export const TPM_HEADER_SIZE = 10;
/**
 * Largest response accepted. TPM2_PT_MAX_RESPONSE_SIZE is 4096 on libtpms and on the hardware TPMs
 * we know; the cap leaves room for a TPM with larger buffers while refusing a garbage size field.
 */
export const MAX_TPM_RESPONSE = 64 * 1024;
/** Default time a TPM may take to answer: RSA key generation on hardware TPMs takes tens of seconds. */
export const DEFAULT_TPM_TIMEOUT_MS = 120_000;

/** One TPM connection. */
export interface TpmTransport {
  /** what this is, for messages: `/dev/tpmrm0`, `swtpm:127.0.0.1:2321`, `unix:/run/tpm.sock` */
  readonly describe: string;
  /** true when a resource manager flushes loaded objects and sessions at close (`/dev/tpmrm0`) */
  readonly managed: boolean;
  /** send one command, return its whole response (header included) */
  transmit(command: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Where the TPM is: parsed from `--tpm`. */
export type TpmLocation =
  | { readonly kind: 'device'; readonly path: string }
  | { readonly kind: 'swtpm'; readonly host: string; readonly port: number; readonly ctrlPort: number }
  | { readonly kind: 'unix'; readonly path: string };

/**
 * Parse a `--tpm` selector: `/dev/tpmrm0` (the default), `/dev/tpm0` (any path under /dev),
 * `swtpm:HOST:PORT` (ctrl port PORT+1, swtpm's convention) or `unix:PATH`.
 * @throws ImakitError E_USAGE for anything else
 * @example parseTpmSelector('swtpm:127.0.0.1:2321') // { kind: 'swtpm', host, port: 2321, ctrlPort: 2322 }
 */
export function parseTpmSelector(sel: string): TpmLocation {
  if (sel.startsWith('swtpm:')) {
    const rest = sel.slice('swtpm:'.length);
    const i = rest.lastIndexOf(':');
    const host = i > 0 ? rest.slice(0, i).replace(/^\[(.*)\]$/, '$1') : '';
    const portText = i > 0 ? rest.slice(i + 1) : '';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (host === '' || !(port > 0 && port < 65535))
      throw new ImakitError('E_USAGE', `--tpm ${sel}: expected swtpm:HOST:PORT (PORT+1 is the ctrl port)`);
    return Object.freeze({ kind: 'swtpm', host, port, ctrlPort: port + 1 });
  }
  if (sel.startsWith('unix:')) {
    const path = sel.slice('unix:'.length);
    if (path === '') throw new ImakitError('E_USAGE', `--tpm ${sel}: expected unix:PATH`);
    return Object.freeze({ kind: 'unix', path });
  }
  if (sel.startsWith('/')) return Object.freeze({ kind: 'device', path: sel });
  throw new ImakitError(
    'E_USAGE',
    `--tpm ${sel}: expected /dev/tpmrm0, /dev/tpm0, swtpm:HOST:PORT or unix:PATH`,
  );
}

/** Text form of a location (inverse of parseTpmSelector). */
export function describeTpmLocation(loc: TpmLocation): string {
  if (loc.kind === 'device') return loc.path;
  if (loc.kind === 'unix') return `unix:${loc.path}`;
  return `swtpm:${loc.host.includes(':') ? `[${loc.host}]` : loc.host}:${loc.port}`;
}

/** Options of every transport. */
export interface TransportOptions {
  /** how long one command may take before E_TPM_TIMEOUT (default DEFAULT_TPM_TIMEOUT_MS) */
  readonly timeoutMs?: number;
  /**
   * Sockets only: keep one connection for all commands (faster; swtpm then serves nobody else
   * until close). Default: a connection per command, as tpm2-tss does.
   */
  readonly keepAlive?: boolean;
}

/** Open a transport to `loc`. */
export async function openTransport(loc: TpmLocation, opts: TransportOptions = {}): Promise<TpmTransport> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TPM_TIMEOUT_MS;
  if (loc.kind === 'device') return DeviceTransport.open(loc.path, timeoutMs);
  const describe = describeTpmLocation(loc);
  const target = loc.kind === 'swtpm' ? { host: loc.host, port: loc.port } : { path: loc.path };
  return new SocketTransport(target, describe, timeoutMs, opts.keepAlive === true);
}

/** Check a response header and return the size it declares. */
export function checkResponseHeader(header: Uint8Array, describe: string): number {
  const size = ((header[2]! << 24) | (header[3]! << 16) | (header[4]! << 8) | header[5]!) >>> 0;
  if (size < TPM_HEADER_SIZE)
    throw new ImakitError('E_TPM_RESPONSE', `${describe}: response size ${size} is smaller than its header`, {
      offset: 2,
      field: 'responseSize',
    });
  if (size > MAX_TPM_RESPONSE)
    throw new ImakitError(
      'E_TPM_RESPONSE',
      `${describe}: response size ${size} exceeds the ${MAX_TPM_RESPONSE}-byte cap (not a TPM response?)`,
      { offset: 2, field: 'responseSize' },
    );
  return size;
}

function connectSocket(
  target: { host: string; port: number } | { path: string },
  describe: string,
  timeoutMs: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(target);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ImakitError('E_TPM_TIMEOUT', `${describe}: no connection after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new ImakitError('E_TPM_TRANSPORT', `${describe}: ${e.message}`, {}, { cause: e }));
    });
  });
}

/**
 * A TPM behind a stream socket (swtpm's TCP data port, or `--server type=unixio`). swtpm serves one
 * connection at a time and keeps TPM state across connections, so by default each command gets its
 * own connection, as tpm2-tss's swtpm TCTI does: other clients (tpm2-tools, QEMU's next boot) can
 * use the TPM between our commands. `keepAlive` holds one connection for the client's life instead
 * (about 0.5 ms less per command, tpm.md (d)), locking everyone else out meanwhile.
 */
class SocketTransport implements TpmTransport {
  readonly managed = false;
  private conn: SocketConnection | undefined;
  private closed = false;

  constructor(
    private readonly target: { host: string; port: number } | { path: string },
    readonly describe: string,
    private readonly timeoutMs: number,
    private readonly keepAlive: boolean,
  ) {}

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new ImakitError('E_TPM_TRANSPORT', `${this.describe}: connection closed`);
    let conn = this.conn;
    if (conn === undefined || conn.failed) {
      conn = new SocketConnection(
        await connectSocket(this.target, this.describe, this.timeoutMs),
        this.describe,
        this.timeoutMs,
      );
      if (this.keepAlive) this.conn = conn;
    }
    try {
      return await conn.transmit(command);
    } finally {
      if (!this.keepAlive) conn.end();
    }
  }

  close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = undefined;
    c?.end();
    return Promise.resolve();
  }
}

/** One socket carrying one command at a time. Once anything goes wrong it stays failed. */
class SocketConnection {
  private chunks: Buffer[] = [];
  private have = 0;
  private pending:
    { resolve: (b: Uint8Array) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly describe: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', (e) =>
      this.fail(new ImakitError('E_TPM_TRANSPORT', `${describe}: ${e.message}`, {}, { cause: e })),
    );
    socket.on('close', () =>
      this.fail(
        new ImakitError(
          this.have > 0 ? 'E_TPM_RESPONSE' : 'E_TPM_TRANSPORT',
          this.have > 0
            ? `${describe}: connection closed after ${this.have} bytes of a response (truncated)`
            : `${describe}: connection closed`,
          this.have > 0 ? { offset: this.have, field: 'response' } : {},
        ),
      ),
    );
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  transmit(command: Uint8Array): Promise<Uint8Array> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending !== undefined)
      return Promise.reject(
        new ImakitError('E_INTERNAL', `${this.describe}: a command is already in flight`),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new ImakitError(
            'E_TPM_TIMEOUT',
            `${this.describe}: no response after ${this.timeoutMs} ms (${this.have} bytes received)`,
          ),
        );
      }, this.timeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.write(command);
    });
  }

  private onData(b: Buffer): void {
    if (this.pending === undefined) {
      this.fail(new ImakitError('E_TPM_RESPONSE', `${this.describe}: ${b.length} bytes arrived unasked`));
      return;
    }
    this.chunks.push(b);
    this.have += b.length;
    if (this.have < TPM_HEADER_SIZE) return;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [all];
    let size: number;
    try {
      size = checkResponseHeader(all, this.describe);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    if (this.have < size) return;
    if (this.have > size) {
      this.fail(
        new ImakitError(
          'E_TPM_RESPONSE',
          `${this.describe}: ${this.have - size} bytes beyond the ${size}-byte response`,
          {
            offset: size,
            field: 'response',
          },
        ),
      );
      return;
    }
    const p = this.pending;
    this.pending = undefined;
    this.chunks = [];
    this.have = 0;
    clearTimeout(p.timer);
    p.resolve(new Uint8Array(all.buffer, all.byteOffset, all.length));
  }

  /** The connection is unusable from here on: reject what waits, and everything after. */
  private fail(e: Error): void {
    if (this.failure === undefined) this.failure = e;
    const p = this.pending;
    this.pending = undefined;
    if (p !== undefined) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.socket.destroy();
  }

  /** Close deliberately (nothing pending). */
  end(): void {
    if (this.failure === undefined)
      this.failure = new ImakitError('E_TPM_TRANSPORT', `${this.describe}: connection closed`);
    this.socket.destroy();
  }
}

/**
 * A TPM character device. The kernel hands back a whole response to one read() of a buffer at
 * least as large as it (tpm-dev-common.c), so one read of MAX_TPM_RESPONSE bytes suffices.
 */
class DeviceTransport implements TpmTransport {
  private readonly buf = Buffer.allocUnsafe(MAX_TPM_RESPONSE);
  private busy = false;
  private constructor(
    private readonly fh: FileHandle,
    readonly describe: string,
    readonly managed: boolean,
    private readonly timeoutMs: number,
  ) {}

  static async open(path: string, timeoutMs: number): Promise<DeviceTransport> {
    try {
      const fh = await open(path, 'r+');
      return new DeviceTransport(fh, path, /tpmrm\d+$/.test(path), timeoutMs);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new ImakitError('E_TPM_TRANSPORT', `${path}: ${msg}`, { path }, { cause: e });
    }
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    if (this.busy) throw new ImakitError('E_INTERNAL', `${this.describe}: a command is already in flight`);
    this.busy = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const io = (async () => {
        await this.fh.write(command);
        const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, null);
        return bytesRead;
      })();
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ImakitError('E_TPM_TIMEOUT', `${this.describe}: no response after ${this.timeoutMs} ms`),
            ),
          this.timeoutMs,
        );
      });
      const n = await Promise.race([io, timeout]).catch((e: unknown) => {
        if (e instanceof ImakitError) throw e;
        throw new ImakitError(
          'E_TPM_TRANSPORT',
          `${this.describe}: ${(e as Error).message}`,
          {},
          { cause: e },
        );
      });
      if (n < TPM_HEADER_SIZE)
        throw new ImakitError('E_TPM_RESPONSE', `${this.describe}: ${n}-byte response (truncated header)`, {
          offset: n,
          field: 'response',
        });
      const size = checkResponseHeader(this.buf, this.describe);
      if (size !== n)
        throw new ImakitError(
          'E_TPM_RESPONSE',
          `${this.describe}: response declares ${size} bytes, read ${n}`,
          {
            offset: Math.min(size, n),
            field: 'response',
          },
        );
      return new Uint8Array(this.buf.subarray(0, n));
    } finally {
      clearTimeout(timer);
      this.busy = false;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
