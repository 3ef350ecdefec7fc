/**
 * evmctl's option table (ima-evm-utils 1.6 `opts[]` and the short string "hvnsda:op::fu::k:t:ri",
 * formats.md §6.1 and §4.5) mapped onto one frozen `EvmctlOptions` object.
 *
 * Only the table is global-looking; every command receives the parsed object explicitly (no
 * module-level state, style.md practice 8). Two extras imakit accepts beyond evmctl's table:
 * `-x` for `--xattr-user` and `-g` for `--generation` (they collide with nothing evmctl has).
 */
import { getopt, type OptionSpec } from './getopt.ts';

/** What `-u` / `--uuid` said (pitfall 22). */
export type UuidChoice =
  /** not given: read the UUID of the file's filesystem (evmctl runs blkid) */
  | { readonly mode: 'fs' }
  /** given without a value (`-u`, `--uuid`): hash no UUID */
  | { readonly mode: 'none' }
  /** `-uUUID` / `--uuid=UUID` */
  | { readonly mode: 'given'; readonly value: string };

/** Every evmctl option, parsed. Numeric overrides stay strings until a command needs them. */
export interface EvmctlOptions {
  /** `-a/--hashalgo` (default sha256, evmctl's DEFAULT_HASH_ALGO) */
  readonly hashAlgo: string;
  /** `-k/--key`: signing key file, or a comma/space separated certificate list for verification */
  readonly key: string | undefined;
  /** `-p/--pass[=PW]`, else EVMCTL_KEY_PASSWORD */
  readonly pass: string | undefined;
  /** bare `-p` (evmctl would prompt on the terminal) */
  readonly passPrompt: boolean;
  /** `--keyid HEX` (validated: 32-bit, non-zero) */
  readonly keyid: number | undefined;
  /** `--keyid-from-cert FILE` */
  readonly keyidFromCert: string | undefined;
  readonly recursive: boolean;
  /** `-t/--type` letters (`f`, `x`, `m`; `d`/`s` accepted and ignored like evmctl) */
  readonly searchType: string | undefined;
  /** `-f/--sigfile` */
  readonly sigfile: boolean;
  /** `-n`: print, do not set xattrs */
  readonly noXattr: boolean;
  /** `--xattr-user`: store in user.ima / user.evm */
  readonly xattrUser: boolean;
  readonly uuid: UuidChoice;
  readonly generation: string | undefined;
  readonly ino: string | undefined;
  readonly uid: string | undefined;
  readonly gid: string | undefined;
  /** `--mode`: DECIMAL (33188 = 0100644), pitfall 22 */
  readonly mode: string | undefined;
  /** `--ima HEX` */
  readonly ima: string | undefined;
  /** `--selinux STR` (hashed with a trailing NUL) */
  readonly selinux: string | undefined;
  /** `--caps[=STR]`: set = true; value undefined means "skip security.capability" */
  readonly capsSet: boolean;
  readonly caps: string | undefined;
  readonly smack: boolean;
  /** `--m32` / `--m64`: h_misc width; undefined = this build's (64-bit) */
  readonly hmiscBits: 32 | 64 | undefined;
  readonly portable: boolean;
  /** `-i`: legacy immutable (version 3, never upstreamed) */
  readonly immutable: boolean;
  /** `-s/--imasig` */
  readonly imasig: boolean;
  /** `-d/--imahash` */
  readonly imahash: boolean;
  readonly veritysig: boolean;
  /** `--hmackey FILE` (default /etc/keys/evm-key-plain) */
  readonly hmackey: string | undefined;
  /** number of `-v` */
  readonly verbose: number;
  /** `--rsa` (v1 scheme) */
  readonly rsa: boolean;
  readonly engine: string | undefined;
  readonly provider: string | undefined;
  /** `--pcrs [alg,]file`, repeatable (at most 2) */
  readonly pcrs: readonly string[];
  readonly verifyBank: string | undefined;
  readonly ignoreViolations: boolean;
  readonly verifySig: boolean;
  readonly hwtpm: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

/** The option table: evmctl 1.6's opts[] plus its short-option string. */
export const EVMCTL_OPTION_SPECS: readonly OptionSpec[] = Object.freeze([
  { key: 'help', short: 'h', long: 'help', arg: 'none' },
  { key: 'verbose', short: 'v', arg: 'none' },
  { key: 'noXattr', short: 'n', arg: 'none' },
  { key: 'imasig', short: 's', long: 'imasig', arg: 'none' },
  { key: 'imahash', short: 'd', long: 'imahash', arg: 'none' },
  { key: 'hashAlgo', short: 'a', long: 'hashalgo', arg: 'required' },
  { key: 'portable', short: 'o', long: 'portable', arg: 'none' },
  { key: 'pass', short: 'p', long: 'pass', arg: 'optional' },
  { key: 'sigfile', short: 'f', long: 'sigfile', arg: 'none' },
  { key: 'uuid', short: 'u', long: 'uuid', arg: 'optional' },
  { key: 'key', short: 'k', long: 'key', arg: 'required' },
  { key: 'type', short: 't', long: 'type', arg: 'required' },
  { key: 'recursive', short: 'r', long: 'recursive', arg: 'none' },
  { key: 'immutable', short: 'i', arg: 'none' },
  { key: 'rsa', long: 'rsa', arg: 'none' },
  { key: 'm32', long: 'm32', arg: 'none' },
  { key: 'm64', long: 'm64', arg: 'none' },
  { key: 'smack', long: 'smack', arg: 'none' },
  { key: 'version', long: 'version', arg: 'none' },
  { key: 'ino', long: 'inode', arg: 'required' },
  { key: 'uid', long: 'uid', arg: 'required' },
  { key: 'gid', long: 'gid', arg: 'required' },
  { key: 'mode', long: 'mode', arg: 'required' },
  { key: 'generation', short: 'g', long: 'generation', arg: 'required' },
  { key: 'ima', long: 'ima', arg: 'required' },
  { key: 'selinux', long: 'selinux', arg: 'required' },
  { key: 'caps', long: 'caps', arg: 'optional' },
  { key: 'verifySig', long: 'verify-sig', arg: 'none' },
  { key: 'engine', long: 'engine', arg: 'required' },
  { key: 'xattrUser', short: 'x', long: 'xattr-user', arg: 'none' },
  { key: 'ignoreViolations', long: 'ignore-violations', arg: 'none' },
  { key: 'pcrs', long: 'pcrs', arg: 'required' },
  { key: 'verifyBank', long: 'verify-bank', arg: 'optional' },
  { key: 'keyid', long: 'keyid', arg: 'required' },
  { key: 'keyidFromCert', long: 'keyid-from-cert', arg: 'required' },
  { key: 'veritysig', long: 'veritysig', arg: 'none' },
  { key: 'hwtpm', long: 'hwtpm', arg: 'none' },
  { key: 'hmackey', long: 'hmackey', arg: 'required' },
  { key: 'provider', long: 'provider', arg: 'required' },
] satisfies OptionSpec[]);

export interface ParsedCommandLine {
  readonly opts: EvmctlOptions;
  /** command name first, then its arguments */
  readonly operands: readonly string[];
  /** getopt and value errors (evmctl exits 1 on these) */
  readonly errors: readonly string[];
  /** notes for stderr (e.g. "portable and immutable are exclusive") */
  readonly warnings: readonly string[];
}

/**
 * Parse an evmctl command line (without the program name).
 *
 * @param env the environment, for EVMCTL_KEY_PASSWORD (used only when `-p` gave no value)
 */
export function parseEvmctlArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ParsedCommandLine {
  const { options, operands, errors: getoptErrors } = getopt(argv, EVMCTL_OPTION_SPECS);
  const errors = [...getoptErrors];
  const warnings: string[] = [];
  const o = {
    hashAlgo: 'sha256',
    key: undefined as string | undefined,
    pass: undefined as string | undefined,
    passPrompt: false,
    keyid: undefined as number | undefined,
    keyidFromCert: undefined as string | undefined,
    recursive: false,
    searchType: undefined as string | undefined,
    sigfile: false,
    noXattr: false,
    xattrUser: false,
    uuid: { mode: 'fs' } as UuidChoice,
    generation: undefined as string | undefined,
    ino: undefined as string | undefined,
    uid: undefined as string | undefined,
    gid: undefined as string | undefined,
    mode: undefined as string | undefined,
    ima: undefined as string | undefined,
    selinux: undefined as string | undefined,
    capsSet: false,
    caps: undefined as string | undefined,
    smack: false,
    hmiscBits: undefined as 32 | 64 | undefined,
    portable: false,
    immutable: false,
    imasig: false,
    imahash: false,
    veritysig: false,
    hmackey: undefined as string | undefined,
    verbose: 0,
    rsa: false,
    engine: undefined as string | undefined,
    provider: undefined as string | undefined,
    pcrs: [] as string[],
    verifyBank: undefined as string | undefined,
    ignoreViolations: false,
    verifySig: false,
    hwtpm: false,
    help: false,
    version: false,
  };
  for (const { key, value } of options) {
    switch (key) {
      case 'help':
        o.help = true;
        break;
      case 'verbose':
        o.verbose++;
        break;
      case 'noXattr':
        o.noXattr = true;
        break;
      case 'imasig':
        o.imasig = true;
        break;
      case 'imahash':
        o.imahash = true;
        break;
      case 'hashAlgo':
        o.hashAlgo = value!;
        break;
      case 'portable':
        if (o.immutable)
          warnings.push('Portable and immutable options are exclusive, ignoring portable option.');
        else o.portable = true;
        break;
      case 'immutable':
        if (o.portable)
          warnings.push('Portable and immutable options are exclusive, ignoring immutable option.');
        else o.immutable = true;
        break;
      case 'pass':
        if (value === undefined) o.passPrompt = true;
        else {
          o.pass = value;
          o.passPrompt = false;
        }
        break;
      case 'sigfile':
        o.sigfile = true;
        break;
      case 'uuid':
        o.uuid = value === undefined ? { mode: 'none' } : { mode: 'given', value };
        break;
      case 'key':
        o.key = value!;
        break;
      case 'type':
        o.searchType = value!;
        break;
      case 'recursive':
        o.recursive = true;
        break;
      case 'rsa':
        o.rsa = true;
        break;
      case 'm32':
        o.hmiscBits = 32;
        break;
      case 'm64':
        o.hmiscBits = 64;
        break;
      case 'smack':
        o.smack = true;
        break;
      case 'version':
        o.version = true;
        break;
      case 'ino':
        o.ino = value!;
        break;
      case 'uid':
        o.uid = value!;
        break;
      case 'gid':
        o.gid = value!;
        break;
      case 'mode':
        o.mode = value!;
        break;
      case 'generation':
        o.generation = value!;
        break;
      case 'ima':
        o.ima = value!;
        break;
      case 'selinux':
        o.selinux = value!;
        break;
      case 'caps':
        o.capsSet = true;
        o.caps = value;
        break;
      case 'verifySig':
        o.verifySig = true;
        break;
      case 'engine':
        o.engine = value!;
        break;
      case 'xattrUser':
        o.xattrUser = true;
        break;
      case 'ignoreViolations':
        o.ignoreViolations = true;
        break;
      case 'pcrs':
        // evmctl: "too many --pcrfile options" beyond MAX_PCRFILE (2), exit 1
        if (o.pcrs.length >= 2) errors.push('too many --pcrfile options');
        else o.pcrs.push(value!);
        break;
      case 'verifyBank':
        o.verifyBank = value;
        break;
      case 'keyid': {
        // evmctl: strtoul(…, 16) over the whole string, 32-bit, non-zero
        const v = value!;
        const n = /^(0[xX])?[0-9a-fA-F]+$/.test(v) ? parseInt(v, 16) : NaN;
        if (!Number.isFinite(n) || n === 0 || n > 0xffffffff) errors.push('Invalid keyid value.');
        else o.keyid = n;
        break;
      }
      case 'keyidFromCert':
        o.keyidFromCert = value!;
        break;
      case 'veritysig':
        o.veritysig = true;
        break;
      case 'hwtpm':
        o.hwtpm = true;
        break;
      case 'hmackey':
        o.hmackey = value!;
        break;
      case 'provider':
        o.provider = value!;
        break;
    }
  }
  if (o.pass === undefined) o.pass = env.EVMCTL_KEY_PASSWORD;
  const opts: EvmctlOptions = Object.freeze({ ...o, pcrs: Object.freeze([...o.pcrs]) });
  return Object.freeze({ opts, operands, errors, warnings });
}

/** Parse a decimal override like evmctl's `strtoul(str, NULL, 10)` (leading digits; junk → 0). */
export function parseDecimalOverride(s: string): number {
  const m = /^\s*[+]?(\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}
