/**
 * Keylime runtime-policy validation for tests: Keylime's own JSON schemas (vendored in
 * test/vectors/keylime with their origin) checked with a small validator for the keywords those
 * schemas use. Shared by the refs tests and the package generators' CLI tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vectorPath } from '../../../helpers.ts';

const KL = (name: string): string => readFileSync(join(vectorPath('keylime'), name), 'utf8');

export type Schema = Record<string, unknown>;

/** The JSON-schema keywords Keylime's two schemas use; returns the first violation's path, or null. */
export function validate(v: unknown, s: Schema, root: Schema, path = '$'): string | null {
  if (typeof s.$ref === 'string') {
    const name = s.$ref.replace('#/definitions/', '');
    return validate(v, (root.definitions as Record<string, Schema>)[name]!, root, path);
  }
  const t = s.type;
  const typeOk =
    t === undefined ||
    (t === 'object' && typeof v === 'object' && v !== null && !Array.isArray(v)) ||
    (t === 'array' && Array.isArray(v)) ||
    (t === 'string' && typeof v === 'string') ||
    (t === 'integer' && Number.isInteger(v)) ||
    (t === 'null' && v === null);
  if (!typeOk) return `${path}: not ${String(t)}`;
  if (s.enum && !(s.enum as unknown[]).includes(v)) return `${path}: not in enum`;
  if (typeof s.minimum === 'number' && (v as number) < s.minimum) return `${path}: below minimum`;
  if (typeof s.maximum === 'number' && (v as number) > s.maximum) return `${path}: above maximum`;
  if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v as string)) return `${path}: pattern`;
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `${path}: minItems`;
    if (s.items)
      for (let i = 0; i < v.length; i++) {
        const r = validate(v[i], s.items as Schema, root, `${path}[${i}]`);
        if (r) return r;
      }
  } else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const k of (s.required as string[] | undefined) ?? [])
      if (!(k in o)) return `${path}.${k}: required`;
    for (const [k, sub] of Object.entries((s.properties as Record<string, Schema> | undefined) ?? {}))
      if (k in o) {
        const r = validate(o[k], sub, root, `${path}.${k}`);
        if (r) return r;
      }
    for (const [pat, sub] of Object.entries(
      (s.patternProperties as Record<string, Schema> | undefined) ?? {},
    ))
      for (const k of Object.keys(o))
        if (new RegExp(pat).test(k)) {
          const r = validate(o[k], sub, root, `${path}[${JSON.stringify(k)}]`);
          if (r) return r;
        }
  }
  return null;
}

const SCHEMA = JSON.parse(KL('runtime-policy.schema.json')) as Schema;
const KEYRING_SCHEMA = JSON.parse(KL('ima-keyring.schema.json')) as Schema;

/** The first schema violation of a Keylime runtime policy (and its verification-keys), or null. */
export function keylimeValid(text: string): string | null {
  const doc = JSON.parse(text) as Record<string, unknown>;
  const r = validate(doc, SCHEMA, SCHEMA);
  if (r) return r;
  const vk = doc['verification-keys'] as string;
  return vk ? validate(JSON.parse(vk), KEYRING_SCHEMA, KEYRING_SCHEMA, '$.verification-keys') : null;
}
