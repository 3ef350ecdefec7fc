/**
 * dpkg's text formats against this system's dpkg: the status file gives the installed packages
 * `dpkg-query -W` lists, with the same versions; `info/coreutils.md5sums` equals `md5sum` of the
 * installed files; `info/coreutils.list` equals `dpkg -L coreutils`. Hostile text gives
 * E_CODEC_BAD_TEXT / E_PKG_TOO_LARGE naming the line; random text gives only CodecError (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  field,
  installedPackages,
  MAX_CONTROL_FIELDS,
  parseDeb822,
  parseDpkgList,
  parseMd5sums,
} from '../../../../src/core/packages/dpkg-db.ts';
import { CodecError } from '../../../../src/errors.ts';

test('status file: installed packages and versions equal dpkg-query -W', () => {
  const pkgs = installedPackages(parseDeb822(readFileSync('/var/lib/dpkg/status', 'utf8'), 'status'));
  const want = execFileSync(
    'dpkg-query',
    ['-W', '-f', '${db:Status-Status} ${Package} ${Version} ${Architecture}\\n'],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('installed '))
    .map((l) => l.slice('installed '.length))
    .sort();
  assert.deepEqual(pkgs.map((p) => `${p.name} ${p.version} ${p.arch}`).sort(), want);
  assert.ok(pkgs.length > 50);
});

test('coreutils md5sums equal md5sum of the installed files; .list equals dpkg -L', () => {
  const md5 = parseMd5sums(readFileSync('/var/lib/dpkg/info/coreutils.md5sums', 'utf8'), 'md5sums');
  const paths = [...md5.keys()].slice(0, 40);
  const out = execFileSync('md5sum', paths, { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(
    out.map((l) => l.replace(/^(\w+) +/, '$1 ')),
    paths.map((p) => `${md5.get(p)} ${p}`),
  );
  const list = parseDpkgList(readFileSync('/var/lib/dpkg/info/coreutils.list', 'utf8'), 'list');
  const dpkgL = execFileSync('dpkg', ['-L', 'coreutils'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter((l) => l !== '/.' && l !== '');
  assert.deepEqual(list, dpkgL);
});

test('deb822: case-insensitive fields, continuation lines, several paragraphs, comments', () => {
  const ps = parseDeb822('# c\nPackage: a\nDescription: one\n two\n .\n\nPACKAGE: b\n', 'x');
  assert.equal(ps.length, 2);
  assert.equal(field(ps[0]!, 'package'), 'a');
  assert.equal(field(ps[0]!, 'Description'), 'one\ntwo\n.');
  assert.equal(field(ps[1]!, 'Package'), 'b');
  const md5 = parseMd5sums(`${'a'.repeat(32)}  usr/bin/x y\n${'B'.repeat(32)} */etc/z\n`, 'm');
  assert.deepEqual(
    [...md5],
    [
      ['/usr/bin/x y', 'a'.repeat(32)],
      ['/etc/z', 'b'.repeat(32)],
    ],
  );
});

test('hostile text: typed errors naming the line', () => {
  const cases: [string, () => unknown, string, number][] = [
    ['continuation first', () => parseDeb822(' x\n', 'c'), 'E_CODEC_BAD_TEXT', 1],
    ['no colon', () => parseDeb822('Package: a\nnonsense\n', 'c'), 'E_CODEC_BAD_TEXT', 2],
    ['empty field name', () => parseDeb822(': a\n', 'c'), 'E_CODEC_BAD_TEXT', 1],
    [
      'too many fields',
      () => parseDeb822(Array.from({ length: MAX_CONTROL_FIELDS + 1 }, (_, i) => `F${i}: v`).join('\n'), 'c'),
      'E_PKG_TOO_LARGE',
      MAX_CONTROL_FIELDS + 1,
    ],
    ['short md5', () => parseMd5sums(`${'a'.repeat(31)}  x\n`, 'm'), 'E_CODEC_BAD_TEXT', 1],
    ['md5 without path', () => parseMd5sums(`${'a'.repeat(32)}\n`, 'm'), 'E_CODEC_BAD_TEXT', 1],
    ['relative .list path', () => parseDpkgList('/.\n/usr\nusr/bin\n', 'l'), 'E_CODEC_BAD_TEXT', 3],
  ];
  for (const [what, fn, code, line] of cases)
    assert.throws(
      fn,
      (e: unknown) => e instanceof CodecError && e.code === code && e.context.line === line,
      what,
    );
});

test('property: random text gives values or a CodecError, nothing else', () => {
  const textish = fc.array(
    fc.constantFrom('Package', ': ', 'x', ' ', '\n', '\t', '#', '/', 'a'.repeat(32), '  '),
    {
      maxLength: 60,
    },
  );
  fc.assert(
    fc.property(
      fc.oneof(
        textish.map((a) => a.join('')),
        fc.string({ maxLength: 200 }),
      ),
      (s) => {
        for (const fn of [() => parseDeb822(s, 'x'), () => parseMd5sums(s, 'x'), () => parseDpkgList(s, 'x')])
          try {
            fn();
          } catch (e) {
            assert.ok(e instanceof CodecError, String(e));
          }
      },
    ),
    { numRuns: 2000 },
  );
});
