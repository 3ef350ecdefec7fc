/**
 * evmctl `sign_hash`: sign digests read from stdin (formats.md §6.2).
 *  - default: lines `<hex> <path>` (sha*sum output) → the line, a space, and the hex of the full
 *    `03 02 …` value; algorithm from `-a`, digest length from the hex;
 *  - `--veritysig`: lines `<alg>:<hex> <path>` (`fsverity digest` output) → `06 03 …` sigv3 over
 *    H(06 ‖ algo ‖ digest) (§3.3).
 * Malformed lines are reported on stderr and skipped, as evmctl does.
 */
import { fromHex } from '../../core/bytes/bytes.ts';
import { findHashAlgo, type HashAlgo } from '../../core/hash/hash-algo.ts';
import type { PrivateKey } from '../../core/keys/keys.ts';
import { imaValueFromDigest } from '../../host/label/label-file.ts';
import type { CliIo } from '../io.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import { INTERNAL, evmctlAlgo, hex, loadSigner } from './shared.ts';

/** One line's algorithm and digest text, or the message evmctl prints for a skipped line. */
type Parsed =
  | { readonly ok: true; readonly algo: HashAlgo; readonly hexText: string }
  | { readonly ok: false; readonly message: string };

function parseVerityLine(line: string): Parsed {
  const colon = line.indexOf(':');
  if (colon <= 0 || colon >= 7) return { ok: false, message: 'Missing/invalid fsverity hash algorithm' };
  const space = line.indexOf(' ');
  const hexText = space < 0 ? '' : line.slice(colon + 1, space);
  if (hexText.length === 0) return { ok: false, message: 'Missing fsverity hash' };
  const algo = findHashAlgo(line.slice(0, colon));
  if (algo === undefined) return { ok: false, message: 'Failure to calculate fs-verity hash' };
  return { ok: true, algo, hexText };
}

function parseSumLine(line: string, opts: EvmctlOptions): Parsed {
  return { ok: true, algo: evmctlAlgo(opts.hashAlgo), hexText: /^[^ \t]*/.exec(line)![0] };
}

/** Sign one line; returns 'signed', 'skipped' (evmctl ignores it) or 'failed'. */
function signLine(
  line: string,
  opts: EvmctlOptions,
  key: PrivateKey,
  io: CliIo,
): 'signed' | 'skipped' | 'failed' {
  const p = opts.veritysig ? parseVerityLine(line) : parseSumLine(line, opts);
  if (!p.ok) {
    io.stderr(`${p.message}\n`);
    return 'skipped';
  }
  let digest: Uint8Array;
  try {
    // like evmctl's hex2bin, an odd trailing digit is ignored
    digest = fromHex(p.hexText.slice(0, p.hexText.length - (p.hexText.length % 2)));
  } catch {
    io.stderr(`invalid hex digest: ${line}\n`);
    return 'failed';
  }
  if (digest.length !== p.algo.size) {
    if (opts.veritysig) {
      io.stderr('Failure to calculate fs-verity hash\n');
      return 'skipped';
    }
    io.stderr(`digest length ${digest.length} does not match ${p.algo.name} (${p.algo.size}): ${line}\n`);
    return 'failed';
  }
  const value = imaValueFromDigest(
    {
      kind: opts.veritysig ? 'verity' : 'sign',
      algo: p.algo,
      key,
      ...(opts.keyid !== undefined ? { keyid: opts.keyid } : {}),
    },
    digest,
  );
  io.stdout(`${line} ${hex(value)}\n`);
  return 'signed';
}

export const command: EvmctlCommand = {
  name: 'sign_hash',
  usage: '[--veritysig] [--key key] [--pass[=<password>]]',
  description: 'Sign hashes from either shaXsum or "fsverity digest" output.',
  async run(opts, _args, io) {
    const key = loadSigner(opts);
    const text = await io.readStdin();
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    let seen = 0;
    let failed = 0;
    for (const line of lines) {
      const r = signLine(line, opts, key, io);
      if (r === 'signed') seen++;
      else if (r === 'failed') failed++;
    }
    if (seen === 0 && failed === 0) {
      io.stderr('Parameters missing\nusage: sign_hash [--veritysig] [--key key] [--pass[=<password>]]\n');
      return INTERNAL;
    }
    return failed > 0 ? INTERNAL : 0;
  },
};
