/**
 * RPM lead and header codec against packages Debian's rpmbuild made: the lead decodes, both headers
 * re-encode byte for byte with imakit's writer, and the file list equals `rpm -qp`'s. Installed-form
 * headers (no magic, as in rpmdb) round-trip too. Hostile headers (absurd counts and sizes, offsets
 * outside the store, misalignment, unterminated strings, bad regions, bad leads) give typed errors
 * naming the header and tag before allocation; random bytes give only CodecError; decode∘encode is
 * the identity on generated entries (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decodeRpmHeader,
  decodeRpmLead,
  encodeRpmHeader,
  RPM_LEAD_SIZE,
  rpmEntry,
  RpmType,
  signaturePadding,
  type RpmEntry,
} from '../../../../src/core/packages/rpm-header.ts';
import { rpmPackageInfo, Tag } from '../../../../src/core/packages/rpm-files.ts';
import { CodecError } from '../../../../src/errors.ts';
import { tempDir } from '../../../helpers.ts';

const { dir, cleanup } = tempDir('imakit-rpmh-');
process.on('exit', cleanup);

function buildRpm(): Uint8Array {
  const top = join(dir, 'top');
  mkdirSync(join(top, 'SPECS'), { recursive: true });
  writeFileSync(
    join(top, 'SPECS', 't.spec'),
    'Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n' +
      '%install\nmkdir -p %{buildroot}/usr/bin %{buildroot}/etc\necho a > %{buildroot}/usr/bin/a\n' +
      'echo b > %{buildroot}/etc/b\n%files\n/usr/bin/a\n%config /etc/b\n',
  );
  execFileSync(
    'rpmbuild',
    [
      '-bb',
      '--define',
      `_topdir ${top}`,
      '--define',
      '__os_install_post %{nil}',
      join(top, 'SPECS', 't.spec'),
    ],
    { stdio: 'ignore' },
  );
  const d = join(top, 'RPMS', 'noarch');
  return new Uint8Array(readFileSync(join(d, readdirSync(d)[0]!)));
}
const RPM = buildRpm();
const RPM_PATH = join(dir, 't.rpm');
writeFileSync(RPM_PATH, RPM);

function codecCode(fn: () => unknown): CodecError | 'ok' {
  try {
    fn();
  } catch (e) {
    if (e instanceof CodecError) return e;
    throw e;
  }
  return 'ok';
}

test('rpmbuild package: lead, signature and main headers decode; both re-encode byte for byte; files equal rpm -qp', () => {
  const lead = decodeRpmLead(RPM);
  assert.equal(lead.signatureType, 5);
  assert.match(lead.name, /^t-1-1/);
  const sig = decodeRpmHeader(RPM.subarray(RPM_LEAD_SIZE), RPM_LEAD_SIZE, 'signature header', {
    magic: true,
  });
  assert.equal(sig.region?.tag, 62);
  const mainAt = RPM_LEAD_SIZE + sig.size + signaturePadding(sig.size);
  const main = decodeRpmHeader(RPM.subarray(mainAt), mainAt, 'main header', { magic: true });
  assert.equal(main.region?.tag, 63);
  assert.ok(
    Buffer.from(encodeRpmHeader(sig.entries, { magic: true, regionTag: 62 })).equals(
      RPM.subarray(RPM_LEAD_SIZE, RPM_LEAD_SIZE + sig.size),
    ),
  );
  assert.ok(
    Buffer.from(encodeRpmHeader(main.entries, { magic: true, regionTag: 63 })).equals(
      RPM.subarray(mainAt, mainAt + main.size),
    ),
  );
  const info = rpmPackageInfo(main, sig, 'main header');
  const want = execFileSync(
    'rpm',
    ['-qp', '--qf', '[%{FILENAMES} %{FILEDIGESTS} %{FILEFLAGS}\n]', RPM_PATH],
    {
      encoding: 'utf8',
    },
  )
    .trim()
    .split('\n');
  assert.deepEqual(
    info.files.map((f) => `${f.path} ${f.digest} ${f.flags}`),
    want,
  );
  assert.equal(info.digestAlgo, 'sha256');
  // the installed form (rpmdb: no magic) round-trips too
  const installed = encodeRpmHeader(main.entries, { magic: false, regionTag: 63 });
  const back = decodeRpmHeader(installed, 0, 'hnum 1', { magic: false });
  assert.equal(back.size, installed.length);
  assert.ok(Buffer.from(encodeRpmHeader(back.entries, { magic: false, regionTag: 63 })).equals(installed));
});

/** A header with one index entry {tag, type, off, count} and the given store. */
function oneEntry(
  tag: number,
  type: number,
  off: number,
  count: number,
  store: Uint8Array,
  il = 1,
): Uint8Array {
  const b = Buffer.alloc(16 + 16 + store.length);
  b.writeUInt32BE(0x8eade801, 0);
  b.writeUInt32BE(il, 8);
  b.writeUInt32BE(store.length, 12);
  b.writeUInt32BE(tag, 16);
  b.writeUInt32BE(type, 20);
  b.writeInt32BE(off, 24);
  b.writeUInt32BE(count, 28);
  Buffer.from(store).copy(b, 32);
  return new Uint8Array(b);
}

