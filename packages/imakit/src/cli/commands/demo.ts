/**
 * `imakit demo`: the main job on embedded defaults (README quick start). Flags → options, one
 * library call (host/demo.ts), render text or JSON, exit 0 only when tampering was detected exactly.
 */
import { EXIT } from '../../errors.ts';
import { join } from 'node:path';
import { runDemo, DEMO_FALLBACK_UUID, type DemoReport } from '../demo/run-demo.ts';
import { runAttestDemo, swtpmAvailable, SWTPM_MISSING, type DemoAttestation } from '../demo/attest-demo.ts';
import { loadVerifierModule } from './verifier.ts';
import { predictTree } from '../../host/preflight/preflight.ts';
import { readKeyFile } from '../../host/keys/key-files.ts';
import { readFsUuid } from '../../host/fs/fs-uuid.ts';
import { formatUuid } from '../../core/bytes/uuid.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { createProgress } from '../progress.ts';

export const command: CommandModule = {
  name: 'demo',
  register(program, ctx) {
    program
      .command('demo')
      .description(
        'generate keys, label a real tree copied from this machine, verify, tamper, and show the detection',
      )
      .option('--dir <dir>', 'keep the workspace in DIR (default: a temporary directory, removed)')
      .option('--source <dir>', 'directory to copy files from (default: /usr/bin)')
      .option('--files <n>', 'at most N files (default 300)')
      .option('--no-attest', 'skip the attestation part (verifier + agent on swtpm)')
      .option('--json', 'print the report as JSON')
      .action((f) =>
        ctx.run(
          async () => {
            const progress = createProgress(ctx.io, { label: 'label', json: f.json === true });
            const report = await runDemo({
              ...(f.dir === undefined ? {} : { dir: f.dir }),
              ...(f.source === undefined ? {} : { source: f.source }),
              ...(f.files === undefined ? {} : { maxFiles: Number.parseInt(f.files, 10) }),
              onProgress: (_step, done, total) => {
                progress.setTotal(total);
                progress.tick();
              },
              predict: demoPrediction,
              ...(f.attest === false ? {} : { attest: demoAttestation }),
            });
            progress.stop();
            if (f.json) ctx.io.stdout(JSON.stringify(report, null, 2) + '\n');
            else render(report, ctx.io);
            const a = report.attestation;
            return report.detectedExactly && (a === undefined || a.status === 'skipped' || a.caught)
              ? EXIT.OK
              : EXIT.VERIFY_FAILED;
          },
          { json: f.json === true },
        ),
      );
  },
};

/**
 * Step 7 of the demo: the emulated Debian 6.1 kernel (`ima_policy=appraise_tcb`, enforce, the demo's
 * certificate in `_ima`, EVM initialised with the demo's HMAC key) judges the tampered tree as an
 * ext4 filesystem. The HMAC key and fs UUID are the ones the demo labelled with: the key file it
 * keeps in WORKSPACE/keys (ROOT is WORKSPACE/tree/NAME), the UUID read the same way (host/demo.ts).
 */
async function demoPrediction(root: string, certDer: Uint8Array) {
  const hmacKey = readKeyFile(join(root, '..', '..', 'keys', 'evm-key-plain'));
  let fsuuid = DEMO_FALLBACK_UUID;
  try {
    fsuuid = formatUuid(readFsUuid(root).uuid);
  } catch {
    // containers: the demo labelled for its fallback UUID
  }
  return predictTree(root, certDer, { evmHmacKey: hmacKey, fsuuid, fsType: 'ext4' });
}

/**
 * Step 8: the verifier (in-process, PGlite) and an agent on a private swtpm. Without swtpm the step
 * is skipped with one line saying how to get it; the demo still exits 0.
 */
async function demoAttestation(paths: readonly string[], workspace: string): Promise<DemoAttestation> {
  if (!swtpmAvailable()) return { status: 'skipped', reason: SWTPM_MISSING };
  return runAttestDemo({ paths, workspace, loadVerifier: loadVerifierModule });
}

function render(r: DemoReport, io: CliIo): void {
  const mib = (b: number) => (b / (1 << 20)).toFixed(1);
  const out = (s = '') => io.stdout(s + '\n');
  out(`imakit demo (${(r.durationMs / 1000).toFixed(1)} s)`);
  out(`  workspace   ${r.workspace}${r.kept ? '' : ' (removed)'}`);
  out(`  keys        RSA-2048 CA + signing certificate "${r.key.subject}", key id ${r.key.keyid}`);
  out(`  copied      ${r.files} files, ${mib(r.bytes)} MiB from ${r.source}`);
  out(
    `  labelled    ${r.label.labelled} files: security.ima sha256 signature + security.evm HMAC ` +
      `(${r.evm.config} EVM config, fs UUID ${r.evm.fsUuid}${r.evm.uuidSource === 'fallback' ? ', fixed: the filesystem UUID is not readable here' : ''}) ` +
      `in ${(r.label.durationMs / 1000).toFixed(2)} s`,
  );
  out(
    `  verified    ${r.verify.passed}/${r.files} files pass${r.verify.failed.length ? `, ${r.verify.failed.length} FAILED` : ''}`,
  );
  for (const t of r.tampered) out(`  tampered    ${t.path}: ${t.change}`);
  out(`  re-verified ${r.reverify.passed}/${r.files} files pass; detected:`);
  for (const f of r.reverify.failed) out(`    ${f.path}: ${f.label} ${f.status}: ${f.detail}`);
  if (r.prediction) {
    const p = r.prediction;
    out(
      `  predicted   kernel with ${p.policy}, ima_appraise=${p.mode}: ${p.checks} accesses, ${p.denied.length} denied`,
    );
    for (const d of p.denied.slice(0, 5)) out(`    ${d.path} (${d.op}): ${d.cause ?? 'denied'}`);
  }
  const a = r.attestation;
  if (a?.status === 'skipped') out(`  ${a.reason}`);
  else if (a !== undefined) {
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    out(
      `  attestation verifier ${a.verifier.url} (PGlite, in-process), agent ${a.agent.id} on swtpm ` +
        `(EK certificate ${a.tpm.ekCertificate ? 'yes' : 'no'}, banks ${a.tpm.banks.join('+')}), started in ${s(a.timings.start ?? 0)}`,
    );
    out(
      `    list      ${a.list.entries} ima-ng entries (boot_aggregate sha256:${a.list.bootAggregate.slice(0, 16)}… + one per file) extended into PCR 10`,
    );
    out(
      `    refs      learned from the list: ${a.referenceSet.paths} paths, set ${a.referenceSet.id.slice(0, 16)}…`,
    );
    out(`    enrolled  AK ${a.agent.akName.slice(0, 20)}… (credential activated in swtpm)`);
    out(`    attest    ${a.first.status}: ${a.first.sentBytes} list bytes sent (${s(a.first.durationMs)})`);
    out(`    changed   ${a.changed.path} (entry ${a.changed.entry} appended and extended)`);
    out(
      `    attest    ${a.second.status}: ${a.second.sentBytes} bytes from offset ${a.second.sentFrom}; ${a.reason}`,
    );
  }
  const attestOk = a === undefined || a.status === 'skipped' || a.caught;
  out(
    r.detectedExactly && attestOk
      ? `result: every label verified; exactly the tampered files were detected${a?.status === 'done' ? '; the attested change was caught and named' : ''}`
      : 'result: UNEXPECTED',
  );
}
