/**
 * `imakit agent run --keylime-api`: the agent side of Keylime's pull API, answering as
 * rust-keylime's agent does (keylime-agent/src/quotes_handler.rs, api.rs; keylime/src/tpm.rs), so
 * Keylime's verifier (with agent mTLS off: plain HTTP, as its `enable_agent_mtls = False` asks) and
 * imakit's verifier can both poll it.
 *
 *   GET /version                       {code, status, results: {supported_version, supported_versions}}
 *   GET /v2.N/quotes/integrity?nonce=&mask=&partial=0|1&ima_ml_entry=
 *       {code: 200, status: "Success", results: {quote, hash_alg, enc_alg, sign_alg, pubkey?,
 *        ima_measurement_list, ima_measurement_list_entry, mb_measurement_list?, boottime}}
 *   GET /v2.N/quotes/identity?nonce=   the same over PCR 16 only, with pubkey
 *
 * PCR 16: before every quote the agent resets PCR 16 and extends it (in the quoted bank) with
 * H(its public key PEM), and PCR 16 is always in the quote; Keylime's verifier checks it equals
 * H(0…0 ‖ H(pubkey)) for the key the agent sent (`partial=0`) or the one it cached. The key is the
 * agent's own RSA key (rust-keylime's "NK", for Keylime's payload delivery, which is not
 * implemented here), kept in the AK directory as `keylime-nk.pem` so it survives restarts.
 *
 * The quote is retried (five times, as rust-keylime does) until the PCR values read after it hash
 * to the quote's pcrDigest: a PCR extended in between would otherwise make a valid quote with
 * wrong values. Requests are answered one at a time (the TPM is one device).
 *
 * Not served: `/keys/*` (Keylime's payload delivery) and `POST /notifications/revocation`
 * (revocation actions) answer 400/405; Keylime 7.14's verifier then logs "Unexpected Notify
 * Revocation response error … 405" when it fails an agent, and carries on.
 *
 * `boottime` (seconds since the epoch, `/proc/stat` btime) is what Keylime's Python agent sent and
 * the verifier still reads to tell a reboot; rust-keylime 0.2 leaves it out (the verifier then
 * takes 0). It is not covered by the quote.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import { hash, hashAlgoByName, hashAlgoByTpmAlg } from '../../core/hash/hash-algo.ts';
import { TPM_ALG } from '../../core/tpm/constants.ts';
import { decodeTpmsAttest } from '../../core/tpm/attest.ts';
import {
  KEYLIME_DATA_PCR,
  KEYLIME_MAX_NONCE,
  encodeKeylimePcrBlob,
  keylimeMaskPcrs,
  keylimeQuoteString,
} from '../../core/tpm/keylime-quote.ts';
import type { TpmtPublic } from '../../core/tpm/public.ts';
import { TpmClient } from '../tpm/client.ts';
import { loadAkDir } from '../tpm/ak-files.ts';
import { readBoundedText } from '../fs/bounded-read.ts';
import { parseListen } from './config.ts';
import { readEventLogIfPresent } from './evidence.ts';
import { keylimeListReader, type KeylimeListReader } from './keylime-list.ts';
import type { PullServer } from './pull.ts';
import { serveHttpOn } from './http-listen.ts';
import { readSecretFile, writeSecretFile } from './secret-files.ts';

/** The API versions answered (rust-keylime keylime/src/config/base.rs SUPPORTED_API_VERSIONS). */
export const KEYLIME_API_VERSIONS = Object.freeze(['2.1', '2.2', '2.3', '2.4', '2.5', '2.6']);

export interface KeylimeApiOptions {
  /** `HOST:PORT` */
  readonly listen: string;
  /** TPM selector (`--tpm`) */
  readonly tpm: string;
  /** AK directory made by `imakit tpm ak create` */
  readonly akDir: string;
  /** the IMA list, binary or ascii */
  readonly imaList: string;
  /** the TCG event log, sent when the mask has PCR 0; undefined: none */
  readonly eventLog: string | undefined;
  /** the bank quoted (Keylime's `hash_alg`; default sha256) */
  readonly hashAlg?: string;
  /** where boot time is read (`btime` line; default /proc/stat) */
  readonly procStat?: string;
}

/** Keylime's JSON wrapper (rust-keylime keylime/src/json_wrapper.rs). */
export interface KeylimeWrapped<T> {
  readonly code: number;
  readonly status: string;
  readonly results: T;
}

/** The integrity quote answer (rust-keylime keylime/src/quote.rs `KeylimeQuote`, plus boottime). */
export interface KeylimeQuoteAnswer {
  readonly quote: string;
  readonly hash_alg: string;
  readonly enc_alg: string;
  readonly sign_alg: string;
  readonly pubkey?: string;
  readonly ima_measurement_list?: string;
  readonly ima_measurement_list_entry?: number;
  readonly mb_measurement_list?: string;
  readonly boottime: number;
}

