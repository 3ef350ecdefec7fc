import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { tempDir, vectorPath } from '../../helpers.ts';
import { buildList, encode, imaNgData, nodeHash, oraclePcrs } from '../core/ima-list/build-list.ts';
import { renderEvmctlPcrs, renderPcrJson } from '../../../src/core/tcg/pcr-values.ts';
import { renderAsciiList } from '../../../src/core/ima-list/ascii.ts';
import { convertListByteOrder } from '../../../src/core/ima-list/byte-order.ts';
import { parseBinaryList, type UntrustedEntry } from '../../../src/core/ima-list/binary.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

function withFiles(fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  return fn(dir).finally(cleanup);
}

const pcrArgs = (dir: string, pcrs: Map<string, Map<number, Uint8Array>>): string[] => {
  writeFileSync(join(dir, 'pcrs.json'), JSON.stringify(renderPcrJson(pcrs)));
  return ['--pcrs-json', join(dir, 'pcrs.json')];
};

test('log verify: pass (exit 0), a tampered entry fails (exit 1) with entry, field, expected and actual bytes', () =>
  withFiles(async (dir) => {
    const l = buildList(30);
    writeFileSync(join(dir, 'list'), l.bytes);
    const ok = await cli('log', 'verify', join(dir, 'list'), ...pcrArgs(dir, l.pcrs));
    assert.equal(ok.status, 0, ok.out + ok.err);
    assert.match(ok.out, /^PASS/);
    const bad = new Uint8Array(l.bytes);
    const e = parseBinaryList(l.bytes)[17]!;
    bad[e.offset + 40]! ^= 0x01; // inside entry 17's file digest
    writeFileSync(join(dir, 'bad'), bad);
    const r = await cli('log', 'verify', join(dir, 'bad'), ...pcrArgs(dir, l.pcrs));
    assert.equal(r.status, 1);
    assert.match(r.out, /\[template-digest\] entry 17, byte \d+, field 'template data'/);
    assert.match(r.out, new RegExp(`expected ${toHex(e.digest)}`));
    assert.match(r.out, /actual +[0-9a-f]{40}/);
    const j = await cli('log', 'verify', join(dir, 'bad'), ...pcrArgs(dir, l.pcrs), '--json');
    assert.equal(j.status, 1);
    const o = JSON.parse(j.out) as {
      status: string;
      verdict: { diagnosis: { kind: string; entry: number }[] };
    };
    assert.equal(o.status, 'fail');
    assert.equal(o.verdict.diagnosis[0]!.entry, 17);
  }));

test('log verify: list cut short and list running ahead are explained, evmctl PCR files accepted', () =>
  withFiles(async (dir) => {
    const l = buildList(20);
    writeFileSync(join(dir, 'sha1.txt'), renderEvmctlPcrs(l.pcrs.get('sha1')!, 20));
    writeFileSync(join(dir, 'short'), encode(l.entries.slice(0, 15)));
    const s = await cli('log', 'verify', join(dir, 'short'), '--pcrs', `sha1,${join(dir, 'sha1.txt')}`);
    assert.equal(s.status, 1);
    assert.match(s.out, /\[list-short\]/);
    const ahead = oraclePcrs(l.entries.slice(0, 12), ['sha1']);
    writeFileSync(join(dir, 'ahead.txt'), renderEvmctlPcrs(ahead.get('sha1')!, 20));
    writeFileSync(join(dir, 'list'), l.bytes);
    const a = await cli('log', 'verify', join(dir, 'list'), '--pcrs', `sha1,${join(dir, 'ahead.txt')}`);
    assert.equal(a.status, 0, a.out);
    assert.match(a.out, /prefix through entry 11 of 21/);
    assert.match(a.out, /\[list-ahead\] entry 12/);
  }));

