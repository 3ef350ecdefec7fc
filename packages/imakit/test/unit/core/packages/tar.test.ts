/**
 * The tar codec and walker against archives GNU tar 1.34 made: ustar headers re-encode byte for byte;
 * pax headers carrying a binary `SCHILY.xattr.security.ima` (set with setfattr, archived with
 * `tar --xattrs`) give the exact xattr bytes (getfattr's) and their records re-encode byte for byte;
 * GNU long names and long link targets are folded in. Hostile streams (4 GiB pax/long-name headers,
 * bad checksums, truncations, trailing data, `..`) give typed errors naming the offset and member
 * before any allocation; random bytes give only CodecError; encode∘decode is the identity (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decodePaxRecords,
  decodeTarHeader,
  encodePaxRecords,
  encodeTarHeader,
  isZeroBlock,
  MAX_PAX_HEADER_BYTES,
  memberPath,
  TAR_BLOCK,
  tarPadding,
  type TarHeaderInput,
} from '../../../../src/core/packages/tar.ts';
import { walkTar, type TarEntry } from '../../../../src/core/packages/tar-walk.ts';
import { CodecError } from '../../../../src/errors.ts';
import { tempDir } from '../../../helpers.ts';

const { dir, cleanup } = tempDir('imakit-tar-');
process.on('exit', cleanup);

const IMA = Buffer.from('0302040a00ff3d200a0d', 'hex'); // NUL, '=', ' ', '\n' inside: binary

function tree(): string {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(join(root, 'usr/bin/tool'), 'tool\n');
  execFileSync('setfattr', [
    '-n',
    'security.ima',
    '-v',
    `0x${IMA.toString('hex')}`,
    join(root, 'usr/bin/tool'),
  ]);
  writeFileSync(join(root, 'usr/bin/empty'), '');
  const long = join(root, 'usr/share', 'd'.repeat(60), 'e'.repeat(60));
  mkdirSync(long, { recursive: true });
  writeFileSync(join(long, 'f'.repeat(40)), 'deep\n');
  symlinkSync(
    join('/usr/share', 'd'.repeat(60), 'e'.repeat(60), 'f'.repeat(40)),
    join(root, 'usr/bin/longlink'),
  );
  return root;
}
const ROOT = tree();

function gnuTar(format: string, extra: string[] = []): Uint8Array {
  const out = join(dir, `${format}.tar`);
  execFileSync('tar', [
    `--format=${format}`,
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--mtime=2024-01-01 00:00:00Z',
    ...extra,
    '-C',
    ROOT,
    '-cf',
    out,
    'usr',
  ]);
  return new Uint8Array(readFileSync(out));
}

async function* chunks(b: Uint8Array, size = 777): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < b.length; o += size) yield b.subarray(o, Math.min(b.length, o + size));
}

async function walk(b: Uint8Array, member = 'test.tar'): Promise<{ entry: TarEntry; content: string }[]> {
  const out: { entry: TarEntry; content: string }[] = [];
  for await (const { entry, body } of walkTar(chunks(b), { member })) {
    const parts: Uint8Array[] = [];
    for await (const c of body) parts.push(Uint8Array.from(c));
    out.push({ entry, content: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

async function walkCode(b: Uint8Array): Promise<CodecError> {
  try {
    await walk(b);
  } catch (e) {
    if (e instanceof CodecError) return e;
    throw e;
  }
  assert.fail('accepted');
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

test('ustar (GNU tar --format=ustar): every header block re-encodes byte for byte', async () => {
  const b = gnuTar('ustar', ['--exclude=usr/share', '--exclude=usr/bin/longlink']);
  let n = 0;
  for (let off = 0; off < b.length;) {
    const block = b.subarray(off, off + TAR_BLOCK);
    if (isZeroBlock(block)) break;
    const h = decodeTarHeader(block, off);
    assert.equal(h.format, 'ustar');
    const input: TarHeaderInput = {
      name: text(h.name),
      type: h.type,
      size: h.size,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
      linkname: text(h.linkname),
      uname: h.uname,
      gname: h.gname,
    };
    assert.ok(Buffer.from(encodeTarHeader(input)).equals(block), `${text(h.name)} at ${off}`);
    off += TAR_BLOCK + h.size + tarPadding(h.size);
    n++;
  }
  assert.equal(n, 4); // usr/, usr/bin/, usr/bin/empty, usr/bin/tool
});

test('pax (GNU tar --xattrs): binary security.ima kept exactly; long names as pax path; records re-encode', async () => {
  const b = gnuTar('posix', [
    '--xattrs',
    '--xattrs-include=security.*',
    '--pax-option=delete=atime,delete=ctime',
  ]);
  const es = await walk(b);
  const tool = es.find((e) => e.entry.path === '/usr/bin/tool')!;
  assert.ok(Buffer.from(tool.entry.xattrs.get('security.ima')!).equals(IMA));
  assert.equal(tool.content, 'tool\n');
  const got = execFileSync('getfattr', ['--only-values', '-n', 'security.ima', join(ROOT, 'usr/bin/tool')]);
  assert.ok(got.equals(IMA), 'getfattr agrees');
  const deep = `/usr/share/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(40)}`;
  assert.equal(es.find((e) => e.entry.path === deep)?.content, 'deep\n');
  assert.equal(es.find((e) => e.entry.path === '/usr/bin/longlink')?.entry.linkname, deep);
  // every pax header's records re-encode to the same bytes
  let paxHeaders = 0;
  for (let off = 0; off < b.length;) {
    const block = b.subarray(off, off + TAR_BLOCK);
    if (isZeroBlock(block)) break;
    const h = decodeTarHeader(block, off);
    if (h.type === 'pax') {
      const data = b.subarray(off + TAR_BLOCK, off + TAR_BLOCK + h.size);
      assert.ok(Buffer.from(encodePaxRecords(decodePaxRecords(data))).equals(data), `pax at ${off}`);
      paxHeaders++;
    }
    off += TAR_BLOCK + h.size + tarPadding(h.size);
  }
  assert.ok(paxHeaders >= 2, `${paxHeaders} pax headers`);
});

test('GNU long names and long link targets (GNU tar --format=gnu, L/K headers) are folded in', async () => {
  const es = await walk(gnuTar('gnu'));
  const deep = `/usr/share/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(40)}`;
  assert.equal(es.find((e) => e.entry.path === deep)?.content, 'deep\n');
  const link = es.find((e) => e.entry.path === '/usr/bin/longlink')!;
  assert.equal(link.entry.type, 'symlink');
  assert.equal(link.entry.linkname, deep);
  assert.deepEqual(
    es.map((e) => e.entry.path).filter((p) => p.startsWith('/usr/bin/')),
    ['/usr/bin/empty', '/usr/bin/longlink', '/usr/bin/tool'],
  );
});

/** A header block with a chosen size field (raw 12 bytes) and a correct checksum. */
function headerWithSize(type: TarHeaderInput['type'], sizeField: Uint8Array, name = 'x'): Uint8Array {
  const h = encodeTarHeader({ name, type, size: 0 });
  h.set(sizeField, 124);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.set(Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'latin1'), 148);
  return h;
}

