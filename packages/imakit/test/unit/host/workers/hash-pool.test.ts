/**
 * The worker pool: same digests as the single-threaded reader for many files, errors rebuilt as
 * ImakitError with code and path, and workers that start both under `node --import tsx` (this
 * test) and under bin/imakit.js's in-process tsx registration (a child process from another cwd).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HashPool } from '../../../../src/host/workers/hash-pool.ts';
import { hashFileSync } from '../../../../src/host/fs/file-hash.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { REPO_ROOT, run, tempDir } from '../../../helpers.ts';

test('200 files: pool results equal single-thread results (sha256, sha1, fs-verity)', async () => {
  const { dir, cleanup } = tempDir();
  const pool = HashPool.create({ workers: 2 });
  try {
    assert.equal(pool.size, 2);
    const paths: string[] = [];
    for (let i = 0; i < 200; i++) {
      const p = join(dir, `f${i}`);
      writeFileSync(p, randomBytes(i % 50 === 0 ? randomInt(1 << 20, 3 << 20) : randomInt(0, 60_000)));
      paths.push(p);
    }
    const results = await Promise.all(
      paths.map((p) => pool.hash(p, ['sha256', 'sha1'], { verity: 'sha256' })),
    );
    const buffer = Buffer.allocUnsafe(1 << 20);
    results.forEach((r, i) => {
      const ref = hashFileSync(paths[i]!, ['sha256', 'sha1'], { verity: 'sha256', buffer });
      assert.equal(r.path, paths[i]);
      assert.equal(r.size, ref.size);
      assert.equal(toHex(r.digests.get('sha256')!), toHex(ref.digests.get('sha256')!));
      assert.equal(toHex(r.digests.get('sha1')!), toHex(ref.digests.get('sha1')!));
      assert.equal(toHex(r.verity!), toHex(ref.verity!));
    });
    // sequential awaits work too (no batching), and algorithms by id
    const one = await pool.hash(paths[1]!, [17]);
    assert.equal(toHex(one.digests.get('sm3')!), toHex(hashFileSync(paths[1]!, ['sm3']).digests.get('sm3')!));
  } finally {
    await pool.close();
    cleanup();
  }
});

test('errors come back as ImakitError with code and path; other files in the batch still succeed', async () => {
  const { dir, cleanup } = tempDir();
  const pool = HashPool.create({ workers: 1 });
  try {
    const ok = join(dir, 'ok');
    writeFileSync(ok, 'data');
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const missing = join(dir, 'missing');
    const settled = await Promise.allSettled([
      pool.hash(ok, ['sha256']),
      pool.hash(sub, ['sha256']),
      pool.hash(missing, ['sha256']),
    ]);
    assert.equal(settled[0].status, 'fulfilled');
    const [, a, b] = settled;
    assert.ok(
      a.status === 'rejected' && isImakitError(a.reason, 'E_IO_NOT_REGULAR') && a.reason.context.path === sub,
    );
    assert.ok(
      b.status === 'rejected' && isImakitError(b.reason, 'E_IO_READ') && b.reason.context.path === missing,
    );
    assert.ok(b.status === 'rejected' && (b.reason as Error).message.startsWith(missing)); // not prefixed twice
    await assert.rejects(pool.hash(ok, ['nope']), (e) => isImakitError(e, 'E_HASH_UNKNOWN'));
  } finally {
    await pool.close();
    cleanup();
  }
  await assert.rejects(pool.hash('/x', ['sha256']));
});

test('workers start under an in-process tsx registration like bin/imakit.js, from another cwd', () => {
  const { dir, cleanup } = tempDir();
  try {
    const script = join(dir, 'pool.mjs');
    const poolUrl = pathToFileURL(join(REPO_ROOT, 'src/host/workers/hash-pool.ts')).href;
    // wherever npm placed tsx (hoisted to the workspace root)
    const tsxApi = import.meta.resolve('tsx/esm/api');
    writeFileSync(join(dir, 'data'), 'hello world\n');
    writeFileSync(
      script,
      `import { register } from '${tsxApi}';
register();
const { HashPool } = await import('${poolUrl}');
const pool = HashPool.create({ workers: 2 });
const r = await pool.hash(${JSON.stringify(join(dir, 'data'))}, ['sha256']);
console.log(Buffer.from(r.digests.get('sha256')).toString('hex'));
await pool.close();
`,
    );
    const r = run(process.execPath, [script], { cwd: '/' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447');
  } finally {
    cleanup();
  }
});

test('bad options are misuse', () => {
  assert.throws(() => HashPool.create({ workers: 0 }), RangeError);
  assert.throws(() => HashPool.create({ maxBatch: 0 }), RangeError);
});
