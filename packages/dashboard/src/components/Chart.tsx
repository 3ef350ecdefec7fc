/**
 * Attestations and failures over time (uPlot: a 50 KB chart library, canvas, no dependencies).
 * The x axis is in the viewer's time zone (uPlot formats with the browser's local time).
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  bucketSeconds: number;
  t: number[];
  pass: number[];
  fail: number[];
}

export function AttestChart({ series }: { series: Series }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const width = Math.max(280, el.clientWidth);
    const bars = uPlot.paths.bars?.({ size: [0.8, 40], gap: 1 });
    // stacked: the green bar is every verdict of the bucket, the red one over it the failed ones
    const all = series.pass.map((p, i) => p + (series.fail[i] ?? 0));
    const top = Math.max(1, ...all);
    const opts: uPlot.Options = {
      width,
      height: 200,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // half a bucket of room at each end, so the first and last bars are whole
        x: {
          time: true,
          range: (_u, min, max) => [min - series.bucketSeconds / 2, max + series.bucketSeconds / 2],
        },
        y: { range: [0, Math.ceil(top * 1.1)] },
      },
      axes: [{ space: 90 }, { label: 'verdicts', size: 50 }],
      series: [
        {},
        {
          label: 'attestations',
          points: { show: false },
          stroke: '#2e7d32',
          fill: 'rgba(46,125,50,0.35)',
          ...(bars !== undefined && { paths: bars }),
        },
        {
          label: 'failed',
          points: { show: false },
          stroke: '#c62828',
          fill: 'rgba(198,40,40,0.7)',
          ...(bars !== undefined && { paths: bars }),
        },
      ],
    };
    const data: uPlot.AlignedData = [series.t, all, series.fail];
    plot.current?.destroy();
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(280, el.clientWidth), height: 200 }),
    );
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [series]);
  const none = series.pass.every((n, i) => n + (series.fail[i] ?? 0) === 0);
  return (
    <div>
      <div
        ref={box}
        class="chart"
        role="img"
        aria-label={`attestations per ${series.bucketSeconds / 60} minutes: passed and failed`}
      />
      {none && <p class="muted">No verdicts in this window yet.</p>}
    </div>
  );
}
