/**
 * The dashboard in Debian's Chromium against a real `imakit verifier serve --http` (a child
 * process, PGlite in a temp dir, serving the built dashboard it finds installed beside imakit) and
 * a real agent on swtpm driven through the CLI, as an operator would use them:
 *
 *   refs from-list → fleet refs upload → fleet add → agent enrol → agent run --once: the overview
 *   shows one passing agent; an entry the set refuses appended to the list and extended into PCR 10,
 *   the agent's next attestation: the open overview shows the failure (live, no reload) within one
 *   attestation interval, grouped by its cause; the agent page names the file and the entry; the
 *   IMA list marks the entry refused; the impact preview of a set that allows the file says the
 *   agent would pass; pause, resume, assign, delete and acknowledge change state through the API.
 *
 * Then the same data directory is opened in process with a read token: the read-only state and an
 * API error shown with its code. Screenshots of each page go to a temporary directory (printed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildApp, createToken, openDatabase, type App } from '@imakit/verifier';
import { FIXTURES_DIR, tempDir } from '../../imakit/test/helpers.ts';
import { startTestTpm, type TestTpm } from '../../imakit/test/unit/tpm-helpers.ts';
import { serveVerifier, type ServedVerifier } from '../../imakit/test/unit/cli/verifier-child.ts';
import { imaNgData } from '../../imakit/test/unit/core/ima-list/build-list.ts';
import { cli } from '../../imakit/test/unit/cli/in-process-cli.ts';
import { agentFlags as agentTestFlags } from '../../imakit/test/unit/cli/agent-flags.ts';
import { TpmClient } from '../../imakit/src/host/tpm/client.ts';
import { TPM_ALG } from '../../imakit/src/core/tpm/constants.ts';
import {
  detectListFormat,
  encodeBinaryList,
  parseBinaryList,
  type UntrustedEntry,
} from '../../imakit/src/core/ima-list/binary.ts';
import { installedDashboardDir } from '../../imakit/src/cli/commands/verifier.ts';
import { ensureBuilt, launchChromium, screenshotDir } from './browser.ts';

const FIXTURE = join(FIXTURES_DIR, 'kernel/evm-fix-hmac');
const LIST = new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements')));
const FORMAT = detectListFormat(LIST.subarray(0, 65536)).format;
const ENTRIES = parseBinaryList(LIST, FORMAT);
const EVIL_PATH = '/usr/bin/not-in-the-set';
const sha = (alg: string, b: Uint8Array): Uint8Array => new Uint8Array(createHash(alg).update(b).digest());
const EVIL_DATA = imaNgData('sha256', new Uint8Array(randomBytes(32)), EVIL_PATH);
const EVIL: UntrustedEntry = {
  index: ENTRIES.length,
  offset: LIST.length,
  pcr: 10,
  digest: sha('sha1', EVIL_DATA),
  templateName: 'ima-ng',
  templateData: EVIL_DATA,
};
const EVIL_BYTES = encodeBinaryList([EVIL], FORMAT);
/** the verifier's default attestation interval (s): the failure must show within one */
const INTERVAL_S = 60;

let ws: { dir: string; cleanup: () => void };
let tpm: TestTpm;
let client: TpmClient;
let verifier: ServedVerifier | undefined;
let browser: Browser;
let shots = '';
let data = '';
let listFile = '';
let conn: string[] = [];
let agentFlags: string[] = [];
let admin = '';

