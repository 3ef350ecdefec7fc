/**
 * The attestation part of `imakit demo` (issue 13 part 7): the fleet verifier and an agent on a
 * software TPM, with no configuration.
 *
 *  1. manufacture a private swtpm (EK certificate, sha1 + sha256 banks) on free loopback ports, and
 *     at the same time start `@imakit/verifier` in-process over loopback HTTP on a temporary PGlite
 *     data dir;
 *  2. build an ima-ng measurement list: a boot_aggregate entry computed from swtpm's sha256 PCRs
 *     0-9 (what a 5.8+ kernel computes; nothing extended them, so they are zero), then one entry per
 *     demo file (sha256 of its content, its path), each extended into PCR 10 as the kernel does
 *     (sha1 bank: the SHA-1 of the template data, sha256 bank: its SHA-256);
 *  3. learn a reference set from that list, upload it, add the agent held to it, enrol it (the
 *     registrar's credential activated in swtpm), attest once: pass;
 *  4. change one file, append its new measurement and extend it, attest again: the verifier fails
 *     the agent naming the entry and the path.
 *
 * Everything is torn down in `finally`: the verifier closed, swtpm killed by its PID, the temporary
 * directory removed. The swtpm helpers find the tools in the standard directories.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { toHex } from '../../core/bytes/bytes.ts';
import { hash } from '../../core/hash/hash-algo.ts';
import { encodeBinaryList, type UntrustedEntry } from '../../core/ima-list/binary.ts';
import { joinTemplateData, parseFieldText } from '../../core/ima-list/fields.ts';
import { referencesFromEntries } from '../../core/refs/from-list.ts';
import { encodeRefsJson } from '../../core/refs/refs-json.ts';
import { kernelBootAggregates } from '../../core/tcg/boot-aggregate.ts';
import { TPM_ALG } from '../../core/tpm/constants.ts';
import { parsePcrSelectionText } from '../../core/tpm/pcr-selection.ts';
import { apiClient } from '../../host/agent/api-client.ts';
import { attestOnce, type AgentVerdict } from '../../host/agent/attest.ts';
import { mergeAgentOptions } from '../../host/agent/config.ts';
import { enrol } from '../../host/agent/enrol.ts';
import { readSecretFile } from '../../host/agent/secret-files.ts';
import { startVerifier, type RunningVerifier, type VerifierModule } from '../../host/agent/verifier-host.ts';
import { TpmClient } from '../../host/tpm/client.ts';
import {
  findSwtpmTool,
  manufactureSwtpm,
  startSwtpm,
  type SwtpmProcess,
} from '../../host/tpm/swtpm-process.ts';

/** What the demo says when swtpm is not installed. */
export const SWTPM_MISSING =
  'attestation skipped: swtpm and swtpm_setup are not installed (Debian/Ubuntu: apt-get install swtpm swtpm-tools)';

const AGENT_ID = 'demo-host';

/** One attestation's outcome as the demo reports it. */
export interface DemoAttestRound {
  readonly status: string;
  /** list bytes sent, from this offset */
  readonly sentFrom: number;
  readonly sentBytes: number;
  readonly failure?: AgentVerdict['failure'];
  readonly durationMs: number;
}

export type DemoAttestation =
  | { readonly status: 'skipped'; readonly reason: string }
  | {
      readonly status: 'done';
      readonly tpm: { readonly banks: readonly string[]; readonly ekCertificate: boolean };
      readonly verifier: { readonly url: string; readonly database: 'pglite' };
      readonly list: {
        readonly template: 'ima-ng';
        readonly entries: number;
        /** the first list's entries: boot_aggregate and one per file */
        /** sha256 over swtpm's PCRs 0-9, the kernel's 5.8+ computation */
        readonly bootAggregate: string;
      };
      readonly referenceSet: { readonly id: string; readonly paths: number };
      readonly agent: { readonly id: string; readonly akName: string };
      readonly first: DemoAttestRound;
      /** the file changed after the first attestation (relative to the workspace) and its list entry */
      readonly changed: { readonly path: string; readonly measuredPath: string; readonly entry: number };
      readonly second: DemoAttestRound;
      /** the verifier's reason, in one line */
      readonly reason: string;
      /** true when the first attestation passed and the second failed naming the changed entry and path */
      readonly caught: boolean;
      readonly timings: Readonly<Record<string, number>>;
      readonly durationMs: number;
    };