test('log verify --checkpoint: written on success, resumed next time, reboot reported', () =>
  withFiles(async (dir) => {
    const l = buildList(40);
    const cp = join(dir, 'cp.json');
    writeFileSync(join(dir, 'list'), encode(l.entries.slice(0, 25)));
    const a = await cli(
      'log',
      'verify',
      join(dir, 'list'),
      ...pcrArgs(dir, oraclePcrs(l.entries.slice(0, 25), ['sha1', 'sha256'])),
      '--checkpoint',
      cp,
    );
    assert.equal(a.status, 0, a.out);
    assert.ok(existsSync(cp));
    writeFileSync(join(dir, 'list'), l.bytes);
    const b = await cli(
      'log',
      'verify',
      join(dir, 'list'),
      ...pcrArgs(dir, l.pcrs),
      '--checkpoint',
      cp,
      '--json',
    );
    assert.equal(b.status, 0, b.out);
    const o = JSON.parse(b.out) as { resume: { newEntries: number; skippedEntries: number } };
    assert.equal(o.resume.newEntries, 16);
    assert.equal(JSON.parse(readFileSync(cp, 'utf8')).entries, 41);
    const reboot = buildList(10);
    writeFileSync(join(dir, 'list'), reboot.bytes);
    const c = await cli('log', 'verify', join(dir, 'list'), ...pcrArgs(dir, reboot.pcrs), '--checkpoint', cp);
    assert.equal(c.status, 0, c.out);
    assert.match(c.out, /restart: the first entry \(boot_aggregate\) differs/);
    assert.equal(JSON.parse(readFileSync(cp, 'utf8')).entries, 11);
    writeFileSync(cp, '{"version": 7}');
    const d = await cli('log', 'verify', join(dir, 'list'), ...pcrArgs(dir, reboot.pcrs), '--checkpoint', cp);
    assert.equal(d.status, 2);
    assert.match(d.err, /E_CHECKPOINT/);
  }));

test('log verify: bad input exits 2 naming entry and offset; missing securityfs/TPM exit 5 naming the path', () =>
  withFiles(async (dir) => {
    const l = buildList(5);
    writeFileSync(join(dir, 'cut'), l.bytes.subarray(0, l.bytes.length - 10));
    const r = await cli('log', 'verify', join(dir, 'cut'), ...pcrArgs(dir, l.pcrs));
    assert.equal(r.status, 2);
    assert.match(r.err, /entry 5/);
    assert.match(r.err, /E_CODEC_TRUNCATED/);
    writeFileSync(join(dir, 'pcr.txt'), 'PCR-10 deadbeef\n');
    writeFileSync(join(dir, 'list'), l.bytes);
    const p = await cli('log', 'verify', join(dir, 'list'), '--pcrs', `sha1,${join(dir, 'pcr.txt')}`);
    assert.equal(p.status, 2);
    assert.match(p.err, /pcr\.txt.*line 1.*E_PCR_FILE/);
    const s = await cli('log', 'verify', '--securityfs', join(dir, 'nosuch'));
    assert.equal(s.status, 5);
    assert.match(s.err, /nosuch\/binary_runtime_measurements.*E_TOOL_MISSING/);
    const t = await cli('log', 'verify', join(dir, 'list'), '--tpm', join(dir, 'notpm'), '--json');
    assert.equal(t.status, 5);
    assert.equal(JSON.parse(t.out).error.code, 'E_TOOL_MISSING');
    assert.match(JSON.parse(t.out).error.message, /notpm/);
  }));

test('log verify --ascii cross-checks entry by entry and names the differing field', () =>
  withFiles(async (dir) => {
    const l = buildList(8);
    writeFileSync(join(dir, 'list'), l.bytes);
    const ascii = renderAsciiList(parseBinaryList(l.bytes));
    writeFileSync(join(dir, 'ascii'), ascii);
    const ok = await cli(
      'log',
      'verify',
      join(dir, 'list'),
      ...pcrArgs(dir, l.pcrs),
      '--ascii',
      join(dir, 'ascii'),
    );
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, /every entry agrees/);
    writeFileSync(join(dir, 'ascii2'), ascii.replace('/usr/bin/file-3', '/usr/bin/evil-3'));
    const bad = await cli(
      'log',
      'verify',
      join(dir, 'list'),
      ...pcrArgs(dir, l.pcrs),
      '--ascii',
      join(dir, 'ascii2'),
    );
    assert.equal(bad.status, 1);
    assert.match(bad.out, /entry 3 n-ng: ascii \/usr\/bin\/evil-3/);
    // the ascii list itself verifies like a binary one
    const a = await cli('log', 'verify', join(dir, 'ascii'), ...pcrArgs(dir, l.pcrs));
    assert.equal(a.status, 0, a.out);
  }));