async function ok(argv: string[]): Promise<string> {
  const r = await cli(argv);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.err}${r.out}`);
  return r.out;
}

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

/** The API as the CLI's token sees it. */
async function apiGet<T>(base: string, path: string, token = admin): Promise<{ status: number; body: T }> {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as T };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('header.top');
}

before(async () => {
  ensureBuilt();
  assert.ok(installedDashboardDir() !== undefined, 'the built dashboard is found beside imakit');
  ws = tempDir('imakit-dashboard-e2e-');
  shots = screenshotDir();
  data = join(ws.dir, 'verifier');
  [verifier, tpm, browser] = await Promise.all([
    serveVerifier(['--http', '--listen', '127.0.0.1:0', '--data', data]),
    startTestTpm(),
    launchChromium(),
  ]);
  assert.equal(verifier.info.dashboard, `${verifier.url}/`, 'verifier serve says where the dashboard is');
  client = await TpmClient.open(tpm.selector);
  admin = readFileSync(join(data, 'admin-token'), 'utf8').trim();
  conn = ['--verifier', verifier.url, '--data', data];
  ({ flags: agentFlags, listFile } = agentTestFlags({
    verifier: verifier.url,
    tpm: tpm.selector,
    dir: ws.dir,
    bootId: 'c0ffee00-0000-4000-8000-000000000002',
    eventlog: 'none',
    akDir: true,
  }));
});
after(async () => {
  await browser?.close();
  await client?.close();
  tpm?.stop();
  if (verifier !== undefined) await verifier.stop();
  ws?.cleanup();
  console.log(`# dashboard screenshots: ${shots}`);
});

