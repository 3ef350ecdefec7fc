/**
 * Real-kernel scenario d (real-kernel.md §6 d, §7 "Key measurements", "Custom templates",
 * "Violations"): `ima_policy=critical_data` plus a runtime policy with per-rule templates, so one
 * list holds ima-ng (boot_aggregate, violations), ima-buf (kernel_version critical data and
 * KEY_CHECK keys), ima-sigv2 (exec), evm-sig, ima-ngv2 and ima-modsig (reads). Certificates built
 * by imakit are added to `_ima` before the policy load (queued, measured at the load) and after it
 * (measured at once). The list is verified with imakit's library and evmctl, the ima-buf entries
 * are decoded (keyring name as name, the DER certificate as buffer), and the ima-sigv2 signature
 * verifies against the key the same list measured.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runVm, DEFAULT_DATA_UUID, type VmResult, type VmSpec } from '../../src/host/vm/index.ts';
import { hash, hashAlgoByName } from '../../src/core/hash/hash-algo.ts';
import type { UntrustedEntry } from '../../src/core/ima-list/binary.ts';
import { decodeTemplateFields, type DecodedField } from '../../src/core/ima-list/fields.ts';
import { lookupTemplate } from '../../src/core/ima-list/templates.ts';
import { keyringWith, measuredKeys, verifyListSignatures } from '../../src/core/ima-list/list-signatures.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  bootAggregateWithLibrary,
  eventLogWithLibrary,
  evmctlReplay,
  libraryEntries,
  saveFixture,
  verdictDetail,
  verifyListWithLibrary,
  printBootTimes,
} from './helpers.ts';
import { Tree, makeKey } from './labels.ts';
import { tempDir } from '../helpers.ts';

const U = DEFAULT_DATA_UUID;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha = (algo: string, data: Uint8Array | string): string =>
  hex(hash(hashAlgoByName(algo), typeof data === 'string' ? Buffer.from(data) : data));

/** §6 d: per-rule templates. FILE_CHECK rules are limited to reads so that the open-writers
 * pattern's write open is not measured and its read gives a violation. */
const POLICY = [
  'measure func=KEY_CHECK template=ima-buf',
  'measure func=CRITICAL_DATA template=ima-buf',
  `measure func=BPRM_CHECK fsuuid=${U} template=ima-sigv2`,
  `measure func=FILE_CHECK mask=MAY_READ fsuuid=${U} fowner=1000 template=evm-sig`,
  `measure func=FILE_CHECK mask=MAY_READ fsuuid=${U} uid=0 template=ima-ngv2`,
  `measure func=FILE_CHECK mask=MAY_READ fsuuid=${U} uid=1000 template=ima-modsig`,
].join('\n');

/** An entry with its decoded fields (imakit's field codecs). */
interface Decoded {
  readonly e: UntrustedEntry;
  readonly f: readonly DecodedField[];
  readonly name: string;
}

function decodeAll(entries: readonly UntrustedEntry[]): Decoded[] {
  return entries.map((e) => {
    const tpl = lookupTemplate(e.templateName);
    assert.ok(tpl, `entry ${e.index}: known template ${e.templateName}`);
    const f = decodeTemplateFields(tpl, e.templateData, 'le');
    const n = f.find((x) => x.id === 'n-ng' || x.id === 'n');
    const name = n && 'text' in n ? n.text : n && 'name' in n ? n.name : '';
    return { e, f, name };
  });
}

const field = (d: Decoded | undefined, id: string): DecodedField | undefined => d?.f.find((x) => x.id === id);
const data = (d: Decoded | undefined, id: string): string => {
  const x = field(d, id);
  return x ? hex(x.data) : '(none)';
};
const digestOf = (d: Decoded | undefined): string => {
  const x = d?.f[0];
  if (x === undefined) return '(none)';
  if (x.id === 'd-ngv2') return `${x.digestType}:${x.algo}:${hex(x.digest)}`;
  if (x.id === 'd-ng') return `${x.algo}:${hex(x.digest)}`;
  return hex(x.data);
};

