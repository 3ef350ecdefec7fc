/**
 * What the dashboard keeps of each attestation beyond the verdict: the PCR values the agent sent
 * with the selection its verified quote covered (so a page can show every value and mark which
 * are established), the event log, and the IMA list prefix that verified quotes covered.
 *
 * The list is stored in chunks, one per attestation whose ima step passed: the bytes from where
 * the step started (`from`) to what the quote covered (`covered`). A chunk at or after `from` is
 * replaced (the refs step refused it and the agent sent it again); a chunk from byte 0 starts a new
 * boot's list. Entries the quote did not cover are never stored, so nothing unestablished is shown
 * as part of the agent's list. The attestation path only deletes and inserts (no counting); a list
 * read with more than MAX_CHUNKS chunks is merged into one then.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import {
  DEFAULT_FORMAT,
  detectListFormat,
  newCursor,
  scanEntry,
  toHex,
  type EntryCursor,
  type ListFormat,
} from 'imakit/core';
import type { Database } from '../db/schema.ts';
import type { Evidence, ImaOffset, Verdict } from '../pipeline/types.ts';

const MAX_CHUNKS = 256;

type Db = Kysely<Database> | Transaction<Database>;

const isOffset = (x: unknown): x is ImaOffset =>
  typeof x === 'object' &&
  x !== null &&
  Number.isSafeInteger((x as ImaOffset).entries) &&
  Number.isSafeInteger((x as ImaOffset).bytes);

/** Store the evidence snapshot of one attestation (inside the verdict's transaction). */
export async function recordEvidence(tx: Db, agentId: string, ev: Evidence, v: Verdict): Promise<void> {
  const quote = v.steps.find((s) => s.step === 'quote');
  const quoted = quote?.status === 'pass' && typeof quote.quoted === 'string' ? quote.quoted : null;
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, m] of ev.pcrs) {
    const o: Record<string, string> = (pcrs[bank] = {});
    for (const [i, d] of m) o[String(i)] = toHex(d);
  }
  const row = {
    at: new Date(v.at),
    pcrs: JSON.stringify(pcrs),
    quoted,
    event_log: ev.eventLog ?? null,
  };
  await tx
    .insertInto('agent_evidence')
    .values({ agent_id: agentId, ...row })
    .onConflict((oc) => oc.column('agent_id').doUpdateSet(row))
    .execute();

  const ima = v.steps.find((s) => s.step === 'ima');
  if (ima?.status !== 'pass' || ev.ima === undefined || !isOffset(ima.from) || !isOffset(ima.covered)) return;
  const { from, covered } = ima;
  const start = from.bytes - ev.ima.offsetBytes;
  const end = covered.bytes - ev.ima.offsetBytes;
  if (start < 0 || end > ev.ima.bytes.length || end < start) return;
  // what was stored from `from` on is replaced; a list from byte 0 is a new boot's
  await tx
    .deleteFrom('ima_chunks')
    .where('agent_id', '=', agentId)
    .where('start_offset', '>=', from.bytes)
    .execute();
  if (end === start) return;
  // as base64 text: PGlite encodes a bytea parameter far more slowly (this is the attestation path)
  await tx
    .insertInto('ima_chunks')
    .values({
      agent_id: agentId,
      start_offset: from.bytes,
      start_entry: from.entries,
      entries: covered.entries - from.entries,
      bytes: sql<Uint8Array>`decode(${Buffer.from(ev.ima.bytes.buffer, ev.ima.bytes.byteOffset + start, end - start).toString('base64')}, 'base64')`,
    })
    .execute();
}

/** Many chunks of one list become one (when the list is read: never on the attestation path). */
async function mergeChunks(
  db: Kysely<Database>,
  agentId: string,
  list: StoredList,
  through: number,
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    // only what was read: a chunk an attestation added meanwhile stays
    await tx
      .deleteFrom('ima_chunks')
      .where('agent_id', '=', agentId)
      .where('start_offset', '<=', through)
      .execute();
    await tx
      .insertInto('ima_chunks')
      .values({
        agent_id: agentId,
        start_offset: list.firstOffset,
        start_entry: list.firstEntry,
        entries: list.entries,
        bytes: sql<Uint8Array>`decode(${Buffer.from(list.bytes).toString('base64')}, 'base64')`,
      })
      .execute();
  });
}

/** An agent's stored list: the contiguous covered prefix, from its first stored entry. */
export interface StoredList {
  readonly bytes: Uint8Array;
  readonly firstEntry: number;
  readonly firstOffset: number;
  readonly entries: number;
  readonly format: ListFormat;
}

/** The stored list of `agentId`, or undefined when none was stored. */
export async function readStoredList(db: Db, agentId: string): Promise<StoredList | undefined> {
  // as base64 text: PGlite's bytea decoding takes seconds for a 10 MiB list, base64 a tenth of that
  const rows = (
    await db
      .selectFrom('ima_chunks')
      .select(['start_offset', 'start_entry', 'entries', sql<string>`encode(bytes, 'base64')`.as('b64')])
      .where('agent_id', '=', agentId)
      .orderBy('start_offset')
      .execute()
  ).map((r) => ({ ...r, bytes: Buffer.from(r.b64, 'base64') }));
  if (rows.length === 0) return undefined;
  const first = rows[0]!;
  const parts: Uint8Array[] = [];
  let at = Number(first.start_offset);
  let entries = 0;
  for (const r of rows) {
    // a gap (chunks of an earlier verifier version, or a lost one) ends what can be shown
    if (Number(r.start_offset) !== at) break;
    parts.push(r.bytes);
    at += r.bytes.length;
    entries += r.entries;
  }
  const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const firstOffset = Number(first.start_offset);
  let format = DEFAULT_FORMAT;
  if (firstOffset === 0) {
    try {
      format = detectListFormat(bytes.subarray(0, 65536)).format;
    } catch {
      format = DEFAULT_FORMAT;
    }
  }
  const list = { bytes, firstEntry: first.start_entry, firstOffset, entries, format };
  if (rows.length > MAX_CHUNKS && parts.length === rows.length && !db.isTransaction)
    await mergeChunks(db, agentId, list, Number(rows[rows.length - 1]!.start_offset));
  return list;
}

/** Every entry of a stored list, as cursors (the cursor is reused: copy what you keep). */
export function* storedEntries(list: StoredList): Generator<EntryCursor> {
  const c = newCursor();
  let pos = 0;
  let index = list.firstEntry;
  while (pos < list.bytes.length) {
    const next = scanEntry(list.bytes, pos, list.bytes.length, list.format, index, list.firstOffset, c);
    if (next < 0) return;
    yield c;
    pos = next;
    index++;
  }
}

/** A digest of an agent's stored chunks (changes whenever the stored list does), or undefined. */
export async function storedListDigest(db: Db, agentId: string): Promise<string | undefined> {
  const r = await db
    .selectFrom('ima_chunks')
    .select(
      sql<string | null>`md5(string_agg(md5(bytes) || start_offset::text, ',' order by start_offset))`.as(
        'd',
      ),
    )
    .where('agent_id', '=', agentId)
    .executeTakeFirst();
  return r?.d ?? undefined;
}
