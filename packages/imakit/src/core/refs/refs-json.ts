/**
 * imakit's JSON form of a reference set: everything the set holds (a superset of Keylime's policy),
 * deterministic (paths in UTF-8 byte order, fixed key order), so `encode(decode(t)) ≡ t`.
 *
 *   {"imakitRefs": 1, "meta": {...}, "hashAlgo"?, "logHashAlgo"?,
 *    "provenances": [{"kind", "name"?, ...}],
 *    "digests": {"/path": [{"algo", "digest": hex, "prov": n, "imaSignature"?: hex}]},
 *    "keys": [{"keyring", "keyId": "%08x", "spki"?: base64, "certificate"?: base64, "prov"}],
 *    "excludes": [{"pattern", "anchor": "full"|"prefix", "prov"}],
 *    "imaBuf": [{"name", "algo", "digest", "prov"}], "keyrings": [{"keyring", "algo", "digest", "prov"}],
 *    "ignoredKeyrings": [...], "bootAggregates": [{"algo", "digest", "prov"}]}
 */
import { ImakitError } from '../../errors.ts';
import { fromHex, toHex } from '../bytes/bytes.ts';
import {
  MAX_PROVENANCES,
  MAX_REF_PATHS,
  ReferenceSetBuilder,
  type Provenance,
  type ProvenanceKind,
  type ReferenceSet,
} from './reference-set.ts';

export const REFS_JSON_VERSION = 1;
const KINDS: readonly ProvenanceKind[] = ['deb', 'rpm', 'oci', 'rootfs', 'list', 'keylime', 'manual'];
const PROV_FIELDS = ['name', 'version', 'arch', 'image', 'layer', 'source'] as const;

const fail = (path: string, detail: string): ImakitError =>
  new ImakitError('E_REFS_FORMAT', `${path}: ${detail}`, { field: path });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const jp = (base: string, key: string): string => `${base}[${JSON.stringify(key)}]`;

function str(o: Obj, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw fail(`${where}.${k}`, 'expected a string');
  return v;
}
function optStr(o: Obj, k: string, where: string): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, where);
}
function arr(o: Obj, k: string, where: string): unknown[] {
  const v = o[k];
  if (!Array.isArray(v)) throw fail(`${where}.${k}`, 'expected an array');
  return v;
}
function obj(v: unknown, where: string): Obj {
  if (!isObj(v)) throw fail(where, 'expected an object');
  return v;
}
function hex(o: Obj, k: string, where: string): Uint8Array {
  const s = str(o, k, where);
  try {
    return fromHex(s, `${where}.${k}`);
  } catch {
    throw fail(`${where}.${k}`, 'expected hex');
  }
}
function b64(o: Obj, k: string, where: string): Uint8Array | undefined {
  const s = optStr(o, k, where);
  if (s === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw fail(`${where}.${k}`, 'expected base64');
  return Uint8Array.from(Buffer.from(s, 'base64'));
}

/** Serialize a set as imakit JSON (deterministic). */
export function encodeRefsJson(set: ReferenceSet): string {
  const prov = (p: number): number => p;
  const digests: Record<string, unknown[]> = {};
  for (const path of set.digests.paths())
    digests[path] = set.digests.get(path)!.map((r) => ({
      algo: r.algo,
      digest: toHex(r.digest),
      prov: prov(r.provenance),
      ...(r.imaSignature ? { imaSignature: toHex(r.imaSignature) } : {}),
    }));
  const doc = {
    imakitRefs: REFS_JSON_VERSION,
    meta: {
      ...(set.meta.generator !== undefined ? { generator: set.meta.generator } : {}),
      ...(set.meta.timestamp !== undefined ? { timestamp: set.meta.timestamp } : {}),
      ...(set.meta.release !== undefined ? { release: set.meta.release } : {}),
    },
    ...(set.hashAlgo !== undefined ? { hashAlgo: set.hashAlgo } : {}),
    ...(set.logHashAlgo !== undefined ? { logHashAlgo: set.logHashAlgo } : {}),
    provenances: set.provenances.map((p) => {
      const o: Record<string, string> = { kind: p.kind };
      for (const f of PROV_FIELDS) if (p[f] !== undefined) o[f] = p[f];
      return o;
    }),
    digests,
    keys: set.keys.map((k) => ({
      keyring: k.keyring,
      keyId: k.keyId.toString(16).padStart(8, '0'),
      ...(k.spki ? { spki: Buffer.from(k.spki).toString('base64') } : {}),
      ...(k.certificate ? { certificate: Buffer.from(k.certificate).toString('base64') } : {}),
      prov: k.provenance,
    })),
    excludes: set.excludes.map((e) => ({ pattern: e.pattern, anchor: e.anchor, prov: e.provenance })),
    imaBuf: set.bufs.map((b) => ({
      name: b.name,
      algo: b.algo,
      digest: toHex(b.digest),
      prov: b.provenance,
    })),
    keyrings: set.keyringDigests.map((b) => ({
      keyring: b.keyring,
      algo: b.algo,
      digest: toHex(b.digest),
      prov: b.provenance,
    })),
    ignoredKeyrings: [...set.ignoredKeyrings],
    bootAggregates: set.bootAggregates.map((b) => ({
      algo: b.algo,
      digest: toHex(b.digest),
      prov: b.provenance,
    })),
  };
  return JSON.stringify(doc, null, 1) + '\n';
}

/** True when parsed JSON looks like imakit's form (for format detection). */
export function isRefsJson(doc: unknown): boolean {
  return isObj(doc) && 'imakitRefs' in doc;
}

/**
 * Parse imakit JSON. @throws ImakitError E_REFS_FORMAT naming the JSON path, E_REFS_PATTERN,
 * E_CODEC_TOO_LARGE
 */
export function decodeRefsJson(text: string): ReferenceSet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail('$', `not JSON: ${(e as Error).message}`);
  }
  return refsFromJson(doc);
}