/** GNU base-256 size field for `v`. */
function base256(v: number): Uint8Array {
  const f = new Uint8Array(12);
  let x = v;
  for (let i = 11; i > 0; i--) {
    f[i] = x % 256;
    x = Math.floor(x / 256);
  }
  f[0] = 0x80;
  return f;
}

const END = new Uint8Array(2 * TAR_BLOCK);
const cat = (...p: Uint8Array[]) => Uint8Array.from(Buffer.concat(p));

test('hostile tar streams: typed errors at their offsets, absurd sizes refused before allocation', async () => {
  const file = (name: string, content: string) =>
    cat(
      encodeTarHeader({ name, type: 'file', size: content.length }),
      Buffer.from(content),
      new Uint8Array(tarPadding(content.length)),
    );
  const FOUR_GIB = 4 * 1024 * 1024 * 1024;
  const badSum = encodeTarHeader({ name: 'x', type: 'file' });
  badSum[0] = 0x79;
  const badType = encodeTarHeader({ name: 'x', type: 'file' });
  badType[156] = 0x41; // 'A'
  badType.fill(0x20, 148, 156);
  badType.set(
    Buffer.from(
      [...badType]
        .reduce((a, c) => a + c, 0)
        .toString(8)
        .padStart(6, '0') + '\0 ',
    ),
    148,
  );
  const cases: [string, Uint8Array, string, number?][] = [
    // 4 GiB pax header followed by nothing: refused by its size, not by running out of bytes
    ['4 GiB pax header', cat(headerWithSize('pax', base256(FOUR_GIB)), END), 'E_PKG_TOO_LARGE', 0],
    [
      '4 GiB GNU long name',
      cat(headerWithSize('gnu-longname', base256(FOUR_GIB)), END),
      'E_PKG_TOO_LARGE',
      0,
    ],
    [
      'pax header 1 byte over its cap',
      cat(headerWithSize('pax', base256(MAX_PAX_HEADER_BYTES + 1)), END),
      'E_PKG_TOO_LARGE',
    ],
    ['member over 64 GiB', cat(headerWithSize('file', base256(2 ** 40)), END), 'E_PKG_TOO_LARGE', 124],
    [
      'negative base-256 size',
      cat(headerWithSize('file', new Uint8Array(12).fill(0xff)), END),
      'E_PKG_FORMAT',
    ],
    [
      'base-256 over 2^53',
      cat(headerWithSize('file', new Uint8Array(12).fill(0xfe)), END),
      'E_PKG_TOO_LARGE',
    ],
    ['bad checksum', cat(badSum, END), 'E_PKG_FORMAT', 148],
    ['unknown typeflag', cat(badType, END), 'E_PKG_FORMAT', 156],
    ['size not octal', cat(headerWithSize('file', Buffer.from('00000000009\0')), END), 'E_PKG_FORMAT', 124],
    ['body cut short', file('a', 'hello').subarray(0, TAR_BLOCK + 3), 'E_CODEC_TRUNCATED'],
    ['header cut short', cat(file('a', 'hi'), new Uint8Array(100)), 'E_CODEC_TRUNCATED', TAR_BLOCK * 2],
    ['no end-of-archive block', file('a', 'hi'), 'E_CODEC_TRUNCATED', TAR_BLOCK * 2],
    ['data after the end', cat(file('a', 'hi'), END, Buffer.from('junk')), 'E_CODEC_TRAILING'],
    ['.. in a name', cat(file('../etc/passwd', 'x'), END), 'E_PKG_FORMAT', 0],
    [
      'pax header then the end',
      cat(headerWithSize('pax', Buffer.from('00000000000\0')), END),
      'E_PKG_FORMAT',
    ],
  ];
  for (const [what, bytes, code, offset] of cases) {
    const e = await walkCode(bytes);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal(e.context.member, 'test.tar', what);
    if (offset !== undefined) assert.equal(e.context.offset, offset, what);
  }
  // pax records: bounds of each record
  const recCases: [string, string][] = [
    ['length past the end', '99 path=x\n'],
    ['length too short', '3 a=b\n'],
    ['no newline', '9 path=xy'],
    ['no key', '7 =abc\n'],
    ['length not decimal', '0x9 a=bc\n'],
    ['data after NUL padding', '9 path=x\n\0\0x'],
  ];
  for (const [what, s] of recCases)
    assert.throws(
      () => decodePaxRecords(Buffer.from(s, 'latin1')),
      (e: unknown) => e instanceof CodecError && e.code === 'E_PKG_FORMAT',
      what,
    );
  assert.throws(
    () => decodePaxRecords(new Uint8Array(MAX_PAX_HEADER_BYTES + 1)),
    (e: unknown) => e instanceof CodecError && e.code === 'E_PKG_TOO_LARGE',
  );
  assert.throws(
    () => memberPath('a/../../b'),
    (e: unknown) => e instanceof CodecError,
  );
  assert.equal(memberPath('./usr//bin/ls/'), '/usr/bin/ls');
});

