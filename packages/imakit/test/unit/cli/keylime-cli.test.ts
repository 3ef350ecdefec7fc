/**
 * The two Keylime command-line contracts:
 *
 *   imakit agent run --keylime-api --listen HOST:PORT --tpm T --ak DIR [--ima-list FILE] [--eventlog FILE]
 *   imakit fleet add --keylime-agent HOST:PORT --ak FILE --refs FILE [--id UUID]
 *
 * The agent as a child process (the real CLI) on a swtpm with an AK made by `imakit tpm ak create`:
 * `--json` prints where it listens, it answers Keylime's API (quote over the mask plus PCR 16,
 * the list from the asked entry, the event log when PCR 0 is asked), and SIGTERM ends it with 0;
 * usage errors exit 2. `fleet add` against `imakit verifier serve --http` (child): the AK as
 * TPM2B_PUBLIC and as PEM, the refs uploaded and bound, `--json`; missing or conflicting flags
 * exit 2, an unreadable AK file 2 (E_KEY_PARSE), a refused request 1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from '../../helpers.ts';
import { decodeTpmsAttest } from '../../../src/core/tpm/attest.ts';
import { cli, sharedTpm } from './tpm-cli-helpers.ts';
import { serveVerifier, type ServedVerifier } from './verifier-child.ts';
import { freePortPair } from '../tpm-helpers.ts';
import { TpmClient } from '../../../src/host/tpm/client.ts';
import { parseBinaryList } from '../../../src/core/ima-list/binary.ts';
import { templateDigest } from '../../../src/core/ima-list/template-digest.ts';

const { withTpm } = sharedTpm();
const KERNEL = join(import.meta.dirname, '../../fixtures/kernel/appraise-enforce');

let tmp: { dir: string; cleanup: () => void };
let verifier: ServedVerifier | undefined;
before(() => {
  tmp = tempDir('imakit-keylime-cli-');
});
after(async () => {
  await verifier?.stop();
  tmp.cleanup();
});

/** `imakit agent run --keylime-api …` as a child; resolves with its listening line. */
async function spawnAgent(args: readonly string[]) {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin/imakit.js'), 'agent', 'run', '--keylime-api', ...args, '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t0 = setTimeout(() => reject(new Error(`agent did not start: ${err}`)), 120_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(t0);
        resolve(out.slice(0, out.indexOf('\n')));
      }
    });
    child.once('exit', (c) => reject(new Error(`agent exited ${c}: ${err}`)));
  });
  return { child, exited, info: JSON.parse(line) as { listening: string; api: string }, err: () => err };
}

/**
 * An AK made by `imakit tpm ak create` in tmp/`akName`, then the agent on a free port serving the
 * kernel fixture's list with `eventlog`.
 */
async function agentWithNewAk(selector: string, akName: string, eventlog: string) {
  const ak = join(tmp.dir, akName);
  assert.equal((await cli('tpm', 'ak', 'create', '--out', ak, '--tpm', selector)).status, 0);
  const port = await freePortPair();
  const agent = await spawnAgent([
    '--listen',
    `127.0.0.1:${port}`,
    '--tpm',
    selector,
    '--ak',
    ak,
    '--ima-list',
    join(KERNEL, 'binary_runtime_measurements'),
    '--eventlog',
    eventlog,
  ]);
  return { ...agent, port, ak };
}

