/**
 * Pull mode (issue 13 part 1): the agent serves its evidence and the verifier polls it.
 *
 *   GET /v1/evidence?nonce=HEX&pcrs=sha256:0-7,10&offset=BYTES
 *     → the evidence body push mode sends ({ nonce, quote, pcrs, ima, eventLog?, bootCount })
 *
 * The evidence is bound to the verifier's nonce by the quote, so an answer to someone else's nonce
 * is useless to them; the list itself is not secret-free, which is why the endpoint binds to the
 * configured address only (an internal interface), not to every address. TPM commands are
 * serialised by the TpmClient; one request at a time is answered.
 */
import { createServer, type Server } from 'node:http';
import { ImakitError } from '../../errors.ts';
import { TpmClient } from '../tpm/client.ts';
import { collectEvidence, type Challenge } from './attest.ts';
import { parseListen, type AgentConfig } from './config.ts';
import { ApiError } from './api-client.ts';
import { serveHttpOn, type ListeningServer } from './http-listen.ts';

export type PullServer = ListeningServer;

/**
 * Listen on `c.listen` and answer evidence requests.
 * @throws ImakitError E_USAGE (no or bad listen address), E_API_UNAVAILABLE (cannot listen)
 */
export async function serveEvidence(c: AgentConfig, opts: { tpm?: TpmClient } = {}): Promise<PullServer> {
  if (c.listen === undefined)
    throw new ImakitError('E_USAGE', 'pull mode needs an address to listen on (--listen HOST:PORT)', {
      field: 'listen',
    });
  const { host, port } = parseListen(c.listen);
  let queue: Promise<unknown> = Promise.resolve();
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method !== 'GET' || url.pathname !== '/v1/evidence')
      return send(404, { error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${url.pathname}` } });
    const nonce = url.searchParams.get('nonce') ?? '';
    const pcrs = url.searchParams.get('pcrs') ?? 'sha256:0-7,10';
    const offset = Number(url.searchParams.get('offset') ?? '0');
    if (!/^[0-9a-fA-F]{2,128}$/.test(nonce) || !Number.isSafeInteger(offset) || offset < 0)
      return send(400, {
        error: { code: 'E_USAGE', message: 'nonce (hex) and offset (bytes) are required' },
      });
    const ch: Challenge = { nonce, pcrs, imaOffset: { entries: 0, bytes: offset } };
    const job = queue.then(async () => {
      const tpm = opts.tpm ?? (await TpmClient.open(c.tpm));
      try {
        return await collectEvidence(c, ch, tpm);
      } finally {
        if (opts.tpm === undefined) await tpm.close();
      }
    });
    queue = job.catch(() => undefined);
    job.then(
      (ev) => send(200, ev.body),
      (e: unknown) => {
        const err = e instanceof ImakitError ? e : new ImakitError('E_INTERNAL', String(e));
        send(err instanceof ApiError || err.code === 'E_USAGE' ? 400 : 500, { error: err.toJSON() });
      },
    );
  });
  return serveHttpOn(server, host, port, c.listen);
}
