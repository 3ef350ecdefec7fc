/**
 * A small JSON client for the verifier's HTTP API, shared by the agent and `imakit fleet`. node:http
 * and node:https directly (not fetch) because a self-signed verifier certificate is trusted by
 * passing it as the CA of one request, which fetch cannot do without a dispatcher dependency.
 *
 * Every failure is an `ApiError`: the verifier's answer (4xx: E_API_REJECTED with its own code and
 * message; 5xx: E_API_UNAVAILABLE) or no answer at all (refused, timed out, a certificate that does
 * not verify: E_API_UNAVAILABLE).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ImakitError, type ErrorCode } from '../../errors.ts';
import { readBoundedText } from '../fs/bounded-read.ts';

/** Largest answer read (a page of agents, a verdict with its steps). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

export interface ApiClientOptions {
  /** base URL, e.g. `https://verifier:8443` */
  readonly baseUrl: string;
  /** the whole Authorization header value (`Bearer …`, `Agent …`) */
  readonly authorization?: string;
  /** PEM text of the certificate(s) to trust instead of the system store */
  readonly ca?: string;
  /** do not verify the server's certificate */
  readonly insecure?: boolean;
  readonly timeoutMs?: number;
}

/** An API failure: the catalogue code, and what the verifier said when it answered. */
export class ApiError extends ImakitError {
  constructor(
    code: ErrorCode,
    detail: string,
    readonly status: number | undefined,
    readonly apiCode: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(code, detail, {}, options);
    this.name = 'ApiError';
  }
  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.apiCode !== undefined ? { apiCode: this.apiCode } : {}),
    };
  }
}

/** A client bound to one verifier. */
export interface ApiClient {
  readonly baseUrl: string;
  /** send JSON (or raw bytes), parse the JSON answer; 204 gives undefined */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/**
 * Read the CA file named by a `--ca` flag (user-supplied: bounded like any certificate).
 * @throws ImakitError E_IO_READ, E_IO_TOO_LARGE
 */
export function readCaFile(path: string): string {
  return readBoundedText(path, 'certificate');
}

/**
 * @throws ImakitError E_USAGE for a base URL that is not http(s)
 * @example const api = apiClient({ baseUrl: 'https://v:8443', authorization: `Bearer ${t}`, ca: pem });
 *          const agents = await api.request('GET', '/v1/agents');
 */
export function apiClient(opts: ApiClientOptions): ApiClient {
  let base: URL;
  try {
    base = new URL(opts.baseUrl);
  } catch {
    throw new ImakitError('E_USAGE', `not a URL: '${opts.baseUrl}'`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new ImakitError('E_USAGE', `expected an http:// or https:// URL, got '${opts.baseUrl}'`);
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  return Object.freeze({
    baseUrl,
    request: <T>(method: string, path: string, body?: unknown): Promise<T> =>
      send<T>(opts, new URL(baseUrl + path), method, body),
  });
}

function send<T>(opts: ApiClientOptions, url: URL, method: string, body: unknown): Promise<T> {
  const what = `${method} ${url.pathname}`;
  const payload =
    body === undefined
      ? undefined
      : body instanceof Uint8Array
        ? Buffer.from(body.buffer, body.byteOffset, body.byteLength)
        : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (payload !== undefined) {
    headers['content-type'] = body instanceof Uint8Array ? 'application/octet-stream' : 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise<T>((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.destroy();
          reject(
            new ApiError(
              'E_API_UNAVAILABLE',
              `${what}: answer larger than ${MAX_RESPONSE_BYTES} bytes`,
              res.statusCode,
              undefined,
            ),
          );
          return;
        }
        parts.push(c);
      });
      res.on('error', (e) => reject(unreachable(what, e)));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        if (text !== '')
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        if (status >= 200 && status < 300) {
          if (status !== 204 && text !== '' && json === undefined)
            return reject(
              new ApiError('E_API_UNAVAILABLE', `${what}: answer is not JSON`, status, undefined),
            );
          return resolve(json as T);
        }
        const err = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
        const apiCode = typeof err?.code === 'string' ? err.code : undefined;
        const message =
          typeof err?.message === 'string' ? err.message : text.slice(0, 200) || res.statusMessage;
        const detail = `${what}: ${status}${apiCode !== undefined ? ` ${apiCode}` : ''}: ${message ?? ''}`;
        reject(new ApiError(status >= 500 ? 'E_API_UNAVAILABLE' : 'E_API_REJECTED', detail, status, apiCode));
      });
    };
    const common = { method, headers, timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(
            url,
            {
              ...common,
              ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
              rejectUnauthorized: opts.insecure !== true,
            },
            onResponse,
          )
        : httpRequest(url, common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${common.timeout} ms`)));
    req.on('error', (e) => reject(unreachable(what, e, url)));
    req.end(payload);
  });
}

function unreachable(what: string, e: Error, url?: URL): ApiError {
  const code = (e as NodeJS.ErrnoException).code;
  const where = url !== undefined ? ` ${url.origin}` : '';
  const hint =
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
      ? " (trust the verifier's certificate with --ca DATA/tls.crt)"
      : '';
  return new ApiError(
    'E_API_UNAVAILABLE',
    `${what}:${where} ${code !== undefined ? `${code}: ` : ''}${e.message}${hint}`,
    undefined,
    undefined,
    { cause: e },
  );
}