test('agent run --keylime-api: usage errors exit 2 before anything listens', async () => {
  const ak = join(tmp.dir, 'no-ak');
  for (const argv of [
    ['agent', 'run', '--keylime-api', '--ak', ak], // no --listen
    ['agent', 'run', '--keylime-api', '--listen', '127.0.0.1:0'], // no --ak
    ['agent', 'run', '--keylime-api', '--pull', '--listen', '127.0.0.1:0', '--ak', ak],
    ['agent', 'run', '--keylime-api', '--once', '--listen', '127.0.0.1:0', '--ak', ak],
    ['agent', 'run', '--keylime-api', '--verifier', 'https://v', '--listen', '127.0.0.1:0', '--ak', ak],
  ]) {
    const r = await cli(...argv, '--json');
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.err}${r.out}`);
    assert.equal((JSON.parse(r.out) as { error: { code: string } }).error.code, 'E_USAGE');
  }
});

test('agent run --keylime-api serves Keylime’s API on swtpm; SIGTERM exits 0', async () => {
  await withTpm(async (t) => {
    const { port, child, exited, info, err } = await agentWithNewAk(
      t.selector,
      'ak',
      join(KERNEL, 'binary_bios_measurements'),
    );
    try {
      assert.deepEqual(info, { listening: `http://127.0.0.1:${port}`, api: 'keylime' });
      const get = async (path: string) => {
        const r = await fetch(`${info.listening}${path}`);
        return {
          status: r.status,
          body: (await r.json()) as { code: number; status: string; results: Record<string, unknown> },
        };
      };
      const v = await get('/version');
      assert.equal(v.status, 200);
      assert.equal(v.body.results.supported_version, '2.6');
      const q = await get('/v2.6/quotes/integrity?nonce=abc123XYZ&mask=0x401&partial=0&ima_ml_entry=3');
      assert.equal(q.status, 200, JSON.stringify(q.body));
      const r = q.body.results;
      assert.equal(typeof r.pubkey, 'string');
      assert.equal(r.ima_measurement_list_entry, 3);
      const ascii = readFileSync(join(KERNEL, 'ascii_runtime_measurements'), 'utf8');
      assert.equal(r.ima_measurement_list, `${ascii.split('\n').slice(3).join('\n')}`);
      assert.equal(
        r.mb_measurement_list,
        readFileSync(join(KERNEL, 'binary_bios_measurements')).toString('base64'),
        'PCR 0 asked: the event log is sent',
      );
      const attest = decodeTpmsAttest(
        new Uint8Array(Buffer.from((r.quote as string).slice(1).split(':')[0]!, 'base64')),
      );
      assert.ok(attest.attested.kind === 'quote');
      if (attest.attested.kind === 'quote') {
        assert.deepEqual(
          attest.attested.pcrSelect.map((s) => s.pcrs),
          [[0, 10, 16]],
        );
        assert.equal(Buffer.from(attest.extraData).toString(), 'abc123XYZ');
      }
      // past the end: the whole list from entry 0 (rust-keylime's rule)
      const all = await get('/v2.6/quotes/integrity?nonce=n1&mask=0x400&partial=1&ima_ml_entry=100000');
      assert.equal(all.body.results.ima_measurement_list_entry, 0);
      assert.equal(all.body.results.ima_measurement_list, ascii);
      assert.equal(all.body.results.pubkey, undefined);
      assert.equal(all.body.results.mb_measurement_list, undefined, 'PCR 0 not asked: no event log');
      for (const [path, status] of [
        ['/v2.6/quotes/integrity?nonce=a-b&mask=0x400&partial=0', 400],
        ['/v2.6/quotes/integrity?nonce=ab&mask=0x400&partial=2', 400],
        ['/v2.6/quotes/integrity?nonce=ab&mask=0x1000000&partial=0', 400],
        ['/v2.0/quotes/integrity?nonce=ab&mask=0x400&partial=0', 400],
        ['/v2.6/keys/pubkey', 400],
      ] as const) {
        const e = await get(path);
        assert.equal(e.status, status, path);
        assert.equal(e.body.code, status, path);
        assert.deepEqual(e.body.results, {}, path);
      }
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err());
  });
});

