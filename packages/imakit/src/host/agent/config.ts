/**
 * The agent's configuration: one frozen `AgentConfig` (style.md practice 8), made by
 * `mergeAgentOptions(flags, file, defaults)` with the precedence flags > config file > defaults.
 * The CLI reads the file and the flags; the library never reads the environment.
 *
 * The config file (`/etc/imakit/agent.conf`, `contrib/agent.conf.example`) is either JSON (an
 * object; the text starts with `{`) or INI-like: `key = value` lines, `#` or `;` comments, blank
 * lines, an optional `[agent]` section header. Keys are the long flag names of `imakit agent`:
 *
 *   verifier   https://verifier.example:8443     (required)
 *   id         the agent's id at the verifier      (required)
 *   tpm        /dev/tpmrm0 | /dev/tpm0 | swtpm:HOST:PORT | unix:PATH
 *   ak         AK directory (created at enrolment unless it holds an AK)
 *   ek         rsa | ecc | ecc384: the EK the AK lives under
 *   ima-list   the binary measurement list (securityfs by default)
 *   eventlog   the TCG event log ('' or 'none': do not send one)
 *   boot-id    the kernel's boot id file (a change counts a boot)
 *   state      state directory: agent token, boot count, last offsets
 *   interval   seconds between attestations in push mode
 *   max-backoff  seconds, the longest wait after repeated errors
 *   ca         PEM file of the verifier's certificate or CA
 *   insecure   true: do not check the verifier's certificate
 *   listen     HOST:PORT the pull-mode endpoint binds to
 */
import { ImakitError } from '../../errors.ts';
import type { EkKind } from '../../core/tpm/commands/templates.ts';

/** Where the kernel exposes things; adapter defaults, not literals in logic (practice 11). */
export const AGENT_PATHS = Object.freeze({
  imaList: '/sys/kernel/security/ima/binary_runtime_measurements',
  eventLog: '/sys/kernel/security/tpm0/binary_bios_measurements',
  bootId: '/proc/sys/kernel/random/boot_id',
  stateDir: '/var/lib/imakit/agent',
  configFile: '/etc/imakit/agent.conf',
});

/** The resolved, frozen agent configuration. */
export interface AgentConfig {
  /** the verifier's base URL (http: only to loopback, see mergeAgentOptions) */
  readonly verifier: string;
  readonly id: string;
  /** TPM selector (`--tpm`) */
  readonly tpm: string;
  readonly akDir: string;
  readonly ek: EkKind;
  readonly imaList: string;
  /** undefined: no event log is sent */
  readonly eventLog: string | undefined;
  readonly bootIdPath: string;
  readonly stateDir: string;
  readonly intervalSeconds: number;
  readonly maxBackoffSeconds: number;
  readonly tls: { readonly ca: string | undefined; readonly insecure: boolean };
  /** pull mode: `HOST:PORT` to bind */
  readonly listen: string | undefined;
}

/** Settings as they arrive from flags or a file: every key optional, values as text or typed. */
export type AgentSettings = Partial<Record<AgentKey, string | number | boolean>>;

export const AGENT_KEYS = [
  'verifier',
  'id',
  'tpm',
  'ak',
  'ek',
  'ima-list',
  'eventlog',
  'boot-id',
  'state',
  'interval',
  'max-backoff',
  'ca',
  'insecure',
  'listen',
] as const;
export type AgentKey = (typeof AGENT_KEYS)[number];

/** The defaults: a root agent on a real machine. */
export const AGENT_DEFAULTS: Readonly<AgentSettings> = Object.freeze({
  tpm: '/dev/tpmrm0',
  ek: 'rsa',
  'ima-list': AGENT_PATHS.imaList,
  eventlog: AGENT_PATHS.eventLog,
  'boot-id': AGENT_PATHS.bootId,
  state: AGENT_PATHS.stateDir,
  interval: 60,
  'max-backoff': 300,
  insecure: false,
});

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EKS: readonly EkKind[] = ['rsa', 'ecc', 'ecc384'];

/**
 * Parse a config file's text (JSON or INI-like, see the module doc).
 * @throws ImakitError E_USAGE naming the path and line of an unknown key or a malformed line
 */
