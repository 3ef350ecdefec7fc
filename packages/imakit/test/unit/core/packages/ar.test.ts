/**
 * The ar codec (deb(5), ar(5)) against archives made by tools we did not write: real Debian packages
 * (dpkg-deb's writer, via `apt-get download`) and GNU ar (binutils, deterministic mode) round-trip
 * byte for byte; hostile archives give typed errors naming the offset; random bytes give only
 * CodecError; encode∘decode is the identity on generated archives (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  AR_HEADER_SIZE,
  AR_MAGIC,
  decodeAr,
  decodeArHeader,
  encodeAr,
  encodeArHeader,
  type ArHeader,
} from '../../../../src/core/packages/ar.ts';
import { CodecError } from '../../../../src/errors.ts';
import { cachedDebs } from '../../host/packages/deb-helpers.ts';
import { tempDir } from '../../../helpers.ts';

const latin1 = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));

/** A raw header from its fields (each padded with spaces to its width), for hostile inputs. */
function rawHeader(f: { name?: string; mtime?: string; mode?: string; size: string; fmag?: string }) {
  return latin1(
    (f.name ?? 'member').padEnd(16) +
      (f.mtime ?? '0').padEnd(12) +
      '0'.padEnd(6) +
      '0'.padEnd(6) +
      (f.mode ?? '100644').padEnd(8) +
      f.size.padEnd(10) +
      (f.fmag ?? '`\n'),
  );
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CodecError) return e.code;
    throw e;
  }
  return 'ok';
}

test('real .debs (dpkg-deb) round-trip byte for byte; members are debian-binary, control.tar.xz, data.tar.xz', () => {
  for (const [name, path] of cachedDebs(['coreutils', 'bash'])) {
    const bytes = new Uint8Array(readFileSync(path));
    const members = decodeAr(bytes);
    assert.deepEqual(
      members.map((m) => m.header.name),
      ['debian-binary', 'control.tar.xz', 'data.tar.xz'],
      name,
    );
    assert.equal(Buffer.from(members[0]!.data).toString('latin1'), '2.0\n');
    assert.ok(Buffer.from(encodeAr(members)).equals(bytes), `${name}: encode(decode(b)) ≡ b`);
  }
});

test('GNU ar (binutils, D mode, names with a trailing /): headers round-trip with slash; odd sizes padded', () => {
  const { dir, cleanup } = tempDir('imakit-ar-');
  try {
    writeFileSync(join(dir, 'odd'), 'abc');
    writeFileSync(join(dir, 'even'), 'abcd');
    execFileSync('ar', ['qcD', join(dir, 'x.a'), 'odd', 'even'], { cwd: dir });
    const bytes = new Uint8Array(readFileSync(join(dir, 'x.a')));
    const ms = decodeAr(bytes);
    assert.deepEqual(
      ms.map((m) => [m.header.name, Buffer.from(m.data).toString()]),
      [
        ['odd', 'abc'],
        ['even', 'abcd'],
      ],
    );
    for (const m of ms) {
      const at = m.offset - AR_HEADER_SIZE;
      const raw = bytes.subarray(at, m.offset);
      assert.ok(Buffer.from(encodeArHeader(m.header, { slash: true })).equals(raw), m.header.name);
    }
    assert.equal(ms[1]!.offset, AR_MAGIC.length + AR_HEADER_SIZE + 4 + AR_HEADER_SIZE);
  } finally {
    cleanup();
  }
});

test('hostile archives: each refused with its code, at its offset, before anything is allocated', () => {
  const m = (h: Uint8Array, body = new Uint8Array(0)) => Uint8Array.from(Buffer.concat([AR_MAGIC, h, body]));
  const cases: [string, Uint8Array, string, number?][] = [
    ['no magic', latin1('!<arc>\n'), 'E_PKG_FORMAT', 0],
    ['empty', new Uint8Array(0), 'E_PKG_FORMAT', 0],
    ['header cut short', m(rawHeader({ size: '4' }).subarray(0, 30)), 'E_CODEC_TRAILING', 8],
    // 4 GiB declared with 4 bytes present: refused by length, never sliced or copied
    ['4 GiB member', m(rawHeader({ size: '4294967296' }), latin1('abcd')), 'E_CODEC_TRUNCATED', 68],
    ['size not decimal', m(rawHeader({ size: '0x10' })), 'E_PKG_FORMAT', 8 + 48],
    ['negative size', m(rawHeader({ size: '-1' })), 'E_PKG_FORMAT', 8 + 48],
    ['mode not octal', m(rawHeader({ size: '0', mode: '100899' })), 'E_PKG_FORMAT', 8 + 40],
    ['bad fmag', m(rawHeader({ size: '0', fmag: '`x' })), 'E_PKG_FORMAT', 8 + 58],
    ['GNU long-name table', m(rawHeader({ name: '//', size: '0' })), 'E_PKG_FORMAT', 8],
    ['BSD long name', m(rawHeader({ name: '#1/20', size: '0' })), 'E_PKG_FORMAT', 8],
    ['control byte in name', m(rawHeader({ name: 'a\x01b', size: '0' })), 'E_PKG_FORMAT', 8],
    ['missing pad byte', m(rawHeader({ size: '3' }), latin1('abc')), 'E_CODEC_TRUNCATED'],
    ['trailing bytes', m(rawHeader({ size: '2' }), latin1('ab\n\n')), 'E_CODEC_TRAILING', 70],
  ];
  for (const [what, bytes, code, offset] of cases) {
    try {
      decodeAr(bytes);
      assert.fail(`${what}: accepted`);
    } catch (e) {
      assert.ok(e instanceof CodecError, `${what}: ${String(e)}`);
      assert.equal(e.code, code, what);
      if (offset !== undefined) assert.equal(e.context.offset, offset, what);
    }
  }
  // ten digits is dpkg's own limit and fits the field: accepted by the header decoder, bounded by the file
  assert.equal(
    codeOf(() => decodeArHeader(rawHeader({ size: '9999999999' }), 0)),
    'ok',
  );
  assert.equal(
    codeOf(() => decodeArHeader(new Uint8Array(59), 0)),
    'E_CODEC_TRUNCATED',
  );
});

test('property: random bytes after the magic give members or a CodecError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (b, magic) => {
      const input = magic ? Uint8Array.from(Buffer.concat([AR_MAGIC, b])) : b;
      const r = codeOf(() => decodeAr(input));
      assert.ok(r === 'ok' || r.startsWith('E_'), r);
    }),
    { numRuns: 2000 },
  );
});

test('property: decode(encode(members)) gives the members back and encode(decode(b)) ≡ b', () => {
  const member = fc.record({
    name: fc.stringMatching(/^[a-z0-9._+-]{1,15}$/),
    mtime: fc.integer({ min: 0, max: 999_999_999_999 - 1 }),
    uid: fc.integer({ min: 0, max: 999_999 }),
    gid: fc.integer({ min: 0, max: 999_999 }),
    mode: fc.integer({ min: 0, max: 0o77777777 }),
    data: fc.uint8Array({ maxLength: 64 }),
  });
  fc.assert(
    fc.property(fc.array(member, { maxLength: 5 }), (ms) => {
      const input = ms.map(({ data, ...h }) => ({
        header: { ...h, size: data.length } satisfies ArHeader,
        data,
      }));
      const bytes = encodeAr(input);
      const back = decodeAr(bytes);
      assert.deepEqual(
        back.map((x) => ({ header: { ...x.header }, data: Uint8Array.from(x.data) })),
        input,
      );
      assert.ok(Buffer.from(encodeAr(back)).equals(bytes));
    }),
    { numRuns: 300 },
  );
});
