/**
 * A progress bar for long CLI work (DEVELOPERS.md: "a progress bar on a terminal when work takes
 * more than a second"). A thin wrapper over cli-progress that:
 *  - draws only on stderr and only when `io.isTTY` (never in `--json` mode or pipes, where it would
 *    corrupt output, dependencies.md §5);
 *  - appears only after `delayMs` (1 s), so quick runs print nothing extra;
 *  - while a tree is still being walked shows a count (`123 done, 480 found, walking…`) and no
 *    percentage: a total that grows under a moving bar made it lie (87% at 423/483, then
 *    3020/3020; issue 10); the bar with a percentage appears once the total is final;
 *  - is a no-op object otherwise, so callers never branch.
 */
import cliProgress from 'cli-progress';
import type { CliIo } from './io.ts';

export interface Progress {
  /** the walk is still going: `found` items so far, total not known yet */
  setFound(found: number): void;
  /** the final total (the walk has finished) */
  setTotal(total: number): void;
  /** advance by `n` (default 1) */
  tick(n?: number): void;
  /** remove the bar */
  stop(): void;
}

const NOOP: Progress = Object.freeze({ setFound() {}, setTotal() {}, tick() {}, stop() {} });

/**
 * A progress bar bound to `io`, or a no-op when not on a terminal / in JSON mode.
 *
 * @example
 * const p = createProgress(io, { label: 'label', json: false }); p.setFound(3); p.setTotal(10); p.tick(); p.stop();
 */
export function createProgress(
  io: CliIo,
  opts: { label: string; json?: boolean; delayMs?: number; stream?: NodeJS.WritableStream },
): Progress {
  if (!io.isTTY || opts.json === true) return NOOP;
  const delay = opts.delayMs ?? 1000;
  const started = Date.now();
  let total = 0;
  let totalKnown = false;
  let value = 0;
  let bar: cliProgress.SingleBar | undefined;
  let stopped = false;
  const known = `${opts.label} [{bar}] {percentage}% {value}/{total} files, {eta_formatted} left`;
  const format: cliProgress.GenericFormatter = (options, params, payload) =>
    totalKnown
      ? cliProgress.Format.Formatter({ ...options, format: known }, params, payload)
      : `${opts.label} ${params.value} done, ${params.total} found, walking…`;
  const ensure = (): void => {
    if (bar !== undefined || stopped || Date.now() - started < delay) return;
    bar = new cliProgress.SingleBar(
      {
        stream: opts.stream ?? process.stderr,
        format,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 200,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, value);
  };
  return {
    setFound(found) {
      total = found;
      ensure();
      bar?.setTotal(found);
    },
    setTotal(t) {
      total = t;
      totalKnown = true;
      ensure();
      bar?.setTotal(t);
    },
    tick(n = 1) {
      value += n;
      ensure();
      bar?.update(value);
    },
    stop() {
      stopped = true;
      bar?.stop();
      bar = undefined;
    },
  };
}
