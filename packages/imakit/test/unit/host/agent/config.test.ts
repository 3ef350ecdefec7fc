/**
 * The agent's configuration (flags > file > defaults), its file formats, the list read from an
 * offset (never the bytes before it), the boot count and the backoff schedule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  openSync,
  closeSync,
  ftruncateSync,
  writeSync,
  writeFileSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from '../../../helpers.ts';
import {
  AGENT_DEFAULTS,
  isLoopbackHost,
  mergeAgentOptions,
  parseAgentConfigFile,
  parseListen,
} from '../../../../src/host/agent/config.ts';
import { bootCount, readListFrom } from '../../../../src/host/agent/evidence.ts';
import { backoffMs } from '../../../../src/host/agent/attest.ts';
import { flagSettings } from '../../../../src/cli/commands/agent.ts';
import { isImakitError } from '../../../../src/errors.ts';

const base = { verifier: 'https://v.example:8443', id: 'host-1' };

test('mergeAgentOptions: flags over file over defaults, for each kind of setting', () => {
  const file = parseAgentConfigFile(
    '# agent\n[agent]\nverifier = https://file.example:8443\nid = from-file\ninterval = 30\ntpm = "swtpm:127.0.0.1:2321"\ninsecure = yes\n',
    'agent.conf',
  );
  const onlyFile = mergeAgentOptions({}, file);
  assert.equal(onlyFile.verifier, 'https://file.example:8443');
  assert.equal(onlyFile.id, 'from-file');
  assert.equal(onlyFile.intervalSeconds, 30);
  assert.equal(onlyFile.tpm, 'swtpm:127.0.0.1:2321');
  assert.equal(onlyFile.tls.insecure, true);
  assert.equal(onlyFile.imaList, AGENT_DEFAULTS['ima-list'], 'default where neither says');
  assert.equal(onlyFile.akDir, '/var/lib/imakit/agent/ak', 'AK dir follows the state dir');

  const flags = flagSettings({ id: 'from-flag', interval: '5', insecure: undefined, state: '/tmp/s' });
  const both = mergeAgentOptions(flags, file);
  assert.equal(both.id, 'from-flag');
  assert.equal(both.intervalSeconds, 5);
  assert.equal(both.verifier, 'https://file.example:8443', 'an unset flag does not override the file');
  assert.equal(both.tls.insecure, true);
  assert.equal(both.akDir, '/tmp/s/ak');
  assert.ok(Object.isFrozen(both) && Object.isFrozen(both.tls));

  assert.equal(mergeAgentOptions(base).intervalSeconds, 60);
  assert.equal(mergeAgentOptions({ ...base, eventlog: 'none' }).eventLog, undefined);
});

test('config files: JSON and key = value; unknown keys and bad lines name the line', () => {
  const j = parseAgentConfigFile(
    '{ "verifier": "https://j:1", "id": "j", "interval": 10, "insecure": false }',
    'a.json',
  );
  assert.equal(mergeAgentOptions({}, j).intervalSeconds, 10);
  const err = (f: () => unknown): { code: string; line?: number } => {
    try {
      f();
    } catch (e) {
      assert.ok(isImakitError(e));
      return { code: e.code, ...(e.context.line !== undefined ? { line: e.context.line } : {}) };
    }
    assert.fail('no error');
  };
  assert.deepEqual(
    err(() => parseAgentConfigFile('id = a\nverfier = x\n', 'c')),
    { code: 'E_USAGE', line: 2 },
  );
  assert.deepEqual(
    err(() => parseAgentConfigFile('id a\n', 'c')),
    { code: 'E_USAGE', line: 1 },
  );
  assert.equal(err(() => parseAgentConfigFile('{ "id": [1] }', 'c')).code, 'E_USAGE');
  assert.equal(err(() => parseAgentConfigFile('{ nope', 'c')).code, 'E_USAGE');
});

test('mergeAgentOptions refuses what an agent cannot run with', () => {
  const field = (s: Record<string, string | number>): string | undefined => {
    try {
      mergeAgentOptions(s);
    } catch (e) {
      assert.ok(isImakitError(e, 'E_USAGE'));
      return e.context.field;
    }
    return undefined;
  };
  assert.equal(field({ id: 'x' }), 'verifier');
  assert.equal(field({ verifier: 'https://v' }), 'id');
  assert.equal(field({ ...base, verifier: 'ftp://v' }), 'verifier');
  assert.equal(field({ ...base, id: 'has space' }), 'id');
  assert.equal(field({ ...base, interval: 0 }), 'interval');
  assert.equal(field({ ...base, interval: '1.5' }), 'interval');
  assert.equal(field({ ...base, ek: 'dsa' }), 'ek');
  assert.equal(field({ ...base, insecure: 'maybe' }), 'insecure');
});

test('parseListen and loopback', () => {
  assert.deepEqual(parseListen('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(
    () => parseListen('8443'),
    (e) => isImakitError(e, 'E_USAGE'),
  );
  assert.throws(
    () => parseListen('h:70000'),
    (e) => isImakitError(e, 'E_USAGE'),
  );
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com']) assert.ok(!isLoopbackHost(h), h);
});

test('readListFrom reads only from the offset: a 4 GiB sparse prefix is never read', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'list');
    const fd = openSync(p, 'w');
    const prefix = 4 * 1024 * 1024 * 1024;
    ftruncateSync(fd, prefix);
    writeSync(fd, Buffer.from('tail entries'), 0, 12, prefix);
    closeSync(fd);
    // a whole read would take seconds and 4 GiB; the 1 MiB cap proves nothing before the offset was read
    const s = readListFrom(p, prefix, 1 << 20);
    assert.equal(Buffer.from(s.bytes).toString(), 'tail entries');
    assert.equal(s.offsetBytes, prefix);
    assert.equal(s.capped, false);
    const capped = readListFrom(p, prefix + 2, 4);
    assert.deepEqual([Buffer.from(capped.bytes).toString(), capped.capped], ['il e', true]);
    assert.equal(readListFrom(p, prefix + 100).bytes.length, 0, 'past the end (a reboot): nothing');
    assert.throws(
      () => readListFrom(p, -1),
      (e) => isImakitError(e, 'E_USAGE'),
    );
    assert.throws(
      () => readListFrom(join(dir, 'missing'), 0),
      (e) => isImakitError(e, 'E_IO_READ'),
    );
  } finally {
    cleanup();
  }
});

test('bootCount: 1 on first run, unchanged for the same boot id, +1 when it changes; state 0600', () => {
  const { dir, cleanup } = tempDir();
  try {
    const id = join(dir, 'boot_id');
    writeFileSync(id, 'aaaa\n');
    assert.equal(bootCount(id, join(dir, 's')), 1);
    assert.equal(bootCount(id, join(dir, 's')), 1);
    writeFileSync(id, 'bbbb\n');
    assert.equal(bootCount(id, join(dir, 's')), 2);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 's/boot.json'), 'utf8')), {
      bootId: 'bbbb',
      count: 2,
    });
    assert.equal(statSync(join(dir, 's/boot.json')).mode & 0o777, 0o600);
  } finally {
    cleanup();
  }
});

test('backoffMs: doubles to the cap, jitter within [base/2, base]', () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => backoffMs(n, 300, () => 1)),
    [2000, 4000, 8000, 16000],
  );
  assert.equal(
    backoffMs(20, 300, () => 1),
    300_000,
  );
  assert.equal(
    backoffMs(20, 300, () => 0),
    150_000,
  );
  assert.equal(
    backoffMs(1000, 300, () => 0.5),
    225_000,
  );
});

test('contrib/agent.conf.example parses and resolves; the unit runs the agent with that file', () => {
  const p = join(REPO_ROOT, 'contrib/agent.conf.example');
  const c = mergeAgentOptions({}, parseAgentConfigFile(readFileSync(p, 'utf8'), p));
  assert.equal(c.verifier, 'https://verifier.example:8443');
  assert.equal(c.id, 'web-01');
  assert.equal(c.tls.ca, '/etc/imakit/verifier.crt');
  assert.equal(c.listen, undefined);
  const unit = readFileSync(join(REPO_ROOT, 'contrib/imakit-agent.service'), 'utf8');
  assert.match(unit, /^ExecStart=imakit agent run --config \/etc\/imakit\/agent\.conf$/m);
  assert.match(unit, /^StateDirectory=imakit\/agent$/m, 'the state dir default of the config');
  assert.match(unit, /^NoNewPrivileges=yes$/m);
});
