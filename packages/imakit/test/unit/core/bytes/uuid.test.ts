import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { formatUuid, parseUuid } from '../../../../src/core/bytes/uuid.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';

test('text order = byte order (formats.md §4.3)', () => {
  assert.equal(toHex(parseUuid('28b23254-9467-44c0-b6ba-34b12e85a26f')), '28b23254946744c0b6ba34b12e85a26f');
  assert.equal(toHex(parseUuid('28B23254-9467-44C0-B6BA-34B12E85A26F')), '28b23254946744c0b6ba34b12e85a26f');
});

test('round trip of random UUIDs', () => {
  for (let i = 0; i < 50; i++) {
    const u = randomUUID();
    assert.equal(formatUuid(parseUuid(u)), u);
  }
});

test('only the dashed 36-character form is accepted (like evmctl --uuid=)', () => {
  for (const bad of [
    '',
    '28b23254946744c0b6ba34b12e85a26f',
    '28b23254-9467-44c0-b6ba-34b12e85a26',
    'g8b23254-9467-44c0-b6ba-34b12e85a26f',
    ' 28b23254-9467-44c0-b6ba-34b12e85a26f',
    'ABCD-1234',
  ])
    assert.throws(
      () => parseUuid(bad),
      (e) => isImakitError(e, 'E_CODEC_BAD_VALUE'),
      bad,
    );
  assert.throws(() => formatUuid(new Uint8Array(15)), RangeError);
});