test('enrol → passing; a changed file → failing live, explained; impact preview; actions', async () => {
  const base = verifier!.url;
  // the set learned from the list; the agent added with it, enrolled and attested: passing
  const refsFile = join(ws.dir, 'learned.refs');
  await ok(['refs', 'from-list', join(FIXTURE, 'binary_runtime_measurements'), '--out', refsFile]);
  const set = JSON.parse(
    await ok(['fleet', 'refs', 'upload', refsFile, '--name', 'evm-fix-hmac', ...conn, '--json']),
  ).id as string;
  await ok(['fleet', 'add', 'host-1', '--reference-set', set, ...conn, '--json']);
  await ok(['fleet', 'add', 'host-2', ...conn, '--json']);
  await ok(['agent', 'enrol', ...agentFlags, '--json']);
  writeFileSync(listFile, LIST);
  await extend(ENTRIES);
  await ok(['agent', 'run', '--once', ...agentFlags, '--json']);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/dashboard/stream')) errors.push(`${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) errors.push(`a request left the verifier: ${r.url()}`);
  });
  await signIn(page, base, admin);
  const count = (state: string) => page.locator(`a.count[data-state=${state}] .n`);
  await page.waitForFunction(
    () => document.querySelector('a.count[data-state=passing] .n')?.textContent === '1',
  );
  assert.equal(await count('failing').textContent(), '0');
  assert.equal(await count('unenrolled').textContent(), '1');
  await page.waitForSelector('.live.on');
  await shot(page, 'overview-passing');

  // a file the set does not allow is measured: the agent's next attestation fails, and the open
  // overview shows it through the event stream, without a reload
  appendFileSync(listFile, EVIL_BYTES);
  await extend([EVIL]);
  const t0 = Date.now();
  const second = await cli(['agent', 'run', '--once', ...agentFlags, '--json']);
  assert.equal(second.code, 1, second.err + second.out);
  await page.waitForFunction(
    () => document.querySelector('a.count[data-state=failing] .n')?.textContent === '1',
    null,
    {
      timeout: INTERVAL_S * 1000,
    },
  );
  const shownAfterMs = Date.now() - t0;
  assert.ok(shownAfterMs < INTERVAL_S * 1000, `shown after ${shownAfterMs} ms`);
  console.log(
    `# the failure was on the open overview ${shownAfterMs} ms after the agent's attestation began`,
  );
  const cause = page.locator('#causes li.cause').first();
  await cause.waitFor();
  const causeText = (await cause.textContent()) ?? '';
  assert.match(causeText, /1 host/);
  assert.match(causeText, /unknown-path/);
  assert.ok(causeText.includes(EVIL_PATH), causeText);
  assert.match((await page.locator('#feed').textContent()) ?? '', /host-1.*passing → failing/s);
  await shot(page, 'overview-failing');

  // the agent page names the file and the entry
  await page.click(`#causes li.cause a[href*="agents/host-1"]`);
  await page.waitForSelector('.failure');
  const failure = (await page.locator('.failure').textContent()) ?? '';
  assert.match(failure, new RegExp(EVIL_PATH));
  assert.match(failure, new RegExp(`#${ENTRIES.length}\\b`));
  assert.match(failure, new RegExp(`at byte ${LIST.length.toLocaleString('en-US')}`));
  assert.match(failure, /unknown-path/);
  assert.match(failure, /to pass/);
  assert.match(page.url(), /#\/agents\/host-1\?tab=failure/);
  await shot(page, 'agent-failure');

  // its IMA list: the entry marked and refused; the search finds it
  await page.click('.failure a[href*="tab=ima"]');
  const row = page.locator(`tr[data-entry="${ENTRIES.length}"]`);
  await row.waitFor();
  assert.match((await row.getAttribute('class')) ?? '', /refused.*marked/);
  assert.match((await row.textContent()) ?? '', new RegExp(EVIL_PATH));
  await page.goto(`${base}/#/agents/host-1?tab=ima`);
  await page.waitForSelector('table.ima tbody tr');
  assert.match(
    (await page.locator('#ima').textContent()) ?? '',
    new RegExp(`${ENTRIES.length + 1} entries stored`),
  );
  await shot(page, 'agent-ima');

  // PCRs: what the quote covered is marked quoted
  await page.goto(`${base}/#/agents/host-1?tab=pcrs`);
  await page.waitForSelector('table.pcrs');
  assert.equal(await page.locator('tr[data-pcr="sha256:10"] .badge.quoted').count(), 1);
  await shot(page, 'agent-pcrs');
  await page.goto(`${base}/#/agents/host-1?tab=timeline`);
  await page.waitForSelector('.strip .tick.fail');
  await shot(page, 'agent-timeline');

  // a set that allows the file: the impact preview says host-1 would pass; then assign it
  const fixedFile = join(ws.dir, 'fixed.refs');
  await ok(['refs', 'from-list', listFile, '--out', fixedFile]);
  const fixed = JSON.parse(
    await ok(['fleet', 'refs', 'upload', fixedFile, '--name', 'fixed', ...conn, '--json']),
  ).id as string;
  await page.goto(`${base}/#/refs/${fixed}?impact=host-1`);
  await page.click('#impact button[type=submit]');
  const impact = page.locator('.impact');
  await impact.waitFor();
  assert.equal(await impact.getAttribute('data-would-pass'), '1');
  assert.equal(await impact.getAttribute('data-would-fail'), '0');
  assert.match((await impact.textContent()) ?? '', /would pass/);
  await shot(page, 'refs-impact');
  // and the old set on the same agent would fail, naming the entry
  await page.goto(`${base}/#/refs/${set}?impact=host-1`);
  await page.click('#impact button[type=submit]');
  await page.locator('.impact').waitFor();
  assert.equal(await page.locator('.impact').getAttribute('data-would-fail'), '1');
  assert.match(
    (await page.locator('.impact').textContent()) ?? '',
    new RegExp(`#${ENTRIES.length}.*${EVIL_PATH}`, 's'),
  );
  await page.goto(`${base}/#/refs/${set}/diff/${fixed}`);
  await page.waitForSelector('main table');
  assert.match((await page.locator('main').textContent()) ?? '', /1 paths added/);
  await shot(page, 'refs-diff');

  // actions, through the same API: pause, resume, assign, delete, acknowledge
  await page.goto(`${base}/#/agents/host-1`);
  await page.click('.actions button:text("pause")');
  await page.waitForSelector('h1 .badge.s-paused');
  assert.equal((await apiGet<{ state: string }>(base, '/v1/agents/host-1')).body.state, 'paused');
  await page.click('.actions button:text("resume")');
  await page.waitForSelector('.actions button:text("pause")');
  assert.notEqual((await apiGet<{ state: string }>(base, '/v1/agents/host-1')).body.state, 'paused');
  await page.selectOption('.actions select', fixed);
  await page.click('.actions button:text("assign")');
  await page.waitForFunction(() => document.querySelector('main dl.facts')?.textContent?.includes('fixed'));
  assert.equal((await apiGet<{ referenceSet: string }>(base, '/v1/agents/host-1')).body.referenceSet, fixed);
  // the assigned set passes the agent's next attestation
  await ok(['agent', 'run', '--once', ...agentFlags, '--json']);
  assert.equal((await apiGet<{ state: string }>(base, '/v1/agents/host-1')).body.state, 'passing');
  page.once('dialog', (d) => void d.accept());
  await page.goto(`${base}/#/agents/host-2`);
  await page.click('.actions button.danger');
  await page.waitForURL(/#\/agents$/);
  assert.equal((await apiGet(base, '/v1/agents/host-2')).status, 404);
  await page.goto(`${base}/#/events`);
  const ack = page.locator('tr[data-event] button:text("acknowledge")').first();
  await ack.waitFor();
  const evId = Number(await page.locator('tr[data-event]:has(button)').first().getAttribute('data-event'));
  await ack.click();
  await page.waitForSelector(`tr[data-event="${evId}"] >> text=yes`);
  const events = await apiGet<{ events: { id: number; acknowledged: boolean }[] }>(
    base,
    '/v1/events?limit=1000',
  );
  assert.equal(events.body.events.find((e) => e.id === evId)?.acknowledged, true);
  await shot(page, 'events');
  // keyboard: ↓ moves to the next row, Enter opens the row's link
  await page.locator('tr[data-event]').first().focus();
  await page.keyboard.press('ArrowDown');
  const next = await page.locator('tr[data-event]').nth(1).getAttribute('data-event');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-event') ?? null), next);
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/agents\/host-\d$/);

  // agents table, narrow window
  await page.goto(`${base}/#/agents`);
  await page.waitForSelector('tr[data-agent="host-1"]');
  await shot(page, 'agents');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/#/`);
  await page.waitForSelector('a.count[data-state=passing]');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the overview fits a narrow window (${overflow} px too wide)`);
  await shot(page, 'overview-narrow');
  assert.deepEqual(errors, []);
  await page.close();
});

test('read-only token: everything visible, nothing changeable; API errors shown with their code', async () => {
  // the same data, opened in process after the served verifier stopped, with a read token
  assert.equal(await verifier!.stop(), 0);
  verifier = undefined;
  const database = await openDatabase({ kind: 'pglite', dataDir: join(data, 'db') });
  const read = await createToken(database.db, 'read');
  const app: App = await buildApp({ database, dashboardDir: installedDashboardDir()! });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    // a viewer in Tokyo sees times in Tokyo's zone
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: 'Asia/Tokyo' });
    // a token the verifier does not know: the login page says why, with the code
    await page.goto(`${base}/`);
    await page.fill('input[name=token]', 'imk_not-a-token');
    await page.click('button[type=submit]');
    const refused = page.locator('.error');
    await refused.waitFor();
    assert.match((await refused.textContent()) ?? '', /V_UNAUTHENTICATED/);
    await signIn(page, base, read);
    await page.waitForSelector('.readonly');
    assert.match((await page.locator('.readonly').textContent()) ?? '', /Read-only/);
    await page.goto(`${base}/#/agents/host-1`);
    await page.waitForSelector('.actions');
    for (const b of await page.locator('.actions button, .actions select').all())
      assert.equal(await b.isDisabled(), true);
    await shot(page, 'agent-read-only');
    await page.goto(`${base}/#/events`);
    const when = (await page.locator('tr[data-event] td').first().textContent()) ?? '';
    assert.match(when, /GMT\+9/, `times in the viewer's zone: ${when}`);
    assert.equal((await page.locator('tr[data-event] button:disabled').count()) > 0, true);
    // an unknown agent: the API's error, message and code, not a blank page
    await page.goto(`${base}/#/agents/no-such-agent`);
    const err = page.locator('.error');
    await err.waitFor();
    const text = (await err.textContent()) ?? '';
    assert.match(text, /no agent 'no-such-agent'/);
    assert.match(text, /V_NOT_FOUND/);
    assert.match(text, /HTTP 404/);
    // and nothing of the agent shown before it under this URL
    assert.doesNotMatch((await page.locator('h1').textContent()) ?? '', /host-1/);
    assert.equal(await page.locator('.actions').count(), 0);
    assert.equal(await page.locator('.actions select').count(), 0);
    await shot(page, 'api-error');
    await page.close();
  } finally {
    await app.close();
  }
});
