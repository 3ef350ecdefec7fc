/**
 * Real-kernel appraisal scenarios (real-kernel.md §6 e1-e4, file cases §8.2, expectations §7):
 * files labelled by imakit (hashes and v2 signatures from imakit's library; v1 from evmctl) are
 * read and executed under a runtime policy in enforce, log and fix mode, and with the sha512
 * module. The kernel's decisions and audit causes must be exactly the ones §7 records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, appendFileSync } from 'node:fs';
import {
  runVm,
  DEFAULT_DATA_UUID,
  type Access,
  type VmResult,
  type VmSpec,
} from '../../src/host/vm/index.ts';
import { hash, hashAlgoByName } from '../../src/core/hash/hash-algo.ts';
import { imaDigestXattr } from '../../src/core/labels/ima-xattr.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  byLabel,
  causeOf,
  saveFixture,
  printBootTimes,
} from './helpers.ts';
import { Tree, getXattrHex, makeKey, type TestKey } from './labels.ts';
import { tempDir } from '../helpers.ts';

const U = DEFAULT_DATA_UUID;
/** §6 e1: measure with ima-sig; signatures required for fowner=1000; plain appraise for the rest. */
const POLICY = [
  `measure func=FILE_CHECK fsuuid=${U} template=ima-sig`,
  `measure func=BPRM_CHECK fsuuid=${U} template=ima-sig`,
  `appraise func=FILE_CHECK fsuuid=${U} fowner=1000 appraise_type=imasig`,
  `appraise func=BPRM_CHECK fsuuid=${U} fowner=1000 appraise_type=imasig`,
  `appraise func=FILE_CHECK fsuuid=${U}`,
  `appraise func=BPRM_CHECK fsuuid=${U}`,
].join('\n');

/** One file case: expected enforce outcome and first-access cause per §7. */
interface Case {
  readonly path: string;
  readonly exec?: boolean;
  /** '' = allowed; otherwise `op:cause` of the first denial */
  readonly enforce: string;
  /** fix mode: 'hash' = rewritten to 04 04 sha256(content); 'keep' = xattr unchanged */
  readonly fix: 'hash' | 'keep';
}

interface Fixture {
  tree: Tree;
  key: TestKey;
  other: TestKey;
  ec: TestKey;
  cases: Case[];
  labels: Map<string, string>;
  workload: Access[];
}

const SHA256 = hashAlgoByName('sha256');
const BUSYBOX = readFileSync('/bin/busybox');

