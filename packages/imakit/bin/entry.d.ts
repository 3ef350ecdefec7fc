/** Which CLI entry the launcher runs (bin/entry.js). */
export declare function chooseEntry(
  root: string,
  env: Record<string, string | undefined>,
): { kind: 'dist' | 'source'; reason: string };

/** The build stamp's file name in dist/. */
export declare const STAMP: string;

/** Every file under `dir`, relative to it. */
export declare function sourceFiles(dir: string): string[];

/** The stamp the build writes for the package at `root`: when it started, and the source files. */
export declare function stampText(root: string, startedMs: number): string;