export interface AttestDemoOptions {
  /** the demo's labelled files (absolute paths) */
  readonly paths: readonly string[];
  /** the demo's workspace, for relative names in the report */
  readonly workspace: string;
  /** loads `@imakit/verifier` (cli/commands/verifier.ts) */
  readonly loadVerifier: () => Promise<VerifierModule>;
}

/** True when both swtpm tools are installed. */
export const swtpmAvailable = (): boolean =>
  findSwtpmTool('swtpm') !== undefined && findSwtpmTool('swtpm_setup') !== undefined;

const BANKS = ['sha1', 'sha256'] as const;

/** ima-ng template data: d-ng `sha256:` digest, n-ng path (formats.md §1.4). */
function imaNgEntry(index: number, offset: number, digest: Uint8Array, path: string): UntrustedEntry {
  const templateData = joinTemplateData(
    [parseFieldText('d-ng', `sha256:${toHex(digest)}`, 'le'), parseFieldText('n-ng', path, 'le')],
    'le',
  );
  return { index, offset, pcr: 10, digest: hash('sha1', templateData), templateName: 'ima-ng', templateData };
}

/** Extend PCR 10 as the kernel does for each entry: per bank, the bank's hash of the template data. */
async function extend(tpm: TpmClient, entries: readonly UntrustedEntry[]): Promise<void> {
  for (const e of entries)
    await tpm.pcrExtend(10, [
      { hashAlg: TPM_ALG.SHA1, digest: e.digest },
      { hashAlg: TPM_ALG.SHA256, digest: hash('sha256', e.templateData) },
    ]);
}

/**
 * Run the attestation part (the caller checked `swtpmAvailable()`).
 * @throws ImakitError from swtpm, the verifier or the agent; everything started is torn down first
 */
