/**
 * `imakit agent enrol|run|status` (issue 13 part 1): the host agent, run as root on each machine
 * (contrib/imakit-agent.service).
 *
 *   agent enrol  [common]                          EK (+ certificate), AK, credential activation → token
 *   agent run    [common] [--once] [--pull --listen HOST:PORT]
 *   agent run    --keylime-api --listen HOST:PORT --tpm T --ak DIR [--ima-list FILE] [--eventlog FILE]
 *   agent status [common]                          enrolment and the last attestation (local only)
 *
 * common: --config FILE (default /etc/imakit/agent.conf when it exists; JSON or `key = value`, see
 * contrib/agent.conf.example), --verifier URL, --id ID, --tpm SEL, --ak DIR, --ek rsa|ecc|ecc384,
 * --ima-list FILE, --eventlog FILE|none, --boot-id FILE, --state DIR, --interval S, --ca FILE,
 * --insecure, --json. Flags override the file, the file overrides the defaults (mergeAgentOptions).
 *
 * `run` attests in push mode every interval, backing off on errors, until SIGINT/SIGTERM; `--once`
 * attests once and exits with the verdict. `--pull` serves GET /v1/evidence on --listen instead.
 * `--keylime-api` serves Keylime's agent API as rust-keylime does (GET /version,
 * /v2.N/quotes/integrity and /identity; host/agent/keylime-api.ts) for Keylime's verifier or
 * imakit's (`fleet add --keylime-agent`); it needs only --listen, --tpm and --ak (a directory made
 * by `imakit tpm ak create`), reads --ima-list (binary or ascii; default securityfs) and --eventlog
 * (default the firmware log; 'none': none), and takes no verifier, id or config file.
 *
 * Exit: 0 enrolled / passing / closed by a signal; 1 the verdict is not passing (`--once`) or the
 * verifier refused a request (its code and message shown); 2 bad flags or config; 3 a file cannot be
 * read or written; 5 the TPM or the verifier cannot be reached.
 */
import { existsSync } from 'node:fs';
import { ImakitError } from '../../errors.ts';
import { readBoundedText } from '../../host/fs/bounded-read.ts';
import {
  AGENT_PATHS,
  mergeAgentOptions,
  parseAgentConfigFile,
  type AgentConfig,
  type AgentSettings,
} from '../../host/agent/config.ts';
import { enrol } from '../../host/agent/enrol.ts';
import {
  agentStatus,
  attestOnce,
  runPush,
  verdictPassed,
  type AttestOutcome,
} from '../../host/agent/attest.ts';
import { serveEvidence } from '../../host/agent/pull.ts';
import { serveKeylimeApi, type KeylimeApiOptions } from '../../host/agent/keylime-api.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import type { Command as TypedCommand, OptionValues } from '@commander-js/extra-typings';

interface CommonFlags {
  config?: string;
  verifier?: string;
  id?: string;
  tpm?: string;
  ak?: string;
  ek?: string;
  imaList?: string;
  eventlog?: string;
  bootId?: string;
  state?: string;
  interval?: string;
  ca?: string;
  insecure?: boolean;
  listen?: string;
  json?: boolean;
}

/** Flags as settings (undefined ones dropped so they do not override the file). */
export function flagSettings(f: CommonFlags): AgentSettings {
  const s: AgentSettings = {
    verifier: f.verifier,
    id: f.id,
    tpm: f.tpm,
    ak: f.ak,
    ek: f.ek,
    'ima-list': f.imaList,
    eventlog: f.eventlog,
    'boot-id': f.bootId,
    state: f.state,
    interval: f.interval,
    ca: f.ca,
    insecure: f.insecure,
    listen: f.listen,
  };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as AgentSettings;
}