test('hostile headers and leads: typed errors naming the header, the tag and the offset', () => {
  const intro = (il: number, dl: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(0x8eade801, 0);
    b.writeUInt32BE(il, 8);
    b.writeUInt32BE(dl, 12);
    return new Uint8Array(b);
  };
  const badRegion = encodeRpmHeader([rpmEntry(1000, RpmType.STRING, 'x')], { magic: true, regionTag: 63 });
  new DataView(badRegion.buffer).setInt32(badRegion.length - 8, -16 * 9); // trailer claims 9 entries
  const cases: [string, Uint8Array, string, string?][] = [
    ['intro cut short', intro(1, 0).subarray(0, 10), 'E_CODEC_TRUNCATED', 'intro'],
    ['bad magic', new Uint8Array(32), 'E_PKG_FORMAT', 'magic'],
    ['no entries', intro(0, 0), 'E_PKG_TOO_LARGE', 'il'],
    ['65536 entries', intro(0x10000, 0), 'E_PKG_TOO_LARGE', 'il'],
    // a 4 GiB data store declared in 16 bytes: refused by the cap, nothing allocated
    ['4 GiB data store', intro(1, 0xffffffff), 'E_PKG_TOO_LARGE', 'dl'],
    ['store larger than the input', intro(1, 100), 'E_CODEC_TRUNCATED', 'dl'],
    [
      'offset outside the store',
      oneEntry(1000, RpmType.BIN, 9, 1, new Uint8Array(8)),
      'E_PKG_FORMAT',
      'tag 1000',
    ],
    ['negative offset', oneEntry(1000, RpmType.BIN, -1, 1, new Uint8Array(8)), 'E_PKG_FORMAT', 'tag 1000'],
    ['unknown type', oneEntry(1000, 10, 0, 1, new Uint8Array(8)), 'E_PKG_FORMAT', 'tag 1000'],
    ['count 0', oneEntry(1000, RpmType.BIN, 0, 0, new Uint8Array(8)), 'E_PKG_FORMAT', 'tag 1000'],
    [
      'count 2^32-1',
      oneEntry(1028, RpmType.INT32, 0, 0xffffffff, new Uint8Array(8)),
      'E_PKG_FORMAT',
      'tag 1028',
    ],
    [
      'int32 past the store',
      oneEntry(1028, RpmType.INT32, 4, 2, new Uint8Array(8)),
      'E_PKG_FORMAT',
      'tag 1028',
    ],
    ['misaligned int32', oneEntry(1028, RpmType.INT32, 2, 1, new Uint8Array(8)), 'E_PKG_FORMAT', 'tag 1028'],
    ['misaligned int64', oneEntry(5008, RpmType.INT64, 4, 1, new Uint8Array(16)), 'E_PKG_FORMAT', 'tag 5008'],
    [
      'unterminated string',
      oneEntry(1000, RpmType.STRING, 0, 1, Buffer.from('abcd')),
      'E_PKG_FORMAT',
      'tag 1000',
    ],
    [
      'STRING with count 2',
      oneEntry(1000, RpmType.STRING, 0, 2, Buffer.from('a\0b\0')),
      'E_PKG_FORMAT',
      'tag 1000',
    ],
    [
      'more strings than bytes',
      oneEntry(1117, RpmType.STRING_ARRAY, 0, 5, Buffer.from('a\0b\0')),
      'E_PKG_FORMAT',
      'tag 1117',
    ],
    ['region trailer inconsistent', badRegion, 'E_PKG_FORMAT', 'tag 63'],
  ];
  for (const [what, bytes, code, field] of cases) {
    const e = codecCode(() => decodeRpmHeader(bytes, 1000, 'main header', { magic: true }));
    assert.ok(e !== 'ok', `${what}: accepted`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal(e.context.member, 'main header', what);
    if (field !== undefined) assert.equal(e.context.field, field, what);
    assert.ok((e.context.offset ?? -1) >= 1000, `${what}: offset ${e.context.offset} is file-relative`);
  }
  const lead = Uint8Array.from(RPM.subarray(0, RPM_LEAD_SIZE));
  assert.equal(
    (codecCode(() => decodeRpmLead(lead.subarray(0, 95))) as CodecError).code,
    'E_CODEC_TRUNCATED',
  );
  const badLead = Uint8Array.from(lead);
  badLead[0] = 0;
  assert.equal((codecCode(() => decodeRpmLead(badLead)) as CodecError).context.field, 'lead magic');
  const sigType = Uint8Array.from(lead);
  sigType[79] = 1;
  assert.equal((codecCode(() => decodeRpmLead(sigType)) as CodecError).context.field, 'signature_type');
});

test('file lists that disagree with themselves: typed errors naming the tag', () => {
  const h = (entries: RpmEntry[]) =>
    decodeRpmHeader(encodeRpmHeader(entries, { magic: true, regionTag: 63 }), 0, 'main header', {
      magic: true,
    });
  const base = [
    rpmEntry(Tag.NAME, RpmType.STRING, 'p'),
    rpmEntry(Tag.BASENAMES, RpmType.STRING_ARRAY, ['a', 'b']),
    rpmEntry(Tag.DIRNAMES, RpmType.STRING_ARRAY, ['/usr/bin/']),
  ];
  const cases: [string, RpmEntry[], string, string][] = [
    ['no NAME', [rpmEntry(Tag.VERSION, RpmType.STRING, '1')], 'E_PKG_FORMAT', `tag ${Tag.NAME}`],
    [
      'DIRINDEXES short',
      [...base, rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0])],
      'E_PKG_FORMAT',
      `tag ${Tag.DIRINDEXES}`,
    ],
    [
      'dir index out of range',
      [...base, rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0, 1])],
      'E_PKG_FORMAT',
      `tag ${Tag.DIRINDEXES}`,
    ],
    [
      'digest not hex',
      [
        ...base,
        rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0, 0]),
        rpmEntry(Tag.FILEDIGESTS, RpmType.STRING_ARRAY, ['zz', 'aa']),
      ],
      'E_PKG_FORMAT',
      `tag ${Tag.FILEDIGESTS}`,
    ],
    [
      'digests for fewer files',
      [
        ...base,
        rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0, 0]),
        rpmEntry(Tag.FILEDIGESTS, RpmType.STRING_ARRAY, ['aa']),
      ],
      'E_PKG_FORMAT',
      `tag ${Tag.FILEDIGESTS}`,
    ],
    [
      'unknown FILEDIGESTALGO',
      [
        ...base,
        rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0, 0]),
        rpmEntry(Tag.FILEDIGESTALGO, RpmType.INT32, [99]),
      ],
      'E_CODEC_UNKNOWN_ALGO',
      `tag ${Tag.FILEDIGESTALGO}`,
    ],
    [
      'signature not hex',
      [
        ...base,
        rpmEntry(Tag.DIRINDEXES, RpmType.INT32, [0, 0]),
        rpmEntry(Tag.FILESIGNATURES, RpmType.STRING_ARRAY, ['0302x', '']),
      ],
      'E_PKG_FORMAT',
      `tag ${Tag.FILESIGNATURES}`,
    ],
    ['NAME of the wrong type', [rpmEntry(Tag.NAME, RpmType.INT32, [1])], 'E_PKG_FORMAT', `tag ${Tag.NAME}`],
  ];
  for (const [what, entries, code, field] of cases) {
    const e = codecCode(() => rpmPackageInfo(h(entries), undefined, 'main header'));
    assert.ok(e !== 'ok', `${what}: accepted`);
    assert.equal(e.code, code, what);
    assert.equal(e.context.field, field, what);
  }
});

