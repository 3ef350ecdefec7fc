/**
 * Interop check (dev-time, not CI): Keylime's REAL verifier attests an imakit `--keylime-api` agent.
 *
 *  1. a keylime_verifier from a Keylime source tree (KEYLIME_SRC) with its default configs
 *     (KEYLIME_CONF, as Keylime's `convert_config --defaults` writes them) copied and changed only
 *     where this needs: its own port and directory, `enable_agent_mtls = False` (the agent speaks
 *     plain HTTP), `quote_interval = 1`, one worker;
 *  2. a swtpm with an AK made by imakit (createAkDir, as `imakit tpm ak create`), PCR 10 extended
 *     with a real kernel's measurement list (test fixture appraise-enforce), and imakit's agent
 *     serving Keylime's API over that list (`serveKeylimeApi`, as `imakit agent run --keylime-api`);
 *  3. the agent added through the verifier's REST API (`POST /v2.6/agents/ID`, what `keylime_tenant
 *     -c add` sends) with the AK as TPM2B_PUBLIC, tpm_policy mask 0x400 (PCR 10) and a runtime
 *     policy allowing the list's files;
 *  4. watched: `GET /v2.6/agents/ID` until the verifier has attested it several times in state
 *     "Get Quote"; then an entry the policy does not allow is appended to the list (and extended
 *     into PCR 10) and the verifier must move the agent to a failed state.
 *
 * Prints what the verifier reported (states, attestation counts, its log lines about the agent)
 * and exits 0 when both happened, 1 when not. Without a Keylime tree it prints "not run" and exits 0.
 *
 * Run: KEYLIME_SRC=DIR KEYLIME_CONF=DIR node --import tsx --conditions=source bench/keylime-interop.ts
 * Needs /usr/bin/python3 with Keylime's Debian dependencies, curl, swtpm and swtpm_setup.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TpmClient } from '../src/host/tpm/client.ts';
import { createAkDir } from '../src/host/tpm/ak-files.ts';
import { freePortPair, manufactureSwtpm, startSwtpm } from '../src/host/tpm/swtpm-process.ts';
import { serveKeylimeApi } from '../src/host/agent/keylime-api.ts';
import { encodeBinaryList, parseBinaryList, type UntrustedEntry } from '../src/core/ima-list/binary.ts';
import { decodeTemplateFields } from '../src/core/ima-list/fields.ts';
import { lookupTemplate } from '../src/core/ima-list/templates.ts';
import { XATTR_TYPE, signatureVersionOf } from '../src/core/labels/signature-header.ts';
import { referencesFromEntries } from '../src/core/refs/from-list.ts';
import { writeKeylimePolicy } from '../src/core/refs/keylime-policy.ts';
import { imaNgData, imaNgEntry } from '../test/unit/core/ima-list/build-list.ts';
import { templateDigest } from '../src/core/ima-list/template-digest.ts';

const SRC = process.env.KEYLIME_SRC;
const CONF = process.env.KEYLIME_CONF;
if (SRC === undefined || CONF === undefined || !existsSync(join(SRC, 'keylime/cmd/verifier.py'))) {
  console.log(
    'keylime-interop: not run (set KEYLIME_SRC to a Keylime 7.14 source tree and KEYLIME_CONF to its default configs)',
  );
  process.exit(0);
}
const FIXTURE = join(import.meta.dirname, '../test/fixtures/kernel/appraise-enforce');

/** The entry's `sig` field holds an evmctl v1 signature (type 0x03, version 1). */
function hasV1Signature(e: UntrustedEntry): boolean {
  const tpl = lookupTemplate(e.templateName);
  const sig = tpl && decodeTemplateFields(tpl, e.templateData, 'le', e.offset).find((f) => f.id === 'sig');
  return (
    sig !== undefined &&
    sig.data.length >= 2 &&
    sig.data[0] === XATTR_TYPE.DIGSIG &&
    signatureVersionOf(sig.data) === 1
  );
}
// The two entries carrying an evmctl v1 signature are left out: Keylime 7.14 cannot parse v1
// signatures ("Invalid signature: malformed header") and then stops replaying the list.
const LIST = parseBinaryList(
  new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements'))),
).filter((e) => !hasV1Signature(e));
const TPM_SHA1 = 0x0004;
const TPM_SHA256 = 0x000b;
const STATE_NAMES: Record<number, string> = {
  0: 'Registered',
  1: 'Start',
  2: 'Saved',
  3: 'Get Quote',
  4: 'Get Quote (retry)',
  5: 'Provide V',
  6: 'Provide V (retry)',
  7: 'Failed',
  8: 'Terminated',
  9: 'Invalid Quote',
  10: 'Tenant Quote Failed',
};