/** The resolved config: flags > --config FILE (or the default file when present) > defaults. */
export function agentConfig(f: CommonFlags): AgentConfig {
  const path = f.config ?? (existsSync(AGENT_PATHS.configFile) ? AGENT_PATHS.configFile : undefined);
  let file: AgentSettings = {};
  if (path !== undefined) {
    file = parseAgentConfigFile(readBoundedText(path, 'config'), path);
  }
  return mergeAgentOptions(flagSettings(f), file);
}

const verdictLine = (o: AttestOutcome): string =>
  `${o.at} ${o.verdict.status}: sent ${o.ima.bytes} list bytes from offset ${o.ima.offsetBytes}` +
  `${o.ima.capped ? ' (capped; the rest next time)' : ''}, quote over ${o.pcrs}, boot ${o.bootCount}` +
  `${o.resentAfterReboot !== undefined ? ' (resent from 0 after a TPM reset)' : ''}` +
  `${typeof o.verdict.failure?.message === 'string' ? ` — ${o.verdict.failure.code ?? ''}: ${o.verdict.failure.message}` : ''}\n`;

const isPassing = (o: AttestOutcome): boolean => verdictPassed(o.verdict);

type RunFlags = CommonFlags & { once?: boolean; pull?: boolean; keylimeApi?: boolean };

/** `--keylime-api`: its options from the flags alone (no config file, verifier or id). */
export function keylimeApiOptions(f: RunFlags): KeylimeApiOptions {
  const others = (['once', 'pull', 'config', 'verifier', 'id'] as const).filter((k) => f[k] !== undefined);
  if (others.length > 0)
    throw new ImakitError(
      'E_USAGE',
      `--keylime-api takes --listen, --tpm, --ak, --ima-list and --eventlog, not --${others[0]!}`,
    );
  if (f.listen === undefined)
    throw new ImakitError('E_USAGE', '--keylime-api needs --listen HOST:PORT', { field: 'listen' });
  if (f.ak === undefined)
    throw new ImakitError('E_USAGE', '--keylime-api needs --ak DIR (made by imakit tpm ak create)', {
      field: 'ak',
    });
  const eventLog = f.eventlog ?? AGENT_PATHS.eventLog;
  return Object.freeze({
    listen: f.listen,
    tpm: f.tpm ?? '/dev/tpmrm0',
    akDir: f.ak,
    imaList: f.imaList ?? AGENT_PATHS.imaList,
    eventLog: eventLog === '' || eventLog === 'none' ? undefined : eventLog,
  });
}

