/**
 * The main job on embedded defaults (`imakit demo`, the README's quick start): everything a fleet
 * engineer does before switching appraisal on, on a real tree copied from this machine.
 *
 *  1. generate an RSA-2048 CA and an IMA/EVM signing certificate signed by it;
 *  2. copy a few hundred real files (binaries from /usr/bin by default), modes preserved;
 *  3. label every file: security.ima signature (sha256) and security.evm HMAC exactly as the
 *     Debian 6.1 kernel computes it (debian-6.1 EVM config, fs UUID mixed in);
 *  4. verify every label; 5. change one file's content and another file's mode;
 *  6. verify again: exactly those two files must fail, for the right reasons;
 *  7. ask the kernel emulator what `ima_policy=appraise_tcb` in enforce mode would do (optional);
 *  8. attest the tree with the fleet verifier and an agent on swtpm, then catch one more changed
 *     file (optional, attest-demo.ts).
 *
 * Nothing is canned: every figure in the report is measured on this run. The library never prints.
 */
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { hashAlgoByName } from '../../core/hash/hash-algo.ts';
import { generateKeyPair, exportPrivateKeyPem } from '../../core/keys/key-gen.ts';
import { buildCertificate } from '../../core/keys/x509-build.ts';
import { loadPrivateKey, publicFromCertificate } from '../../core/keys/keys.ts';
import { Keyring } from '../../core/labels/ima-signature.ts';
import { formatKeyId } from '../../core/keys/keyid.ts';
import { resolveEvmConfig } from '../../core/evm/evm-config.ts';
import { parseUuid, formatUuid } from '../../core/bytes/uuid.ts';
import { readFsUuid } from '../../host/fs/fs-uuid.ts';
import { labelTree, type LabelTreeReport } from '../../host/label/label-tree.ts';
import { verifyImaFile } from '../../host/label/label-file.ts';
import { verifyEvmFile } from '../../host/label/evm-file.ts';
import { writePublicFile, writeSecretFile } from '../../host/keys/key-files.ts';
import { walkTree } from '../../host/fs/walk.ts';
import type { DemoAttestation } from './attest-demo.ts';

/** Where the demo copies files from, in order of preference. */
export const DEMO_SOURCES: readonly string[] = Object.freeze(['/usr/bin', '/usr/sbin', '/etc']);
/** The fs UUID used for EVM when the workspace filesystem's cannot be read (containers). */
export const DEMO_FALLBACK_UUID = '6b9a1f3e-5c2d-4e8f-9a7b-1c2d3e4f5a6b';

export interface DemoOptions {
  /** workspace directory (kept); default: a temporary directory, removed afterwards */
  readonly dir?: string;
  /** directory to copy from; default: the first of DEMO_SOURCES that exists */
  readonly source?: string;
  /** at most this many files (default 300) and bytes (default 64 MiB) */
  readonly maxFiles?: number;
  readonly maxBytes?: number;
  /** hashing workers */
  readonly workers?: number;
  /** progress of the labelling step */
  readonly onProgress?: (step: string, done: number, total: number) => void;
  /** optional prediction step (injected so this module does not depend on the emulator's CLI) */
  readonly predict?: (root: string, certDer: Uint8Array) => Promise<DemoPrediction>;
  /** optional attestation step over the labelled files (absolute paths; injected like `predict`) */
  readonly attest?: (paths: readonly string[], workspace: string) => Promise<DemoAttestation>;
}

/** What the emulator predicts for the labelled tree. */
export interface DemoPrediction {
  readonly policy: string;
  readonly mode: string;
  readonly checks: number;
  readonly denied: readonly { path: string; op: string; cause: string | null }[];
}

/** One file that failed verification. */
export interface DemoFailure {
  readonly path: string;
  readonly label: 'security.ima' | 'security.evm';
  readonly status: string;
  readonly detail: string;
}

export interface DemoReport {
  readonly workspace: string;
  readonly kept: boolean;
  readonly source: string;
  readonly files: number;
  readonly bytes: number;
  readonly key: { readonly alg: string; readonly keyid: string; readonly subject: string };
  readonly evm: {
    readonly config: string;
    readonly fsUuid: string;
    readonly uuidSource: 'filesystem' | 'fallback';
  };
  readonly label: LabelTreeReport;
  readonly verify: { readonly passed: number; readonly failed: readonly DemoFailure[] };
  readonly tampered: readonly { path: string; change: string }[];
  readonly reverify: { readonly passed: number; readonly failed: readonly DemoFailure[] };
  /** true when the first verification passed everywhere and the second flagged exactly the tampered files */
  readonly detectedExactly: boolean;
  readonly prediction?: DemoPrediction;
  /** the verifier and an agent on swtpm: a passing attestation, then a changed file caught */
  readonly attestation?: DemoAttestation;
  readonly durationMs: number;
}

