/**
 * imakit's verdicts against Keylime 7.14's own on the same lists and runtime policies (issue 12):
 * test/vectors/keylime/verdicts/ holds a tiny corpus and the verdicts Keylime's
 * `process_measurement_list` gave on it (ORIGIN.md: how they were recorded; Keylime is not needed
 * here). Where Keylime is right (`agree`), `imakit log verify --refs` gives the same verdict and
 * refuses as many entries as Keylime reported failures. Where Keylime is lax (`keylime-lax`), each
 * documented difference is asserted on both sides: the recorded Keylime verdict, and imakit's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import { VECTORS_DIR } from '../../../helpers.ts';
import { parseAsciiList, asciiToEntries } from '../../../../src/core/ima-list/ascii.ts';
import { evaluateEntries } from '../../../../src/core/refs/evaluate.ts';
import { ReferenceSetBuilder } from '../../../../src/core/refs/reference-set.ts';

const DIR = join(VECTORS_DIR, 'keylime', 'verdicts');

interface KeylimeCase {
  readonly name: string;
  readonly label: 'agree' | 'keylime-lax';
  readonly what: string;
  readonly command: string;
  readonly exit: number;
  readonly verdict: 'pass' | 'fail';
  readonly pcr_match: boolean;
  readonly failure_types: readonly string[];
  readonly failures: readonly { readonly type: string; readonly message: string }[];
}
interface CaseIndex {
  readonly name: string;
  readonly keys: readonly string[];
}

const recorded = JSON.parse(readFileSync(join(DIR, 'keylime-verdicts.json'), 'utf8')) as {
  keylime: { version: string; commit: string };
  cases: KeylimeCase[];
};
const index = new Map(
  (JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as CaseIndex[]).map((c) => [c.name, c]),
);

interface EntryJson {
  readonly index: number;
  readonly status: 'allowed' | 'refused';
  readonly reason: string;
  readonly path: string;
  readonly exclude?: string;
  readonly excludeAnchor?: string;
}
interface ImakitRun {
  readonly status: number;
  readonly verdict: 'pass' | 'fail' | 'error';
  readonly replay?: string;
  readonly entries: readonly EntryJson[];
  readonly error?: { readonly code: string; readonly field?: string; readonly path?: string };
}

/** `imakit log verify LIST --refs POLICY --pcrs-json PCRS [--key K]… --json`, in-process. */
async function imakit(name: string): Promise<ImakitRun> {
  const keys = index.get(name)?.keys ?? [];
  const io = memoryIo();
  const status = await main(
    [
      'log',
      'verify',
      join(DIR, `${name}.ascii`),
      '--refs',
      join(DIR, `${name}.policy.json`),
      '--pcrs-json',
      join(DIR, `${name}.pcrs.json`),
      ...keys.flatMap((k) => ['--key', join(DIR, k)]),
      '--json',
    ],
    io,
  );
  if (status === 2) {
    const o = JSON.parse(io.out() || io.err()) as { error: ImakitRun['error'] };
    return { status, verdict: 'error', entries: [], ...(o.error ? { error: o.error } : {}) };
  }
  const o = JSON.parse(io.out()) as { status: string; refs: { verdicts: EntryJson[] } };
  return { status, verdict: status === 0 ? 'pass' : 'fail', replay: o.status, entries: o.refs.verdicts };
}

const byName = (name: string): KeylimeCase => {
  const c = recorded.cases.find((x) => x.name === name);
  assert.ok(c, `case ${name} recorded`);
  return c;
};

test('the corpus: Keylime 7.14.3 verdicts, both labels, every case indexed', () => {
  assert.equal(recorded.keylime.version, '7.14.3');
  assert.match(recorded.keylime.commit, /^9b1f6e6a/);
  const agree = recorded.cases.filter((c) => c.label === 'agree');
  assert.ok(agree.filter((c) => c.verdict === 'pass').length >= 2, 'several allowed cases');
  assert.ok(agree.filter((c) => c.verdict === 'fail').length >= 2, 'several refused cases');
  for (const c of recorded.cases) {
    assert.ok(index.has(c.name), c.name);
    assert.equal(c.exit, c.verdict === 'pass' ? 0 : 1, c.name);
    // every list replays to its PCR in Keylime too: the verdicts are about the policy, not the replay
    assert.equal(c.pcr_match, true, c.name);
  }
});

