/**
 * `imakit fleet …`: the operator's side of the verifier API (issue 13 part 7).
 *
 *   fleet add [ID] [--name N] [--pcrs SEL] [--reference-set HEX] [--boot-ref FILE] [--interval S]
 *   fleet add --keylime-agent HOST:PORT --ak FILE --refs FILE [--id UUID] [--name N] [--pcrs SEL] [--interval S]
 *   fleet list [--state S] [--search TEXT] [--limit N]
 *   fleet show ID
 *   fleet update ID [--name N] [--pcrs SEL] [--reference-set HEX|none] [--boot-ref FILE|none] [--interval S]
 *   fleet pause ID [--reason TEXT] | fleet resume ID | fleet delete ID
 *   fleet events [--agent ID] [--limit N]
 *   fleet refs upload FILE [--name N] | fleet refs list
 *
 * Every subcommand takes `--verifier URL` (default https://127.0.0.1:8443), `--token T` (default:
 * the admin token `imakit verifier serve` wrote to DATA/admin-token), `--data DIR` (the verifier's
 * data directory to find that token and its certificate in; default as `verifier serve`), `--ca FILE`
 * (default DATA/tls.crt when it exists) or `--insecure`, and `--json` (the API's own JSON; `fleet
 * show ID --json` has the agent's `"state"`: unenrolled, passing, failing or paused).
 *
 * `fleet add --keylime-agent HOST:PORT` adds an agent that speaks Keylime's pull API (rust-keylime,
 * or `imakit agent run --keylime-api`); the verifier polls it over plain HTTP, as Keylime's verifier
 * does with agent mTLS off. `--ak FILE` is its AK (TPM2B_PUBLIC, e.g. the registrar's `aik_tpm`
 * decoded, or a PEM public key); `--refs FILE` is uploaded first (any form `log verify --refs`
 * reads: imakit compact/JSON, a Keylime runtime policy or its DSSE envelope, a flat allowlist) and
 * the agent held to it; `--pcrs` defaults to sha256:10 (one bank, with PCR 10).
 *
 * `--boot-ref FILE` is the agent's measured-boot reference: a golden TCG event log
 * (binary_bios_measurements of a known-good boot), expected PCR values as `bank:index=hex` lines,
 * or a Keylime mb_refstate JSON; the boot step compares every attestation's boot with it (the
 * agent's `--pcrs` must cover the PCRs it names).
 *
 * `fleet refs upload FILE` sends a reference set's bytes as they are (any form `log verify --refs`
 * reads); the verifier names it by the SHA-256 of those bytes, the id `fleet add --reference-set`
 * takes.
 *
 * Exit: 0 ok; 1 the verifier refused the request (4xx: no such agent, invalid value, a bad token;
 * the verifier's code and message are shown); 2 bad flags or no token; 3 a file (token, CA) cannot
 * be read; 5 the verifier cannot be reached (refused, timed out, untrusted certificate) or failed (5xx).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { apiClient, readCaFile, type ApiClient } from '../../host/agent/api-client.ts';
import { readSecretFile } from '../../host/agent/secret-files.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import { readAkPublicFile } from '../../host/agent/keylime-ak-file.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import type { Command as TypedCommand, OptionValues } from '@commander-js/extra-typings';
import { currentUid, defaultVerifierDataDir, DEFAULT_LISTEN } from './verifier.ts';

export const DEFAULT_VERIFIER_URL = `https://${DEFAULT_LISTEN}`;

export interface FleetConnection {
  verifier?: string;
  token?: string;
  data?: string;
  ca?: string;
  insecure?: boolean;
  json?: boolean;
}

/** An API client from the connection flags (token and CA defaulting to the verifier's data dir). */
export function fleetClient(f: FleetConnection, ctx: CommandContext): ApiClient {
  const url = f.verifier ?? DEFAULT_VERIFIER_URL;
  let dataDir: string | undefined = f.data;
  const data = (): string => (dataDir ??= defaultVerifierDataDir(ctx.io.env, currentUid()));
  let token = f.token;
  if (token === undefined) {
    const path = join(data(), 'admin-token');
    token = readSecretFile(path);
    if (token === undefined)
      throw new ImakitError(
        'E_USAGE',
        `no token: give --token, or --data DIR of a verifier that wrote DIR/admin-token (looked at ${path})`,
      );
  }
  if (f.ca !== undefined && f.insecure === true)
    throw new ImakitError('E_USAGE', '--ca and --insecure exclude each other');
  let ca: string | undefined;
  if (f.ca !== undefined) ca = readCaFile(f.ca);
  else if (
    f.insecure !== true &&
    url.startsWith('https:') &&
    (f.data !== undefined || f.token === undefined)
  ) {
    const local = join(data(), 'tls.crt');
    if (existsSync(local)) ca = readCaFile(local);
  }
  return apiClient({
    baseUrl: url,
    authorization: `Bearer ${token}`,
    ...(ca !== undefined ? { ca } : {}),
    ...(f.insecure === true ? { insecure: true } : {}),
  });
}

