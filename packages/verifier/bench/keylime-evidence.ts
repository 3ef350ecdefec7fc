/**
 * Keylime's `POST /v2.6/verify/evidence` on imakit's verifier: a small body (a real swtpm quote of
 * sha256 PCRs 0-7,10 in Keylime's format, a 2-entry... kernel list and a runtime policy allowing
 * it), one client on loopback with keep-alive, requests back to back for a bounded time, as the
 * Keylime figure in the peers' README was taken (256-331 requests/s).
 *   node --import tsx --conditions=source bench/keylime-evidence.ts [--seconds 5] [--out DIR]
 * `--out DIR` also writes the bodies (valid.json, no-pcr10.json, relabelled.json) so Keylime's own
 * code can be run on them (the peers' quote_check.py evidence / verifier_service.sh post).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { asciiToEntries, parseAsciiList, parsePcrSelectionText, templateDigest } from 'imakit/core';
import { buildApp, openDatabase } from '../src/index.ts';
import { TpmClient } from '../../imakit/src/host/tpm/client.ts';
import { encodeKeylimePcrBlob, keylimeQuoteString } from '../../imakit/src/core/tpm/keylime-quote.ts';
import { startTestTpm } from '../../imakit/test/unit/tpm-helpers.ts';
import { keylimePolicy } from '../test/keylime-policy.ts';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, out: { type: 'string' } },
});
const FIXTURE = join(import.meta.dirname, '../../imakit/test/fixtures/kernel/appraise-enforce');
const ASCII = readFileSync(join(FIXTURE, 'ascii_runtime_measurements'), 'utf8')
  .trim()
  .split('\n')
  .filter((l) => !(l.split(' ')[5] ?? '').startsWith('0301'));
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

const digests: Record<string, string[]> = {};
for (const line of ASCII) {
  const [, , , d, path] = line.split(' ');
  (digests[path!] ??= []).push(d!.slice(d!.indexOf(':') + 1));
}
const policy = keylimePolicy(digests);

const tpm = await startTestTpm({ manufacture: false });
const client = await TpmClient.open(tpm.selector);
const ek = await client.createEk('rsa');
const ak = await client.createAk(ek, 'rsassa');
for (const e of asciiToEntries(parseAsciiList(ASCII.join('\n'))))
  await client.pcrExtend(10, [
    { hashAlg: 0x0004, digest: templateDigest(e.templateData, 'sha1') },
    { hashAlg: 0x000b, digest: templateDigest(e.templateData, 'sha256') },
  ]);
const nonce = 'kNq0bX2yQ7rLz1aP9eWc';
const quote = async (pcrs: number[], label = pcrs): Promise<string> => {
  const sel = parsePcrSelectionText(`sha256:${pcrs.join(',')}`);
  const q = await client.quote(ak.key.handle, Buffer.from(nonce), sel);
  const read = await client.pcrRead(sel);
  const values = read.values.map((v) => v.value);
  return keylimeQuoteString(q.attest, q.signature, encodeKeylimePcrBlob(0x000b, label, values));
};
const bodyOf = (q: string) =>
  JSON.stringify({
    type: 'tpm',
    data: {
      quote: q,
      nonce,
      hash_alg: 'sha256',
      tpm_ek: b64(ek.publicBytes),
      tpm_ak: b64(ak.key.publicBytes),
      runtime_policy: policy,
      ima_measurement_list: ASCII.join('\n') + '\n',
    },
  });
const bodies = {
  valid: bodyOf(await quote([0, 1, 2, 3, 4, 5, 6, 7, 10])),
  'no-pcr10': bodyOf(await quote([0, 1, 2, 3, 4, 5, 6, 7])),
  relabelled: bodyOf(await quote([16], [10])),
};
await client.close();
tpm.stop();
if (args.out !== undefined) {
  mkdirSync(args.out, { recursive: true });
  for (const [k, v] of Object.entries(bodies)) writeFileSync(join(args.out, `${k}.json`), v);
}

const app = await buildApp({ database: await openDatabase({ kind: 'pglite' }) });
await app.listen({ host: '127.0.0.1', port: 0 });
const port = (app.server.address() as { port: number }).port;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const post = (body: string): Promise<{ status: number; json: { results: { valid: boolean } } }> =>
  new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v2.6/verify/evidence',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });

for (const [k, v] of Object.entries(bodies)) {
  const r = await post(v);
  console.log(`${k}: HTTP ${r.status} valid=${r.json.results.valid}`);
}
const seconds = Number(args.seconds);
for (let i = 0; i < 50; i++) await post(bodies.valid); // warm-up
const times: number[] = [];
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  const t = performance.now();
  const r = await post(bodies.valid);
  if (r.status !== 200 || !r.json.results.valid) throw new Error('unexpected answer');
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
console.log(
  `imakit POST /v2.6/verify/evidence, body ${bodies.valid.length} bytes (${ASCII.length} entries), one client, keep-alive, ${seconds} s: ` +
    `${(times.length / seconds).toFixed(0)} requests/s, latency p50 ${q(0.5)} ms p99 ${q(0.99)} ms (n=${times.length}); plain HTTP on loopback (Keylime's figure is HTTPS)`,
);
agent.destroy();
await app.close();
