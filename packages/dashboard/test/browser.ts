/**
 * Test helpers for the dashboard in a real browser: Debian's Chromium driven by playwright-core
 * (never a downloaded browser), the dashboard built when its dist/ is missing, and a directory the
 * run's screenshots go to (a temporary one: screenshots are looked at, not committed).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const DASHBOARD_ROOT = join(import.meta.dirname, '..');
export const DIST = join(DASHBOARD_ROOT, 'dist');

/**
 * Debian's Chromium. A missing browser FAILS the test with what to install: CI installs it
 * (scripts/install-deps.sh), so its absence is a broken machine, not a reason to skip.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the dashboard's browser tests need Debian's Chromium (apt-get install chromium; scripts/install-deps.sh installs it)`,
    );
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** The built dashboard's dist/ (built now with `vite build` when it is missing). */
export function ensureBuilt(): string {
  if (!existsSync(join(DIST, 'index.html'))) {
    const r = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], {
      cwd: DASHBOARD_ROOT,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`vite build failed: ${r.stderr}${r.stdout}`);
  }
  return DIST;
}

/** Where this run's screenshots go: $DASHBOARD_SCREENSHOTS or a new temporary directory. */
export function screenshotDir(): string {
  return process.env.DASHBOARD_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'imakit-dashboard-shots-'));
}
