/**
 * `imakit verifier serve` as a child process on a temp data dir (PGlite), and `imakit fleet …`
 * against it through the real HTTP(S) API: the admin token file (0600), agents added, listed,
 * shown with their state, paused, resumed, deleted, events; the self-signed HTTPS default trusted
 * with --ca DATA/tls.crt (and refused without it); --http refused off loopback; API errors with
 * the verifier's code and exit 1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers.ts';
import { cli } from './in-process-cli.ts';
import { serveVerifier, type ServedVerifier } from './verifier-child.ts';

let data: { dir: string; cleanup: () => void };
let http: ServedVerifier;
before(async () => {
  data = tempDir('imakit-fleet-');
  http = await serveVerifier(['--http', '--listen', '127.0.0.1:0', '--data', join(data.dir, 'http')]);
});
after(async () => {
  await http.stop();
  data.cleanup();
});

test('verifier serve --http on loopback: admin token written 0600, fleet add/list/show/pause/resume/delete/events', async () => {
  const dataDir = join(data.dir, 'http');
  assert.match(http.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(http.info.adminTokenCreated, true);
  const tokenFile = join(dataDir, 'admin-token');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.ok(!existsSync(join(dataDir, 'tls.crt')), 'no certificate made for --http');
  const conn = ['--verifier', http.url, '--data', dataDir];

  const add = await cli([
    'fleet',
    'add',
    'web-1',
    '--name',
    'web one',
    '--pcrs',
    'sha256:0-7,10',
    '--interval',
    '30',
    ...conn,
    '--json',
  ]);
  assert.equal(add.code, 0, add.err + add.out);
  const added = JSON.parse(add.out) as { id: string; state: string; intervalSeconds: number };
  assert.deepEqual([added.id, added.state, added.intervalSeconds], ['web-1', 'unenrolled', 30]);
  assert.equal((await cli(['fleet', 'add', 'web-2', ...conn])).code, 0);

  const list = await cli(['fleet', 'list', ...conn, '--json']);
  assert.equal(list.code, 0, list.err);
  const listed = JSON.parse(list.out) as { total: number; agents: { id: string }[] };
  assert.equal(listed.total, 2);
  assert.deepEqual(listed.agents.map((a) => a.id).sort(), ['web-1', 'web-2']);
  const text = await cli(['fleet', 'list', ...conn]);
  assert.match(text.out, /^web-1\s+unenrolled/m);

  const show = await cli(['fleet', 'show', 'web-1', ...conn, '--json']);
  assert.equal(show.code, 0, show.err);
  assert.equal((JSON.parse(show.out) as { state: string }).state, 'unenrolled');

  const pause = await cli(['fleet', 'pause', 'web-1', '--reason', 'maintenance', ...conn, '--json']);
  assert.equal((JSON.parse(pause.out) as { state: string }).state, 'paused');
  const shown = JSON.parse((await cli(['fleet', 'show', 'web-1', ...conn, '--json'])).out) as {
    state: string;
  };
  assert.equal(shown.state, 'paused');
  const resume = await cli(['fleet', 'resume', 'web-1', ...conn, '--json']);
  assert.equal((JSON.parse(resume.out) as { state: string }).state, 'unenrolled');

  const upd = await cli(['fleet', 'update', 'web-1', '--interval', '120', ...conn, '--json']);
  assert.equal((JSON.parse(upd.out) as { intervalSeconds: number }).intervalSeconds, 120);

  const del = await cli(['fleet', 'delete', 'web-2', ...conn]);
  assert.equal(del.code, 0, del.err);
  const events = JSON.parse((await cli(['fleet', 'events', ...conn, '--json'])).out) as {
    events: { agentId: string; to: string }[];
  };
  const tos = events.events.map((e) => `${e.agentId}:${e.to}`);
  for (const want of ['web-1:unenrolled', 'web-1:paused', 'web-2:deleted'])
    assert.ok(tos.includes(want), want);

  // the verifier's refusal: its code in the message, exit 1; --json gives it as fields
  const missing = await cli(['fleet', 'show', 'web-2', ...conn]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /404 V_NOT_FOUND/);
  const mj = await cli(['fleet', 'show', 'web-2', ...conn, '--json']);
  const e = (JSON.parse(mj.out) as { error: { code: string; status: number; apiCode: string } }).error;
  assert.deepEqual([e.code, e.status, e.apiCode], ['E_API_REJECTED', 404, 'V_NOT_FOUND']);
  // a wrong token: 401 from the verifier, exit 1
  const bad = await cli(['fleet', 'list', '--verifier', http.url, '--token', 'imk_wrong', '--json']);
  assert.equal(bad.code, 1);
  assert.equal((JSON.parse(bad.out) as { error: { status: number } }).error.status, 401);
  // bad input caught before any request: exit 2
  assert.equal((await cli(['fleet', 'add', 'x', '--interval', 'soon', ...conn])).code, 2);
  // no token anywhere: exit 2
  assert.equal(
    (await cli(['fleet', 'list', '--verifier', http.url, '--data', join(data.dir, 'none')])).code,
    2,
  );
});

test('verifier serve: HTTPS by default with a generated certificate that --ca trusts; restart keeps token and certificate', async () => {
  const dataDir = join(data.dir, 'https');
  const s = await serveVerifier(['--listen', '127.0.0.1:0', '--data', dataDir]);
  try {
    assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const crt = join(dataDir, 'tls.crt');
    assert.equal(statSync(join(dataDir, 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'admin-token')).mode & 0o777, 0o600);
    const token = (await import('node:fs')).readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    // --ca and --token: trusted explicitly
    const ok = await cli(['fleet', 'list', '--verifier', s.url, '--token', token, '--ca', crt, '--json']);
    assert.equal(ok.code, 0, ok.err + ok.out);
    // the system store does not know the certificate: refused, exit 5, with the hint
    const refused = await cli(['fleet', 'list', '--verifier', s.url, '--token', token]);
    assert.equal(refused.code, 5);
    assert.match(refused.err, /E_API_UNAVAILABLE/);
    assert.match(refused.err, /--ca/);
    // --data: token and certificate both from the data directory
    const viaData = await cli(['fleet', 'add', 'db-1', '--verifier', s.url, '--data', dataDir]);
    assert.equal(viaData.code, 0, viaData.err);
    assert.equal((await cli(['fleet', 'list', '--verifier', s.url, '--token', token, '--insecure'])).code, 0);
  } finally {
    assert.equal(await s.stop(), 0, 'SIGTERM closes cleanly with exit 0');
  }
  const again = await serveVerifier(['--listen', '127.0.0.1:0', '--data', dataDir]);
  try {
    assert.equal(again.info.adminTokenCreated, false);
    assert.equal((again.info.tls as { created: boolean }).created, false);
    const show = await cli(['fleet', 'show', 'db-1', '--verifier', again.url, '--data', dataDir, '--json']);
    assert.equal((JSON.parse(show.out) as { state: string }).state, 'unenrolled', 'PGlite data kept');
  } finally {
    await again.stop();
  }
});

test('verifier serve --http on a non-loopback address is refused (exit 2, nothing written)', async () => {
  const dir = join(data.dir, 'refused');
  const r = await cli(['verifier', 'serve', '--http', '--listen', '0.0.0.0:0', '--data', dir]);
  assert.equal(r.code, 2);
  assert.match(r.err, /loopback/);
  assert.ok(!existsSync(join(dir, 'admin-token')));
  assert.equal((await cli(['verifier', 'serve', '--listen', 'nonsense', '--data', dir])).code, 2);
});

test('verifier serve --refs-key: fleet refs upload --sig is stored with its signature verified; unsigned or wrongly signed is exit 1 with the code', async () => {
  const dir = join(data.dir, 'signed');
  mkdirSync(dir);
  const pair = (n: string) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, `${n}.pem`), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(dir, `${n}.pub.pem`), publicKey.export({ format: 'pem', type: 'spki' }));
  };
  pair('trusted');
  pair('other');
  const setFile = join(dir, 'allowlist.txt');
  writeFileSync(setFile, `${'ab'.repeat(32)}  /usr/bin/x\n`);
  const sign = async (key: string, out: string) =>
    assert.equal((await cli(['refs', 'sign', setFile, '--key', join(dir, key), '--out', out])).code, 0);
  await sign('trusted.pem', join(dir, 'good.sig'));
  await sign('other.pem', join(dir, 'bad.sig'));
  const served = await serveVerifier([
    '--http',
    '--listen',
    '127.0.0.1:0',
    '--data',
    join(dir, 'data'),
    '--refs-key',
    join(dir, 'trusted.pub.pem'),
  ]);
  try {
    const conn = ['--verifier', served.url, '--data', join(dir, 'data')];
    const good = await cli([
      'fleet',
      'refs',
      'upload',
      setFile,
      '--sig',
      join(dir, 'good.sig'),
      ...conn,
      '--json',
    ]);
    assert.equal(good.code, 0, good.err + good.out);
    assert.equal((JSON.parse(good.out) as { signature: { form: string } }).signature.form, 'detached');
    const text = await cli(['fleet', 'refs', 'upload', setFile, '--sig', join(dir, 'good.sig'), ...conn]);
    assert.match(text.out, /signature verified \(detached\)/);
    const unsigned = await cli(['fleet', 'refs', 'upload', setFile, ...conn, '--json']);
    assert.equal(unsigned.code, 1, unsigned.out);
    assert.match(unsigned.err + unsigned.out, /V_REFS_UNSIGNED/);
    const bad = await cli(['fleet', 'refs', 'upload', setFile, '--sig', join(dir, 'bad.sig'), ...conn]);
    assert.equal(bad.code, 1);
    assert.match(bad.err + bad.out, /V_REFS_SIGNATURE/);
  } finally {
    await served.stop();
  }
  const missing = await cli(['verifier', 'serve', '--http', '--refs-key', join(dir, 'absent.pem')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.err, /absent\.pem/);
});