const NK_FILE = 'keylime-nk.pem';
const ATTEMPTS = 5;

/** The agent's RSA key (PKCS#8 PEM in the AK directory), made on first use. */
export function keylimeAgentKey(akDir: string): { privateKey: KeyObject; publicPem: string } {
  const path = join(akDir, NK_FILE);
  const text = readSecretFile(path);
  let privateKey: KeyObject;
  if (text !== undefined) {
    try {
      privateKey = createPrivateKey(text);
    } catch (e) {
      throw new ImakitError('E_KEY_PARSE', `${path}: not a private key PEM`, { path }, { cause: e });
    }
  } else {
    privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    writeSecretFile(path, String(privateKey.export({ type: 'pkcs8', format: 'pem' })));
  }
  const publicPem = String(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));
  return { privateKey, publicPem };
}

/** Keylime's names for the AK's signing scheme and key (rust-keylime algorithms.rs Display). */
export function keylimeAlgNames(ak: TpmtPublic, apiVersion: string): { sign_alg: string; enc_alg: string } {
  const s = ak.scheme.scheme;
  const sign_alg =
    s === TPM_ALG.RSASSA
      ? 'rsassa'
      : s === TPM_ALG.RSAPSS
        ? 'rsapss'
        : s === TPM_ALG.ECDSA
          ? 'ecdsa'
          : 'ecschnorr';
  // API < 2.5 said rsa/ecc; later ones rsa2048/ecc256 (EncryptionAlgorithm::to_string_for_api_version)
  const legacy = Number(apiVersion.split('.')[1] ?? 0) < 5 && apiVersion.startsWith('2.');
  const enc_alg =
    ak.type === 'rsa'
      ? legacy
        ? 'rsa'
        : `rsa${ak.keyBits}`
      : legacy
        ? 'ecc'
        : ak.curveId === 0x0004
          ? 'ecc384'
          : 'ecc256';
  return { sign_alg, enc_alg };
}