export async function runAttestDemo(o: AttestDemoOptions): Promise<DemoAttestation> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  let mark = started;
  const lap = (name: string): void => {
    const now = performance.now();
    timings[name] = Math.round(now - mark);
    mark = now;
  };
  const dir = mkdtempSync(join(tmpdir(), 'imakit-demo-attest-'));
  let swtpm: SwtpmProcess | undefined;
  let verifier: RunningVerifier | undefined;
  let tpm: TpmClient | undefined;
  try {
    // 1. swtpm and the verifier, side by side (manufacturing and PGlite's start dominate)
    const [state, v] = await Promise.all([
      manufactureSwtpm(join(dir, 'tpm'), BANKS),
      o
        .loadVerifier()
        .then((mod) =>
          startVerifier(mod, { listen: '127.0.0.1:0', dataDir: join(dir, 'verifier'), http: true }),
        ),
    ]);
    verifier = v;
    swtpm = await startSwtpm(state.stateDir, join(dir, 'tpm', 'swtpm.log'));
    lap('start');

    // 2. the list: boot_aggregate from PCRs 0-9, then every file, extended into PCR 10
    tpm = await TpmClient.open(swtpm.selector);
    const boot = await tpm.pcrRead(parsePcrSelectionText('sha256:0-9'));
    const pcrs = new Map([['sha256', new Map(boot.values.map((v) => [v.pcr, v.value] as const))]]);
    const aggregate = kernelBootAggregates(pcrs, ['sha256'])[0]!.digest;
    const entries: UntrustedEntry[] = [];
    let offset = 0;
    const add = (digest: Uint8Array, path: string): UntrustedEntry => {
      const e = imaNgEntry(entries.length, offset, digest, path);
      offset += encodeBinaryList([e]).length;
      entries.push(e);
      return e;
    };
    const listFile = join(dir, 'binary_runtime_measurements');
    // the kernel's boot_aggregate entry is ima-ng with d-ng and n-ng "boot_aggregate"
    add(aggregate, 'boot_aggregate');
    for (const p of o.paths) add(hash('sha256', new Uint8Array(readFileSync(p))), p);
    writeFileSync(listFile, encodeBinaryList(entries));
    await extend(tpm, entries);
    const listed = entries.length;
    lap('list');

    // 3. refs learned from the list, uploaded; the agent added, enrolled, attested
    const admin = readSecretFile(verifier.adminTokenPath)?.trim() ?? '';
    const api = apiClient({ baseUrl: verifier.url, authorization: `Bearer ${admin}` });
    const learned = referencesFromEntries(entries, { provenance: { kind: 'list' } });
    const refs = await api.request<{ id: string; paths: number }>(
      'POST',
      '/v1/reference-sets?name=demo',
      new TextEncoder().encode(encodeRefsJson(learned.set)),
    );
    await api.request('POST', '/v1/agents', { id: AGENT_ID, referenceSet: refs.id });
    await tpm.close();
    tpm = undefined; // swtpm serves one connection at a time: enrolment opens its own
    writeFileSync(join(dir, 'boot_id'), '00000000-0000-4000-8000-00000000d3e0\n');
    const config = mergeAgentOptions({
      verifier: verifier.url,
      id: AGENT_ID,
      tpm: swtpm.selector,
      state: join(dir, 'agent'),
      'ima-list': listFile,
      eventlog: 'none',
      'boot-id': join(dir, 'boot_id'),
    });
    const enrolled = await enrol(config);
    lap('enrol');
    tpm = await TpmClient.open(swtpm.selector);
    const round = async (): Promise<DemoAttestRound> => {
      const t0 = performance.now();
      const r = await attestOnce(config, { tpm: tpm! });
      return {
        status: r.verdict.status,
        sentFrom: r.ima.offsetBytes,
        sentBytes: r.ima.bytes,
        ...(r.verdict.failure !== undefined ? { failure: r.verdict.failure } : {}),
        durationMs: Math.round(performance.now() - t0),
      };
    };
    const first = await round();
    lap('attest');

    // 4. one file changed: its new measurement appended and extended, attested again
    const target = pickPlain(o.paths);
    appendFileSync(target, '\n# changed after the first attestation\n');
    const changed = add(hash('sha256', new Uint8Array(readFileSync(target))), target);
    appendFileSync(listFile, encodeBinaryList([changed]));
    await extend(tpm, [changed]);
    const second = await round();
    lap('reattest');

    const f = second.failure;
    const reason =
      f === undefined
        ? `no failure reported (status ${second.status})`
        : `${String(f.step ?? '?')} ${String(f.code ?? '?')}: entry ${String(f.entry ?? '?')} ${String(f.path ?? '')}` +
          (typeof f.message === 'string' ? ` (${f.message})` : '');
    const report: DemoAttestation = {
      status: 'done',
      tpm: { banks: BANKS, ekCertificate: enrolled.ekCertificate },
      verifier: { url: verifier.url, database: 'pglite' },
      list: { template: 'ima-ng', entries: listed, bootAggregate: toHex(aggregate) },
      referenceSet: { id: refs.id, paths: refs.paths },
      agent: { id: AGENT_ID, akName: enrolled.akName },
      first,
      changed: { path: relative(o.workspace, target), measuredPath: target, entry: changed.index },
      second,
      reason,
      caught:
        first.status === 'pass' &&
        second.status === 'fail' &&
        f?.entry === changed.index &&
        f.path === target,
      timings,
      durationMs: Math.round(performance.now() - started),
    };
    return Object.freeze(report);
  } finally {
    await tpm?.close().catch(() => undefined);
    swtpm?.stop();
    await verifier?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A plainly named file a third of the way in (the label demo tampers the middle and the first). */
function pickPlain(paths: readonly string[]): string {
  const plain = paths.filter((p) => /\/[a-z][a-z0-9._-]*$/.test(p));
  const pool = plain.length > 0 ? plain : paths;
  return pool[Math.floor(pool.length / 3)]!;
}
