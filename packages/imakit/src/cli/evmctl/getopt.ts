/**
 * A faithful `getopt_long(3)` (GNU semantics) for the evmctl drop-in.
 *
 * evmctl parses its whole command line with `getopt_long(argc, argv, "hvnsda:op::fu::k:t:ri", opts)`
 * BEFORE looking at the command name, so options may come before or after the command and GNU
 * permutation moves every non-option to the end. The quirks scripts rely on (formats.md §6.1,
 * pitfall 22):
 *  - short options cluster (`-rv`) and a required argument may be attached (`-asha1`) or be the next
 *    word (`-a sha1`);
 *  - an OPTIONAL argument is only ever attached: `-uUUID`, `--uuid=UUID`, `-pPASS`, `--pass=PASS`;
 *    a bare `-u` / `--uuid` means "no value" (for evmctl: do not hash any fs UUID), and the next word
 *    stays a positional argument;
 *  - long options accept unambiguous prefixes (`--ino` is `--inode`), an exact name wins over
 *    prefixes (`--ima` vs `--imasig`), and `--name=value` / `--name value` both work for required
 *    arguments;
 *  - `--` ends option parsing; a lone `-` is a positional argument.
 *
 * Pure: no printing; problems are returned as diagnostics in getopt's own wording.
 */

/** How an option takes an argument (`struct option.has_arg`). */
export type ArgKind = 'none' | 'required' | 'optional';

/** One option of the table: a short letter, a long name, or both. */
export interface OptionSpec {
  /** key under which parsed values are reported */
  readonly key: string;
  readonly short?: string;
  readonly long?: string;
  readonly arg: ArgKind;
}

/** One parsed option occurrence, in command-line order. */
export interface ParsedOption {
  readonly key: string;
  /** the argument; undefined for `none` options and for optional ones given without a value */
  readonly value: string | undefined;
  /** the spelling used on the command line (for messages) */
  readonly spelling: string;
}

export interface GetoptResult {
  readonly options: readonly ParsedOption[];
  /** non-option words in order (GNU permutation), including everything after `--` */
  readonly operands: readonly string[];
  /** getopt's error messages (`unrecognized option '--foo'` ...); non-empty means exit 1 like evmctl */
  readonly errors: readonly string[];
}

/**
 * Parse `argv` (without the program name) against `specs`.
 *
 * @example
 * getopt(['-uUUID', 'sign', '--uuid', 'f'], specs) // uuid='UUID', then uuid=undefined; operands ['sign','f']
 */
export function getopt(argv: readonly string[], specs: readonly OptionSpec[]): GetoptResult {
  const byShort = new Map<string, OptionSpec>();
  for (const s of specs) if (s.short !== undefined) byShort.set(s.short, s);
  const longs = specs.filter((s) => s.long !== undefined);

  const options: ParsedOption[] = [];
  const operands: string[] = [];
  const errors: string[] = [];

  let i = 0;
  while (i < argv.length) {
    const word = argv[i]!;
    i++;
    if (word === '--') {
      operands.push(...argv.slice(i));
      break;
    }
    if (word.startsWith('--')) {
      const body = word.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const attached = eq >= 0 ? body.slice(eq + 1) : undefined;
      const spec = matchLong(name, longs);
      if (spec === 'ambiguous') {
        errors.push(`option '--${name}' is ambiguous`);
        continue;
      }
      if (spec === undefined) {
        errors.push(`unrecognized option '--${name}'`);
        continue;
      }
      const spelling = `--${spec.long!}`;
      if (spec.arg === 'none') {
        if (attached !== undefined) errors.push(`option '${spelling}' doesn't allow an argument`);
        else options.push({ key: spec.key, value: undefined, spelling });
      } else if (spec.arg === 'optional') {
        options.push({ key: spec.key, value: attached, spelling });
      } else if (attached !== undefined) {
        options.push({ key: spec.key, value: attached, spelling });
      } else if (i < argv.length) {
        options.push({ key: spec.key, value: argv[i]!, spelling });
        i++;
      } else {
        errors.push(`option '${spelling}' requires an argument`);
      }
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      // a cluster of short options; the first one taking an argument consumes the rest
      for (let j = 1; j < word.length; j++) {
        const ch = word[j]!;
        const spec = byShort.get(ch);
        if (spec === undefined) {
          errors.push(`invalid option -- '${ch}'`);
          continue;
        }
        const spelling = `-${ch}`;
        if (spec.arg === 'none') {
          options.push({ key: spec.key, value: undefined, spelling });
          continue;
        }
        const rest = word.slice(j + 1);
        if (spec.arg === 'optional') {
          options.push({ key: spec.key, value: rest.length > 0 ? rest : undefined, spelling });
        } else if (rest.length > 0) {
          options.push({ key: spec.key, value: rest, spelling });
        } else if (i < argv.length) {
          options.push({ key: spec.key, value: argv[i]!, spelling });
          i++;
        } else {
          errors.push(`option requires an argument -- '${ch}'`);
        }
        break;
      }
      continue;
    }
    operands.push(word);
  }
  return { options, operands, errors };
}

/** GNU long-option matching: exact name first, else a unique prefix. */
function matchLong(name: string, longs: readonly OptionSpec[]): OptionSpec | 'ambiguous' | undefined {
  const exact = longs.find((s) => s.long === name);
  if (exact !== undefined) return exact;
  if (name.length === 0) return undefined;
  const candidates = longs.filter((s) => s.long!.startsWith(name));
  if (candidates.length === 0) return undefined;
  // several table entries with the same key (aliases) are not ambiguous, as in glibc
  const keys = new Set(candidates.map((c) => c.key));
  return keys.size === 1 ? candidates[0] : 'ambiguous';
}