test('log convert: binary <-> ascii exact on the shared vectors; le <-> be round trip; a real BE list verifies', () =>
  withFiles(async (dir) => {
    const bin = vectorPath('synthetic_binary_runtime_measurements_sha1');
    const asc = await cli('log', 'convert', bin, '--to', 'ascii');
    assert.equal(asc.status, 0);
    assert.equal(asc.out, readFileSync(vectorPath('synthetic_ascii_runtime_measurements_sha1'), 'utf8'));
    const back = await cli(
      'log',
      'convert',
      vectorPath('synthetic_ascii_runtime_measurements_sha1'),
      '--to',
      'binary',
      '--out',
      join(dir, 'b'),
    );
    assert.equal(back.status, 0);
    assert.deepEqual(readFileSync(join(dir, 'b')), readFileSync(bin));
    await cli('log', 'convert', bin, '--to', 'binary', '--endian', 'be', '--out', join(dir, 'be'));
    const le = await cli(
      'log',
      'convert',
      join(dir, 'be'),
      '--to',
      'binary',
      '--endian',
      'le',
      '--out',
      join(dir, 'le'),
      '--json',
    );
    assert.equal(JSON.parse(le.out).from.endian, 'be');
    assert.deepEqual(readFileSync(join(dir, 'le')), readFileSync(bin));
    // a list as a big-endian kernel writes it: lengths BE, digests over the BE bytes
    const entries: UntrustedEntry[] = [0, 1, 2, 3].map((i) => {
      const td = imaNgData(
        'sha256',
        new Uint8Array(32).fill(i),
        i === 0 ? 'boot_aggregate' : `/bin/x${i}`,
        [],
        false,
      );
      return {
        index: i,
        offset: 0,
        pcr: 10,
        digest: nodeHash('sha1', td),
        templateName: 'ima-ng',
        templateData: td,
      };
    });
    const beList = encode(entries, { endian: 'be', digestSize: 20, bank: 'sha1' });
    writeFileSync(join(dir, 'real-be'), beList);
    const pcrs = oraclePcrs(entries, ['sha1', 'sha256']);
    const v = await cli('log', 'verify', join(dir, 'real-be'), ...pcrArgs(dir, pcrs));
    assert.equal(v.status, 0, v.out);
    assert.match(v.out, /big-endian/);
    // converted to canonical, its digests still cover the BE bytes: replay fails, converting back restores it
    const conv = convertListByteOrder(beList, { endian: 'be', digestSize: 20, bank: 'sha1' }, 'le');
    assert.match(conv.note, /ORIGINAL byte order/);
    assert.deepEqual(
      convertListByteOrder(conv.bytes, { endian: 'le', digestSize: 20, bank: 'sha1' }, 'be').bytes,
      beList,
    );
    const bad = await cli('log', 'convert', bin, '--to', 'xml');
    assert.equal(bad.status, 2);
  }));

test('log diff: identical, extension (same boot, later read), divergence at the right entry and field', () =>
  withFiles(async (dir) => {
    const l = buildList(12);
    writeFileSync(join(dir, 'a'), l.bytes);
    writeFileSync(join(dir, 'short'), encode(l.entries.slice(0, 9)));
    const same = await cli('log', 'diff', join(dir, 'a'), join(dir, 'a'));
    assert.equal(same.status, 0);
    const ext = await cli('log', 'diff', join(dir, 'short'), join(dir, 'a'), '--json');
    assert.equal(ext.status, 1);
    assert.equal(JSON.parse(ext.out).relation, 'a-prefix-of-b');
    const changed = [...l.entries];
    changed[6] = { ...changed[6]!, pcr: 11 };
    writeFileSync(join(dir, 'c'), encode(changed));
    const d = await cli('log', 'diff', join(dir, 'a'), join(dir, 'c'), '--json');
    const o = JSON.parse(d.out) as { commonPrefix: number; differences: { entry: number; field: string }[] };
    assert.equal(o.commonPrefix, 6);
    assert.deepEqual(o.differences[0], { entry: 6, field: 'pcr', a: '10', b: '11' });
  }));

test('log show: ascii lines and JSON with decoded fields', () =>
  withFiles(async (dir) => {
    const l = buildList(3);
    writeFileSync(join(dir, 'list'), l.bytes);
    const s = await cli('log', 'show', join(dir, 'list'));
    assert.equal(s.status, 0);
    assert.equal(s.out, renderAsciiList(parseBinaryList(l.bytes)));
    const j = await cli('log', 'show', join(dir, 'list'), '--json', '--limit', '1');
    const o = JSON.parse(j.out) as { entries: number; list: { fields: { id: string; text?: string }[] }[] };
    assert.equal(o.entries, 4);
    assert.equal(o.list.length, 1);
    assert.equal(o.list[0]!.fields[1]!.text, 'boot_aggregate');
  }));
