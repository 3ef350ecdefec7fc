/**
 * Keylime runtime policies (format version 1) and legacy flat allowlists, read into and written from
 * a ReferenceSet (issue 12 part 2).
 *
 * Keylime's format (keylime/ima/ima.py `RUNTIME_POLICY_SCHEMA`, 7.14; vendored in
 * test/vectors/keylime/): `meta {version, generator, timestamp?}`, `release`, `digests {path: [hex]}`,
 * `excludes [regex]`, `keyrings {name: [hex]}`, `ima {ignored_keyrings, log_hash_alg, dm_policy: null}`,
 * `ima-buf {name: [hex]}`, `verification-keys` (a JSON *string* `{keyids, pubkeys}` with base64 DER
 * SubjectPublicKeyInfo). `digests["boot_aggregate"]` holds the boot_aggregate values.
 *
 * Where Keylime is lax we are strict, and say so in the error (a typed E_REFS_FORMAT naming the JSON
 * path): a digest must have the size of a known algorithm (Keylime's schema takes any 40–128 hex
 * digits); an exclude must compile (Keylime drops *every* exclude when one is invalid); a key in
 * `verification-keys` must parse. Keylime excludes match the start of a path only (`re.match`); they
 * are imported as `anchor: 'prefix'` so that is never hidden; imakit's full-match excludes are written
 * as `(?:P)\Z`, which Keylime's `re.match` reads as a full match, and read back as full-match.
 *
 * What Keylime cannot express is reported by `writeKeylimePolicy` in `dropped` (provenance, shipped
 * `security.ima` values, keys without a public key, the file hash algorithm), never silently lost.
 */
import { ImakitError } from '../../errors.ts';
import { toHex } from '../bytes/bytes.ts';
import { findHashAlgo } from '../hash/hash-algo.ts';
import { keyIdFromSubjectPublicKey } from '../keys/keyid.ts';
import { publicFromSpki } from '../keys/keys.ts';
import { parseCertificate } from '../keys/x509.ts';
import {
  MAX_DIGESTS_PER_PATH,
  MAX_REF_PATHS,
  ReferenceSetBuilder,
  type Provenance,
  type ReferenceSet,
} from './reference-set.ts';