export function parseAgentConfigFile(text: string, path: string): AgentSettings {
  const out: AgentSettings = {};
  const put = (key: string, value: unknown, line?: number): void => {
    if (!(AGENT_KEYS as readonly string[]).includes(key))
      throw new ImakitError('E_USAGE', `unknown key '${key}' (known: ${AGENT_KEYS.join(', ')})`, {
        path,
        ...(line !== undefined ? { line } : {}),
      });
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      throw new ImakitError('E_USAGE', `key '${key}': expected a string, number or boolean`, {
        path,
        ...(line !== undefined ? { line } : {}),
      });
    out[key as AgentKey] = value;
  };
  if (text.trimStart().startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new ImakitError('E_USAGE', `not valid JSON: ${(e as Error).message}`, { path });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new ImakitError('E_USAGE', 'expected a JSON object', { path });
    for (const [k, val] of Object.entries(v)) put(k, val);
    return Object.freeze(out);
  }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || /^\[agent\]$/i.test(line)) return;
    const m = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (m === null)
      throw new ImakitError('E_USAGE', `expected 'key = value', got '${line}'`, { path, line: i + 1 });
    let value = m[2]!.trim();
    if (value.length >= 2 && /^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    put(m[1]!, value, i + 1);
  });
  return Object.freeze(out);
}

/**
 * Merge settings, flags over file over defaults, and check them. Undefined flag values do not
 * override (commander leaves unset flags undefined).
 * @throws ImakitError E_USAGE naming the setting that is missing or invalid
 */
export function mergeAgentOptions(
  flags: AgentSettings,
  file: AgentSettings = {},
  defaults: AgentSettings = AGENT_DEFAULTS,
): AgentConfig {
  const pick = (k: AgentKey): string | number | boolean | undefined => flags[k] ?? file[k] ?? defaults[k];
  const str = (k: AgentKey): string | undefined => {
    const v = pick(k);
    return v === undefined ? undefined : String(v);
  };
  const need = (k: AgentKey): string => {
    const v = str(k);
    if (v === undefined || v === '')
      throw new ImakitError(
        'E_USAGE',
        `the agent needs '${k}' (flag --${k} or '${k} = …' in the config file)`,
        {
          field: k,
        },
      );
    return v;
  };
  const int = (k: AgentKey, min: number, max: number): number => {
    const v = Number(pick(k));
    if (!Number.isInteger(v) || v < min || v > max)
      throw new ImakitError('E_USAGE', `${k}: expected an integer ${min}..${max}, got '${str(k)}'`, {
        field: k,
      });
    return v;
  };
  const bool = (k: AgentKey): boolean => {
    const v = pick(k);
    if (typeof v === 'boolean') return v;
    if (v === undefined) return false;
    if (/^(true|yes|1|on)$/i.test(String(v))) return true;
    if (/^(false|no|0|off)$/i.test(String(v))) return false;
    throw new ImakitError('E_USAGE', `${k}: expected true or false, got '${String(v)}'`, { field: k });
  };

  const verifier = need('verifier').replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(verifier);
  } catch {
    throw new ImakitError('E_USAGE', `verifier: not a URL: '${verifier}'`, { field: 'verifier' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ImakitError('E_USAGE', `verifier: expected an https:// URL, got '${verifier}'`, {
      field: 'verifier',
    });
  const id = need('id');
  if (!ID_RE.test(id))
    throw new ImakitError('E_USAGE', `id '${id}': letters, digits and . _ : - (at most 128)`, {
      field: 'id',
    });
  const ek = need('ek') as EkKind;
  if (!EKS.includes(ek)) throw new ImakitError('E_USAGE', `ek: one of ${EKS.join(', ')}`, { field: 'ek' });
  const stateDir = need('state');
  const eventLog = str('eventlog');
  const listen = str('listen');
  const ca = str('ca');
  return Object.freeze({
    verifier,
    id,
    tpm: need('tpm'),
    akDir: str('ak') ?? `${stateDir.replace(/\/+$/, '')}/ak`,
    ek,
    imaList: need('ima-list'),
    eventLog: eventLog === undefined || eventLog === '' || eventLog === 'none' ? undefined : eventLog,
    bootIdPath: need('boot-id'),
    stateDir,
    intervalSeconds: int('interval', 1, 86400),
    maxBackoffSeconds: int('max-backoff', 1, 86400),
    tls: Object.freeze({ ca: ca === '' ? undefined : ca, insecure: bool('insecure') }),
    listen: listen === '' ? undefined : listen,
  });
}

/**
 * `HOST:PORT` (`[v6]:PORT` for IPv6) to its parts.
 * @throws ImakitError E_USAGE
 */
export function parseListen(text: string, what = 'listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535)
    throw new ImakitError('E_USAGE', `${what} '${text}': expected HOST:PORT (port 0..65535)`, {
      field: what,
    });
  return { host: m[1] ?? m[2]!, port };
}

/** True for addresses that never leave this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
