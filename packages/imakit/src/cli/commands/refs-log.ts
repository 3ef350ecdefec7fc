/**
 * `imakit log verify LIST --refs FILE`: evaluate every replayed entry against a reference set
 * (imakit compact/JSON, Keylime runtime policy or DSSE envelope, flat allowlist; detected) while the
 * list is replayed, then report per-entry verdicts and a summary.
 */
import type { EntryCursor } from '../../core/ima-list/binary.ts';
import type { Endian } from '../../core/bytes/bytes.ts';
import { RefsEvaluator, type EntryVerdict, type EvaluationSummary } from '../../core/refs/evaluate.ts';
import { loadReferenceSet, type RefsFileKind } from '../../host/refs/refs-file.ts';
import { loadVerifyKeyFile } from '../../host/label/label-file.ts';
import type { CliIo } from '../io.ts';
import { ImakitError } from '../../errors.ts';

export interface RefsCheck {
  /** pass as `entryHook` to verifyListFile */
  readonly hook: (endian: Endian) => (c: EntryCursor) => void;
  /** after the replay: the summary and verdicts */
  finish(): {
    summary: EvaluationSummary;
    verdicts: readonly EntryVerdict[];
    file: string;
    kind: RefsFileKind;
    /** how the set's signature was checked */
    signed: string;
  };
}

/** How the set must be signed: `refsKeys` trusted keys (then the set must verify), `refsSig` a detached signature. */
export interface RefsTrustFlags {
  readonly refsSig?: string;
  readonly refsKey?: readonly string[];
}

/**
 * Load the set (checking its signature when `trust.refsKey` is given: an unsigned or badly signed
 * set is refused, E_REFS_UNSIGNED / E_REFS_SIGNATURE) and the keys; evaluation happens in the hook.
 */
export function refsCheck(
  file: string,
  keyFiles: readonly string[],
  keepAll: boolean,
  trust: RefsTrustFlags = {},
): RefsCheck {
  if (trust.refsSig !== undefined && trust.refsKey === undefined)
    throw new ImakitError('E_USAGE', '--refs-sig needs --refs-key (the key to check it with)');
  const trustKeys = trust.refsKey?.flatMap((k) => loadVerifyKeyFile(k));
  const loaded = loadReferenceSet(file, {
    fullCheck: false,
    ...(trustKeys ? { keys: trustKeys } : {}),
    ...(trust.refsSig !== undefined ? { sig: trust.refsSig } : {}),
  });
  const keys = keyFiles.flatMap((k) => loadVerifyKeyFile(k));
  let ev: RefsEvaluator | undefined;
  return {
    hook: (endian) => {
      ev = new RefsEvaluator(loaded.set, { endian, keys, keepAll });
      const e = ev;
      return (c) => e.feedCursor(c);
    },
    finish: () => {
      const e = ev ?? new RefsEvaluator(loaded.set, { keys, keepAll });
      return {
        summary: e.summary(),
        verdicts: e.verdicts,
        file,
        kind: loaded.kind,
        signed: loaded.signature
          ? loaded.signature.form === 'detached'
            ? `detached signature ${loaded.signature.sigFile}, key ${loaded.signature.verdict.keyid}`
            : `DSSE: ${loaded.signature.verdict.detail}`
          : 'not checked (no --refs-key)',
      };
    },
  };
}

/** Text rendering: the summary, then up to `limit` refused entries. */
export function renderRefs(io: CliIo, r: ReturnType<RefsCheck['finish']>, limit = 20): void {
  const out = (s: string): void => io.stdout(s + '\n');
  const s = r.summary;
  out(
    `${s.refused === 0 ? 'PASS' : 'FAIL'}  ${s.entries} entries against ${r.file} (${r.kind}): ${s.allowed} allowed, ${s.refused} refused`,
  );
  const counts = Object.entries(s.byReason)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  if (counts) out(`  ${counts}`);
  out(`  reference set signature: ${r.signed}`);
  const refused = r.verdicts.filter((v) => v.status === 'refused');
  for (const v of refused.slice(0, limit))
    out(
      `  entry ${v.index} [${v.reason}] ${v.path}${v.keyId ? ` key ${v.keyId}` : ''}${v.detail ? `: ${v.detail}` : ''}`,
    );
  if (refused.length > limit) out(`  ... ${refused.length - limit} more refused (--json lists all)`);
}