test('property: random bytes give a header or a CodecError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), fc.nat({ max: 6 }), (b, magic, il) => {
      const input = Buffer.from(b);
      // steer a third of the runs past the intro into the index and store checks
      if (il > 0 && input.length >= 16) {
        if (magic) input.writeUInt32BE(0x8eade801, 0);
        input.writeUInt32BE(il, magic ? 8 : 0);
        input.writeUInt32BE(Math.max(0, input.length - (magic ? 16 : 8) - 16 * il), magic ? 12 : 4);
      }
      const r = codecCode(() => decodeRpmHeader(input, 0, 'h', { magic }));
      assert.ok(r === 'ok' || r.code.startsWith('E_'));
      codecCode(() => decodeRpmLead(input));
    }),
    { numRuns: 3000 },
  );
});

test('property: decode(encode(entries)) gives the entries; encode(decode(b)) ≡ b', () => {
  const str = fc.stringMatching(/^[^\0]{0,20}$/);
  const entry = fc.oneof(
    fc
      .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 5 })
      .map((v) => [RpmType.INT16, v] as const),
    fc
      .array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 5 })
      .map((v) => [RpmType.INT32, v] as const),
    fc
      .array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { minLength: 1, maxLength: 3 })
      .map((v) => [RpmType.INT64, v] as const),
    str.map((v) => [RpmType.STRING, v] as const),
    fc.array(str, { minLength: 1, maxLength: 5 }).map((v) => [RpmType.STRING_ARRAY, v] as const),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((v) => [RpmType.BIN, v] as const),
  );
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.integer({ min: 100, max: 6000 }), entry), {
        selector: (x) => x[0],
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      (xs, magic) => {
        const entries = xs.map(([tag, [type, value]]) => rpmEntry(tag, type, value));
        const bytes = encodeRpmHeader(entries, { magic, regionTag: 63 });
        const h = decodeRpmHeader(bytes, 0, 'h', { magic });
        assert.equal(h.size, bytes.length);
        assert.equal(h.region?.entries, entries.length + 1);
        const sorted = [...entries].sort((a, b) => a.tag - b.tag);
        assert.deepEqual(
          h.entries.slice(1).map((e) => ({ ...e })),
          sorted.map((e) => ({ ...e })),
        );
        assert.ok(Buffer.from(encodeRpmHeader(h.entries, { magic, regionTag: 63 })).equals(bytes));
      },
    ),
    { numRuns: 500 },
  );
});