export function refsFromJson(doc: unknown): ReferenceSet {
  const d = obj(doc, '$');
  if (d.imakitRefs !== REFS_JSON_VERSION)
    throw fail('$.imakitRefs', `unsupported version ${JSON.stringify(d.imakitRefs)}`);
  const meta = obj(d.meta, '$.meta');
  const release = meta.release;
  if (release !== undefined && (typeof release !== 'number' || !Number.isInteger(release) || release < 0))
    throw fail('$.meta.release', 'expected a non-negative integer');
  const b = new ReferenceSetBuilder({
    meta: {
      ...(meta.generator !== undefined ? { generator: str(meta, 'generator', '$.meta') } : {}),
      ...(meta.timestamp !== undefined ? { timestamp: str(meta, 'timestamp', '$.meta') } : {}),
      ...(release !== undefined ? { release } : {}),
    },
  });
  const wrapAlgo = (f: () => void, where: string): void => {
    try {
      f();
    } catch (e) {
      if (e instanceof ImakitError && e.code !== 'E_REFS_FORMAT') throw fail(where, e.detail);
      throw e;
    }
  };
  if (d.hashAlgo !== undefined) wrapAlgo(() => b.setHashAlgo(str(d, 'hashAlgo', '$')), '$.hashAlgo');
  if (d.logHashAlgo !== undefined)
    wrapAlgo(() => b.setLogHashAlgo(str(d, 'logHashAlgo', '$')), '$.logHashAlgo');
  const provs = arr(d, 'provenances', '$');
  if (provs.length > MAX_PROVENANCES) throw fail('$.provenances', `more than ${MAX_PROVENANCES}`);
  const provList: Provenance[] = provs.map((p, i) => {
    const where = `$.provenances[${i}]`;
    const o = obj(p, where);
    const kind = str(o, 'kind', where) as ProvenanceKind;
    if (!KINDS.includes(kind)) throw fail(`${where}.kind`, `unknown provenance kind '${kind}'`);
    const out: { -readonly [K in keyof Provenance]: Provenance[K] } = { kind };
    for (const f of PROV_FIELDS) {
      const v = optStr(o, f, where);
      if (v !== undefined) out[f] = v;
    }
    for (const k of Object.keys(o))
      if (k !== 'kind' && !(PROV_FIELDS as readonly string[]).includes(k))
        throw fail(`${where}.${k}`, 'unknown field');
    return out;
  });
  // intern in order so indices are preserved exactly
  provList.forEach((p, i) => {
    if (b.provenance(p) !== i) throw fail(`$.provenances[${i}]`, 'duplicate provenance');
  });
  const provOf = (o: Obj, where: string): Provenance => {
    const n = o.prov;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= provList.length)
      throw fail(`${where}.prov`, 'expected an index into $.provenances');
    return provList[n]!;
  };
  const digests = obj(d.digests, '$.digests');
  const paths = Object.keys(digests);
  if (paths.length > MAX_REF_PATHS) throw fail('$.digests', `more than ${MAX_REF_PATHS} paths`);
  for (const path of paths) {
    const base = jp('$.digests', path);
    const list = digests[path];
    if (!Array.isArray(list) || list.length === 0) throw fail(base, 'expected a non-empty array');
    list.forEach((r, i) => {
      const where = `${base}[${i}]`;
      const o = obj(r, where);
      const imaSignature = o.imaSignature === undefined ? undefined : hex(o, 'imaSignature', where);
      wrapAlgo(
        () =>
          b.addDigest(path, {
            algo: str(o, 'algo', where),
            digest: hex(o, 'digest', where),
            provenance: provOf(o, where),
            ...(imaSignature ? { imaSignature } : {}),
          }),
        where,
      );
    });
  }
  arr(d, 'keys', '$').forEach((k, i) => {
    const where = `$.keys[${i}]`;
    const o = obj(k, where);
    const id = str(o, 'keyId', where);
    if (!/^[0-9a-f]{8}$/.test(id)) throw fail(`${where}.keyId`, 'expected 8 lowercase hex digits');
    const spki = b64(o, 'spki', where);
    const certificate = b64(o, 'certificate', where);
    b.addSignatureKey({
      keyring: str(o, 'keyring', where),
      keyId: parseInt(id, 16),
      ...(spki ? { spki } : {}),
      ...(certificate ? { certificate } : {}),
      provenance: provOf(o, where),
    });
  });
  arr(d, 'excludes', '$').forEach((e, i) => {
    const where = `$.excludes[${i}]`;
    const o = obj(e, where);
    const anchor = str(o, 'anchor', where);
    if (anchor !== 'full' && anchor !== 'prefix')
      throw fail(`${where}.anchor`, "expected 'full' or 'prefix'");
    try {
      b.addExclude(str(o, 'pattern', where), { anchor, provenance: provOf(o, where) });
    } catch (err) {
      if (err instanceof ImakitError && err.code === 'E_REFS_PATTERN')
        throw new ImakitError('E_REFS_PATTERN', `${where}: ${err.detail}`, { field: where });
      throw err;
    }
  });
  arr(d, 'imaBuf', '$').forEach((x, i) => {
    const where = `$.imaBuf[${i}]`;
    const o = obj(x, where);
    wrapAlgo(
      () =>
        b.addBuf(str(o, 'name', where), {
          algo: str(o, 'algo', where),
          digest: hex(o, 'digest', where),
          provenance: provOf(o, where),
        }),
      where,
    );
  });
  arr(d, 'keyrings', '$').forEach((x, i) => {
    const where = `$.keyrings[${i}]`;
    const o = obj(x, where);
    wrapAlgo(
      () =>
        b.addKeyringDigest(str(o, 'keyring', where), {
          algo: str(o, 'algo', where),
          digest: hex(o, 'digest', where),
          provenance: provOf(o, where),
        }),
      where,
    );
  });
  arr(d, 'ignoredKeyrings', '$').forEach((x, i) => {
    if (typeof x !== 'string') throw fail(`$.ignoredKeyrings[${i}]`, 'expected a string');
    b.addIgnoredKeyring(x);
  });
  arr(d, 'bootAggregates', '$').forEach((x, i) => {
    const where = `$.bootAggregates[${i}]`;
    const o = obj(x, where);
    wrapAlgo(
      () =>
        b.addBootAggregate({
          algo: str(o, 'algo', where),
          digest: hex(o, 'digest', where),
          provenance: provOf(o, where),
        }),
      where,
    );
  });
  return b.build();
}