for (const c of recorded.cases.filter((x) => x.label === 'agree'))
  test(`agree with Keylime: ${c.name} (${c.what}) is ${c.verdict}`, async () => {
    const r = await imakit(c.name);
    assert.equal(r.replay, 'pass', `${c.name}: the list replays to its PCR`);
    assert.equal(r.verdict, c.verdict, `${c.name}: Keylime ${c.verdict}, imakit ${r.verdict}`);
    const refused = r.entries.filter((e) => e.status === 'refused');
    // Keylime reports one failure event per failing entry
    assert.equal(refused.length, c.failures.length, JSON.stringify({ refused, keylime: c.failures }));
    for (const f of c.failures) {
      // 'File not found in allowlist: PATH' names the path imakit refuses as unknown
      const m = /not found in allowlist: (.*)$/.exec(f.message);
      if (m)
        assert.ok(
          refused.some((e) => e.path === m[1] && e.reason === 'unknown-path'),
          m[1],
        );
      if (f.type.endsWith('runtime_policy_hash'))
        assert.ok(refused.some((e) => e.reason === 'digest-not-allowed'));
    }
  });

/** The documented differences, each with the reason Keylime's verdict cannot be trusted. */
const LAX: readonly {
  readonly name: string;
  readonly keylime: 'pass' | 'fail';
  readonly reason: string;
  readonly check: (r: ImakitRun, k: KeylimeCase) => void;
}[] = [
  {
    name: 'violation',
    keylime: 'pass',
    reason:
      'keylime-lax: ignore_tomtou_errors=False (the default) passes violation entries, whose path and digest are never checked',
    check: (r) => {
      assert.equal(r.status, 1);
      assert.equal(r.replay, 'pass');
      assert.deepEqual(
        r.entries.filter((e) => e.status === 'refused').map((e) => `${e.index}:${e.reason}`),
        ['1:violation'],
      );
    },
  },
  {
    name: 'invalid-exclude',
    keylime: 'fail',
    reason:
      'keylime-lax: one invalid exclude silently drops every exclude; Keylime fails the excluded file as "not in allowlist" and never mentions the pattern',
    check: (r, k) => {
      assert.deepEqual(k.failure_types, ['ima.validation.ima-ng.not_in_allowlist']);
      assert.match(k.failures[0]!.message, /\/var\/tmp\/build\/x$/);
      assert.equal(r.status, 2);
      assert.equal(r.error?.code, 'E_REFS_PATTERN');
      assert.equal(r.error?.field, '$.excludes[1]');
      assert.match(r.error?.path ?? '', /invalid-exclude\.policy\.json$/);
    },
  },
  {
    name: 'prefix-exclude',
    keylime: 'pass',
    reason:
      "keylime-lax: Keylime's excludes match only the start of a path ('/tmp' excludes /tmpfoo/x); imakit keeps that for an imported Keylime policy and names the anchoring in the verdict, its own excludes full-match",
    check: (r) => {
      assert.equal(r.status, 0);
      const v = r.entries.find((e) => e.path === '/tmpfoo/x');
      assert.equal(v?.reason, 'allowed-exclude');
      assert.equal(v?.exclude, '/tmp');
      assert.equal(v?.excludeAnchor, 'prefix');
      // the same pattern as an imakit (full-match) exclude does not cover the path
      const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
      b.addExclude('/tmp', { provenance: { kind: 'manual' } });
      const entries = asciiToEntries(parseAsciiList(readFileSync(join(DIR, 'prefix-exclude.ascii'), 'utf8')));
      const ev = evaluateEntries(entries.slice(1), b.build(), { keepAll: true });
      assert.deepEqual(
        ev.verdicts.map((x) => x.reason),
        ['unknown-path'],
      );
    },
  },
  {
    name: 'bad-signature-known-key',
    keylime: 'pass',
    reason:
      'keylime-lax: a signature by a known key that does not verify falls back to the digest list; imakit refuses it',
    check: (r) => {
      assert.equal(r.status, 1);
      assert.deepEqual(
        r.entries.filter((e) => e.status === 'refused').map((e) => `${e.index}:${e.reason}`),
        ['1:bad-signature'],
      );
    },
  },
];

for (const l of LAX)
  test(`differs from Keylime (${l.name}): ${l.reason}`, async () => {
    const k = byName(l.name);
    assert.equal(k.label, 'keylime-lax');
    assert.equal(k.verdict, l.keylime, `Keylime's recorded verdict for ${l.name}`);
    l.check(await imakit(l.name), k);
  });

test('every keylime-lax case has its documented difference', () => {
  assert.deepEqual(
    recorded.cases
      .filter((c) => c.label === 'keylime-lax')
      .map((c) => c.name)
      .sort(),
    LAX.map((l) => l.name).sort(),
  );
});
