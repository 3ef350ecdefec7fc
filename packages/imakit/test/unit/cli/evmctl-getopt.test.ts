import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getopt } from '../../../src/cli/evmctl/getopt.ts';
import { EVMCTL_OPTION_SPECS, parseEvmctlArgs } from '../../../src/cli/evmctl/options.ts';

test('optional arguments attach only: -uUUID, --uuid=UUID, bare -u / --uuid mean no UUID (pitfall 22)', () => {
  const u = '28b23254-9467-44c0-b6ba-34b12e85a26f';
  assert.deepEqual(parseEvmctlArgs(['sign', `-u${u}`, 'f']).opts.uuid, { mode: 'given', value: u });
  assert.deepEqual(parseEvmctlArgs(['sign', `--uuid=${u}`, 'f']).opts.uuid, { mode: 'given', value: u });
  const bare = parseEvmctlArgs(['sign', '--uuid', u, 'f']);
  assert.deepEqual(bare.opts.uuid, { mode: 'none' });
  // the word after a bare --uuid stays an operand
  assert.deepEqual(bare.operands, ['sign', u, 'f']);
  assert.deepEqual(parseEvmctlArgs(['sign', '-u', 'f']).opts.uuid, { mode: 'none' });
  assert.deepEqual(parseEvmctlArgs(['sign', 'f']).opts.uuid, { mode: 'fs' });
});

test('-pPASS attached, bare -p prompts, EVMCTL_KEY_PASSWORD only as fallback', () => {
  assert.equal(parseEvmctlArgs(['-psecret', 'ima_sign', 'f']).opts.pass, 'secret');
  assert.equal(parseEvmctlArgs(['--pass=x y', 'ima_sign']).opts.pass, 'x y');
  const bare = parseEvmctlArgs(['-p', 'ima_sign', 'f'], { EVMCTL_KEY_PASSWORD: 'env' });
  assert.equal(bare.opts.passPrompt, true);
  assert.equal(bare.opts.pass, 'env');
  assert.deepEqual(bare.operands, ['ima_sign', 'f']);
  assert.equal(parseEvmctlArgs(['-pcli'], { EVMCTL_KEY_PASSWORD: 'env' }).opts.pass, 'cli');
});

test('short clusters, attached and separate required values, permutation, --', () => {
  const r = parseEvmctlArgs([
    'ima_sign',
    '-rvv',
    '-asm3',
    '-k',
    'key.pem',
    '-tf',
    'dir',
    '--',
    '-notanoption',
  ]);
  assert.equal(r.opts.recursive, true);
  assert.equal(r.opts.verbose, 2);
  assert.equal(r.opts.hashAlgo, 'sm3');
  assert.equal(r.opts.key, 'key.pem');
  assert.equal(r.opts.searchType, 'f');
  assert.deepEqual(r.operands, ['ima_sign', 'dir', '-notanoption']);
  // a cluster whose middle letter takes an argument consumes the rest of the word
  const c = parseEvmctlArgs(['-nak', 'x']);
  assert.equal(c.opts.noXattr, true);
  assert.equal(c.opts.hashAlgo, 'k');
  assert.deepEqual(c.operands, ['x']);
});

test('seed 003 line parses like evmctl: ima_sign -a sm3 -s -k KEY -r -t f DIR', () => {
  const r = parseEvmctlArgs([
    'ima_sign',
    '-a',
    'sm3',
    '-s',
    '-k',
    '/path/to/sm2.key',
    '-r',
    '-t',
    'f',
    '/bin',
  ]);
  assert.deepEqual(r.errors, []);
  assert.equal(r.opts.imasig, true);
  assert.deepEqual(r.operands, ['ima_sign', '/bin']);
});

test('long options: unambiguous prefixes (--ino), exact beats prefix (--ima), ambiguity and unknowns are errors', () => {
  assert.equal(parseEvmctlArgs(['--ino', '12', 'sign']).opts.ino, '12');
  assert.equal(parseEvmctlArgs(['--ima=0404aa']).opts.ima, '0404aa');
  assert.equal(parseEvmctlArgs(['--imas']).opts.imasig, true);
  assert.match(parseEvmctlArgs(['--im']).errors[0]!, /ambiguous/);
  assert.match(parseEvmctlArgs(['--bogus']).errors[0]!, /unrecognized/);
  assert.match(parseEvmctlArgs(['-Z']).errors[0]!, /invalid option/);
  assert.match(parseEvmctlArgs(['--key']).errors[0]!, /requires an argument/);
  assert.match(parseEvmctlArgs(['--rsa=1']).errors[0]!, /doesn't allow/);
});

test('--keyid validation like evmctl (hex, 32-bit, non-zero); --mode stays decimal text', () => {
  assert.equal(parseEvmctlArgs(['--keyid', 'aabbccdd']).opts.keyid, 0xaabbccdd);
  assert.deepEqual(parseEvmctlArgs(['--keyid', '0']).errors, ['Invalid keyid value.']);
  assert.deepEqual(parseEvmctlArgs(['--keyid', '123456789']).errors, ['Invalid keyid value.']);
  assert.deepEqual(parseEvmctlArgs(['--keyid', 'xyz']).errors, ['Invalid keyid value.']);
  assert.equal(parseEvmctlArgs(['--mode', '33188']).opts.mode, '33188');
});

test('--caps alone skips security.capability; --caps=STR sets it', () => {
  const a = parseEvmctlArgs(['--caps']).opts;
  assert.equal(a.capsSet, true);
  assert.equal(a.caps, undefined);
  assert.equal(parseEvmctlArgs(['--caps=abc']).opts.caps, 'abc');
});

test('getopt is generic over a table', () => {
  const r = getopt(['-x', 'a', '--xattr-user'], EVMCTL_OPTION_SPECS);
  assert.deepEqual(
    r.options.map((o) => o.key),
    ['xattrUser', 'xattrUser'],
  );
  assert.deepEqual(r.operands, ['a']);
});
