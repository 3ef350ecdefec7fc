import { readBoundedStream } from '../host/fs/bounded-read.ts';

/**
 * The CLI's view of the process: streams, terminal, environment. Passed explicitly so commands can
 * be run in-process by tests (`main(argv, io)`) and so the library never touches `process`.
 */
export interface CliIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** stderr is a terminal (progress bars are drawn only then) */
  readonly isTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** read all of standard input (for evmctl sign_hash and `-` arguments), up to INPUT_CAPS.stdin */
  readonly readStdin: () => Promise<string>;
}

/**
 * `imakit log show LIST | head`: the reader closing the pipe is not an imakit error. Node ignores
 * SIGPIPE, so the failed write would surface as an unhandled EPIPE stack trace; exit as a
 * SIGPIPE-killed tool does (128 + 13), quietly.
 */
function onStdoutError(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE') process.exit(141);
  throw e;
}

/** The real process's streams. */
export function processIo(): CliIo {
  if (!process.stdout.listeners('error').includes(onStdoutError)) process.stdout.on('error', onStdoutError);
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    isTTY: Boolean(process.stderr.isTTY) && process.env.CI === undefined,
    env: process.env,
    cwd: process.cwd(),
    // bounded: `sign_hash < /dev/zero` is refused at the cap instead of filling memory
    readStdin: async () =>
      new TextDecoder().decode(await readBoundedStream(process.stdin, 'stdin', 'standard input')),
  };
}

/** An in-memory io for tests: collects output. */
export function memoryIo(opts: { stdin?: string; env?: Record<string, string>; cwd?: string } = {}): CliIo & {
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: false,
    env: opts.env ?? {},
    cwd: opts.cwd ?? process.cwd(),
    readStdin: async () => opts.stdin ?? '',
    out: () => out,
    err: () => err,
  };
}