interface AgentView {
  id: string;
  name: string;
  state: string;
  stateReason: unknown;
  referenceSet: string | null;
  requirePcrs: string;
  intervalSeconds: number;
  enrolled: boolean;
  lastAttestedAt: string | null;
  stale: boolean;
  bootReference?: { form: string; bytes: number; sha256: string } | null;
}

interface RefsView {
  id: string;
  name: string;
  kind: string;
  bytes: number;
  paths: number;
  /** what the verifier verified of the set's signature; null: nothing was checked */
  signature: { form: string; key: number; keyid?: string } | null;
}

interface EventView {
  id: number;
  agentId: string;
  at: string;
  from: string;
  to: string;
  reason: unknown;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

function agentText(a: AgentView): string {
  const reason = a.stateReason as { why?: unknown } | null;
  return (
    `${a.id}${a.name !== a.id ? ` (${a.name})` : ''}\n` +
    `  state: ${a.state}${typeof reason?.why === 'string' ? ` — ${reason.why}` : ''}${a.stale ? ' (stale)' : ''}\n` +
    `  enrolled: ${a.enrolled ? 'yes' : 'no'}\n` +
    `  PCRs: ${a.requirePcrs}\n` +
    `  reference set: ${a.referenceSet ?? 'none'}\n` +
    `  boot reference: ${a.bootReference != null ? `${a.bootReference.form}, ${a.bootReference.bytes} bytes, sha256 ${a.bootReference.sha256}` : 'none'}\n` +
    `  interval: ${a.intervalSeconds} s\n` +
    `  last attested: ${a.lastAttestedAt ?? 'never'}\n`
  );
}

const row = (a: AgentView): string =>
  `${a.id.padEnd(24)} ${a.state.padEnd(10)} ${(a.lastAttestedAt ?? 'never').padEnd(24)} ${a.name}\n`;

const enc = encodeURIComponent;

/**
 * `--boot-ref FILE`: the measured-boot reference's bytes as the API takes them (a golden TCG event
 * log, `bank:index=hex` lines or a Keylime mb_refstate; the verifier tells the form and refuses a
 * malformed one); `none` (update) clears it.
 */
function bootReferenceBody(file: string | undefined, clearable: boolean): { bootReference?: unknown } {
  if (file === undefined) return {};
  if (clearable && file === 'none') return { bootReference: null };
  return { bootReference: { data: Buffer.from(readBoundedFile(file, 'event-log')).toString('base64') } };
}

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new ImakitError('E_USAGE', `${flag} ${v}: expected a positive integer`);
  return n;
}

