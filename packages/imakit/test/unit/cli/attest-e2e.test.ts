/**
 * The agent against the real verifier, end to end (issue 13): `imakit verifier serve --http` as a
 * child process (PGlite in a temp dir), a manufactured swtpm, and the CLI for everything else:
 *
 *   refs from-list → fleet refs upload → fleet add ID --reference-set → agent enrol (the registrar's
 *   credential activated in swtpm) → agent run --once → fleet show ID: passing.
 *
 * The list is a real kernel's (test/fixtures/kernel/evm-fix-hmac); its entries are extended into
 * swtpm's PCR 10 in the sha1 and sha256 banks as the kernel does (sha256: the SHA-256 of the
 * template data; violations 0xff…), and the verifier's default selection sha256:0-7,10 is quoted.
 * Then an ima-ng entry for a file the set does not know is appended to the list and extended too:
 * `run --once` exits 1, only the appended bytes were sent (from the verifier's offset), and `fleet
 * show` says failing with the entry's index and path. Last, a TPM reset: the verifier refuses the
 * old offset (`ima-reboot-resend`) and the agent sends the new boot's list from 0 at once: passing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR, tempDir } from '../../helpers.ts';
import { startTestTpm, type TestTpm } from '../tpm-helpers.ts';
import { serveVerifier, type ServedVerifier } from './verifier-child.ts';
import { imaNgData } from '../core/ima-list/build-list.ts';
import { cli } from './in-process-cli.ts';
import { agentFlags as agentTestFlags } from './agent-flags.ts';
import { TpmClient } from '../../../src/host/tpm/client.ts';
import { TPM_ALG } from '../../../src/core/tpm/constants.ts';
import {
  detectListFormat,
  encodeBinaryList,
  parseBinaryList,
  type UntrustedEntry,
} from '../../../src/core/ima-list/binary.ts';
import type { AttestOutcome } from '../../../src/host/agent/attest.ts';

const FIXTURE = join(FIXTURES_DIR, 'kernel/evm-fix-hmac');
const LIST = new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements')));
const FORMAT = detectListFormat(LIST.subarray(0, 65536)).format;
const ENTRIES = parseBinaryList(LIST, FORMAT);

const sha = (alg: string, b: Uint8Array): Uint8Array => new Uint8Array(createHash(alg).update(b).digest());

/** An ima-ng entry for a file no reference set allows (build-list.ts's template data). */
const EVIL_DATA = imaNgData('sha256', new Uint8Array(randomBytes(32)), '/usr/bin/not-in-the-set');
const EVIL: UntrustedEntry = {
  index: ENTRIES.length,
  offset: LIST.length,
  pcr: 10,
  digest: sha('sha1', EVIL_DATA),
  templateName: 'ima-ng',
  templateData: EVIL_DATA,
};
const EVIL_BYTES = encodeBinaryList([EVIL], FORMAT);

let ws: { dir: string; cleanup: () => void };
let tpm: TestTpm;
let client: TpmClient;
let verifier: ServedVerifier;
let listFile: string;
let conn: string[];
let agentFlags: string[];

/** PCR 10 extended as the kernel does for each entry (sha1 and sha256 banks). */
async function extend(entries: readonly UntrustedEntry[]): Promise<void> {
  for (const e of entries) {
    const violation = e.digest.every((x) => x === 0);
    await client.pcrExtend(10, [
      { hashAlg: TPM_ALG.SHA1, digest: violation ? new Uint8Array(20).fill(0xff) : e.digest },
      {
        hashAlg: TPM_ALG.SHA256,
        digest: violation ? new Uint8Array(32).fill(0xff) : sha('sha256', e.templateData),
      },
    ]);
  }
}

interface AgentShown {
  state: string;
  enrolled: boolean;
  referenceSet: string | null;
  stateReason: {
    why?: string;
    failure?: { step: string; code: string; entry?: number; offset?: number; path?: string };
  } | null;
}
async function show(): Promise<AgentShown> {
  const r = await cli(['fleet', 'show', 'host-1', ...conn, '--json']);
  assert.equal(r.code, 0, r.err + r.out);
  return JSON.parse(r.out) as AgentShown;
}

before(async () => {
  ws = tempDir('imakit-attest-e2e-');
  const data = join(ws.dir, 'verifier');
  [verifier, tpm] = await Promise.all([
    serveVerifier(['--http', '--listen', '127.0.0.1:0', '--data', data]),
    startTestTpm(),
  ]);
  client = await TpmClient.open(tpm.selector);
  conn = ['--verifier', verifier.url, '--data', data];
  ({ flags: agentFlags, listFile } = agentTestFlags({
    verifier: verifier.url,
    tpm: tpm.selector,
    dir: ws.dir,
    bootId: 'c0ffee00-0000-4000-8000-000000000001',
    eventlog: 'none',
    akDir: true,
  }));
});
after(async () => {
  await client?.close();
  tpm?.stop();
  assert.equal(await verifier?.stop(), 0, 'the verifier closes cleanly on SIGTERM');
  ws.cleanup();
});

