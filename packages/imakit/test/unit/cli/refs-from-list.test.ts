/**
 * Learn, then evaluate, on real kernel lists (test/fixtures/kernel/*, Debian 6.1 under QEMU): a set
 * learned by `refs from-list` from a list must allow that same list under `log verify --refs`
 * (violations aside: they never describe a file), whatever mix of file hash algorithms (sha1 files
 * with a sha1 `security.ima` in a sha256 list) and signatures (keys the set does not name, evmctl
 * v1 values) the kernel measured. Then one learned digest is changed and exactly the entries it
 * allowed are refused, for each kind of entry the list holds; `refs impact` refuses the same
 * entries and `refs diff` names that one path as changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { FIXTURES_DIR, tempDir } from '../../helpers.ts';

interface Verdict {
  index: number;
  status: string;
  reason: string;
  path: string;
  algo?: string;
  digest?: string;
  keyId?: string;
  detail?: string;
}

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

const KERNEL = join(FIXTURES_DIR, 'kernel');
const scenarios = readdirSync(KERNEL).filter(
  (n) =>
    existsSync(join(KERNEL, n, 'binary_runtime_measurements')) &&
    existsSync(join(KERNEL, n, 'pcrs-sha256.txt')),
);

test('the kernel fixtures are found', () => {
  assert.ok(scenarios.length >= 10, scenarios.join(', '));
  assert.ok(scenarios.includes('appraise-enforce'));
});

async function verify(dir: string, n: string, refs: string) {
  const list = join(KERNEL, n, 'binary_runtime_measurements');
  const pcrs = `sha256,${join(KERNEL, n, 'pcrs-sha256.txt')}`;
  const r = await cli('log', 'verify', list, '--refs', refs, '--pcrs', pcrs, '--json');
  const j = JSON.parse(r.out) as { refs: { verdicts: Verdict[]; summary: { refused: number } } };
  return { status: r.status, verdicts: j.refs.verdicts, summary: j.refs.summary, dir };
}

/** One entry of each kind the list holds, to change its learned digest. */
function targets(verdicts: readonly Verdict[]): { kind: string; v: Verdict }[] {
  const byDigest = verdicts.filter((v) => v.reason === 'allowed-digest');
  const algos = new Map<string, number>();
  for (const v of byDigest) algos.set(v.algo!, (algos.get(v.algo!) ?? 0) + 1);
  const major = [...algos].sort((a, b) => b[1] - a[1])[0]?.[0];
  const kinds: [string, (v: Verdict) => boolean][] = [
    ['another algorithm', (v) => v.algo !== major],
    ['v1 signature', (v) => v.detail?.startsWith('signature not interpreted') === true],
    ['unknown key', (v) => v.detail?.startsWith('signature not checked: unknown key') === true],
    ['plain', (v) => v.detail === undefined],
  ];
  const out: { kind: string; v: Verdict }[] = [];
  for (const [kind, f] of kinds) {
    const v = byDigest.findLast(f);
    if (v) out.push({ kind, v });
  }
  return out;
}

for (const n of scenarios)
  test(`${n}: refs from-list then log verify --refs passes; one changed digest refuses its entries`, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const list = join(KERNEL, n, 'binary_runtime_measurements');
      const imr = join(dir, 'learned.imr');
      const learn = await cli('refs', 'from-list', list, '--out', imr, '--json');
      assert.equal(learn.status, 0, learn.err);
      const learned = JSON.parse(learn.out) as { violationsSkipped: number; otherAlgorithm: number };
      assert.equal(learned.otherAlgorithm, 0, 'every algorithm is learned by default');

      const ok = await verify(dir, n, imr);
      const refused = ok.verdicts.filter((v) => v.status === 'refused');
      // violations are refused by design (the measurement does not describe the file): nothing else
      assert.deepEqual(
        refused.filter((v) => v.reason !== 'violation'),
        [],
        `${n}: ${JSON.stringify(refused)}`,
      );
      assert.equal(refused.length, learned.violationsSkipped);
      assert.equal(ok.status, learned.violationsSkipped === 0 ? 0 : 1);
      const impact = await cli('refs', 'impact', list, '--refs', imr, '--json');
      const m = JSON.parse(impact.out) as { machines: { status: string; refused: Verdict[] }[] };
      assert.equal(m.machines[0]!.status, learned.violationsSkipped === 0 ? 'pass' : 'fail');
      assert.deepEqual(
        m.machines[0]!.refused.map((x) => x.index),
        refused.map((x) => x.index),
      );

      // the same set as JSON, with one digest changed
      const json = join(dir, 'learned.json');
      assert.equal((await cli('refs', 'from-list', list, '--out', json, '--format', 'json')).status, 0);
      const doc = JSON.parse(readFileSync(json, 'utf8')) as {
        digests: Record<string, { algo: string; digest: string }[]>;
      };
      const picked = targets(ok.verdicts);
      // every list but a boot_aggregate-only one has a file to change
      assert.equal(
        picked.length > 0,
        ok.verdicts.some((x) => x.reason === 'allowed-digest'),
      );
      for (const { kind, v } of picked) {
        const changed = structuredClone(doc);
        const ref = changed.digests[v.path]!.find((r) => r.algo === v.algo && r.digest === v.digest)!;
        assert.ok(ref, `${v.path} ${v.algo}:${v.digest} learned`);
        ref.digest = (ref.digest[0] === '0' ? '1' : '0') + ref.digest.slice(1);
        const file = join(dir, 'changed.json');
        writeFileSync(file, JSON.stringify(changed));
        const bad = await verify(dir, n, file);
        assert.equal(bad.status, 1, `${n} ${kind}`);
        const now = bad.verdicts.filter((x) => x.status === 'refused' && x.reason !== 'violation');
        const impact = await cli('refs', 'impact', list, '--refs', file, '--json');
        const machines = JSON.parse(impact.out) as { machines: { status: string; refused: Verdict[] }[] };
        assert.equal(machines.machines[0]!.status, 'fail');
        assert.deepEqual(
          machines.machines[0]!.refused.map((x) => `${x.index}:${x.reason}`),
          bad.verdicts.filter((x) => x.status === 'refused').map((x) => `${x.index}:${x.reason}`),
        );
        const diff = JSON.parse((await cli('refs', 'diff', json, file, '--json')).out) as {
          changed: number;
          added: number;
          removed: number;
          packages: { changed: { path: string }[] }[];
        };
        assert.deepEqual([diff.changed, diff.added, diff.removed], [1, 0, 0]);
        assert.deepEqual(
          diff.packages.flatMap((p) => p.changed.map((c) => c.path)),
          [v.path],
        );
        // exactly the entries the changed digest allowed
        const expected = ok.verdicts
          .filter((x) => x.reason === 'allowed-digest' && x.path === v.path && x.digest === v.digest)
          .map((x) => x.index);
        assert.deepEqual(
          now.map((x) => x.index),
          expected,
          `${n} ${kind}`,
        );
        for (const x of now) {
          assert.equal(x.path, v.path);
          if (v.detail?.startsWith('signature not checked: unknown key')) {
            // the digest no longer allows it and the set names no key: the signature names the refusal
            assert.equal(x.reason, 'unknown-key', `${n} ${kind}`);
            assert.equal(x.keyId, v.keyId);
          } else {
            assert.equal(x.reason, 'digest-not-allowed', `${n} ${kind}`);
            assert.ok(x.detail?.startsWith(`allowed: ${v.algo}:`), x.detail);
            if (v.detail !== undefined) assert.ok(x.detail!.endsWith(`; ${v.detail}`), x.detail);
          }
        }
      }
    } finally {
      cleanup();
    }
  });