/** Serve until SIGINT/SIGTERM. */
async function untilSignal(close: () => Promise<void>): Promise<void> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await new Promise<void>((resolve) =>
      ac.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    await close();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function run(f: RunFlags, ctx: CommandContext): Promise<number> {
  const json = f.json === true;
  if (f.keylimeApi === true) {
    const s = await serveKeylimeApi(keylimeApiOptions(f), {
      onError: (e) =>
        ctx.io.stderr(
          `imakit agent: quote failed: ${e instanceof ImakitError ? `${e.message} [${e.code}]` : String(e)}\n`,
        ),
    });
    ctx.io.stdout(
      json
        ? `${JSON.stringify({ listening: s.url, api: 'keylime' })}\n`
        : `imakit agent: serving Keylime's agent API on ${s.url} (/version, /v2.N/quotes/integrity)\n`,
    );
    await untilSignal(() => s.close());
    return 0;
  }
  const c = agentConfig(f);
  if (f.once === true && f.pull === true)
    throw new ImakitError('E_USAGE', '--once and --pull exclude each other');
  if (f.once === true) {
    const o = await attestOnce(c);
    ctx.io.stdout(json ? `${JSON.stringify(o, null, 2)}\n` : verdictLine(o));
    return isPassing(o) ? 0 : 1;
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (f.pull === true) {
      const s = await serveEvidence(c);
      ctx.io.stdout(
        json
          ? `${JSON.stringify({ listening: s.url })}\n`
          : `imakit agent: serving evidence on ${s.url}/v1/evidence\n`,
      );
      await new Promise<void>((resolve) =>
        ac.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      await s.close();
      return 0;
    }
    await runPush(c, ac.signal, {
      onVerdict: (o) => ctx.io.stdout(json ? `${JSON.stringify(o)}\n` : verdictLine(o)),
      onError: (e, ms) => {
        const msg = e instanceof ImakitError ? `${e.message} [${e.code}]` : String(e);
        ctx.io.stderr(`imakit agent: ${msg}; retrying in ${(ms / 1000).toFixed(1)} s\n`);
      },
    });
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export const command: CommandModule = {
  name: 'agent',
  register(program, ctx) {
    const agent = program.command('agent').description('the host agent: enrol with the verifier, attest');
    const common = <A extends unknown[], O extends OptionValues>(c: TypedCommand<A, O>) =>
      c
        .option(
          '--config <file>',
          `config file, JSON or key = value (default ${AGENT_PATHS.configFile} when present)`,
        )
        .option('--verifier <url>', 'the verifier, https://HOST:PORT')
        .option('--id <id>', "this agent's id at the verifier")
        .option('--tpm <where>', 'TPM: /dev/tpmrm0 (default), /dev/tpm0, swtpm:HOST:PORT or unix:PATH')
        .option('--ak <dir>', 'AK directory (default STATE/ak)')
        .option('--ek <kind>', 'EK the AK lives under: rsa (default), ecc, ecc384')
        .option('--ima-list <file>', `binary measurement list (default ${AGENT_PATHS.imaList})`)
        .option('--eventlog <file>', `TCG event log, or 'none' (default ${AGENT_PATHS.eventLog})`)
        .option('--boot-id <file>', `boot id file (default ${AGENT_PATHS.bootId})`)
        .option(
          '--state <dir>',
          `state directory: token, boot count, last attestation (default ${AGENT_PATHS.stateDir})`,
        )
        .option('--interval <seconds>', 'seconds between attestations (default 60)')
        .option('--ca <file>', 'PEM certificate to trust for the verifier (its DATA/tls.crt)')
        .option('--insecure', "do not check the verifier's certificate")
        .option('--json', 'JSON output');
    const go = (f: { json?: boolean }, body: () => Promise<number>): Promise<void> =>
      ctx.run(body, { json: f.json === true });

    common(
      agent
        .command('enrol')
        .description('register the EK and a new AK, activate the credential, store the token'),
    ).action((f) =>
      go(f, async () => {
        const r = await enrol(agentConfig(f));
        ctx.io.stdout(
          f.json === true
            ? `${JSON.stringify(r, null, 2)}\n`
            : `enrolled ${r.id}: AK ${r.akName}${r.akReused ? ' (reused)' : ' (new)'}, EK certificate ${r.ekCertificate ? 'sent' : 'none in NV'}; token in ${r.tokenPath}\n`,
        );
        return 0;
      }),
    );
    common(
      agent
        .command('run')
        .description('attest: push mode every interval (backing off on errors), or serve evidence (--pull)')
        .option('--once', 'attest once and exit with the verdict (0 passing, 1 not)')
        .option('--pull', 'serve GET /v1/evidence for the verifier to poll instead of pushing')
        .option('--keylime-api', "serve Keylime's agent API (as rust-keylime) on --listen")
        .option('--listen <host:port>', 'address the pull (or --keylime-api) endpoint binds to'),
    ).action((f) => go(f, () => run(f, ctx)));
    common(
      agent.command('status').description('enrolment and the last attestation (local, no network)'),
    ).action((f) =>
      go(f, async () => {
        const s = agentStatus(agentConfig(f));
        ctx.io.stdout(
          f.json === true
            ? `${JSON.stringify(s, null, 2)}\n`
            : `${s.id} at ${s.verifier}: ${s.enrolled ? 'enrolled' : 'not enrolled'}\n` +
                (s.last !== undefined ? `last: ${verdictLine(s.last)}` : 'last: never attested\n'),
        );
        return 0;
      }),
    );
  },
};