test('property: random streams give entries or a CodecError, nothing else (with and without a valid first header)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), async (b, withHeader) => {
      const input = withHeader
        ? cat(encodeTarHeader({ name: 'a', type: 'file', size: b.length % 700 }), b)
        : b;
      try {
        await walk(input);
      } catch (e) {
        assert.ok(e instanceof CodecError, String(e));
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: TAR_BLOCK, maxLength: TAR_BLOCK }), (b) => {
      // give random blocks a valid checksum so the field decoders are reached
      b.fill(0x20, 148, 156);
      const sum = b.reduce((a, c) => a + c, 0);
      b.set(Buffer.from(sum.toString(8).padStart(6, '0') + '\0 '), 148);
      try {
        decodeTarHeader(b, 0);
      } catch (e) {
        assert.ok(e instanceof CodecError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: pax records and ustar headers: decode(encode(x)) = x, encode(decode(b)) ≡ b', () => {
  const key = fc.stringMatching(/^[A-Za-z0-9._]{1,40}$/);
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(key, fc.uint8Array({ maxLength: 300 })), {
        selector: (r) => r[0],
        maxLength: 8,
      }),
      (recs) => {
        const bytes = encodePaxRecords(recs);
        const back = decodePaxRecords(bytes);
        assert.deepEqual(
          [...back].map(([k, v]) => [k, Uint8Array.from(v)]),
          recs.map(([k, v]) => [k, Uint8Array.from(v)]),
        );
        assert.ok(Buffer.from(encodePaxRecords(back)).equals(bytes));
      },
    ),
    { numRuns: 500 },
  );
  const types = ['file', 'hardlink', 'symlink', 'dir', 'fifo', 'chardev', 'blockdev'] as const;
  fc.assert(
    fc.property(
      fc.record({
        name: fc.stringMatching(/^[a-z0-9/._-]{1,100}$/),
        type: fc.constantFrom(...types),
        size: fc.integer({ min: 0, max: 8 ** 11 - 1 }),
        mode: fc.integer({ min: 0, max: 0o7777 }),
        uid: fc.integer({ min: 0, max: 8 ** 7 - 1 }),
        gid: fc.integer({ min: 0, max: 8 ** 7 - 1 }),
        mtime: fc.integer({ min: 0, max: 8 ** 11 - 1 }),
        linkname: fc.stringMatching(/^[a-z0-9/._-]{0,100}$/),
        uname: fc.stringMatching(/^[a-z]{0,31}$/),
        gname: fc.stringMatching(/^[a-z]{0,31}$/),
      }),
      (h) => {
        const block = encodeTarHeader(h);
        const d = decodeTarHeader(block, 0);
        assert.deepEqual(
          {
            ...h,
            name: text(d.name),
            type: d.type,
            size: d.size,
            mode: d.mode,
            uid: d.uid,
            gid: d.gid,
            mtime: d.mtime,
            linkname: text(d.linkname),
            uname: d.uname,
            gname: d.gname,
          },
          { ...h },
        );
        const again = encodeTarHeader({ ...h, name: text(d.name), linkname: text(d.linkname) });
        assert.ok(Buffer.from(again).equals(block));
      },
    ),
    { numRuns: 500 },
  );
});