const work = mkdtempSync(join(tmpdir(), 'imakit-keylime-interop-'));
const cleanups: (() => Promise<void> | void)[] = [];
const log = (s: string): void => console.log(`keylime-interop: ${s}`);

/** A Keylime runtime policy allowing every path of the list with its digest (as `imakit refs from-list --format keylime`). */
function runtimePolicy(): string {
  return writeKeylimePolicy(referencesFromEntries(LIST).set).text;
}

async function extend(tpm: TpmClient, entries: readonly { templateData: Uint8Array }[]): Promise<void> {
  for (const e of entries)
    await tpm.pcrExtend(10, [
      { hashAlg: TPM_SHA1, digest: templateDigest(e.templateData, 'sha1') },
      { hashAlg: TPM_SHA256, digest: templateDigest(e.templateData, 'sha256') },
    ]);
}

/** The verifier's REST API with its generated client certificate (curl: Keylime's mTLS). */
function api(port: number, method: string, path: string, body?: unknown): { status: number; json: unknown } {
  const ca = join(work, 'kl', 'cv_ca');
  const args = [
    '-sk',
    '-o',
    '-',
    '-w',
    '\n%{http_code}',
    '-X',
    method,
    '--cert',
    join(ca, 'client-cert.crt'),
    '--key',
    join(ca, 'client-private.pem'),
  ];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
  args.push(`https://127.0.0.1:${port}${path}`);
  const r = spawnSync('curl', args, {
    input: body === undefined ? undefined : JSON.stringify(body),
    encoding: 'utf8',
  });
  const nl = r.stdout.lastIndexOf('\n');
  let json: unknown;
  try {
    json = JSON.parse(r.stdout.slice(0, nl));
  } catch {
    json = r.stdout.slice(0, nl);
  }
  return { status: Number(r.stdout.slice(nl + 1)), json };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  // 1. the verifier
  const kl = join(work, 'kl');
  const conf = join(work, 'conf');
  cpSync(CONF!, conf, { recursive: true });
  const port = await freePortPair();
  const vconf = join(conf, 'verifier.conf');
  let text = readFileSync(vconf, 'utf8');
  const set = (key: string, value: string): void => {
    const re = new RegExp(`^${key}\\s*=.*$`, 'm');
    if (!re.test(text)) throw new Error(`verifier.conf has no ${key}`);
    text = text.replace(re, `${key} = ${value}`);
  };
  set('port', String(port));
  set('enable_agent_mtls', 'False');
  set('quote_interval', '1');
  set('num_workers', '1');
  writeFileSync(vconf, text);
  const vlog = join(work, 'verifier.log');
  const env = {
    ...process.env,
    KEYLIME_DIR: kl,
    KEYLIME_VERIFIER_CONFIG: vconf,
    KEYLIME_LOGGING_CONFIG: join(conf, 'logging.conf'),
    KEYLIME_CA_CONFIG: join(conf, 'ca.conf'),
    PYTHONPATH: SRC!,
  };
  mkdirSync(kl, { recursive: true });
  const out = openSync(vlog, 'a');
  const verifier = spawn('/usr/bin/python3', ['-m', 'keylime.cmd.verifier'], {
    cwd: kl,
    env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  cleanups.push(async () => {
    // the verifier forks workers into its process group: end the group we started
    try {
      process.kill(-verifier.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 40 && verifier.exitCode === null; i++) await sleep(250);
    try {
      process.kill(-verifier.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  let up = false;
  for (let i = 0; i < 120 && !up; i++) {
    await sleep(500);
    up = spawnSync('curl', ['-sk', `https://127.0.0.1:${port}/version`]).status === 0;
  }
  if (!up) throw new Error(`the verifier did not come up: ${readFileSync(vlog, 'utf8').slice(-2000)}`);
  log(`keylime_verifier up on 127.0.0.1:${port} (pid ${verifier.pid}), agent mTLS off`);

  // 2. the machine: swtpm, AK, PCR 10 with the list, the agent
  const state = await manufactureSwtpm(join(work, 'tpm'), ['sha1', 'sha256']);
  const sw = await startSwtpm(state.stateDir, join(work, 'swtpm.log'));
  cleanups.push(() => sw.stop());
  const tpm = await TpmClient.open(sw.selector);
  cleanups.push(() => tpm.close());
  const akDir = join(work, 'ak');
  await createAkDir(tpm, akDir);
  const listFile = join(work, 'binary_runtime_measurements');
  writeFileSync(listFile, encodeBinaryList(LIST));
  await extend(tpm, LIST);
  const agentPort = await freePortPair();
  const agent = await serveKeylimeApi(
    { listen: `127.0.0.1:${agentPort}`, tpm: sw.selector, akDir, imaList: listFile, eventLog: undefined },
    { tpm, onError: (e) => log(`agent: quote failed: ${String(e)}`) },
  );
  cleanups.push(() => agent.close());
  log(`imakit agent (--keylime-api) on ${agent.url}, ${LIST.length} entries in its list`);

  // 3. add it, as keylime_tenant -c add does
  const id = randomUUID();
  const body = {
    v: null,
    cloudagent_ip: '127.0.0.1',
    cloudagent_port: String(agentPort),
    tpm_policy: JSON.stringify({ mask: '0x400' }),
    runtime_policy: Buffer.from(runtimePolicy()).toString('base64'),
    runtime_policy_name: '',
    runtime_policy_key: '',
    mb_policy: null,
    mb_policy_name: '',
    ima_sign_verification_keys: '',
    metadata: JSON.stringify({}),
    revocation_key: '',
    accept_tpm_hash_algs: ['sha512', 'sha384', 'sha256'],
    accept_tpm_encryption_algs: ['ecc', 'rsa'],
    accept_tpm_signing_algs: ['ecschnorr', 'rsassa'],
    ak_tpm: readFileSync(join(akDir, 'ak.pub')).toString('base64'),
    mtls_cert: 'disabled',
    supported_version: '2.6',
  };
  const add = api(port, 'POST', `/v2.6/agents/${id}`, body);
  log(`POST /v2.6/agents/${id} → ${add.status} ${JSON.stringify(add.json)}`);
  if (add.status !== 200) return 1;

  const watch = async (until: (s: { state: number; count: number }) => boolean, ms: number) => {
    const seen: string[] = [];
    const end = Date.now() + ms;
    let last = { state: -1, count: 0, severity: null as unknown, event: null as unknown };
    while (Date.now() < end) {
      const r = api(port, 'GET', `/v2.6/agents/${id}`);
      const res = (r.json as { results?: Record<string, unknown> }).results ?? {};
      last = {
        state: Number(res.operational_state),
        count: Number(res.attestation_count ?? 0),
        severity: res.severity_level ?? null,
        event: res.last_event_id ?? null,
      };
      const line = `${STATE_NAMES[last.state] ?? last.state}, attestation_count ${last.count}${last.event !== null ? `, last_event_id ${String(last.event)}` : ''}`;
      if (seen[seen.length - 1] !== line) seen.push(line);
      if (until(last)) break;
      await sleep(500);
    }
    return { last, seen };
  };

  // 4a. it must pass, repeatedly
  const pass = await watch((s) => s.state === 3 && s.count >= 3, 60_000);
  for (const l of pass.seen) log(`verifier says: ${l}`);
  const passed = pass.last.state === 3 && pass.last.count >= 3;
  log(
    passed
      ? `PASS: Keylime attested the imakit agent ${pass.last.count} times`
      : 'Keylime did NOT attest the agent',
  );

  // 4b. a file outside the policy runs: the verifier must fail the agent
  const evil = imaNgEntry(imaNgData('sha256', new Uint8Array(32).fill(0xee), '/usr/bin/evil'));
  appendFileSync(listFile, encodeBinaryList([evil]));
  await extend(tpm, [evil]);
  log('appended /usr/bin/evil (not in the runtime policy) to the list and PCR 10');
  const fail = await watch((s) => s.state === 7 || s.state === 9, 60_000);
  for (const l of fail.seen) log(`verifier says: ${l}`);
  const failed = fail.last.state === 7 || fail.last.state === 9;
  log(
    failed
      ? `PASS: Keylime failed the agent (${STATE_NAMES[fail.last.state]})`
      : 'Keylime did NOT fail the agent',
  );

  const lines = readFileSync(vlog, 'utf8')
    .split('\n')
    .filter((l) => l.includes(id) || /allowlist|evil|PCR|quote|IMA/i.test(l))
    .slice(-40);
  log('verifier log lines about the agent (last 40):');
  for (const l of lines) console.log(`  ${l}`);
  return passed && failed ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`keylime-interop: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
} finally {
  for (const c of cleanups.reverse()) await c();
  if (process.env.KEEP === '1') log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(code);
