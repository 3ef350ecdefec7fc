/**
 * One verifier process for the scale-out test: buildApp (push routes on a loopback port) and a
 * poller over the agents' HTTP pull endpoints, both on the PostgreSQL at argv[2]. Prints
 * `ready {"port":…}` once listening; on SIGTERM stops the poller, prints `stats {…}` and exits.
 * Usage: poller-child.ts PG_URL OWNER POLL_MS LEASE_MS CONCURRENCY
 */
import { buildApp, openDatabase } from '../src/index.ts';
import { startPoller } from '../src/poller/poller.ts';
import { ReferenceSetCache } from '../src/refs-store.ts';

const [url, owner, pollMs, leaseMs, concurrency] = process.argv.slice(2);
if (url === undefined || owner === undefined)
  throw new Error('usage: poller-child.ts PG_URL OWNER POLL_MS LEASE_MS N');
const database = await openDatabase({ kind: 'postgres', url, max: 6 });
const app = await buildApp({ database, verdictRetention: 10_000 });
await app.listen({ host: '127.0.0.1', port: 0 });
const errors: string[] = [];
const poller = startPoller({
  db: database.db,
  owner,
  refs: new ReferenceSetCache(4),
  retention: 10_000,
  pollMs: Number(pollMs ?? 500),
  leaseMs: Number(leaseMs ?? 3000),
  concurrency: Number(concurrency ?? 16),
  retryMs: 1000,
  onError: (e) => {
    if (errors.length < 5) errors.push(String(e));
  },
});
const addr = app.server.address();
process.stdout.write(
  `ready ${JSON.stringify({ port: typeof addr === 'object' && addr !== null ? addr.port : 0 })}\n`,
);
process.once('SIGTERM', () => {
  void (async () => {
    await poller.stop();
    process.stdout.write(`stats ${JSON.stringify({ ...poller.stats(), errors })}\n`);
    await app.close();
    process.exit(0);
  })();
});
