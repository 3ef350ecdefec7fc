/**
 * One verifier process for the fleet benchmark: buildApp on a loopback port over PGlite (a data
 * directory) or PostgreSQL (a URL). Prints `ready {"port":…}` once listening; on `rss` on stdin it
 * prints `rss {"rss":…,"hwm":…,"cpuUs":…}` (bytes, from /proc/self/status; CPU used so far, µs);
 * on SIGTERM it closes and exits.
 * Usage: fleet-verifier.ts pglite DIR | postgres URL
 */
import { readFileSync } from 'node:fs';
import { buildApp, openDatabase } from '../src/index.ts';

const [kind, where] = process.argv.slice(2);
if ((kind !== 'pglite' && kind !== 'postgres') || where === undefined)
  throw new Error('usage: fleet-verifier.ts pglite DIR | postgres URL');
const database = await openDatabase(
  kind === 'pglite' ? { kind, dataDir: where } : { kind, url: where, max: 8 },
);
const app = await buildApp({ database, verdictRetention: 100, nonceTtlSeconds: 120 });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
process.stdout.write(
  `ready ${JSON.stringify({ port: typeof addr === 'object' && addr !== null ? addr.port : 0 })}\n`,
);
const kib = (field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
};
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  if (d.includes('rss'))
    process.stdout.write(`rss ${JSON.stringify({ rss: kib('VmRSS'), hwm: kib('VmHWM'), cpuUs: cpuUs() })}\n`);
});
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
