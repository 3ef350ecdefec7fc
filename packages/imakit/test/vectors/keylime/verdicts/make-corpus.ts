/**
 * Writes the Keylime verdict corpus (see ORIGIN.md): per case an ascii `ima-ng`/`ima-sig` list, a
 * Keylime runtime policy written by hand (not by imakit's writer), and the PCR 10 the list replays
 * to; `cases.json` names them. Deterministic: fixed file digests, RSA PKCS#1 v1.5 signatures with
 * the shared vector key. Run from the package directory:
 *
 *     node --import tsx test/vectors/keylime/verdicts/make-corpus.ts
 *
 * then `run-keylime.py` records Keylime's verdicts. The test never runs either.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UntrustedEntry } from '../../../../src/core/ima-list/binary.ts';
import { renderAsciiList } from '../../../../src/core/ima-list/ascii.ts';
import { renderPcrJson } from '../../../../src/core/tcg/pcr-values.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { loadPrivateKey } from '../../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../../src/core/labels/ima-signature.ts';
import { imaNgData, nodeHash, oraclePcrs } from '../../../unit/core/ima-list/build-list.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const sha256 = hashAlgoByName('sha256');
const rsa = loadPrivateKey(new Uint8Array(readFileSync(join(HERE, '../../rsa2048.key'))));

/** A fixed 32-byte file digest: the byte of `c` repeated. */
const d = (c: string): Uint8Array => new Uint8Array(32).fill(c.charCodeAt(0));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function entry(templateName: string, data: Uint8Array, violation = false): Omit<UntrustedEntry, 'index'> {
  // the template-hash column is sha1 (Keylime's default log_hash_alg; the kernel's ascii list)
  return { offset: 0, pcr: 10, digest: violation ? new Uint8Array(20) : nodeHash('sha1', data), templateName, templateData: data };
}
const ng = (path: string, digest: Uint8Array, violation = false) =>
  entry('ima-ng', imaNgData('sha256', digest, path), violation);
/** ima-sig signed by the rsa2048 vector key over `signed` (the file's digest, or another one). */
const sig = (path: string, digest: Uint8Array, signed: Uint8Array) =>
  entry('ima-sig', imaNgData('sha256', digest, path, [signImaDigest({ key: rsa, algo: sha256, digest: signed })]));

const BOOT = d('B');

/** A Keylime 7.14 runtime policy (`keylime/ima/ima.py` RUNTIME_POLICY_SCHEMA), as a user writes one. */
function policy(digests: Record<string, Uint8Array[]>, excludes: string[] = []): object {
  const ds: Record<string, string[]> = { boot_aggregate: [hex(BOOT)] };
  for (const [p, v] of Object.entries(digests)) ds[p] = v.map(hex);
  return {
    meta: { version: 1, generator: 0 },
    release: 0,
    digests: ds,
    excludes,
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': {},
    'verification-keys': '',
  };
}

const BASE = { '/usr/bin/ok': [d('a')], '/usr/lib/libok.so': [d('l'), d('m')] };

interface Case {
  readonly name: string;
  /** `agree`: Keylime is right and imakit must give the same verdict; `keylime-lax`: a documented difference */
  readonly label: 'agree' | 'keylime-lax';
  readonly what: string;
  readonly entries: readonly Omit<UntrustedEntry, 'index'>[];
  readonly policy: object;
  /** public keys given to both (paths relative to this directory) */
  readonly keys?: readonly string[];
}

const CASES: readonly Case[] = [
  {
    name: 'allowed-digests',
    label: 'agree',
    what: 'every file in the digest list (two digests allowed for the library)',
    entries: [ng('boot_aggregate', BOOT), ng('/usr/bin/ok', d('a')), ng('/usr/lib/libok.so', d('m'))],
    policy: policy(BASE),
  },
  {
    name: 'digest-not-allowed',
    label: 'agree',
    what: 'a known path with a digest the policy does not list',
    entries: [ng('boot_aggregate', BOOT), ng('/usr/bin/ok', d('z'))],
    policy: policy(BASE),
  },
  {
    name: 'unknown-path',
    label: 'agree',
    what: 'a path the policy does not list',
    entries: [ng('boot_aggregate', BOOT), ng('/usr/bin/ok', d('a')), ng('/usr/bin/evil', d('a'))],
    policy: policy(BASE),
  },
  {
    name: 'wrong-boot-aggregate',
    label: 'agree',
    what: 'a boot_aggregate the policy does not list',
    entries: [ng('boot_aggregate', d('C')), ng('/usr/bin/ok', d('a'))],
    policy: policy(BASE),
  },
  {
    name: 'excluded-full-path',
    label: 'agree',
    what: 'an exclude whose pattern matches the whole path',
    entries: [ng('boot_aggregate', BOOT), ng('/var/tmp/build/x', d('q'))],
    policy: policy(BASE, ['/var/tmp/.*']),
  },
  {
    name: 'signed-by-known-key',
    label: 'agree',
    what: 'ima-sig by a given key that verifies; the file is in no digest list',
    entries: [ng('boot_aggregate', BOOT), sig('/usr/bin/signed', d('s'), d('s'))],
    policy: policy(BASE),
    keys: ['../../rsa2048.cer'],
  },
  {
    name: 'violation',
    label: 'keylime-lax',
    what: 'a ToMToU/open-writers violation entry (template hash zero) for a path in no digest list',
    entries: [ng('boot_aggregate', BOOT), ng('/usr/bin/raced', d('v'), true)],
    policy: policy(BASE),
  },
  {
    name: 'invalid-exclude',
    label: 'keylime-lax',
    what: 'excludes ["/var/tmp/.*", "(["]: one invalid pattern',
    entries: [ng('boot_aggregate', BOOT), ng('/var/tmp/build/x', d('q'))],
    policy: policy(BASE, ['/var/tmp/.*', '([']),
  },
  {
    name: 'prefix-exclude',
    label: 'keylime-lax',
    what: 'exclude "/tmp" and the path /tmpfoo/x',
    entries: [ng('boot_aggregate', BOOT), ng('/tmpfoo/x', d('q'))],
    policy: policy(BASE, ['/tmp']),
  },
  {
    name: 'bad-signature-known-key',
    label: 'keylime-lax',
    what: 'ima-sig by a given key that does not verify (signed another digest); the digest is listed',
    entries: [ng('boot_aggregate', BOOT), sig('/usr/bin/ok', d('a'), d('X'))],
    policy: policy(BASE),
    keys: ['../../rsa2048.cer'],
  },
];

const index: object[] = [];
for (const c of CASES) {
  const entries: UntrustedEntry[] = c.entries.map((e, i) => ({ ...e, index: i }));
  writeFileSync(join(HERE, `${c.name}.ascii`), renderAsciiList(entries));
  writeFileSync(join(HERE, `${c.name}.policy.json`), JSON.stringify(c.policy, null, 1) + '\n');
  writeFileSync(
    join(HERE, `${c.name}.pcrs.json`),
    JSON.stringify(renderPcrJson(oraclePcrs(entries, ['sha256']))) + '\n',
  );
  index.push({ name: c.name, label: c.label, what: c.what, keys: c.keys ?? [] });
}
writeFileSync(join(HERE, 'cases.json'), JSON.stringify(index, null, 1) + '\n');