function bootTime(path: string): number {
  try {
    const m = /^btime (\d+)$/m.exec(readBoundedText(path, 'proc-value'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

const wrap = <T>(code: number, status: string, results: T): KeylimeWrapped<T> => ({ code, status, results });

class BadRequest extends Error {}

/**
 * Quote `pcrs` + PCR 16 in `bank` over `nonce` (its UTF-8 bytes, as rust-keylime passes
 * `param.nonce.as_bytes()`), with PCR 16 reset and extended with H(`pubkeyPem`) first.
 * @throws ImakitError from the TPM; E_TPM_RESPONSE when the PCRs kept moving across five tries
 */
export async function keylimeQuote(
  tpm: TpmClient,
  akDir: string,
  nonce: string,
  pcrs: readonly number[],
  bank: number,
  pubkeyPem: string,
): Promise<{ quote: string; ak: TpmtPublic }> {
  const h = hashAlgoByTpmAlg(bank);
  if (h === undefined) throw new ImakitError('E_USAGE', `no hash for bank 0x${bank.toString(16)}`);
  await tpm.pcrReset(KEYLIME_DATA_PCR);
  await tpm.pcrExtend(KEYLIME_DATA_PCR, [
    { hashAlg: bank, digest: hash(h, new TextEncoder().encode(pubkeyPem)) },
  ]);
  const all = [...new Set([...pcrs, KEYLIME_DATA_PCR])].sort((a, b) => a - b);
  const sel = [{ hashAlg: bank, sizeofSelect: 3, pcrs: all }];
  const { key, transient } = await loadAkDir(tpm, akDir);
  try {
    for (let i = 0; i < ATTEMPTS; i++) {
      const q = await tpm.quote(key.handle, new TextEncoder().encode(nonce), sel);
      const read = await tpm.pcrRead(sel);
      const values = read.values.map((v) => v.value);
      const att = decodeTpmsAttest(q.attest);
      const digest = att.attested.kind === 'quote' ? att.attested.pcrDigest : new Uint8Array(0);
      if (toHex(hash(h, ...values)) === toHex(digest))
        return {
          quote: keylimeQuoteString(q.attest, q.signature, encodeKeylimePcrBlob(bank, all, values)),
          ak: key.public,
        };
    }
  } finally {
    if (transient) await tpm.flush(key.handle);
  }
  throw new ImakitError(
    'E_TPM_RESPONSE',
    `the PCRs changed between the quote and the read ${ATTEMPTS} times in a row`,
    { field: 'pcrDigest' },
  );
}

interface Ctx {
  readonly o: KeylimeApiOptions;
  readonly bank: number;
  readonly hashName: string;
  readonly nk: { readonly publicPem: string };
  readonly list: KeylimeListReader;
  readonly tpm: TpmClient | undefined;
}

async function answerQuote(c: Ctx, version: string, kind: 'integrity' | 'identity', q: URLSearchParams) {
  const nonce = q.get('nonce') ?? '';
  // rust-keylime: alphanumeric only, at most 64 characters
  if (!/^[A-Za-z0-9]+$/.test(nonce)) throw new BadRequest(`nonce should be strictly alphanumeric: ${nonce}`);
  if (nonce.length > KEYLIME_MAX_NONCE)
    throw new BadRequest(`Nonce is too long (max size: ${KEYLIME_MAX_NONCE}): ${nonce.length}`);
  let pcrs: number[] = [];
  let withKey = true;
  let nth = 0;
  if (kind === 'integrity') {
    const mask = q.get('mask') ?? '';
    if (!/^[A-Za-z0-9]+$/.test(mask)) throw new BadRequest(`mask should be strictly alphanumeric: ${mask}`);
    try {
      pcrs = keylimeMaskPcrs(mask);
    } catch {
      throw new BadRequest(`mask should be a hex encoded 32-bit integer: ${mask}`);
    }
    const partial = q.get('partial');
    if (partial !== '0' && partial !== '1')
      throw new BadRequest("uri must contain key 'partial' and value '0' or '1'");
    withKey = partial === '0';
    // rust-keylime: an unparsable index reads from 0
    const e = q.get('ima_ml_entry');
    nth = e !== null && /^\d{1,15}$/.test(e) ? Number(e) : 0;
  }
  const tpm = c.tpm ?? (await TpmClient.open(c.o.tpm));
  let quote: string;
  let ak: TpmtPublic;
  try {
    ({ quote, ak } = await keylimeQuote(tpm, c.o.akDir, nonce, pcrs, c.bank, c.nk.publicPem));
  } finally {
    if (c.tpm === undefined) await tpm.close();
  }
  const { enc_alg, sign_alg } = keylimeAlgNames(ak, version);
  // rust-keylime's field order (keylime/src/quote.rs KeylimeQuote), then boottime
  const head = { quote, hash_alg: c.hashName, enc_alg, sign_alg, ...(withKey && { pubkey: c.nk.publicPem }) };
  const boottime = bootTime(c.o.procStat ?? '/proc/stat');
  if (kind === 'identity') return { ...head, boottime };
  const slice = c.list.read(nth);
  const log = pcrs.includes(0) ? readEventLogIfPresent(c.o.eventLog) : undefined;
  const answer: KeylimeQuoteAnswer = {
    ...head,
    ima_measurement_list: slice.text,
    ...(log !== undefined && { mb_measurement_list: Buffer.from(log).toString('base64') }),
    ima_measurement_list_entry: slice.entry,
    boottime,
  };
  return answer;
}

/**
 * Listen on `o.listen` and answer Keylime's pull API.
 * @throws ImakitError E_USAGE (bad listen address or bank), E_API_UNAVAILABLE (cannot listen),
 * E_KEY_PARSE / E_IO_* (the agent key)
 */
export async function serveKeylimeApi(
  o: KeylimeApiOptions,
  deps: { readonly tpm?: TpmClient; readonly onError?: (e: unknown) => void } = {},
): Promise<PullServer> {
  const { host, port } = parseListen(o.listen);
  const h = hashAlgoByName(o.hashAlg ?? 'sha256');
  if (h.tpmAlg === null)
    throw new ImakitError('E_USAGE', `${h.name} is not a TPM bank`, { field: 'hashAlg' });
  const c: Ctx = {
    o,
    bank: h.tpmAlg,
    hashName: h.name,
    nk: keylimeAgentKey(o.akDir),
    list: keylimeListReader(o.imaList),
    tpm: deps.tpm,
  };
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return send(405, wrap(405, 'Method is not supported', {}));
    }
    if (url.pathname === '/version')
      return send(
        200,
        wrap(200, 'Success', {
          supported_version: KEYLIME_API_VERSIONS[KEYLIME_API_VERSIONS.length - 1],
          supported_versions: KEYLIME_API_VERSIONS,
        }),
      );
    const m = /^\/v(\d+\.\d+)\/quotes\/(integrity|identity)$/.exec(url.pathname);
    if (m === null) return send(400, wrap(400, 'Not Implemented: Use /version or /quotes interfaces', {}));
    const version = m[1]!;
    if (!KEYLIME_API_VERSIONS.includes(version))
      return send(400, wrap(400, `API version not supported: ${version}`, {}));
    const job = queue.then(() => answerQuote(c, version, m[2] as 'integrity' | 'identity', url.searchParams));
    queue = job.catch(() => undefined);
    job.then(
      (results) => send(200, wrap(200, 'Success', results)),
      (e: unknown) => {
        if (e instanceof BadRequest) return send(400, wrap(400, e.message, {}));
        // rust-keylime's answer; the cause goes to the operator, not to the network
        deps.onError?.(e);
        send(500, wrap(500, 'Unable to retrieve quote', {}));
      },
    );
  });
  return serveHttpOn(server, host, port, o.listen);
}
