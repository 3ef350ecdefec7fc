/**
 * `imakit emulate SCENARIO --out DIR`: run a scenario (src/kernel/scenario.ts documents the JSON)
 * on the kernel emulator and write the artifacts the real-kernel harness brings back
 * (`binary_runtime_measurements`, `ascii_runtime_measurements`, `runtime_measurements_count`,
 * `violations`, `pcrs-<bank>.txt`, `result.json`, `dmesg.txt`, `policy.txt`, `cmdline.txt`), so an
 * emulated run and a real one can be compared file by file.
 *
 * Exit: 0 ran, 2 invalid scenario (the message names the field), 3 unreadable input or output.
 */
import { lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ImakitError, EXIT, fromSystemError, withPath } from '../../errors.ts';
import { loadPublicKeys, type PublicKey } from '../../core/keys/keys.ts';
import { parseScenario, runScenario, type ScenarioFile, type ScenarioResult } from '../../kernel/scenario.ts';
import { walkTree } from '../../host/fs/walk.ts';
import { readBoundedFile, readBoundedText } from '../../host/fs/bounded-read.ts';
import { getXattr, listXattrs } from '../../host/fs/xattr.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';

/** A scenario starts with `{` (after blanks): /dev/zero or a binary file is refused at its head. */
const JSON_PROBE = (path: string) => ({
  bytes: 4096,
  check: (head: Uint8Array): void => {
    const first = head.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    if (first !== undefined && first !== 0x7b)
      throw new ImakitError(
        'E_SCENARIO',
        `not JSON: starts with byte 0x${first.toString(16).padStart(2, '0')}, expected '{'`,
        { path },
      );
  },
});

/** A file a scenario names (a certificate, a file's contents): bounded like the scenario itself. */
function readBytes(path: string): Uint8Array {
  return readBoundedFile(path, 'scenario');
}

function certs(
  paths: readonly string[],
  base: string,
  field: string,
): Array<{ key: PublicKey; der: Uint8Array }> {
  return paths.flatMap((p, i) => {
    const data = readBytes(resolve(base, p));
    try {
      return loadPublicKeys(data).map((key) => ({ key, der: key.cert?.der ?? data }));
    } catch (e) {
      throw new ImakitError('E_SCENARIO', `${field}[${i}]: ${e instanceof Error ? e.message : String(e)}`, {
        field: `${field}[${i}]`,
      });
    }
  });
}

async function treeFiles(root: string): Promise<ScenarioFile[]> {
  const out: ScenarioFile[] = [];
  for await (const e of walkTree(root)) {
    if (e.kind === 'error') throw fromSystemError(e.error, 'E_IO_READ', e.path);
    if (e.type !== 'file') continue;
    const st = lstatSync(e.path);
    const xattrs = new Map<string, Uint8Array>();
    for (const n of listXattrs(e.path)) {
      if (!n.startsWith('security.')) continue;
      const v = getXattr(e.path, n);
      if (v) xattrs.set(n, v);
    }
    out.push({
      path: relative(root, e.path),
      content: readBytes(e.path),
      uid: st.uid,
      gid: st.gid,
      mode: st.mode,
      xattrs,
    });
  }
  return out;
}

function pcrText(vals: readonly string[]): string {
  return vals.map((v, i) => `PCR-${String(i).padStart(2, '0')}: ${v}\n`).join('');
}