function buildTree(): Fixture {
  const tree = new Tree();
  const key = makeKey('rsa', 'imakit ima key');
  const other = makeKey('rsa', 'imakit key not in the keyring');
  const ec = makeKey('ec', 'imakit ecdsa key');
  const cases: Case[] = [];
  const add = (c: Case): void => {
    cases.push(c);
  };
  const text = (p: string, uid?: number): void => {
    tree.file(p, `content of ${p}\n`, uid !== undefined ? { uid } : {});
  };
  const script = (p: string, uid?: number): void => {
    tree.file(p, `#!/bin/sh\necho ${p}\n`, { mode: 0o755, ...(uid !== undefined ? { uid } : {}) });
  };
  const bin = (p: string): void => {
    tree.file(p, BUSYBOX, { mode: 0o755 });
  };
  // plain appraise rule (root-owned)
  text('good-sha256.txt');
  tree.hashLabel('good-sha256.txt', 'sha256');
  add({ path: 'good-sha256.txt', enforce: '', fix: 'keep' });
  text('good-sha1.txt');
  tree.hashLabel('good-sha1.txt', 'sha1'); // type 0x01, as evmctl writes sha1
  add({ path: 'good-sha1.txt', enforce: '', fix: 'keep' });
  text('good-sha512.txt');
  tree.hashLabel('good-sha512.txt', 'sha512');
  add({ path: 'good-sha512.txt', enforce: 'collect_data:failed', fix: 'keep' });
  text('bad-hash.txt');
  tree.hashLabel('bad-hash.txt');
  appendFileSync(tree.path('bad-hash.txt'), 'changed after labelling\n');
  add({ path: 'bad-hash.txt', enforce: 'appraise_data:invalid-hash', fix: 'hash' });
  text('no-xattr.txt');
  add({ path: 'no-xattr.txt', enforce: 'appraise_data:missing-hash', fix: 'hash' });
  script('no-xattr.sh');
  add({ path: 'no-xattr.sh', exec: true, enforce: 'appraise_data:missing-hash', fix: 'hash' });
  bin('nox/true');
  add({ path: 'nox/true', exec: true, enforce: 'appraise_data:missing-hash', fix: 'hash' });
  text('sig-good.txt');
  tree.signLabel('sig-good.txt', key);
  add({ path: 'sig-good.txt', enforce: '', fix: 'keep' });
  script('sig-good.sh');
  tree.signLabel('sig-good.sh', key);
  add({ path: 'sig-good.sh', exec: true, enforce: '', fix: 'keep' });
  bin('sig/true');
  tree.signLabel('sig/true', key);
  add({ path: 'sig/true', exec: true, enforce: '', fix: 'keep' });
  text('sig-sha1.txt');
  tree.signLabel('sig-sha1.txt', key, 'sha1');
  add({ path: 'sig-sha1.txt', enforce: '', fix: 'keep' });
  text('sig-bad.txt');
  tree.signLabel('sig-bad.txt', key);
  appendFileSync(tree.path('sig-bad.txt'), 'changed after signing\n');
  add({ path: 'sig-bad.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('sig-otherkey.txt');
  tree.signLabel('sig-otherkey.txt', other);
  add({ path: 'sig-otherkey.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('sig-ecdsa.txt');
  tree.signLabel('sig-ecdsa.txt', ec);
  add({ path: 'sig-ecdsa.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('sig-v1.txt');
  tree.signV1('sig-v1.txt', key);
  add({ path: 'sig-v1.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('garbage.txt');
  tree.xattr('garbage.txt', 'security.ima', new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  add({ path: 'garbage.txt', enforce: 'appraise_data:unknown-ima-data', fix: 'hash' });
  // signature-required rule (owner 1000)
  text('u/hash.txt', 1000);
  tree.hashLabel('u/hash.txt');
  add({ path: 'u/hash.txt', enforce: 'appraise_data:IMA-signature-required', fix: 'keep' });
  text('u/none.txt', 1000);
  add({ path: 'u/none.txt', enforce: 'appraise_data:IMA-signature-required', fix: 'hash' });
  text('u/sig.txt', 1000);
  tree.signLabel('u/sig.txt', key);
  add({ path: 'u/sig.txt', enforce: '', fix: 'keep' });
  script('u/sig.sh', 1000);
  tree.signLabel('u/sig.sh', key);
  add({ path: 'u/sig.sh', exec: true, enforce: '', fix: 'keep' });
  text('u/sig-bad.txt', 1000);
  tree.signLabel('u/sig-bad.txt', key);
  appendFileSync(tree.path('u/sig-bad.txt'), 'changed\n');
  add({ path: 'u/sig-bad.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('u/otherkey.txt', 1000);
  tree.signLabel('u/otherkey.txt', other);
  add({ path: 'u/otherkey.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('u/ecdsa.txt', 1000);
  tree.signLabel('u/ecdsa.txt', ec);
  add({ path: 'u/ecdsa.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });
  text('u/v1.txt', 1000);
  tree.signV1('u/v1.txt', key);
  add({ path: 'u/v1.txt', enforce: 'appraise_data:invalid-signature', fix: 'keep' });

  const labels = new Map<string, string>();
  for (const c of cases) labels.set(c.path, readXattrHex(tree.path(c.path)));
  // read everything, execute what is executable, then read everything again (§8.2)
  const workload: Access[] = [];
  for (const c of cases) {
    workload.push({ op: 'read', path: c.path, label: `${c.path}/read` });
    if (c.exec === true) workload.push({ op: 'exec', path: c.path, label: `${c.path}/exec` });
  }
  for (const c of cases) workload.push({ op: 'read', path: c.path, label: `${c.path}/read2` });
  return { tree, key, other, ec, cases, labels, workload };
}

/**
 * sha1/sha256/sha512 of each file's final content, for the manifest: the emulator's conformance
 * replay hashes from these (not from the kernel's own list), so the list bytes are a real check.
 */
function contentDigests(t: Tree, paths: readonly string[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const p of paths) {
    const c = readFileSync(t.path(p));
    out[p] = Object.fromEntries(
      ['sha1', 'sha256', 'sha512'].map((a) => [a, Buffer.from(hash(hashAlgoByName(a), c)).toString('hex')]),
    );
  }
  return out;
}

/** Every certificate whose key signed a label, loaded or not (the kernel loads only `key`). */
function signingCerts(fx: Fixture): Record<string, string> {
  const h = (k: TestKey): string => Buffer.from(k.certDer).toString('hex');
  return { key: h(fx.key), other: h(fx.other), ecdsa: h(fx.ec) };
}

function readXattrHex(p: string): string {
  try {
    return Buffer.from(getXattrHex(p, 'security.ima')).toString('hex');
  } catch {
    return '';
  }
}

describe('real kernel: appraisal of imakit labels', { concurrency: 1 }, () => {
  let fx: Fixture;
  const outs: { cleanup: () => void }[] = [];
  before(() => {
    fx = buildTree();
  });
  after(() => {
    fx.tree.cleanup();
    for (const o of outs) o.cleanup();
    printBootTimes();
  });
  const spec = (mode: string, extra: Partial<VmSpec> = {}): VmSpec => ({
    append: [`ima_appraise=${mode}`, 'ima_hash=sha256', 'ima_template=ima-sig'],
    policy: POLICY,
    imaCerts: [fx.key.certDer, fx.ec.certDer],
    imaV1Keys: [fx.key.publicPem],
    files: fx.tree.dir,
    workload: fx.workload,
    generations: false,
    ...extra,
  });
  const boot = async (s: VmSpec): Promise<VmResult> => {
    const o = tempDir('imakit-kernel-out-');
    outs.push(o);
    return runVm(s, { kernelDir: KERNEL_DIR, outDir: o.dir, timeoutMs: BOOT_TIMEOUT_MS });
  };
  const matrix = (r: VmResult): Record<string, string> => {
    const m: Record<string, string> = {};
    for (const a of r.accesses)
      m[a.label ?? String(a.index)] = `${a.outcome}${causeOf(a) ? ` ${causeOf(a)}` : ''}`;
    return m;
  };
  /** the inputs every appraisal fixture keeps: content digests and all signing certificates */
  const replayInputs = (): Record<string, unknown> => ({
    fileDigests: contentDigests(
      fx.tree,
      fx.cases.map((c) => c.path),
    ),
    signingCertsDerHex: signingCerts(fx),
  });
  const fileXattr = (r: VmResult, p: string): string =>
    r.files.find((f) => f.path === p)?.xattrs['security.ima'] ?? '';

  test('e1: enforce — decisions and causes', async () => {
    const s = spec('enforce');
    const r = await boot(s);
    assert.equal(r.policyLoaded, true);
    // the ECDSA certificate cannot be loaded (no CRYPTO_ECDSA), the RSA one can (§2.3)
    const keysLog = readFileSync(`${r.outDir}/keys.log`, 'utf8');
    assert.match(keysLog, /ima-cert-0 ok/);
    assert.match(keysLog, /ima-cert-1 failed/);
    const acc = byLabel(r);
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const c of fx.cases) {
      for (const kind of c.exec === true ? ['read', 'exec'] : ['read']) {
        const a = acc.get(`${c.path}/${kind}`);
        got[`${c.path}/${kind}`] = `${a?.outcome} ${causeOf(a)}`;
        want[`${c.path}/${kind}`] = c.enforce === '' ? 'allowed ' : `denied ${c.enforce}`;
      }
      // a second read gets the same decision (cached: no second audit record)
      const a2 = acc.get(`${c.path}/read2`);
      assert.equal(a2?.outcome, c.enforce === '' ? 'allowed' : 'denied', `${c.path} second read`);
    }
    assert.deepEqual(got, want);
    assert.equal(acc.get('no-xattr.sh/exec')?.status, 126, 'denied exec exits 126');
    BOOT_TIMES.push({
      scenario: 'e1 enforce',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts: `${fx.cases.length} file cases, read/exec/re-read decisions and audit causes`,
    });
    saveFixture('appraise-enforce', r, s, {
      description:
        'ima_appraise=enforce, runtime policy (imasig for fowner=1000), labels written by imakit (scenario e1)',
      asserts: ['decision and op:cause per access = real-kernel.md §7'],
      inputs: {
        matrix: matrix(r),
        labels: Object.fromEntries(fx.labels),
        certs: ['RSA (loaded)', 'ECDSA (load fails)'],
        ...replayInputs(),
      },
    });
  });

  test('e2: log — nothing denied, causes audited, xattrs unchanged', async () => {
    const s = spec('log');
    const r = await boot(s);
    const acc = byLabel(r);
    for (const c of fx.cases) {
      const a = acc.get(`${c.path}/read`);
      assert.equal(a?.outcome, 'allowed', c.path);
      assert.equal(causeOf(a), c.enforce, `${c.path} audited cause`);
      assert.equal(fileXattr(r, c.path), fx.labels.get(c.path), `${c.path} xattr unchanged in log mode`);
    }
    BOOT_TIMES.push({
      scenario: 'e2 log',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts: 'all allowed, same causes, no xattr change',
    });
    saveFixture('appraise-log', r, s, {
      description: 'ima_appraise=log, same policy and files as appraise-enforce (scenario e2)',
      asserts: ['nothing denied', 'causes audited as in enforce', 'xattrs unchanged'],
      inputs: { matrix: matrix(r), labels: Object.fromEntries(fx.labels), ...replayInputs() },
    });
  });

  test('e3: fix — what the kernel rewrites', async () => {
    const s = spec('fix');
    const r = await boot(s);
    const acc = byLabel(r);
    for (const c of fx.cases) {
      assert.equal(acc.get(`${c.path}/read`)?.outcome, 'allowed', c.path);
      const content = readFileSync(fx.tree.path(c.path));
      const expected =
        c.fix === 'hash'
          ? Buffer.from(imaDigestXattr(SHA256, hash(SHA256, content))).toString('hex')
          : fx.labels.get(c.path);
      assert.equal(fileXattr(r, c.path), expected, `${c.path}: fix ${c.fix}`);
    }
    BOOT_TIMES.push({
      scenario: 'e3 fix',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts: 'all allowed; kernel-written 0404 hashes = imakit imaDigestXattr; signatures untouched',
    });
    saveFixture('appraise-fix', r, s, {
      description:
        'ima_appraise=fix, same policy and files (scenario e3); result.json files[] holds the xattrs after fix',
      asserts: [
        'missing/invalid/garbage hashes rewritten to 04 04 sha256 = imakit',
        'signatures and unavailable-algo xattrs left alone',
      ],
      inputs: { matrix: matrix(r), labelsBefore: Object.fromEntries(fx.labels), ...replayInputs() },
    });
  });

  test('e4: enforce with sha512_generic loaded', async () => {
    const t = new Tree();
    try {
      t.file('good-sha512.txt', 'sha512 hash\n');
      t.hashLabel('good-sha512.txt', 'sha512');
      t.file('sig-sha512.txt', 'sha512 signature\n');
      t.signLabel('sig-sha512.txt', fx.key, 'sha512');
      t.file('bad-sha512.txt', 'sha512 bad\n');
      t.hashLabel('bad-sha512.txt', 'sha512');
      appendFileSync(t.path('bad-sha512.txt'), 'changed\n');
      const s = spec('enforce', {
        files: t.dir,
        modules: ['sha512_generic'],
        workload: ['good-sha512.txt', 'sig-sha512.txt', 'bad-sha512.txt'].map((p) => ({
          op: 'read',
          path: p,
          label: p,
        })),
      });
      const r = await boot(s);
      const acc = byLabel(r);
      assert.equal(acc.get('good-sha512.txt')?.outcome, 'allowed');
      assert.equal(acc.get('sig-sha512.txt')?.outcome, 'allowed');
      assert.equal(acc.get('bad-sha512.txt')?.outcome, 'denied');
      assert.equal(causeOf(acc.get('bad-sha512.txt')), 'appraise_data:invalid-hash');
      assert.match(r.asciiList, /sha512:[0-9a-f]{128} \/data\/good-sha512\.txt/);
      BOOT_TIMES.push({
        scenario: 'e4 enforce+sha512',
        bootMs: r.info.bootMs,
        totalMs: r.info.totalMs,
        asserts: 'sha512 hash and signature accepted, bad sha512 hash denied',
      });
      saveFixture('appraise-enforce-sha512', r, s, {
        description: 'ima_appraise=enforce with sha512_generic insmod-ed first (scenario e4)',
        asserts: ['sha512 xattrs appraised once the hash is available'],
        inputs: {
          matrix: matrix(r),
          labels: Object.fromEntries(
            ['good-sha512.txt', 'sig-sha512.txt', 'bad-sha512.txt'].map((p) => [p, readXattrHex(t.path(p))]),
          ),
          fileDigests: contentDigests(t, ['good-sha512.txt', 'sig-sha512.txt', 'bad-sha512.txt']),
          signingCertsDerHex: signingCerts(fx),
        },
      });
    } finally {
      t.cleanup();
    }
  });
});
