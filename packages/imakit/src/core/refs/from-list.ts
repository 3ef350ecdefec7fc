/**
 * Learn references from a measurement list of a machine known to be good (issue 12 part 3): every
 * measured file's digest for its path, `ima-buf` digests (keys measured onto a keyring go to
 * `keyrings`, other buffers to `ima-buf`), and the boot_aggregate, which may also be given from an
 * event log's or the TPM's boot PCRs (Keylime users had to fetch a live list just for it).
 *
 * Violations are skipped and counted: their digest does not describe the file. Entries whose
 * template cannot be interpreted are skipped and counted too. Pure: the caller parses the list.
 */
import type { Endian } from '../bytes/bytes.ts';
import type { UntrustedEntry } from '../ima-list/binary.ts';
import { decodeTemplateFields, type DecodedField } from '../ima-list/fields.ts';
import { lookupTemplate } from '../ima-list/templates.ts';
import type { BootAggregateValue } from '../tcg/boot-aggregate.ts';
import { ReferenceSetBuilder, type Provenance, type ReferenceSet } from './reference-set.ts';

export interface FromListOptions {
  readonly endian?: Endian;
  /** recorded as the provenance of every reference */
  readonly provenance?: Provenance;
  /** boot_aggregate values computed elsewhere (event log, PCRs): added besides the list's own */
  readonly bootAggregates?: readonly BootAggregateValue[];
  /** keep only these file hash algorithms' digests (default: all) */
  readonly algo?: string;
}

export interface FromListResult {
  readonly set: ReferenceSet;
  readonly files: number;
  readonly violations: number;
  readonly notInterpreted: number;
  readonly otherAlgo: number;
}

const isKeyring = (name: string): boolean => name.startsWith('.') || name.startsWith('_');

/** Learn a reference set from parsed entries. */
export function referencesFromEntries(
  entries: Iterable<UntrustedEntry>,
  o: FromListOptions = {},
): FromListResult {
  const prov = o.provenance ?? { kind: 'list' as const };
  const b = new ReferenceSetBuilder({ meta: { generator: 'imakit refs from-list' } });
  const algos = new Set<string>();
  let files = 0;
  let violations = 0;
  let notInterpreted = 0;
  let otherAlgo = 0;
  for (const e of entries) {
    if (e.digest.every((x) => x === 0)) {
      violations++;
      continue;
    }
    const tpl = lookupTemplate(e.templateName);
    let fs: DecodedField[];
    try {
      if (!tpl) throw new Error('unknown template');
      fs = decodeTemplateFields(tpl, e.templateData, o.endian ?? 'le', e.offset);
    } catch {
      notInterpreted++;
      continue;
    }
    let algo = '';
    let digest: Uint8Array | undefined;
    let name: string | undefined;
    let verity = false;
    for (const f of fs) {
      if (f.id === 'd') {
        algo = 'sha1';
        digest = f.digest;
      } else if (f.id === 'd-ng' || f.id === 'd-ngv2') {
        algo = f.algo;
        digest = f.digest;
        verity = f.id === 'd-ngv2' && f.digestType !== 'ima';
      } else if (f.id === 'n') name = f.name;
      else if (f.id === 'n-ng') name = f.text;
    }
    if (digest === undefined || name === undefined || verity) {
      notInterpreted++;
      continue;
    }
    const buf = fs.find((f) => f.id === 'buf');
    if (name === 'boot_aggregate') {
      b.addBootAggregate({ algo, digest, provenance: prov });
      continue;
    }
    if (buf) {
      if (isKeyring(name)) b.addKeyringDigest(name, { algo, digest, provenance: prov });
      else b.addBuf(name, { algo, digest, provenance: prov });
      continue;
    }
    if (o.algo !== undefined && algo !== o.algo) {
      otherAlgo++;
      continue;
    }
    b.addDigest(name, { algo, digest, provenance: prov });
    algos.add(algo);
    files++;
  }
  for (const v of o.bootAggregates ?? [])
    b.addBootAggregate({
      algo: v.bank,
      digest: v.digest,
      provenance: { ...prov, source: `boot PCRs (${v.variant})` },
    });
  if (algos.size === 1) b.setHashAlgo([...algos][0]);
  return { set: b.build(), files, violations, notInterpreted, otherAlgo };
}
