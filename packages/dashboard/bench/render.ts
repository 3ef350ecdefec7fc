/**
 * Benchmark: the dashboard with a 10,000-agent fleet, measured in Debian's Chromium.
 *
 *   node --import tsx --conditions=source bench/render.ts [--agents N] [--runs N] [--list-entries N] [--screenshot PNG]
 *
 * The verifier's app runs in process on a loopback port over an in-memory PGlite holding N agents
 * inserted directly (software rows: states, causes, reference sets, 2 verdicts each for the chart),
 * serving the built dashboard. Printed: JavaScript shipped (gzip), time to the first render of the
 * overview (navigation start → the counts drawn, a fresh page each run: JS parse, token check and
 * the overview query included), the agents table's first page, paging, sorting and filtering
 * (click → rows replaced), and one agent's stored IMA list of --list-entries (100,000) entries
 * evaluated per entry (first page, last page, the one refused entry), each the median of --runs,
 * with the machine's load average.
 * Targets (issue 14): < 150 KiB gzip and < 1 s. Peer: Keylime has no web UI since 2022.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { createHash } from 'node:crypto';
import { encodeBinaryList, joinTemplateData, templateDigest, utf8 } from 'imakit/core';
import { buildApp, createToken, openDatabase } from '@imakit/verifier';
import { ensureBuilt, launchChromium } from '../test/browser.ts';
import { keylimePolicy } from '../../verifier/test/keylime-policy.ts';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '5' },
    // where to save a picture of the overview of this fleet (the README's is one)
    screenshot: { type: 'string' },
    'list-entries': { type: 'string', default: '100000' },
  },
});
const N = Number(values.agents);
const RUNS = Number(values.runs);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]): string =>
  `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

const dist = ensureBuilt();
const assets = readdirSync(join(dist, 'assets'));
const gz = (ext: string) =>
  assets
    .filter((f) => f.endsWith(ext))
    .reduce((n, f) => n + gzipSync(readFileSync(join(dist, 'assets', f)), { level: 9 }).length, 0);
const raw = (ext: string) =>
  assets.filter((f) => f.endsWith(ext)).reduce((n, f) => n + readFileSync(join(dist, 'assets', f)).length, 0);

const database = await openDatabase({ kind: 'pglite' });
const db = database.db;
const token = await createToken(db, 'read');
await db
  .insertInto('reference_sets')
  .values([
    { id: 'a'.repeat(64), name: 'debian-12.8', body: new Uint8Array([1]) },
    { id: 'b'.repeat(64), name: 'debian-12.9', body: new Uint8Array([2]) },
  ])
  .execute();
const t0 = Date.now();
const now = Date.now();
const rows = [];
for (let i = 0; i < N; i++) {
  const r = i % 100;
  const state =
    r < 80 ? 'passing' : r < 90 ? 'failing' : r < 95 ? 'passing' : r < 98 ? 'unenrolled' : 'paused';
  const stale = r >= 90 && r < 95;
  // half the failures share one cause (one bad package), the rest are each host's own
  const failure =
    state !== 'failing'
      ? undefined
      : i % 2 === 0
        ? {
            step: 'refs',
            code: 'digest-not-allowed',
            path: '/usr/lib/x86_64-linux-gnu/libbad.so.1',
            actual: `sha256:${'c'.repeat(64)}`,
            entry: 4211,
          }
        : {
            step: 'refs',
            code: 'unknown-path',
            path: `/opt/local/tool-${i}`,
            actual: `sha256:${i.toString(16).padStart(64, '0')}`,
            entry: 900 + (i % 50),
          };
  rows.push({
    id: `host-${String(i).padStart(5, '0')}`,
    name: `web-${String(i).padStart(5, '0')}.dc${i % 4}.example`,
    state,
    state_reason: JSON.stringify(
      failure === undefined ? { why: 'attestation passed' } : { why: 'refs failed', failure },
    ),
    reference_set: i % 3 === 0 ? 'b'.repeat(64) : 'a'.repeat(64),
    require_pcrs: 'sha256:0-7,10',
    interval_s: 60,
    ak_public: state === 'unenrolled' ? null : new Uint8Array([1]),
    last_attested_at: state === 'unenrolled' ? null : new Date(now - (stale ? 3600_000 : (i % 60) * 1000)),
  });
}
for (let i = 0; i < rows.length; i += 500)
  await db
    .insertInto('agents')
    .values(rows.slice(i, i + 500))
    .execute();
// two verdicts per agent over the last six hours: the chart's data
const verdicts = [];
for (let i = 0; i < 2 * N; i++)
  verdicts.push({
    agent_id: rows[i % N]!.id,
    at: new Date(now - ((i * 7919) % (6 * 3600_000))),
    status: i % 13 === 0 ? 'fail' : 'pass',
    verdict: '{}',
  });
for (let i = 0; i < verdicts.length; i += 1000)
  await db
    .insertInto('verdicts')
    .values(verdicts.slice(i, i + 1000))
    .execute();
const loadMs = Date.now() - t0;

// one agent with a 100,000-entry stored list and a set allowing all but one of its files: the
// agent page's IMA tab evaluates the whole stored list per request (search and paging included)
const LIST_N = Number(values['list-entries']);
const listEntries = [];
const digests: Record<string, string[]> = {};
for (let i = 0; i < LIST_N; i++) {
  const path = `/usr/lib/pkg-${i % 997}/file-${i}.so`;
  const fileDigest = createHash('sha256').update(path).digest();
  const data = joinTemplateData(
    [new Uint8Array([...utf8('sha256:'), 0, ...fileDigest]), new Uint8Array([...utf8(path), 0])],
    'le',
  );
  listEntries.push({
    index: i,
    offset: 0,
    pcr: 10,
    digest: templateDigest(data, 'sha1'),
    templateName: 'ima-ng',
    templateData: data,
  });
  if (i !== LIST_N - 7) digests[path] = [fileDigest.toString('hex')];
}
const bigSet = Buffer.from(keylimePolicy(digests));
const bigSetId = createHash('sha256').update(bigSet).digest('hex');
await db.insertInto('reference_sets').values({ id: bigSetId, name: 'big', body: bigSet }).execute();
await db
  .insertInto('agents')
  .values({
    id: 'big-list',
    name: 'big-list',
    state: 'failing',
    require_pcrs: 'sha256:10',
    interval_s: 60,
    reference_set: bigSetId,
    ak_public: new Uint8Array([1]),
  })
  .execute();
const listBytes = encodeBinaryList(listEntries);
await db
  .insertInto('ima_chunks')
  .values({ agent_id: 'big-list', start_offset: 0, start_entry: 0, entries: LIST_N, bytes: listBytes })
  .execute();

const app = await buildApp({ database, dashboardDir: dist, rateLimit: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const browser = await launchChromium();

/** In-page ms from now until `ready` is true (polled every animation frame). */
type Arg = string | number | null;
async function timeUntil(
  page: Page,
  act: () => Promise<unknown>,
  ready: (arg: Arg) => boolean,
  arg: Arg,
): Promise<number> {
  await page.evaluate(() => ((window as unknown as { __t0: number }).__t0 = performance.now()));
  await act();
  // a function, not a string: the dashboard's CSP forbids eval
  await page.waitForFunction(ready, arg, { polling: 'raf', timeout: 30_000 });
  return page.evaluate(() => performance.now() - (window as unknown as { __t0: number }).__t0);
}