test('agent and verifier end to end: enrol, pass, a refused appended entry fails naming it, reboot resend', async () => {
  // the reference set learned from the list, uploaded; the agent added with it
  const refsFile = join(ws.dir, 'learned.refs');
  const learn = await cli([
    'refs',
    'from-list',
    join(FIXTURE, 'binary_runtime_measurements'),
    '--out',
    refsFile,
  ]);
  assert.equal(learn.code, 0, learn.err);
  const up = await cli(['fleet', 'refs', 'upload', refsFile, '--name', 'evm-fix-hmac', ...conn, '--json']);
  assert.equal(up.code, 0, up.err + up.out);
  const set = JSON.parse(up.out) as { id: string; name: string; paths: number };
  const setBytes = readFileSync(refsFile);
  assert.equal(set.id, createHash('sha256').update(setBytes).digest('hex'), 'the id is the bytes’ SHA-256');
  assert.equal(set.name, 'evm-fix-hmac');
  const listed = await cli(['fleet', 'refs', 'list', ...conn]);
  assert.match(listed.out, new RegExp(`^${set.id} evm-fix-hmac `, 'm'));
  const add = await cli(['fleet', 'add', 'host-1', '--reference-set', set.id, ...conn, '--json']);
  assert.equal(add.code, 0, add.err + add.out);
  assert.equal((await show()).state, 'unenrolled');

  // enrolment: the registrar's credential activated by swtpm
  const enrol = await cli(['agent', 'enrol', ...agentFlags, '--json']);
  assert.equal(enrol.code, 0, enrol.err + enrol.out);
  assert.equal((JSON.parse(enrol.out) as { ekCertificate: boolean }).ekCertificate, true);
  assert.equal((await show()).enrolled, true);

  // the whole list, extended into PCR 10: passing
  writeFileSync(listFile, LIST);
  await extend(ENTRIES);
  const first = await cli(['agent', 'run', '--once', ...agentFlags, '--json']);
  assert.equal(first.code, 0, first.err + first.out);
  const o1 = JSON.parse(first.out) as AttestOutcome;
  assert.equal(o1.verdict.status, 'pass', JSON.stringify(o1.verdict));
  assert.deepEqual([o1.ima.offsetBytes, o1.ima.bytes], [0, LIST.length]);
  assert.equal(o1.pcrs, 'sha256:0-7,10');
  const passing = await show();
  assert.equal(passing.state, 'passing', JSON.stringify(passing.stateReason));

  // an entry for a file the set does not allow, appended and extended: failing, naming it
  appendFileSync(listFile, EVIL_BYTES);
  await extend([EVIL]);
  const second = await cli(['agent', 'run', '--once', ...agentFlags, '--json']);
  assert.equal(second.code, 1, second.err + second.out);
  const o2 = JSON.parse(second.out) as AttestOutcome;
  assert.equal(o2.verdict.status, 'fail');
  assert.deepEqual(
    [o2.ima.offsetBytes, o2.ima.bytes],
    [LIST.length, EVIL_BYTES.length],
    'only the appended bytes were sent, from the verifier’s offset',
  );
  const failing = await show();
  assert.equal(failing.state, 'failing');
  const f = failing.stateReason?.failure;
  assert.equal(f?.step, 'refs', JSON.stringify(failing.stateReason));
  assert.equal(f?.entry, ENTRIES.length);
  assert.equal(f?.offset, LIST.length);
  assert.equal(f?.path, '/usr/bin/not-in-the-set');
  assert.match(failing.stateReason?.why ?? '', /refs failed/);
  // the text form says why too
  const text = await cli(['agent', 'run', '--once', ...agentFlags]);
  assert.equal(text.code, 1);
  assert.match(text.out, /fail: sent \d+ list bytes from offset \d+.*\/usr\/bin\/not-in-the-set/);

  // a TPM reset (a new boot): the verifier refuses the old offset, the agent resends from 0 at once
  await client.powerCycle();
  writeFileSync(listFile, LIST);
  await extend(ENTRIES);
  const third = await cli(['agent', 'run', '--once', ...agentFlags, '--json']);
  assert.equal(third.code, 0, third.err + third.out);
  const o3 = JSON.parse(third.out) as AttestOutcome;
  assert.equal(o3.verdict.status, 'pass', JSON.stringify(o3.verdict));
  assert.deepEqual(o3.resentAfterReboot, { offsetBytes: LIST.length, bytes: 0 });
  assert.deepEqual([o3.ima.offsetBytes, o3.ima.bytes], [0, LIST.length]);
  assert.equal((await show()).state, 'passing');
});