test('fleet add --keylime-agent HOST:PORT --ak FILE --refs FILE [--id UUID]', async () => {
  verifier = await serveVerifier(['--http', '--listen', '127.0.0.1:0', '--data', join(tmp.dir, 'verifier')]);
  const conn = ['--verifier', verifier.url, '--data', join(tmp.dir, 'verifier')];
  // a TPM2B_PUBLIC AK (the one in the Keylime evidence vectors) and a PEM one
  const valid = JSON.parse(
    readFileSync(join(REPO_ROOT, '../verifier/test/fixtures/keylime-evidence/valid.json'), 'utf8'),
  ) as { data: { tpm_ak: string; runtime_policy: string } };
  const akPub = join(tmp.dir, 'ak.pub');
  writeFileSync(akPub, Buffer.from(valid.data.tpm_ak, 'base64'));
  const akPem = join(tmp.dir, 'ak.pem');
  writeFileSync(
    akPem,
    generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
  );
  const refs = join(tmp.dir, 'policy.json');
  writeFileSync(refs, valid.data.runtime_policy);
  const id = '1b2d3c4e-0000-4000-8000-000000000001';

  const add = await cli(
    'fleet',
    'add',
    '--keylime-agent',
    '127.0.0.1:9002',
    '--ak',
    akPub,
    '--refs',
    refs,
    '--id',
    id,
    ...conn,
    '--json',
  );
  assert.equal(add.status, 0, add.err + add.out);
  const a = JSON.parse(add.out) as {
    id: string;
    transport: string;
    pullUrl: string;
    requirePcrs: string;
    referenceSet: string;
    enrolled: boolean;
  };
  assert.deepEqual(
    [a.id, a.transport, a.pullUrl, a.requirePcrs, a.enrolled],
    [id, 'keylime', 'http://127.0.0.1:9002', 'sha256:10', true],
  );
  assert.match(a.referenceSet, /^[0-9a-f]{64}$/);
  const text = await cli(
    'fleet',
    'add',
    '--keylime-agent',
    'agent.example:9002',
    '--ak',
    akPem,
    '--refs',
    refs,
    ...conn,
  );
  assert.equal(text.status, 0, text.err);
  assert.match(
    text.out,
    /^added [0-9a-f-]{36} \(unenrolled\): Keylime agent at agent\.example:9002, PCRs sha256:10, reference set [0-9a-f]{64}\n$/,
  );

  const bad = join(tmp.dir, 'bad.pub');
  writeFileSync(bad, 'not a key');
  for (const [argv, status, code] of [
    [['--keylime-agent', '127.0.0.1:9002', '--refs', refs], 2, 'E_USAGE'], // no --ak
    [['--keylime-agent', '127.0.0.1:9002', '--ak', akPub], 2, 'E_USAGE'], // no --refs
    [['--ak', akPub, '--refs', refs], 2, 'E_USAGE'], // --ak without --keylime-agent
    [['--keylime-agent', '127.0.0.1:9002', '--ak', bad, '--refs', refs], 2, 'E_KEY_PARSE'],
    [['--keylime-agent', '127.0.0.1:9002', '--ak', akPub, '--refs', refs, '--id', id], 1, 'V_AGENT_EXISTS'],
    [
      ['--keylime-agent', '127.0.0.1:9002', '--ak', akPub, '--refs', refs, '--pcrs', 'sha256:0-7'],
      1,
      'V_VALIDATION',
    ],
    [['x1', '--id', 'x2', '--keylime-agent', '127.0.0.1:9002', '--ak', akPub, '--refs', refs], 2, 'E_USAGE'],
  ] as const) {
    const r = await cli('fleet', 'add', ...argv, ...conn, '--json');
    assert.equal(r.status, status, `${argv.join(' ')}: ${r.err}${r.out}`);
    const e = (JSON.parse(r.out) as { error: { code: string; apiCode?: string } }).error;
    // a refusal by the verifier is E_API_REJECTED carrying the verifier's own code
    assert.equal(status === 1 ? e.apiCode : e.code, code, argv.join(' '));
    if (status === 1) assert.equal(e.code, 'E_API_REJECTED');
  }
});

test('end to end through the CLI: verifier serve polls agent run --keylime-api added by fleet add --keylime-agent', async () => {
  await withTpm(async (t) => {
    // the machine: PCR 10 holds the kernel fixture list, as the kernel would have extended it
    const list = parseBinaryList(new Uint8Array(readFileSync(join(KERNEL, 'binary_runtime_measurements'))));
    const tpm = await TpmClient.open(t.selector);
    try {
      for (const e of list)
        await tpm.pcrExtend(10, [
          { hashAlg: 0x0004, digest: templateDigest(e.templateData, 'sha1') },
          { hashAlg: 0x000b, digest: templateDigest(e.templateData, 'sha256') },
        ]);
    } finally {
      await tpm.close();
    }
    const agent = await agentWithNewAk(t.selector, 'ak-e2e', 'none');
    const { port, ak } = agent;
    const data = join(tmp.dir, 'verifier-e2e');
    const v = await serveVerifier([
      '--http',
      '--listen',
      '127.0.0.1:0',
      '--data',
      data,
      '--poll-interval',
      '0.2',
    ]);
    try {
      const conn = ['--verifier', v.url, '--data', data];
      // a flat allowlist of the list's files (one of the forms --refs reads)
      const refs = join(tmp.dir, 'allowlist.txt');
      const ascii = readFileSync(join(KERNEL, 'ascii_runtime_measurements'), 'utf8').trim().split('\n');
      writeFileSync(
        refs,
        ascii
          .map((l) => {
            const f = l.split(' ');
            return `${f[3]} ${f[4]}\n`;
          })
          .join(''),
      );
      const add = await cli(
        'fleet',
        'add',
        '--keylime-agent',
        `127.0.0.1:${port}`,
        '--ak',
        join(ak, 'ak.pub'),
        '--refs',
        refs,
        '--id',
        'kl-e2e',
        '--interval',
        '1',
        ...conn,
        '--json',
      );
      assert.equal(add.status, 0, add.err + add.out);
      let shown: { state: string; stateReason: unknown } = { state: '', stateReason: null };
      for (let i = 0; i < 240 && shown.state !== 'passing' && shown.state !== 'failing'; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const s = await cli('fleet', 'show', 'kl-e2e', ...conn, '--json');
        assert.equal(s.status, 0, s.err);
        shown = JSON.parse(s.out) as typeof shown;
      }
      assert.equal(shown.state, 'passing', JSON.stringify(shown.stateReason));
    } finally {
      await v.stop();
      agent.child.kill('SIGTERM');
      assert.equal(await agent.exited, 0, agent.err());
    }
  });
});
