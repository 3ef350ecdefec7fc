import type { Script } from 'node:vm';

/** Load dist/cli.cjs as a CommonJS module compiled with its V8 code cache (bin/load-bundle.js). */
export declare function loadBundle(
  file: string,
  cachedData: Buffer | undefined,
): { exports: { main: (argv: readonly string[], io?: unknown) => Promise<number> }; script: Script };

/** The code cache beside the bundle, or undefined. */
export declare function readCodeCache(file: string): Buffer | undefined;