/** The runtime-policy format version this module reads and writes (Keylime RUNTIME_POLICY_CURRENT_VERSION). */
export const KEYLIME_POLICY_VERSION = 1;
/** Keylime's `RUNTIME_POLICY_GENERATOR` range (Unknown .. LegacyAllowList). */
const KEYLIME_GENERATOR_MAX = 3;
/** the keyring verification-keys go into (Keylime's `tenant_keyring`) */
export const KEYLIME_TENANT_KEYRING = 'tenant_keyring';
/** Largest policy text we parse (Keylime's DB allows ~430 MB; a 1M-path policy is ~120 MB). */
export const MAX_KEYLIME_POLICY_BYTES = 512 * 1024 * 1024;
/** Keylime's log_hash_alg enum. */
const KEYLIME_LOG_ALGS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const KEYLIME_HEX = /^[0-9a-f]{40,128}$/;
/** Marks a pattern imakit wrote for a full-match exclude. */
const FULL_WRAP = /^\(\?:([\s\S]*)\)\\Z$/;
/** Python-only regex syntax that JavaScript would read differently: refused, never guessed. */
const PYTHON_ONLY = /\\[AZ]|\(\?P[<=>]|\(\?[aiLmsux]+[):]|\(\?#/;

const KEYLIME_PROV: Provenance = Object.freeze({ kind: 'keylime' });

function fail(jsonPath: string, detail: string): ImakitError {
  return new ImakitError('E_REFS_FORMAT', `${jsonPath}: ${detail}`, { field: jsonPath });
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const jp = (base: string, key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;

export interface KeylimeReadOptions {
  /** algorithm for 64-hex digests (sha256 by default; sm3 policies use the same length) */
  readonly digest256?: 'sha256' | 'sm3';
  /** provenance recorded for every reference (default `{kind: 'keylime'}`) */
  readonly provenance?: Provenance;
}

/** A digest string: Keylime's bare lowercase hex, or `alg:hex` as found in Keylime's own test data. */
function parseDigest(
  s: Json | undefined,
  path: string,
  opts: KeylimeReadOptions,
): { algo: string; digest: string } {
  if (typeof s !== 'string') throw fail(path, 'expected a digest string');
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const a = findHashAlgo(s.slice(0, colon).toLowerCase());
    if (!a) throw fail(path, `unknown hash algorithm '${s.slice(0, colon)}'`);
    const hex = s.slice(colon + 1);
    if (hex.length !== a.size * 2 || !/^[0-9a-fA-F]+$/.test(hex))
      throw fail(path, `'${s}' is not a ${a.name} digest`);
    return { algo: a.name, digest: hex.toLowerCase() };
  }
  if (!KEYLIME_HEX.test(s)) throw fail(path, `'${s}' is not lowercase hex of 40-128 digits (Keylime schema)`);
  const algo =
    s.length === 40
      ? 'sha1'
      : s.length === 64
        ? (opts.digest256 ?? 'sha256')
        : s.length === 96
          ? 'sha384'
          : s.length === 128
            ? 'sha512'
            : undefined;
  if (!algo)
    throw fail(path, `${s.length} hex digits is no known digest size (Keylime accepts it, we do not)`);
  return { algo, digest: s };
}

function digestList(v: Json | undefined, path: string): Json[] {
  if (!Array.isArray(v)) throw fail(path, 'expected an array of digests');
  if (v.length === 0) throw fail(path, 'empty digest list (Keylime schema: minItems 1)');
  if (v.length > MAX_DIGESTS_PER_PATH) throw fail(path, `more than ${MAX_DIGESTS_PER_PATH} digests`);
  return v;
}

function excludeOf(pattern: string, path: string): { pattern: string; anchor: 'full' | 'prefix' } {
  const m = FULL_WRAP.exec(pattern);
  if (m) return { pattern: m[1]!, anchor: 'full' };
  if (PYTHON_ONLY.test(pattern))
    throw fail(path, `exclude '${pattern}' uses Python-only regex syntax imakit does not translate`);
  return { pattern, anchor: 'prefix' };
}

/**
 * Parse Keylime runtime-policy JSON (a policy, or a DSSE envelope around one: the payload is read,
 * not verified; use `dsse.ts` to verify) into a ReferenceSet.
 * @throws ImakitError E_REFS_FORMAT naming the JSON path; E_REFS_PATTERN for an exclude that does not
 *   compile; E_CODEC_TOO_LARGE for absurd sizes
 */
export function readKeylimePolicy(text: string, opts: KeylimeReadOptions = {}): ReferenceSet {
  if (text.length > MAX_KEYLIME_POLICY_BYTES)
    throw new ImakitError('E_CODEC_TOO_LARGE', `policy larger than ${MAX_KEYLIME_POLICY_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail('$', `not JSON: ${(e as Error).message}`);
  }
  if (isObject(doc) && typeof doc.payload === 'string' && 'payloadType' in doc) {
    const payload = Buffer.from(doc.payload, 'base64').toString('utf8');
    try {
      doc = JSON.parse(payload);
    } catch (e) {
      throw fail('$.payload', `DSSE payload is not JSON: ${(e as Error).message}`);
    }
  }
  return keylimePolicyFromJson(doc, opts);
}

/** As readKeylimePolicy, from already-parsed JSON. */
export function keylimePolicyFromJson(doc: unknown, opts: KeylimeReadOptions = {}): ReferenceSet {
  if (!isObject(doc)) throw fail('$', 'expected a JSON object');
  for (const k of [
    'meta',
    'release',
    'digests',
    'excludes',
    'keyrings',
    'ima',
    'ima-buf',
    'verification-keys',
  ])
    if (!(k in doc)) throw fail(jp('$', k), 'missing (required by the Keylime schema)');
  const prov = opts.provenance ?? KEYLIME_PROV;
  const meta = doc.meta;
  if (!isObject(meta)) throw fail('$.meta', 'expected an object');
  if (meta.version !== KEYLIME_POLICY_VERSION)
    throw fail('$.meta.version', `unsupported version ${JSON.stringify(meta.version)} (expected 1)`);
  const gen = meta.generator;
  if (typeof gen !== 'number' || !Number.isInteger(gen) || gen < 0 || gen > KEYLIME_GENERATOR_MAX)
    throw fail('$.meta.generator', 'expected an integer 0-3');
  if (meta.timestamp !== undefined && typeof meta.timestamp !== 'string')
    throw fail('$.meta.timestamp', 'expected a string');
  const release = doc.release;
  if (typeof release !== 'number' || !Number.isInteger(release) || release < 0)
    throw fail('$.release', 'expected a non-negative integer');
  const ima = doc.ima;
  if (!isObject(ima)) throw fail('$.ima', 'expected an object');
  const lha = ima.log_hash_alg;
  if (typeof lha !== 'string' || !(KEYLIME_LOG_ALGS as readonly string[]).includes(lha))
    throw fail('$.ima.log_hash_alg', `expected one of ${KEYLIME_LOG_ALGS.join(', ')}`);
  if (!('dm_policy' in ima) || ima.dm_policy !== null)
    throw fail(
      '$.ima.dm_policy',
      'must be null (Keylime schema; dm policies are not expressible in JSON v1)',
    );
  const ignored = ima.ignored_keyrings;
  if (!Array.isArray(ignored)) throw fail('$.ima.ignored_keyrings', 'expected an array of strings');

  const b = new ReferenceSetBuilder({
    logHashAlgo: lha,
    meta: {
      generator: String(gen),
      ...(typeof meta.timestamp === 'string' ? { timestamp: meta.timestamp } : {}),
      release,
    },
  });
  ignored.forEach((k, i) => {
    if (typeof k !== 'string') throw fail(`$.ima.ignored_keyrings[${i}]`, 'expected a string');
    b.addIgnoredKeyring(k);
  });

  const digests = doc.digests;
  if (!isObject(digests)) throw fail('$.digests', 'expected an object');
  const paths = Object.keys(digests);
  if (paths.length > MAX_REF_PATHS) throw fail('$.digests', `more than ${MAX_REF_PATHS} paths`);
  const algos = new Set<string>();
  for (const p of paths) {
    const where = jp('$.digests', p);
    const list = digestList(digests[p], where);
    list.forEach((d, i) => {
      const { algo, digest } = parseDigest(d, `${where}[${i}]`, opts);
      if (p === 'boot_aggregate') b.addBootAggregate({ algo, digest, provenance: prov });
      else {
        algos.add(algo);
        try {
          b.addDigest(p, { algo, digest, provenance: prov });
        } catch (e) {
          if (e instanceof ImakitError) throw fail(`${where}[${i}]`, e.detail);
          throw e;
        }
      }
    });
  }
  if (algos.size === 1) b.setHashAlgo([...algos][0]);

  const excludes = doc.excludes;
  if (!Array.isArray(excludes)) throw fail('$.excludes', 'expected an array of strings');
  excludes.forEach((x, i) => {
    const where = `$.excludes[${i}]`;
    if (typeof x !== 'string') throw fail(where, 'expected a string');
    const e = excludeOf(x, where);
    try {
      b.addExclude(e.pattern, { anchor: e.anchor, provenance: prov });
    } catch (err) {
      if (err instanceof ImakitError)
        throw new ImakitError('E_REFS_PATTERN', `${where}: ${err.detail}`, { field: where, token: x });
      throw err;
    }
  });

  for (const [key, add] of [
    [
      'keyrings',
      (n: string, d: { algo: string; digest: string }) => b.addKeyringDigest(n, { ...d, provenance: prov }),
    ],
    ['ima-buf', (n: string, d: { algo: string; digest: string }) => b.addBuf(n, { ...d, provenance: prov })],
  ] as const) {
    const obj = doc[key];
    const base = jp('$', key);
    if (!isObject(obj)) throw fail(base, 'expected an object');
    for (const name of Object.keys(obj)) {
      const where = jp(base, name);
      digestList(obj[name], where).forEach((d, i) => add(name, parseDigest(d, `${where}[${i}]`, opts)));
    }
  }

  const vk = doc['verification-keys'];
  if (typeof vk !== 'string') throw fail('$["verification-keys"]', 'expected a string (JSON text)');
  if (vk !== '') readVerificationKeys(vk, b, prov);
  return b.build();
}

function readVerificationKeys(vk: string, b: ReferenceSetBuilder, prov: Provenance): void {
  const base = '$["verification-keys"]';
  let obj: unknown;
  try {
    obj = JSON.parse(vk);
    // Keylime's DB sometimes double-encodes it (file_signatures.py from_string)
    if (typeof obj === 'string') obj = JSON.parse(obj);
  } catch (e) {
    throw fail(base, `not JSON: ${(e as Error).message}`);
  }
  if (!isObject(obj) || !Array.isArray(obj.keyids) || !Array.isArray(obj.pubkeys))
    throw fail(base, 'expected {"keyids": [int], "pubkeys": [base64]}');
  const { keyids, pubkeys } = obj;
  pubkeys.forEach((pk, i) => {
    const where = `${base}.pubkeys[${i}]`;
    if (typeof pk !== 'string') throw fail(where, 'expected base64 text');
    const der = Uint8Array.from(Buffer.from(pk, 'base64'));
    let keyId: number;
    try {
      keyId = publicFromSpki(der).keyid;
    } catch (e) {
      throw fail(where, `not a public key: ${e instanceof ImakitError ? e.detail : String(e)}`);
    }
    const given = keyids[i];
    if (given !== undefined) {
      if (typeof given !== 'number' || !Number.isInteger(given) || given < 0 || given > 0xffffffff)
        throw fail(`${base}.keyids[${i}]`, 'expected a 32-bit integer');
      keyId = given;
    }
    b.addSignatureKey({ keyring: KEYLIME_TENANT_KEYRING, keyId, spki: der, provenance: prov });
  });
}

/** The result of writing: the JSON text, and what Keylime's format could not carry. */
export interface KeylimeWriteResult {
  readonly text: string;
  /** human-readable notes, one per kind of information dropped, with counts */
  readonly dropped: readonly string[];
}

/**
 * Write a Keylime runtime policy (version 1) that Keylime's schema accepts. Keys are sorted so the
 * output is deterministic; a policy read by `readKeylimePolicy` from text this function wrote is
 * written back byte for byte.
 */
export function writeKeylimePolicy(set: ReferenceSet): KeylimeWriteResult {
  const dropped: string[] = [];
  const digests: Record<string, string[]> = {};
  let sigs = 0;
  const provKinds = new Set<string>();
  if (set.bootAggregates.length > 0) digests.boot_aggregate = set.bootAggregates.map((x) => toHex(x.digest));
  for (const p of set.digests.paths()) {
    if (p === 'boot_aggregate') continue;
    const refs = set.digests.get(p)!;
    const hex: string[] = [];
    for (const r of refs) {
      const h = toHex(r.digest);
      if (!hex.includes(h)) hex.push(h);
      if (r.imaSignature) sigs++;
      provKinds.add(set.provenances[r.provenance]!.kind);
    }
    digests[p] = hex;
  }
  if (sigs > 0) dropped.push(`${sigs} shipped security.ima values (Keylime keeps digests only)`);
  if ([...provKinds].some((k) => k !== 'keylime'))
    dropped.push('provenance (package, image, layer) of every digest');
  if (set.hashAlgo === 'sm3')
    dropped.push('file hash algorithm sm3 (Keylime reads 64-hex digests as any 256-bit hash)');
  const excludes = set.excludes.map((e) => (e.anchor === 'prefix' ? e.pattern : `(?:${e.pattern})\\Z`));
  const group = (xs: readonly { name: string; digest: Uint8Array }[]): Record<string, string[]> => {
    const o: Record<string, string[]> = {};
    for (const x of xs) (o[x.name] ??= []).push(toHex(x.digest));
    return sortKeys(o);
  };
  const keyringDigests = group(set.keyringDigests.map((k) => ({ name: k.keyring, digest: k.digest })));
  const bufs = group(set.bufs);
  const keyids: number[] = [];
  const pubkeys: string[] = [];
  let noSpki = 0;
  for (const k of set.keys) {
    const spki = k.spki ?? (k.certificate ? spkiOfCertificate(k.certificate) : undefined);
    if (!spki) {
      noSpki++;
      continue;
    }
    keyids.push(k.keyId);
    pubkeys.push(Buffer.from(spki).toString('base64'));
  }
  if (noSpki > 0) dropped.push(`${noSpki} signing keys known by key id only (Keylime needs the public key)`);
  if (set.keys.some((k) => k.keyring !== KEYLIME_TENANT_KEYRING))
    dropped.push('keyring names of signing keys (Keylime has one verification keyring)');
  const generator = Number(set.meta.generator);
  const policy = {
    meta: {
      version: KEYLIME_POLICY_VERSION,
      generator:
        Number.isInteger(generator) && generator >= 0 && generator <= KEYLIME_GENERATOR_MAX ? generator : 0,
      ...(set.meta.timestamp !== undefined ? { timestamp: set.meta.timestamp } : {}),
    },
    release: set.meta.release ?? 0,
    digests: sortKeys(digests),
    excludes,
    keyrings: keyringDigests,
    ima: {
      ignored_keyrings: [...set.ignoredKeyrings],
      log_hash_alg:
        set.logHashAlgo !== undefined && (KEYLIME_LOG_ALGS as readonly string[]).includes(set.logHashAlgo)
          ? set.logHashAlgo
          : 'sha1',
      dm_policy: null,
    },
    'ima-buf': bufs,
    'verification-keys': pubkeys.length > 0 ? JSON.stringify({ keyids, pubkeys }) : '',
  };
  return Object.freeze({ text: JSON.stringify(policy), dropped: Object.freeze(dropped) });
}

function spkiOfCertificate(der: Uint8Array): Uint8Array | undefined {
  try {
    return parseCertificate(der).spkiDer;
  } catch {
    return undefined;
  }
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort(compareUtf8)) out[k] = o[k]!;
  return out;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Keylime's legacy flat allowlist: `<hex> <path>` lines (sha256sum output), `#` comments. */
export function readFlatAllowlist(
  text: string,
  opts: KeylimeReadOptions & { hashAlgo?: string } = {},
): ReferenceSet {
  const prov = opts.provenance ?? KEYLIME_PROV;
  const b = new ReferenceSetBuilder();
  const algos = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^\\?(?:([A-Za-z0-9_-]+):)?([0-9a-fA-F]+) [ *]?(.+)$/.exec(line);
    if (!m) throw new ImakitError('E_REFS_FORMAT', `expected '[alg:]<hex digest> <path>'`, { line: i + 1 });
    const hex = m[2]!.toLowerCase();
    const path = m[3]!;
    const named = m[1] === undefined ? undefined : findHashAlgo(m[1].toLowerCase())?.name;
    if (m[1] !== undefined && named === undefined)
      throw new ImakitError('E_HASH_UNKNOWN', `unknown hash algorithm '${m[1]}'`, { line: i + 1 });
    const algo =
      named ??
      opts.hashAlgo ??
      (hex.length === 40
        ? 'sha1'
        : hex.length === 64
          ? (opts.digest256 ?? 'sha256')
          : hex.length === 96
            ? 'sha384'
            : hex.length === 128
              ? 'sha512'
              : undefined);
    if (!algo)
      throw new ImakitError('E_REFS_FORMAT', `${hex.length} hex digits is no known digest size`, {
        line: i + 1,
      });
    try {
      if (path === 'boot_aggregate') b.addBootAggregate({ algo, digest: hex, provenance: prov });
      else {
        b.addDigest(path, { algo, digest: hex, provenance: prov });
        algos.add(algo);
      }
    } catch (e) {
      if (e instanceof ImakitError) throw new ImakitError(e.code, e.detail, { line: i + 1 }, { cause: e });
      throw e;
    }
  }
  if (algos.size === 1) b.setHashAlgo([...algos][0]);
  return b.build();
}

/** Key id of a DER SubjectPublicKeyInfo's public key bits (Keylime's keyidv2). */
export function keylimeKeyId(spki: Uint8Array): number {
  return keyIdFromSubjectPublicKey(publicFromSpki(spki).subjectPublicKey);
}