/**
 * Run the demo.
 * @throws ImakitError E_IO_READ when no source directory exists, E_XATTR_UNSUPPORTED when the
 *   workspace filesystem cannot store security.* xattrs
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoReport> {
  const started = performance.now();
  const source = opts.source ?? DEMO_SOURCES.find(isDir);
  if (source === undefined || !isDir(source))
    throw new ImakitError('E_IO_READ', `no source directory to copy (${DEMO_SOURCES.join(', ')})`, {
      path: opts.source ?? DEMO_SOURCES[0]!,
    });
  const kept = opts.dir !== undefined;
  const workspace = opts.dir ?? mkdtempSync(join(tmpdir(), 'imakit-demo-'));
  try {
    mkdirSync(workspace, { recursive: true });
    const keysDir = join(workspace, 'keys');
    const tree = join(workspace, 'tree', basename(source));
    mkdirSync(keysDir, { recursive: true });
    mkdirSync(tree, { recursive: true });

    // 1. keys: a CA and a code-signing certificate it issued (SKID method 1 → the kernel's key id)
    const caPair = generateKeyPair({ alg: 'rsa', bits: 2048 });
    const ca = buildCertificate({
      publicKey: caPair.publicKey,
      subject: 'CN=imakit demo CA,O=imakit',
      issuerKey: caPair.privateKey,
      ca: true,
      days: 30,
    });
    const leafPair = generateKeyPair({ alg: 'rsa', bits: 2048 });
    const leaf = buildCertificate({
      publicKey: leafPair.publicKey,
      subject: 'CN=imakit demo IMA signing key,O=imakit',
      issuerKey: caPair.privateKey,
      issuerCert: ca.cert,
      ca: false,
      codeSigning: true,
      days: 30,
    });
    const keyPem = exportPrivateKeyPem(leafPair.privateKey);
    writePublicFile(join(keysDir, 'ca.pem'), ca.pem, { overwrite: true });
    writePublicFile(join(keysDir, 'x509_ima.der'), leaf.der, { overwrite: true });
    writeSecretFile(join(keysDir, 'privkey_ima.pem'), keyPem, { overwrite: true });
    const key = loadPrivateKey(new TextEncoder().encode(keyPem));
    const keyring = new Keyring([publicFromCertificate(leaf.cert)]);
    const hmacKey = new Uint8Array(randomBytes(32));
    writeSecretFile(join(keysDir, 'evm-key-plain'), hmacKey, { overwrite: true });

    // 2. copy real files
    const { files, bytes } = await copyTree(source, tree, opts.maxFiles ?? 300, opts.maxBytes ?? 64 << 20);

    // 3. label: the fs UUID of the workspace if it can be read, else a fixed one (containers
    //    often cannot open the block device; the labels are then for a filesystem with that UUID)
    let uuidSource: 'filesystem' | 'fallback' = 'filesystem';
    let fsUuid: Uint8Array;
    try {
      fsUuid = readFsUuid(tree).uuid;
    } catch {
      uuidSource = 'fallback';
      fsUuid = parseUuid(DEMO_FALLBACK_UUID);
    }
    const config = resolveEvmConfig('debian-6.1');
    const algo = hashAlgoByName('sha256');
    const label = await labelTree({
      roots: [tree],
      ima: 'sign',
      algo,
      key,
      evm: { kind: 'hmac', config, hmacKey, uuid: fsUuid },
      ...(opts.workers === undefined ? {} : { workers: opts.workers }),
      onProgress: (done, found) => opts.onProgress?.('label', done, found),
    });
    if (label.failed > 0) {
      const f = label.failures[0]!;
      throw new ImakitError(f.code, `labelling failed: ${f.message}`, { path: f.path });
    }

    // 4. verify
    const paths = await listFiles(tree);
    const check = () => verifyAll(paths, workspace, { keyring, hmacKey, config, uuid: fsUuid });
    const verify = check();

    // 5. tamper: content of one file, mode of another
    const tampered = pickTwo(paths);
    appendFileSync(tampered[0], '\n# changed after labelling\n');
    const mode = lstatSync(tampered[1]).mode & 0o7777;
    chmodSync(tampered[1], mode ^ 0o004);
    const tamperedReport = [
      { path: relative(workspace, tampered[0]), change: 'content appended' },
      { path: relative(workspace, tampered[1]), change: `mode ${oct(mode)} -> ${oct(mode ^ 0o004)}` },
    ];

    // 6. verify again
    const reverify = check();
    const flagged = new Set(reverify.failed.map((f) => f.path));
    const detectedExactly =
      verify.failed.length === 0 &&
      flagged.size === 2 &&
      tamperedReport.every((t) => flagged.has(t.path)) &&
      reverify.failed.some((f) => f.path === tamperedReport[0]!.path && f.label === 'security.ima') &&
      reverify.failed.some((f) => f.path === tamperedReport[1]!.path && f.label === 'security.evm');

    // 7. what would the kernel do
    const prediction = opts.predict ? await opts.predict(tree, leaf.der) : undefined;

    // 8. attestation: the verifier and an agent on swtpm over the same files
    const attestation = opts.attest ? await opts.attest(paths, workspace) : undefined;

    return Object.freeze({
      workspace,
      kept,
      source,
      files,
      bytes,
      key: { alg: 'rsa-2048', keyid: formatKeyId(key.keyid), subject: leaf.cert.subject },
      evm: { config: 'debian-6.1', fsUuid: formatUuid(fsUuid), uuidSource },
      label,
      verify,
      tampered: tamperedReport,
      reverify,
      detectedExactly,
      ...(prediction ? { prediction } : {}),
      ...(attestation ? { attestation } : {}),
      durationMs: Math.round(performance.now() - started),
    });
  } finally {
    if (!kept) rmSync(workspace, { recursive: true, force: true });
  }
}

interface VerifyContext {
  readonly keyring: Keyring;
  readonly hmacKey: Uint8Array;
  readonly config: ReturnType<typeof resolveEvmConfig>;
  readonly uuid: Uint8Array;
}

function verifyAll(
  paths: readonly string[],
  workspace: string,
  c: VerifyContext,
): { passed: number; failed: DemoFailure[] } {
  const failed: DemoFailure[] = [];
  let passed = 0;
  for (const p of paths) {
    const ima = verifyImaFile(p, { keyring: c.keyring });
    const evm = verifyEvmFile(p, { config: c.config, uuid: c.uuid, hmacKey: c.hmacKey });
    const rel = relative(workspace, p);
    if (ima.status !== 'pass')
      failed.push({ path: rel, label: 'security.ima', status: ima.status, detail: ima.detail });
    if (evm.status !== 'pass')
      failed.push({ path: rel, label: 'security.evm', status: evm.status, detail: evm.detail });
    if (ima.status === 'pass' && evm.status === 'pass') passed++;
  }
  return { passed, failed };
}

async function copyTree(
  from: string,
  to: string,
  maxFiles: number,
  maxBytes: number,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for await (const e of walkTree(from, { oneFileSystem: true })) {
    if (files >= maxFiles) break;
    if (e.kind !== 'entry' || e.type !== 'file') continue;
    let st;
    try {
      st = lstatSync(e.path);
    } catch {
      continue; // vanished or unreadable: the demo just copies fewer files
    }
    if (!st.isFile() || st.size > 8 << 20 || bytes + st.size > maxBytes) continue;
    const dest = join(to, relative(from, e.path));
    try {
      mkdirSync(join(dest, '..'), { recursive: true });
      copyFileSync(e.path, dest);
      chmodSync(dest, st.mode & 0o7777);
    } catch {
      continue;
    }
    files++;
    bytes += st.size;
  }
  if (files < 2)
    throw new ImakitError('E_IO_READ', `found fewer than 2 readable files to copy`, { path: from });
  return { files, bytes };
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walkTree(root, {})) if (e.kind === 'entry' && e.type === 'file') out.push(e.path);
  return out.sort();
}

/** Two distinct files, preferring plainly named ones (`ls`, not `[`) so the report reads well. */
function pickTwo(paths: readonly string[]): [string, string] {
  const plain = paths.filter((p) => /^[a-z][a-z0-9._-]*$/.test(basename(p)));
  const pool = plain.length >= 2 ? plain : paths;
  const mid = Math.floor(pool.length / 2);
  return [pool[mid]!, pool[mid === 0 ? 1 : 0]!];
}

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory() && readdirSync(p).length > 0;
  } catch {
    return false;
  }
}

const oct = (m: number): string => '0' + m.toString(8);
