/**
 * Kernel keyrings through `keyctl` (Debian keyutils): the IMA/EVM key steps of seeds 000, 002 and
 * 003 — `_ima`/`_evm` keyrings, `.ima`/`.machine` system keyrings, certificates
 * (`padd asymmetric`), the `kmk` user key and the `evm-key` encrypted key — with errors that say
 * what went wrong instead of keyctl's bare errno text.
 *
 * Error mapping (what the kernel returns, and why):
 *  - ENOKEY "Required key not available": the keyring has a restriction
 *    (`restrict_link_by_builtin_and_secondary_trusted`, `restrict_link_by_digsig` for `.ima` since
 *    6.4) and no trusted key vouches for the certificate, or its key usage is refused
 *    (no digitalSignature / CA / keyCertSign) → E_KEYRING_RESTRICTED.
 *  - EKEYREJECTED "Key was rejected by service": a trusted key was found but its signature on the
 *    certificate does not verify → E_KEYRING_RESTRICTED.
 *  - ENOPKG "Package not installed" / ENOENT "No such file or directory" from add_key: the kernel
 *    has no implementation of the key's algorithm (SM2 removed in 6.11; ECDSA missing on Debian
 *    6.1, real-kernel.md §2.3) → E_KEYRING_ALGO.
 *  - EBADMSG "Bad message": not a certificate the kernel can parse → E_KEY_PARSE.
 *  - EACCES/EPERM: not root, or a keyring nobody may write (`.builtin_trusted_keys`) → E_PERMISSION.
 *  - "Can't find 'keyring:NAME'": no such keyring → E_KEYRING_NOT_FOUND.
 *
 * The runner is injectable so the command lines can be unit-tested without a kernel.
 */
import { spawnSync } from 'node:child_process';
import { ImakitError } from '../../errors.ts';

/** Result of one keyctl invocation. */
export interface KeyctlResult {
  readonly status: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
}

/** Runs `keyctl ARGS` with optional stdin. */
export type KeyctlRunner = (args: readonly string[], input?: Uint8Array) => KeyctlResult;

/** The real runner: spawns `keyctl` from PATH. @throws ImakitError E_TOOL_MISSING */
export const spawnKeyctl: KeyctlRunner = (args, input) => {
  const r = spawnSync('keyctl', [...args], { input: input ?? new Uint8Array(0), maxBuffer: 1 << 20 });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ImakitError('E_TOOL_MISSING', 'keyctl not found (install keyutils; scripts/install-deps.sh)');
    throw new ImakitError('E_KEYRING', `cannot run keyctl: ${r.error.message}`);
  }
  return { status: r.status ?? -1, stdout: new Uint8Array(r.stdout), stderr: String(r.stderr) };
};

/** Special keyring names keyctl understands directly. */
const SPECIAL = new Set(['@t', '@p', '@s', '@u', '@us', '@g', '@a']);

/** Context object: which runner to use. */
export interface KeyctlContext {
  readonly run?: KeyctlRunner;
}

function runner(ctx: KeyctlContext): KeyctlRunner {
  return ctx.run ?? spawnKeyctl;
}