function writeArtifacts(
  dir: string,
  r: ScenarioResult,
  policy: string | undefined,
  cmdline: readonly string[],
): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'binary_runtime_measurements'), r.binaryList);
    writeFileSync(join(dir, 'ascii_runtime_measurements'), r.asciiList);
    for (const [b, l] of r.perBank) {
      writeFileSync(join(dir, `binary_runtime_measurements_${b}`), l.binary);
      writeFileSync(join(dir, `ascii_runtime_measurements_${b}`), l.ascii);
    }
    writeFileSync(join(dir, 'runtime_measurements_count'), `${r.measurementCount}\n`);
    writeFileSync(join(dir, 'violations'), `${r.violations}\n`);
    for (const [b, vals] of Object.entries(r.pcrs)) writeFileSync(join(dir, `pcrs-${b}.txt`), pcrText(vals));
    writeFileSync(join(dir, 'dmesg.txt'), r.dmesg);
    if (policy !== undefined) writeFileSync(join(dir, 'policy.txt'), policy);
    writeFileSync(join(dir, 'cmdline.txt'), cmdline.join(' ') + '\n');
    writeFileSync(join(dir, 'result.json'), JSON.stringify(resultJson(r), null, 2) + '\n');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', dir);
  }
}

/** The harness's result.json shape (policyLoaded, counts, accesses with audit fields, files). */
function resultJson(r: ScenarioResult): Record<string, unknown> {
  return {
    emulated: true,
    policyLoaded: r.policyLoaded,
    measurementCount: r.measurementCount,
    violations: r.violations,
    keyErrors: r.keyErrors,
    oops: r.oops,
    accesses: r.accesses.map((a) => ({
      index: a.index,
      op: a.op,
      path: a.path,
      uid: a.uid,
      label: a.label,
      outcome: a.outcome,
      status: a.status,
      stderr: '',
      audit: a.audit.map((x) => x.fields),
    })),
    files: r.files,
  };
}

async function run(file: string, f: { out?: string; json?: boolean }, io: CliIo): Promise<number> {
  let json: unknown;
  try {
    json = JSON.parse(readBoundedText(file, 'scenario', { probe: JSON_PROBE(file) }));
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new ImakitError('E_SCENARIO', `not JSON: ${e.message}`, { path: file });
    throw fromSystemError(e, 'E_IO_READ', file);
  }
  // the parser names the field; the user also needs the file
  const s = withPath(file, () => parseScenario(json));
  const base = dirname(resolve(file));
  const files: ScenarioFile[] = s.files.map(({ contentFile, ...rest }) =>
    contentFile !== undefined ? { ...rest, content: readBytes(resolve(base, contentFile)) } : rest,
  );
  if (s.tree !== undefined) files.push(...(await treeFiles(resolve(base, s.tree))));
  const r = runScenario(s, files, {
    ima: certs(s.imaCerts, base, 'imaCerts'),
    evm: certs(s.evmCerts, base, 'evmCerts'),
  });
  if (f.out !== undefined) writeArtifacts(f.out, r, s.policy, s.append);
  if (f.json)
    io.stdout(JSON.stringify({ ...resultJson(r), pcrs: r.pcrs, out: f.out ?? null }, null, 2) + '\n');
  else {
    io.stdout(r.asciiList);
    for (const a of r.accesses) {
      const rec = a.audit.find((x) => x.type === 1800);
      io.stdout(
        `#${a.index} ${a.op} ${a.path} (uid ${a.uid}): ${a.outcome}${rec ? ` ${rec.fields.op}:${rec.fields.cause}` : ''}\n`,
      );
    }
    for (const [b, vals] of Object.entries(r.pcrs)) io.stdout(`PCR10 ${b}: ${vals[10]}\n`);
    if (f.out !== undefined) io.stdout(`artifacts written to ${f.out}\n`);
  }
  return EXIT.OK;
}

export const command: CommandModule = {
  name: 'emulate',
  register(program, ctx) {
    program
      .command('emulate')
      .description(
        'run a scenario (JSON, see src/kernel/scenario.ts) on the IMA/EVM emulator and write the real-kernel harness artifacts',
      )
      .argument('<scenario>', 'scenario JSON file')
      .option('-o, --out <dir>', 'write the artifacts here')
      .option('--json', 'print the result as JSON')
      .action(async (file, f) => ctx.run(() => run(file, f, ctx.io), { json: f.json === true }));
  },
};