describe('real kernel: scenario d — critical data, keys and per-rule templates in one list', () => {
  const outs: { cleanup: () => void }[] = [];
  after(() => {
    for (const o of outs) o.cleanup();
    printBootTimes();
  });

  test('d: ima-buf keys and kernel_version, ima-sigv2/evm-sig/ima-ngv2/ima-modsig, violation in ima-ng, replay', async () => {
    const tree = new Tree();
    outs.push({ cleanup: () => tree.cleanup() });
    const early = makeKey('rsa', 'imakit key added before the policy load');
    const late = makeKey('rsa', 'imakit key added after the policy load');
    tree.file('script.sh', '#!/bin/sh\necho signed script\n', { mode: 0o755 });
    const scriptSig = tree.signLabel('script.sh', early);
    tree.file('bin/true', readFileSync('/bin/busybox'), { mode: 0o755 });
    tree.file('user-owned.txt', 'owned by 1000, read by root\n', { uid: 1000 });
    const userIma = tree.hashLabel('user-owned.txt');
    tree.file('plain.txt', 'plain, read by root\n');
    tree.file('hash-sha1.txt', 'sha1 xattr, read by root\n');
    tree.hashLabel('hash-sha1.txt', 'sha1');
    tree.file('other.txt', 'root-owned, read by uid 1000\n');
    tree.file('open-writers.txt', 'open for write, then read\n');
    const spec: VmSpec = {
      append: ['ima_policy=critical_data', 'ima_hash=sha256', 'ima_template=ima-ng'],
      imaCerts: [early.certDer],
      lateImaCerts: [late.certDer],
      policy: POLICY,
      files: tree.dir,
      banks: ['sha1', 'sha256'],
      workload: [
        { op: 'exec', path: 'script.sh', label: 'exec-script' },
        { op: 'exec', path: 'bin/true', label: 'exec-binary' },
        { op: 'read', path: 'user-owned.txt', label: 'read-fowner-1000' },
        { op: 'read', path: 'plain.txt', label: 'read-root' },
        { op: 'read', path: 'hash-sha1.txt', label: 'read-root-sha1' },
        { op: 'read', path: 'other.txt', uid: 1000, label: 'read-by-1000' },
        { op: 'open-writers', path: 'open-writers.txt', label: 'open-writers' },
      ],
      generations: false,
    };
    const o = tempDir('imakit-kernel-out-');
    outs.push(o);
    const r: VmResult = await runVm(spec, {
      kernelDir: KERNEL_DIR,
      outDir: o.dir,
      timeoutMs: BOOT_TIMEOUT_MS,
    });
    assert.equal(r.policyLoaded, true);
    for (const a of r.accesses) assert.equal(a.outcome, 'allowed', `${a.label}: ${a.stderr}`);
    const keysLog = readFileSync(join(r.outDir, 'keys.log'), 'utf8');
    assert.match(keysLog, /^ima-cert-0 ok \d+$/m);
    assert.match(keysLog, /^ima-late-cert-0 ok \d+$/m);

    // replay: imakit's library (strict on both banks), boot_aggregate, event log; evmctl agrees
    const v = await verifyListWithLibrary(r, ['sha1', 'sha256']);
    assert.equal(v.status, 'pass', verdictDetail(v));
    assert.deepEqual(v.quirks, []);
    assert.equal(v.entries, r.measurementCount);
    assert.equal(v.violations, r.violations);
    const ba = bootAggregateWithLibrary(r, ['sha1', 'sha256']);
    assert.equal(ba.status, 'pass', ba.detail);
    const el = eventLogWithLibrary(r, ['sha1', 'sha256'], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(el.status, 'pass');
    const ev = evmctlReplay(r.outDir, ['sha1', 'sha256']);
    assert.equal(ev.status, 0, `evmctl ima_measurement --ignore-violations: ${ev.out}`);

    const list = decodeAll(libraryEntries(r.binaryList));
    assert.equal(list.length, r.measurementCount);
    const templates = new Set(list.map((d) => d.e.templateName));
    for (const t of ['ima-ng', 'ima-buf', 'ima-sigv2', 'evm-sig', 'ima-ngv2', 'ima-modsig'])
      assert.ok(templates.has(t), `template ${t} in the list (have ${[...templates].join(', ')})`);
    for (const t of templates) assert.ok(r.asciiList.includes(` ${t} `), `ascii list names ${t}`);
    assert.equal(list[0]?.name, 'boot_aggregate');
    assert.equal(list[0]?.e.templateName, 'ima-ng');

    // ima-buf: kernel_version critical data, measured at IMA init (before any key)
    const kv = list.filter((d) => d.name === 'kernel_version');
    assert.equal(kv.length, 1, 'one kernel_version entry');
    const release = readFileSync(join(r.outDir, 'uname.txt'), 'utf8').split(' ')[2] ?? '';
    assert.ok(release.length > 0);
    assert.equal(kv[0]?.e.templateName, 'ima-buf');
    assert.equal(Buffer.from(field(kv[0], 'buf')!.data).toString('latin1'), release, 'buf = UTS_RELEASE');
    assert.equal(digestOf(kv[0]), `sha256:${sha('sha256', release)}`, 'ima-buf d-ng = sha256(buf)');

    // ima-buf keys: name = keyring, buf = DER certificate, d-ng = sha256(DER)
    const keyEntries = list.filter((d) => d.e.templateName === 'ima-buf' && d.name !== 'kernel_version');
    for (const k of keyEntries)
      assert.equal(digestOf(k), `sha256:${sha('sha256', field(k, 'buf')!.data)}`, `${k.name}: d-ng`);
    const builtin = keyEntries.filter((d) => d.name === '.builtin_trusted_keys');
    assert.equal(builtin.length, 1, 'the kernel build key, queued and measured at the policy load');
    const ima = keyEntries.filter((d) => d.name === '_ima');
    const earlyAt = ima.findIndex((d) => data(d, 'buf') === hex(early.certDer));
    const lateAt = ima.findIndex((d) => data(d, 'buf') === hex(late.certDer));
    assert.ok(earlyAt >= 0, '_ima entry carries the DER of the key added before the load');
    assert.ok(lateAt >= 0, '_ima entry carries the DER of the key added after the load');
    assert.ok(
      ima[earlyAt]!.e.index < ima[lateAt]!.e.index,
      'queued keys are measured at the load, later ones at once',
    );
    assert.ok(kv[0]!.e.index < builtin[0]!.e.index, 'kernel_version comes before the queued keys');
    // imakit's measuredKeys finds the same keys by keyring
    const mk = measuredKeys(list.map((d) => d.e));
    assert.deepEqual(
      mk.map((k) => `${k.index} ${k.keyring}`),
      keyEntries.map((d) => `${d.e.index} ${d.name}`),
    );

    // ima-sigv2 for exec: d-ngv2 `ima:sha256`, sig = imakit's signature, verified against the key
    // measured in the same list
    const script = list.find((d) => d.name === '/data/script.sh' && d.e.templateName === 'ima-sigv2');
    assert.ok(script, 'script.sh measured with ima-sigv2');
    assert.equal(digestOf(script), `ima:sha256:${sha('sha256', '#!/bin/sh\necho signed script\n')}`);
    assert.equal(data(script, 'sig'), hex(scriptSig));
    const sigs = verifyListSignatures(
      list.map((d) => d.e),
      keyringWith([], mk),
    );
    const scriptSigVerdict = sigs.find((s) => s.index === script.e.index);
    assert.equal(scriptSigVerdict?.status, 'pass', scriptSigVerdict?.detail);
    const bin = list.find((d) => d.name === '/data/bin/true');
    assert.equal(bin?.e.templateName, 'ima-sigv2');
    assert.equal(data(bin, 'sig'), '', 'no signature: empty sig');

    // evm-sig for a root read of a fowner=1000 file
    const ev1 = list.find((d) => d.name === '/data/user-owned.txt');
    assert.equal(ev1?.e.templateName, 'evm-sig');
    assert.equal(digestOf(ev1), `sha256:${sha('sha256', 'owned by 1000, read by root\n')}`);
    assert.equal(data(ev1, 'evmsig'), '', 'no security.evm');
    const xn = field(ev1, 'xattrnames');
    assert.equal(xn && 'text' in xn ? xn.text : '', 'security.ima');
    assert.equal(data(ev1, 'xattrvalues'), hex(userIma));
    const num = (id: string): number | undefined => {
      const x = field(ev1, id);
      return x && 'value' in x ? x.value : undefined;
    };
    assert.equal(num('iuid'), 1000);
    assert.equal(num('igid'), 1000);
    assert.equal(num('imode'), 0o100644);

    // ima-ngv2 for root reads; the xattr's algorithm drives the digest
    const plain = list.find((d) => d.name === '/data/plain.txt');
    assert.equal(plain?.e.templateName, 'ima-ngv2');
    assert.equal(digestOf(plain), `ima:sha256:${sha('sha256', 'plain, read by root\n')}`);
    const s1 = list.find((d) => d.name === '/data/hash-sha1.txt');
    assert.equal(digestOf(s1), `ima:sha1:${sha('sha1', 'sha1 xattr, read by root\n')}`);

    // ima-modsig for a read by uid 1000: no appended signature, so sig/d-modsig/modsig are empty
    const mod = list.find((d) => d.name === '/data/other.txt');
    assert.equal(mod?.e.templateName, 'ima-modsig');
    assert.equal(digestOf(mod), `sha256:${sha('sha256', 'root-owned, read by uid 1000\n')}`);
    for (const id of ['sig', 'd-modsig', 'modsig']) assert.equal(data(mod, id), '', id);

    // open-writers: the violation entry uses the default template ima-ng (§7), then the ima-ngv2 one
    const ow = list.filter((d) => d.name === '/data/open-writers.txt');
    assert.deepEqual(
      ow.map((d) => `${d.e.templateName} ${d.e.digest.every((x) => x === 0) ? 'violation' : 'measured'}`),
      ['ima-ng violation', 'ima-ngv2 measured'],
    );
    assert.equal(r.violations, 1);

    BOOT_TIMES.push({
      scenario: 'd critical_data/templates',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts:
        'imakit verify + evmctl replay; kernel_version and key ima-buf entries (keyring name, DER buf, queued vs at once); ima-sigv2 sig verifies against the measured key; evm-sig/ima-ngv2/ima-modsig fields; violation in ima-ng',
    });
    saveFixture('measure-templates-critical-data', r, spec, {
      description:
        'ima_policy=critical_data, ima-ng default, runtime policy with KEY_CHECK/CRITICAL_DATA ima-buf, BPRM ima-sigv2, FILE_CHECK evm-sig/ima-ngv2/ima-modsig; certificates added to _ima before and after the policy load (scenario d)',
      asserts: [
        'the list replays strictly on sha1 and sha256 (imakit, evmctl)',
        'kernel_version ima-buf entry: buf = UTS_RELEASE',
        'KEY_CHECK ima-buf entries: name = keyring, buf = DER certificate; queued keys measured at the load, later ones at once',
        'ima-sigv2 sig = imakit signature, verifies against the measured key',
        'evm-sig/ima-ngv2/ima-modsig fields; the open-writers violation uses ima-ng',
      ],
      inputs: {
        earlyCertDerHex: hex(early.certDer),
        lateCertDerHex: hex(late.certDer),
        kernelRelease: release,
      },
    });
  });
});