export const command: CommandModule = {
  name: 'fleet',
  register(program, ctx) {
    const fleet = program.command('fleet').description("manage the verifier's agents (its HTTP API)");
    const conn = <A extends unknown[], O extends OptionValues>(c: TypedCommand<A, O>) =>
      c
        .option('--verifier <url>', 'the verifier', DEFAULT_VERIFIER_URL)
        .option('--token <token>', "an operator token (default: the verifier's DATA/admin-token)")
        .option('--data <dir>', "the verifier's data directory (admin-token, tls.crt)")
        .option('--ca <file>', 'PEM certificate to trust (default DATA/tls.crt when present)')
        .option('--insecure', "do not check the verifier's certificate")
        .option('--json', 'JSON output (the API answer)');
    const go = (
      f: FleetConnection,
      body: (api: ApiClient) => Promise<string | { json: unknown; text: string }>,
    ) =>
      ctx.run(
        async () => {
          const r = await body(fleetClient(f, ctx));
          if (typeof r === 'string') ctx.io.stdout(r);
          else ctx.io.stdout(f.json === true ? json(r.json) : r.text);
          return 0;
        },
        { json: f.json === true },
      );

    conn(
      fleet
        .command('add')
        .description('add an agent (it enrols later with imakit agent enrol)')
        .argument('[id]', 'agent id (default: a random UUID)')
        .option('--name <name>', 'display name')
        .option('--pcrs <selection>', 'PCRs the agent must quote (default sha256:0-7,10)')
        .option('--reference-set <id>', 'reference set (sha256 hex id) the agent is held to')
        .option(
          '--boot-ref <file>',
          'measured-boot reference: a golden TCG event log, bank:index=hex lines, or a Keylime mb_refstate',
        )
        .option('--interval <seconds>', 'attestation interval')
        .option('--id <id>', 'agent id (as the positional ID)')
        .option(
          '--keylime-agent <host:port>',
          "an agent serving Keylime's pull API, polled at http://HOST:PORT",
        )
        .option('--ak <file>', "with --keylime-agent: the agent's AK, TPM2B_PUBLIC or PEM")
        .option(
          '--refs <file>',
          'upload this reference set (any form log verify --refs reads) and hold the agent to it',
        ),
    ).action((pos, f) =>
      go(f, async (api) => {
        const interval = positiveInt(f.interval, '--interval');
        if (pos !== undefined && f.id !== undefined && pos !== f.id)
          throw new ImakitError('E_USAGE', `two ids: ${pos} and --id ${f.id}`);
        const id = f.id ?? pos;
        if ((f.keylimeAgent === undefined) !== (f.ak === undefined))
          throw new ImakitError('E_USAGE', '--keylime-agent and --ak go together');
        if (f.keylimeAgent !== undefined && f.refs === undefined && f.referenceSet === undefined)
          throw new ImakitError('E_USAGE', '--keylime-agent needs --refs FILE (or --reference-set ID)');
        if (f.refs !== undefined && f.referenceSet !== undefined)
          throw new ImakitError('E_USAGE', '--refs and --reference-set exclude each other');
        // read every file before anything is sent: a bad --ak must not leave an uploaded set behind
        const ak = f.ak !== undefined ? readAkPublicFile(f.ak) : undefined;
        const refsBody = f.refs !== undefined ? readBoundedFile(f.refs, 'reference-set') : undefined;
        let referenceSet = f.referenceSet;
        if (refsBody !== undefined) {
          const r = await api.request<RefsView>(
            'POST',
            `/v1/reference-sets?name=${enc(basename(f.refs!))}`,
            refsBody,
          );
          referenceSet = r.id;
        }
        const a = await api.request<AgentView>('POST', '/v1/agents', {
          ...bootReferenceBody(f.bootRef, false),
          ...(id !== undefined ? { id } : {}),
          ...(f.keylimeAgent !== undefined && ak !== undefined
            ? { keylimeAgent: f.keylimeAgent, akPublic: Buffer.from(ak.bytes).toString('base64') }
            : {}),
          ...(f.name !== undefined ? { name: f.name } : {}),
          ...(f.pcrs !== undefined ? { requirePcrs: f.pcrs } : {}),
          ...(referenceSet !== undefined ? { referenceSet } : {}),
          ...(interval !== undefined ? { intervalSeconds: interval } : {}),
        });
        return {
          json: a,
          text:
            `added ${a.id} (${a.state})` +
            (f.keylimeAgent !== undefined
              ? `: Keylime agent at ${f.keylimeAgent}, PCRs ${a.requirePcrs}, reference set ${a.referenceSet ?? 'none'}`
              : '') +
            '\n',
        };
      }),
    );

    conn(
      fleet
        .command('list')
        .description('list agents')
        .option('--state <state>', 'unenrolled, passing, failing or paused')
        .option('--search <text>', 'names containing TEXT')
        .option('--limit <n>', 'at most N (default 100)'),
    ).action((f) =>
      go(f, async (api) => {
        const q = new URLSearchParams();
        if (f.state !== undefined) q.set('state', f.state);
        if (f.search !== undefined) q.set('q', f.search);
        const limit = positiveInt(f.limit, '--limit');
        if (limit !== undefined) q.set('limit', String(limit));
        const r = await api.request<{ total: number; agents: AgentView[] }>(
          'GET',
          `/v1/agents${q.size > 0 ? `?${q.toString()}` : ''}`,
        );
        return {
          json: r,
          text: `${r.agents.map(row).join('')}${r.agents.length} of ${r.total} agent(s)\n`,
        };
      }),
    );

    conn(fleet.command('show').description('an agent and its state').argument('<id>')).action((id, f) =>
      go(f, async (api) => {
        const a = await api.request<AgentView>('GET', `/v1/agents/${enc(id)}`);
        return { json: a, text: agentText(a) };
      }),
    );

    conn(
      fleet
        .command('update')
        .description("change an agent's settings in place (its attestation state is kept)")
        .argument('<id>')
        .option('--name <name>', 'display name')
        .option('--pcrs <selection>', 'PCRs the agent must quote')
        .option('--reference-set <id>', "reference set id, or 'none'")
        .option('--boot-ref <file>', "measured-boot reference file (as for add), or 'none'")
        .option('--interval <seconds>', 'attestation interval'),
    ).action((id, f) =>
      go(f, async (api) => {
        const interval = positiveInt(f.interval, '--interval');
        const body = {
          ...bootReferenceBody(f.bootRef, true),
          ...(f.name !== undefined ? { name: f.name } : {}),
          ...(f.pcrs !== undefined ? { requirePcrs: f.pcrs } : {}),
          ...(f.referenceSet !== undefined
            ? { referenceSet: f.referenceSet === 'none' ? null : f.referenceSet }
            : {}),
          ...(interval !== undefined ? { intervalSeconds: interval } : {}),
        };
        if (Object.keys(body).length === 0)
          throw new ImakitError(
            'E_USAGE',
            'nothing to update: give --name, --pcrs, --reference-set, --boot-ref or --interval',
          );
        const a = await api.request<AgentView>('PATCH', `/v1/agents/${enc(id)}`, body);
        return { json: a, text: agentText(a) };
      }),
    );

    conn(
      fleet
        .command('pause')
        .description('stop judging an agent')
        .argument('<id>')
        .option('--reason <text>', 'why'),
    ).action((id, f) =>
      go(f, async (api) => {
        const a = await api.request<AgentView>(
          'POST',
          `/v1/agents/${enc(id)}/pause`,
          f.reason !== undefined ? { reason: f.reason } : {},
        );
        return { json: a, text: `${a.id}: ${a.state}\n` };
      }),
    );

    conn(fleet.command('resume').description('judge a paused agent again').argument('<id>')).action((id, f) =>
      go(f, async (api) => {
        const a = await api.request<AgentView>('POST', `/v1/agents/${enc(id)}/resume`, {});
        return { json: a, text: `${a.id}: ${a.state}\n` };
      }),
    );

    conn(fleet.command('delete').description('remove an agent').argument('<id>')).action((id, f) =>
      go(f, async (api) => {
        await api.request('DELETE', `/v1/agents/${enc(id)}`);
        return { json: { deleted: id }, text: `deleted ${id}\n` };
      }),
    );

    conn(
      fleet
        .command('events')
        .description('state changes, newest first')
        .option('--agent <id>', "one agent's events")
        .option('--limit <n>', 'at most N'),
    ).action((f) =>
      go(f, async (api) => {
        const q = new URLSearchParams();
        if (f.agent !== undefined) q.set('agent', f.agent);
        const limit = positiveInt(f.limit, '--limit');
        if (limit !== undefined) q.set('limit', String(limit));
        const r = await api.request<{ events: EventView[] }>(
          'GET',
          `/v1/events${q.size > 0 ? `?${q.toString()}` : ''}`,
        );
        const why = (e: EventView): string => {
          const w = (e.reason as { why?: unknown } | null)?.why;
          return typeof w === 'string' ? `  ${w}` : '';
        };
        return {
          json: r,
          text: r.events.map((e) => `${e.at} ${e.agentId} ${e.from} -> ${e.to}${why(e)}\n`).join(''),
        };
      }),
    );

    const refs = fleet.command('refs').description("the verifier's reference sets");
    conn(
      refs
        .command('upload')
        .description('upload a reference set (any form log verify --refs reads); prints its id')
        .argument('<file>', 'the set')
        .option('--name <name>', 'display name (default: the file name)')
        .option(
          '--sig <file>',
          'detached signature of the set (imakit refs sign), for a verifier serving with --refs-key',
        ),
    ).action((file, f) =>
      go(f, async (api) => {
        const body = readBoundedFile(file, 'reference-set');
        const name = f.name ?? basename(file);
        const sig =
          f.sig === undefined
            ? ''
            : `&signature=${enc(Buffer.from(readBoundedFile(f.sig, 'signature')).toString('base64'))}`;
        const r = await api.request<RefsView>('POST', `/v1/reference-sets?name=${enc(name)}${sig}`, body);
        const signed =
          r.signature === null ? 'not signature-checked' : `signature verified (${r.signature.form})`;
        return { json: r, text: `${r.id} ${r.name} (${r.kind}, ${r.paths} paths; ${signed})\n` };
      }),
    );
    conn(refs.command('list').description('reference sets on the verifier')).action((f) =>
      go(f, async (api) => {
        const r = await api.request<{
          referenceSets: { id: string; name: string; bytes: number; agents: number }[];
        }>('GET', '/v1/reference-sets');
        return {
          json: r,
          text: r.referenceSets
            .map((x) => `${x.id} ${x.name} (${x.bytes} bytes, ${x.agents} agent(s))\n`)
            .join(''),
        };
      }),
    );
  },
};