/** Map a failed keyctl call to a catalogue error. */
export function keyctlError(op: string, stderr: string, target?: string): ImakitError {
  const msg = stderr.trim() || `keyctl ${op} failed`;
  const ctx = target === undefined ? {} : { token: target };
  if (/Can't find/.test(msg)) return new ImakitError('E_KEYRING_NOT_FOUND', `${msg}: no such keyring`, ctx);
  if (/Required key not available/.test(msg))
    return new ImakitError(
      'E_KEYRING_RESTRICTED',
      `${msg}: the keyring only accepts certificates signed by a key in the built-in or secondary ` +
        `trusted keyrings (and, for .ima on 6.4+, with keyUsage digitalSignature and no CA/keyCertSign)`,
      ctx,
    );
  if (/Key was rejected by service/.test(msg))
    return new ImakitError(
      'E_KEYRING_RESTRICTED',
      `${msg}: the certificate's signature by the trusted key does not verify`,
      ctx,
    );
  if (/Package not installed/.test(msg))
    return new ImakitError(
      'E_KEYRING_ALGO',
      `${msg}: this kernel has no implementation of the key's algorithm (SM2 was removed in 6.11)`,
      ctx,
    );
  if (/add_key: No such file or directory/.test(msg))
    return new ImakitError(
      'E_KEYRING_ALGO',
      `${msg}: the kernel cannot verify this certificate's algorithm (e.g. no ECDSA on Debian 6.1)`,
      ctx,
    );
  if (/Bad message/.test(msg))
    return new ImakitError('E_KEY_PARSE', `${msg}: the kernel cannot parse the key`, ctx);
  if (/Permission denied|Operation not permitted/.test(msg))
    return new ImakitError('E_PERMISSION', `${msg}: needs root, or the keyring is not writable`, ctx);
  return new ImakitError('E_KEYRING', msg, ctx);
}

function call(
  ctx: KeyctlContext,
  op: string,
  args: readonly string[],
  input?: Uint8Array,
  target?: string,
): Uint8Array {
  const r = runner(ctx)(args, input);
  if (r.status !== 0) throw keyctlError(op, r.stderr, target);
  return r.stdout;
}

function serialOf(out: Uint8Array, op: string): number {
  const s = Buffer.from(out).toString('utf8').trim();
  if (!/^-?[0-9]+$/.test(s)) throw new ImakitError('E_KEYRING', `keyctl ${op}: unexpected output '${s}'`);
  return Number(s);
}

/**
 * Turn a keyring spec into something keyctl accepts: `@u`-style specials and numeric ids pass
 * through (`0x` hex converted), `.ima`/`.machine`/`.builtin_trusted_keys`... become `%:NAME`
 * (keyutils finds them by name in /proc/keys), and `_ima`/`_evm` are searched from the user
 * keyring and, with `create`, made with `keyctl newring NAME @u` (real-kernel.md §2.3).
 * @returns the keyring argument for keyctl (a serial number as text, or a special)
 * @throws ImakitError E_KEYRING_NOT_FOUND (and the errors of {@link keyctlError})
 */
export function resolveKeyring(
  spec: string,
  opts: KeyctlContext & { create?: boolean; parent?: string } = {},
): string {
  if (SPECIAL.has(spec)) return spec;
  if (/^[0-9]+$/.test(spec)) return spec;
  if (/^0x[0-9a-f]+$/i.test(spec)) return String(parseInt(spec.slice(2), 16));
  if (spec.startsWith('%')) return spec;
  if (spec === '' || /\s/.test(spec)) throw new ImakitError('E_USAGE', `invalid keyring name '${spec}'`);
  const parent = opts.parent ?? '@u';
  const r = runner(opts)(['search', parent, 'keyring', spec]);
  if (r.status === 0) return String(serialOf(r.stdout, 'search'));
  if (spec.startsWith('.')) {
    // system keyrings are not linked under @u: find them by name
    const s = runner(opts)(['id', `%:${spec}`]);
    if (s.status === 0) return String(serialOf(s.stdout, 'id'));
    throw keyctlError('id', s.stderr, spec);
  }
  if (!/Required key not available/.test(r.stderr)) throw keyctlError('search', r.stderr, spec);
  if (!opts.create)
    throw new ImakitError(
      'E_KEYRING_NOT_FOUND',
      `keyring '${spec}' not found under ${parent} (create it with --create or 'keyctl newring ${spec} ${parent}')`,
      { token: spec },
    );
  return String(serialOf(call(opts, 'newring', ['newring', spec, parent], undefined, spec), 'newring'));
}

/**
 * Add a DER X.509 certificate as an `asymmetric` key (`keyctl padd asymmetric DESC RING`). An empty
 * description lets the kernel derive `O: CN: SKID` (what evmctl import does).
 * @returns the new key's serial number
 */
export function addCertificate(
  certDer: Uint8Array,
  keyring: string,
  opts: KeyctlContext & { description?: string } = {},
): number {
  return serialOf(
    call(opts, 'padd', ['padd', 'asymmetric', opts.description ?? '', keyring], certDer, keyring),
    'padd',
  );
}

/** `keyctl padd user NAME RING < payload` (e.g. the `kmk` master key, or a v1 `--rsa` key). */
export function addUserKey(
  name: string,
  payload: Uint8Array,
  keyring: string,
  opts: KeyctlContext = {},
): number {
  return serialOf(call(opts, 'padd', ['padd', 'user', name, keyring], payload, keyring), 'padd');
}

/**
 * `keyctl add encrypted NAME "load …" RING` / `"new …"`: e.g. `evm-key` from
 * {@link import('../../core/evm/evm-key-blob.ts').EvmKeyBlob.loadCommand}.
 * @throws ImakitError E_KEYRING (the kernel logs `encrypted_key: bad hmac` for a wrong master key)
 */
export function addEncryptedKey(
  name: string,
  command: string,
  keyring: string,
  opts: KeyctlContext = {},
): number {
  if (!/^(new|load|update) /.test(command))
    throw new RangeError("encrypted key command must start with 'new', 'load' or 'update'");
  return serialOf(call(opts, 'add', ['add', 'encrypted', name, command, keyring], undefined, keyring), 'add');
}

/** `keyctl pipe ID`: the key's payload as the kernel returns it (raw for user keys, text for encrypted). */
export function pipeKey(id: number | string, opts: KeyctlContext = {}): Uint8Array {
  return call(opts, 'pipe', ['pipe', String(id)]);
}

/** `keyctl search RING TYPE DESC`: the serial, or undefined when absent. Also does `id:` partial matches for asymmetric keys. */
export function searchKey(
  keyring: string,
  type: string,
  description: string,
  opts: KeyctlContext = {},
): number | undefined {
  const r = runner(opts)(['search', keyring, type, description]);
  if (r.status === 0) return serialOf(r.stdout, 'search');
  if (/Required key not available/.test(r.stderr)) return undefined;
  throw keyctlError('search', r.stderr, keyring);
}

/** `keyctl unlink ID RING`. */
export function unlinkKey(id: number | string, keyring: string, opts: KeyctlContext = {}): void {
  call(opts, 'unlink', ['unlink', String(id), keyring], undefined, keyring);
}

/** `keyctl newring NAME RING`: the new keyring's serial. */
export function newKeyring(name: string, parent = '@u', opts: KeyctlContext = {}): number {
  return serialOf(call(opts, 'newring', ['newring', name, parent], undefined, parent), 'newring');
}

/** True when keyctl runs and this process may create keyrings (probes with a throwaway keyring). */
export function keyringsUsable(opts: KeyctlContext = {}): boolean {
  try {
    const id = newKeyring(`_imakit_probe_${process.pid}`, '@u', opts);
    unlinkKey(id, '@u', opts);
    return true;
  } catch {
    return false;
  }
}
