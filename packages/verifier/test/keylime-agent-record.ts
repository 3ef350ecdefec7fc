/**
 * Records test/fixtures/keylime-agent/*.json: answers of imakit's `--keylime-api` agent (the shapes
 * of rust-keylime's keylime-agent) on a fresh swtpm, with the AK and nonce they answer. Run by hand
 * when the shapes change (`node --import tsx --conditions=source test/keylime-agent-record.ts`); the
 * tests only read the files. Not a test file (no `.test.ts`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBinaryList, parseBinaryList } from 'imakit/core';
import { createAkDir } from '../../imakit/src/host/tpm/ak-files.ts';
import { serveKeylimeApi } from '../../imakit/src/host/agent/keylime-api.ts';
import { SwtpmMachine } from './swtpm-machine.ts';

const OUT = join(import.meta.dirname, 'fixtures/keylime-agent');
const FIXTURE = join(import.meta.dirname, '../../imakit/test/fixtures/kernel/appraise-enforce');
const LIST = parseBinaryList(
  new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements'))),
).slice(0, 5);

const dir = mkdtempSync(join(tmpdir(), 'imakit-keylime-record-'));
const m = await SwtpmMachine.start();
try {
  await createAkDir(m.client, join(dir, 'ak'));
  const listFile = join(dir, 'binary_runtime_measurements');
  writeFileSync(listFile, encodeBinaryList(LIST));
  await m.extend(LIST);
  const agent = await serveKeylimeApi(
    { listen: '127.0.0.1:0', tpm: 'unused', akDir: join(dir, 'ak'), imaList: listFile, eventLog: undefined },
    { tpm: m.client },
  );
  const akPublic = readFileSync(join(dir, 'ak', 'ak.pub')).toString('base64');
  const get = async (path: string) => {
    const r = await fetch(`${agent.url}${path}`);
    return { status: r.status, body: (await r.json()) as unknown };
  };
  const record = async (name: string, path: string, nonce?: string) => {
    const { status, body } = await get(path);
    writeFileSync(
      join(OUT, `${name}.json`),
      `${JSON.stringify({ request: `GET ${path}`, ...(nonce !== undefined && { nonce, akPublic }), status, answer: body }, null, 2)}\n`,
    );
  };
  const n1 = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
  const n2 = '0123456789abcdef0123456789abcdef01234567';
  await record('version', '/version');
  await record(
    'integrity-full',
    `/v2.6/quotes/integrity?nonce=${n1}&mask=0x400&partial=0&ima_ml_entry=0`,
    n1,
  );
  await record(
    'integrity-next',
    `/v2.1/quotes/integrity?nonce=${n2}&mask=0x400&partial=1&ima_ml_entry=${LIST.length}`,
    n2,
  );
  await record('identity', `/v2.6/quotes/identity?nonce=${n1}`, n1);
  await record('bad-nonce', '/v2.6/quotes/integrity?nonce=a-b&mask=0x400&partial=0');
  await record('bad-partial', `/v2.6/quotes/integrity?nonce=${n1}&mask=0x400`);
  await agent.close();
} finally {
  await m.stop();
  rmSync(dir, { recursive: true, force: true });
}
