/**
 * Reference sets as the service holds them: uploaded bytes are detected (imakit's compact binary
 * form, imakit JSON, a Keylime runtime policy or a DSSE envelope around one, a Keylime flat
 * allowlist — the forms `imakit log verify --refs` reads), parsed, and stored under the SHA-256 of
 * the bytes. Parsed sets are cached per app instance by that content hash, so a set shared by a
 * thousand agents is parsed once; the cache is bounded and lives in the app, not the module.
 *
 * Does NOT establish: that the set is genuine. A DSSE envelope's signature is not checked here
 * (no keys are configured for it yet); the upload's answer says so.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  decodeRefsBinary,
  decodeRefsJson,
  detectRefsKind,
  readFlatAllowlist,
  readKeylimePolicy,
  type ReferenceSet,
  type RefsFileKind,
} from 'imakit/core';
import type { Database } from './db/schema.ts';
import { VerifierError } from './errors.ts';

/** The forms an upload may take (detected by core's detectRefsKind). */
export type RefsKind = RefsFileKind;
export { detectRefsKind };

/**
 * Parse uploaded bytes.
 * @throws ImakitError E_REFS_FORMAT / E_CODEC_* (the error handler answers 400 naming the field)
 */
export function parseReferenceSet(bytes: Uint8Array, source: string): { kind: RefsKind; set: ReferenceSet } {
  const kind = detectRefsKind(bytes);
  const text = (): string => Buffer.from(bytes).toString('utf8');
  switch (kind) {
    case 'imakit':
      return { kind, set: decodeRefsBinary(bytes) };
    case 'json':
      return { kind, set: decodeRefsJson(text()) };
    case 'keylime':
    case 'keylime-dsse':
      return { kind, set: readKeylimePolicy(text(), { provenance: { kind: 'keylime', source } }) };
    case 'flat-allowlist':
      return { kind, set: readFlatAllowlist(text(), { provenance: { kind: 'keylime', source } }) };
  }
}

export const refsId = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Parsed sets by content hash, most recently used last; at most `max` kept. */
export class ReferenceSetCache {
  readonly #max: number;
  readonly #sets = new Map<string, ReferenceSet>();
  constructor(max = 32) {
    this.#max = max;
  }
  remember(id: string, set: ReferenceSet): void {
    this.#sets.delete(id);
    this.#sets.set(id, set);
    while (this.#sets.size > this.#max) this.#sets.delete(this.#sets.keys().next().value!);
  }
  /** The set with this id, parsed once per process (loaded from `db` when not cached). */
  async get(db: Kysely<Database>, id: string): Promise<ReferenceSet> {
    const hit = this.#sets.get(id);
    if (hit !== undefined) {
      this.remember(id, hit);
      return hit;
    }
    const row = await db.selectFrom('reference_sets').select('body').where('id', '=', id).executeTakeFirst();
    if (row === undefined)
      throw new VerifierError('V_NOT_FOUND', `no reference set '${id}'`, { referenceSet: id });
    const { set } = parseReferenceSet(row.body, `reference set ${id}`);
    this.remember(id, set);
    return set;
  }
}
