/**
 * evmctl `sign_hash`: sign digests read from stdin (formats.md §6.2).
 *  - default: lines `<hex> <path>` (sha*sum output) → the line, a space, and the hex of the full
 *    `03 02 …` value; algorithm from `-a`, digest length from the hex;
 *  - `--veritysig`: lines `<alg>:<hex> <path>` (`fsverity digest` output) → `06 03 …` sigv3 over
 *    H(06 ‖ algo ‖ digest) (§3.3).
 * Malformed lines are reported on stderr and skipped, as evmctl does.
 */
import { fromHex } from '../../core/bytes.ts';
import { findHashAlgo } from '../../core/hash-algo.ts';
import { signatureValue, sigv3Digest } from '../../host/label-file.ts';
import type { EvmctlCommand } from './command.ts';
import { INTERNAL, evmctlAlgo, hex, loadSigner } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'sign_hash',
  usage: '[--veritysig] [--key key] [--pass[=<password>]]',
  description: 'Sign hashes from either shaXsum or "fsverity digest" output.',
  async run(opts, _args, io) {
    const key = loadSigner(opts);
    const keyOpts = opts.keyid !== undefined ? { keyid: opts.keyid } : {};
    const text = await io.readStdin();
    let seen = 0;
    let failed = 0;
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const line of lines) {
      if (opts.veritysig) {
        const colon = line.indexOf(':');
        if (colon <= 0 || colon >= 7) {
          io.stderr('Missing/invalid fsverity hash algorithm\n');
          continue;
        }
        const space = line.indexOf(' ');
        const hexText = space < 0 ? '' : line.slice(colon + 1, space);
        if (hexText.length === 0) {
          io.stderr('Missing fsverity hash\n');
          continue;
        }
        const algo = findHashAlgo(line.slice(0, colon));
        let digest: Uint8Array;
        try {
          digest = fromHex(hexText.slice(0, hexText.length - (hexText.length % 2)));
        } catch {
          io.stderr(`invalid hex digest: ${line}\n`);
          failed++;
          continue;
        }
        if (algo === undefined || digest.length !== algo.size) {
          io.stderr('Failure to calculate fs-verity hash\n');
          continue;
        }
        seen++;
        const value = signatureValue(key, algo, sigv3Digest(0x06, algo, digest), {
          ...keyOpts,
          xattrType: 0x06,
        });
        io.stdout(`${line} ${hex(value)}\n`);
      } else {
        const m = /^[^ \t]*/.exec(line)!;
        const hexText = m[0];
        const algo = evmctlAlgo(opts.hashAlgo);
        let digest: Uint8Array;
        try {
          digest = fromHex(hexText.slice(0, hexText.length - (hexText.length % 2)));
        } catch {
          io.stderr(`invalid hex digest: ${line}\n`);
          failed++;
          continue;
        }
        if (digest.length !== algo.size) {
          io.stderr(`digest length ${digest.length} does not match ${algo.name} (${algo.size}): ${line}\n`);
          failed++;
          continue;
        }
        seen++;
        io.stdout(`${line} ${hex(signatureValue(key, algo, digest, keyOpts))}\n`);
      }
    }
    if (seen === 0 && failed === 0) {
      io.stderr('Parameters missing\nusage: sign_hash [--veritysig] [--key key] [--pass[=<password>]]\n');
      return INTERNAL;
    }
    return failed > 0 ? INTERNAL : 0;
  },
};
