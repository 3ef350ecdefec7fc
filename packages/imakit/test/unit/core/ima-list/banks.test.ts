import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildList } from './build-list.ts';
import { bytesSource, verifyMeasurementList } from '../../../../src/core/ima-list/verify.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';

test('sha384, sha512 and sm3 banks replay like node:crypto computes them', async () => {
  const l = buildList(50, { banks: ['sha1', 'sha256', 'sha384', 'sha512', 'sm3'] });
  const v = await verifyMeasurementList(bytesSource(l.bytes), { expected: l.pcrs });
  assert.equal(v.status, 'pass', v.detail);
  assert.deepEqual(v.quirks, []);
  for (const b of v.banks) assert.equal(toHex(b.pcrs[0]!.value), toHex(l.pcrs.get(b.bank)!.get(10)!), b.bank);
  // a wrong sm3 value (no prefix of the list ends there) fails only the sm3 bank, and says so
  const wrong = new Map(l.pcrs);
  wrong.set('sm3', new Map([[10, new Uint8Array(32).fill(9)]]));
  const f = await verifyMeasurementList(bytesSource(l.bytes), { expected: wrong });
  assert.equal(f.status, 'fail');
  assert.deepEqual(
    f.banks.filter((b) => b.pcrs.some((p) => p.status === 'mismatch')).map((b) => b.bank),
    ['sm3'],
  );
});