const first: number[] = [];
const table: number[] = [];
const paging: number[] = [];
const sorting: number[] = [];
const filtering: number[] = [];
const lastPage: number[] = [];
const imaFirst: number[] = [];
const imaLast: number[] = [];
const imaRefused: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript((t) => localStorage.setItem('imakit.dashboard.token', t), token);
  const page = await ctx.newPage();
  await page.goto(`${base}/`);
  await page.waitForFunction(
    (n) => document.querySelector('a.count[data-state=total] .n')?.textContent === n.toLocaleString(),
    N + 1,
    { polling: 'raf', timeout: 30_000 },
  );
  // navigation start → the overview's counts on screen
  first.push(await page.evaluate(() => performance.now()));
  table.push(
    await timeUntil(
      page,
      () => page.click('header nav a[href="#/agents"]'),
      () => document.querySelectorAll('table.agents tbody tr.row').length === 50,
      null,
    ),
  );
  const firstRow = () => page.locator('table.agents tbody tr.row').first().getAttribute('data-agent');
  for (let p = 0; p < 3; p++) {
    const before = await firstRow();
    paging.push(
      await timeUntil(
        page,
        () => page.click('.pager button:has-text("next")'),
        (before) =>
          document.querySelector('table.agents tbody tr.row')?.dataset.agent !== before &&
          document.querySelector('table.agents[aria-busy=true]') === null,
        before,
      ),
    );
  }
  {
    const before = await firstRow();
    sorting.push(
      await timeUntil(
        page,
        () => page.click('th button:has-text("last attestation")'),
        (before) =>
          document.querySelector('table.agents tbody tr.row')?.dataset.agent !== before &&
          document.querySelector('table.agents[aria-busy=true]') === null,
        before,
      ),
    );
  }
  filtering.push(
    await timeUntil(
      page,
      () => page.selectOption('.filters select >> nth=0', 'failing'),
      () => {
        const b = [...document.querySelectorAll('table.agents tbody tr.row .badge')];
        return (
          b.length > 0 &&
          b.every((x) => x.textContent?.startsWith('failing')) &&
          document.querySelector('table.agents[aria-busy=true]') === null
        );
      },
      null,
    ),
  );
  lastPage.push(
    await timeUntil(
      page,
      () => page.goto(`${base}/#/agents?offset=${N - 50}`),
      (pages) =>
        (document.querySelector('.pager span')?.textContent ?? '').includes(`page ${pages} of`) &&
        document.querySelectorAll('table.agents tbody tr.row').length === 50,
      N / 50,
    ),
  );
  const imaRows = () => document.querySelectorAll('table.ima tbody tr.row').length === 100;
  imaFirst.push(await timeUntil(page, () => page.goto(`${base}/#/agents/big-list?tab=ima`), imaRows, null));
  imaLast.push(
    await timeUntil(
      page,
      () => page.goto(`${base}/#/agents/big-list?tab=ima&offset=${LIST_N - 100}`),
      (last) => document.querySelector('tr[data-entry]')?.dataset.entry === String(last),
      LIST_N - 100,
    ),
  );
  imaRefused.push(
    await timeUntil(
      page,
      () => page.goto(`${base}/#/agents/big-list?tab=ima&status=refused`),
      (want) => document.querySelector('tr[data-entry]')?.dataset.entry === String(want),
      LIST_N - 7,
    ),
  );
  await ctx.close();
}
if (values.screenshot !== undefined) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await ctx.addInitScript((t) => localStorage.setItem('imakit.dashboard.token', t), token);
  const page = await ctx.newPage();
  await page.goto(`${base}/`);
  await page.waitForSelector('#causes li.cause');
  await page.waitForSelector('.live.on');
  await page.screenshot({ path: values.screenshot });
  await ctx.close();
}
await browser.close();
await app.close();

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
  `dashboard render benchmark — ${N.toLocaleString('en-US')} agents (inserted in ${loadMs} ms), ${RUNS} runs, Chromium headless`,
);
console.log(
  `machine: ${cpus().length} cores, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (at the end)`,
);
console.log(
  `JavaScript shipped: ${kib(gz('.js'))} gzip (${kib(raw('.js'))} raw); CSS ${kib(gz('.css'))} gzip   target < 150 KiB`,
);
console.log(`overview first render (navigation → counts):  ${fmt(first)}   target < 1000 ms`);
console.log(`agents table, first page of 50 (click → rows): ${fmt(table)}`);
console.log(`agents table, next page:                      ${fmt(paging)}`);
console.log(`agents table, sort by last attestation:        ${fmt(sorting)}`);
console.log(`agents table, filter state=failing:            ${fmt(filtering)}`);
console.log(`agents table, deep link to the last page:      ${fmt(lastPage)}`);
console.log(`IMA list of ${LIST_N.toLocaleString('en-US')} entries, first page of 100:   ${fmt(imaFirst)}`);
console.log(`IMA list, last page:                          ${fmt(imaLast)}`);
console.log(`IMA list, the refused entry (status filter):   ${fmt(imaRefused)}`);
console.log('peer: Keylime 7.14 has no web UI (removed in 2022); nothing to compare in the browser');
