/**
 * The compact form's fast load (issue 12): only integers are checked up front; lookups by bytes
 * and by string agree with the Map-backed set; a file with unsorted paths loads lazily but can only
 * make a present path look absent, and the full check refuses it; a bad digest record is refused
 * when a lookup first reads it, naming its offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isImakitError } from '../../../../src/errors.ts';
import { ReferenceSetBuilder } from '../../../../src/core/refs/reference-set.ts';
import { decodeRefsBinary, encodeRefsBinary } from '../../../../src/core/refs/refs-binary.ts';

const enc = new TextEncoder();
const dg = (n: number) => new Uint8Array(32).fill(n);

function build(paths: string[]) {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
  paths.forEach((p, i) =>
    b.addDigest(p, { algo: 'sha256', digest: dg(i + 1), provenance: { kind: 'rootfs' } }),
  );
  return b.build();
}

test('byte and string lookups agree with the Map-backed set (shared prefixes, absent neighbours)', () => {
  const paths = ['/a', '/a/b', '/a/bc', '/usr/bin/x', '/usr/bin/xy', '/usr/bin/y', '/z', '/é', '/😀'];
  const set = build(paths);
  const bin = decodeRefsBinary(encodeRefsBinary(set));
  const t = bin.digests;
  for (const [i, p] of paths.entries()) {
    const q = enc.encode(`##${p}`);
    assert.equal(t.findDigestBytes!(q, 2, q.length - 2, 4, dg(i + 1), 0, 32), 0, p);
    assert.equal(t.findDigestBytes!(q, 2, q.length - 2, 4, dg(99), 0, 32), -1, p);
    assert.equal(
      t.findDigest(p, 'sha256', dg(i + 1), 0, 32),
      set.digests.findDigest(p, 'sha256', dg(i + 1), 0, 32),
    );
  }
  for (const p of ['/', '/a/', '/a/bd', '/usr/bin/', '/usr/bin/xz', '/zz', '/0', '']) {
    const q = enc.encode(p);
    assert.equal(t.findDigestBytes!(q, 0, q.length, 4, dg(1), 0, 32), -2, p);
    assert.equal(t.get(p), undefined);
  }
});

test('unsorted paths: the lazy load never finds a wrong entry; the full check refuses the file', () => {
  const bytes = encodeRefsBinary(build(['/aa', '/bb', '/cc']));
  // swap the first two paths' bytes ('/aa' <-> '/bb'): the index is no longer sorted
  const s = Buffer.from(bytes).indexOf('/aa/bb/cc');
  bytes.set(enc.encode('/bb/aa'), s);
  const lazy = decodeRefsBinary(bytes).digests;
  // '/bb' now sits at index 0 with '/aa''s digest 1: found only with that exact digest, or not at all
  const q = enc.encode('/bb');
  const r = lazy.findDigestBytes!(q, 0, 3, 4, dg(2), 0, 32);
  assert.ok(r === -1 || r === -2);
  assert.throws(
    () => decodeRefsBinary(bytes, { full: true }),
    (e) => isImakitError(e, 'E_CODEC_BAD_VALUE') && e.context.field === 'strings',
  );
});

test('a bad digest record is refused when first read (lazy), up front with full', () => {
  const bytes = encodeRefsBinary(build(['/aa', '/bb']));
  const meta = new DataView(bytes.buffer).getUint32(20, true);
  const refs = 36 + ((meta + 3) & ~3) + 8 * 3;
  bytes[refs + 16] = 250; // second record: algorithm id 250
  const t = decodeRefsBinary(bytes).digests;
  assert.equal(t.findDigest('/aa', 'sha256', dg(1), 0, 32), 0);
  assert.throws(
    () => t.findDigest('/bb', 'sha256', dg(2), 0, 32),
    (e) =>
      isImakitError(e, 'E_CODEC_BAD_VALUE') &&
      e.context.field === 'refs.algo' &&
      e.context.offset === refs + 16,
  );
  assert.throws(
    () => decodeRefsBinary(bytes, { full: true }),
    (e) => isImakitError(e, 'E_CODEC_BAD_VALUE'),
  );
});

test('offsets that go backwards are refused by the integer pass', () => {
  const bytes = encodeRefsBinary(build(['/aa', '/bb', '/cc']));
  const meta = new DataView(bytes.buffer).getUint32(20, true);
  const offs = 36 + ((meta + 3) & ~3);
  new DataView(bytes.buffer).setUint32(offs + 4, 7, true); // path 0 ends after path 1 ends
  assert.throws(
    () => decodeRefsBinary(bytes),
    (e) => isImakitError(e, 'E_CODEC_BAD_VALUE') && e.context.field === 'pathOffsets',
  );
});
