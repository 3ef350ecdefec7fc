/**
 * The dashboard's static files (a directory the caller names, e.g. the built @imakit/dashboard's
 * dist/): read once when the app is built (a few hundred KiB), served from memory at `/` and
 * `/assets/…` with their content types. No file outside the directory can be named: only paths
 * read at start exist. Hashed assets are cached for a year; index.html is revalidated. The content
 * security policy allows nothing but this origin: the dashboard loads nothing from the internet.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { VerifierError } from '../errors.ts';

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
});

const MAX_FILES = 500;
const MAX_BYTES = 32 * 1024 * 1024;

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

/** Every file under `dir`, by URL path (`/index.html`, `/assets/x.js`). */
export function readStaticDir(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let bytes = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const type = TYPES[extname(name).toLowerCase()];
        if (type === undefined) continue;
        bytes += st.size;
        if (files.size >= MAX_FILES || bytes > MAX_BYTES)
          throw new VerifierError('V_BAD_REQUEST', `the dashboard directory ${dir} is too large`);
        files.set(`/${relative(dir, p).split(sep).join('/')}`, { body: readFileSync(p), type });
      }
    }
  };
  walk(dir);
  if (!files.has('/index.html'))
    throw new VerifierError('V_BAD_REQUEST', `the dashboard directory ${dir} has no index.html`);
  return files;
}

export const dashboardStaticRoutes: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  const files = readStaticDir(dir);
  const send = (path: string) => {
    const f = files.get(path);
    if (f === undefined) throw new VerifierError('V_NOT_FOUND', `no file ${path}`, { path });
    return f;
  };
  const headers = (path: string, f: StaticFile) => ({
    'content-type': f.type,
    'cache-control': path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    const f = send('/index.html');
    return reply.headers(headers('/index.html', f)).send(f.body);
  });
  app.get<{ Params: { '*': string } }>('/assets/*', { schema: { hide: true } }, async (req, reply) => {
    const path = `/assets/${req.params['*']}`;
    const f = send(path);
    return reply.headers(headers(path, f)).send(f.body);
  });
  for (const path of files.keys())
    if (!path.startsWith('/assets/') && path !== '/index.html')
      app.get(path, { schema: { hide: true } }, async (_req, reply) => {
        const f = send(path);
        return reply.headers(headers(path, f)).send(f.body);
      });
};
