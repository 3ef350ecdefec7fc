/** Which CLI entry the launcher runs (bin/entry.js). */
export declare function chooseEntry(
  root: string,
  env: Record<string, string | undefined>,
): { kind: 'dist' | 'source'; reason: string };

/** The build stamp's file name in dist/. */
export declare const STAMP: string;
