import type { Script } from 'node:vm';

/** Load dist/cli.cjs (and its chunks, on demand) compiled with their V8 code caches (bin/load-bundle.js). */
export declare function loadBundle(
  file: string,
  opts?: { cache?: boolean },
): {
  exports: { main: (argv: readonly string[], io?: unknown) => Promise<number> };
  script: Script;
  scripts: Map<string, Script>;
};

/** The code cache beside a file, or undefined. */
export declare function readCodeCache(file: string): Buffer | undefined;

/** Write the code caches of the entry and every chunk. */
export declare function writeCodeCaches(file: string, scripts: Map<string, Script>): void;
