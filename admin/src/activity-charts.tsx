/**
 * A webhook's last 24 hours as charts (docs/console.md, "Charts"): attempts per interval,
 * succeeded and failed stacked, and the latency's p50 and p95; and a sparkline of the attempts
 * for each row of the webhook list. Drawn by uPlot on a canvas; each chart carries the same
 * figures as text for screen readers (a summary, and a table of the intervals on the webhook's
 * page), since a canvas says nothing to them.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { operations } from './generated/api-schema.js';
import { formatTime } from './ui.js';

export type WebhookActivity = operations['retrieveWebhookActivity']['responses'][200]['content']['application/json']['activity'];
export type WebhooksActivity = operations['listWebhooksActivity']['responses'][200]['content']['application/json']['activity'];
type Counts = WebhooksActivity['webhooks'][number]['buckets'][number];

/** The colours of the stylesheet's --ok and --danger, which a canvas cannot read from CSS. */
const SUCCEEDED_COLOUR = '#1a6e35';
const FAILED_COLOUR = '#b3261e';
const P50_COLOUR = '#0b5cad';
const P95_COLOUR = '#8a5300';

function seconds(iso: string): number {
  return Date.parse(iso) / 1000;
}

/** "96 attempts, 4 failed" over the buckets. */
export function attemptsSummary(buckets: readonly Counts[]): string {
  const succeeded = buckets.reduce((sum, b) => sum + b.succeeded, 0);
  const failed = buckets.reduce((sum, b) => sum + b.failed, 0);
  const total = succeeded + failed;
  if (total === 0) return 'no attempts';
  return `${total} attempt${total === 1 ? '' : 's'}, ${failed} failed`;
}

function latencySummary(activity: WebhookActivity): string {
  const p95s = activity.buckets.flatMap((b) => (b.p95Ms === null ? [] : [{ at: b.start, value: b.p95Ms }]));
  if (p95s.length === 0) return 'no latency to show';
  const worst = p95s.reduce((a, b) => (b.value > a.value ? b : a));
  const last = p95s.at(-1)!;
  return `p95 latency ${Math.round(last.value)} ms in the last interval with attempts, highest ${Math.round(worst.value)} ms (interval from ${formatTime(worst.at)})`;
}

/**
 * A uPlot chart in a div that follows its container's width (390 px phones included). The chart
 * is made once per `options` key and given new data after each poll.
 */
function useChart(container: { current: HTMLDivElement | null }, options: (width: number) => uPlot.Options, data: uPlot.AlignedData, key: string): void {
  const chart = useRef<uPlot | null>(null);
  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const made = new uPlot(options(element.clientWidth || 300), data, element);
    chart.current = made;
    const resize = new ResizeObserver(() => made.setSize({ width: element.clientWidth || 300, height: made.height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      made.destroy();
      chart.current = null;
    };
    // Made again only when its kind changes; new data goes through setData below.
  }, [key]);
  useEffect(() => {
    chart.current?.setData(data);
  }, [data]);
}

/**
 * Half an interval of room at each end, so that the first and the last bar (the interval of now)
 * show whole instead of cut in half by the chart's edge.
 */
const paddedX: uPlot.Range.Function = (u, min, max) => {
  const xs = u.data[0];
  const step = xs.length > 1 ? xs[1]! - xs[0]! : 1;
  return [min - step / 2, max + step / 2];
};

/** Attempts are counted whole: no 2.5 on the axis. */
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000, 10_000_000];

/** Bars that fill most of their interval whatever the chart's width. */
const bars = uPlot.paths.bars!({ size: [0.8, 40] });
const touchingBars = uPlot.paths.bars!({ size: [1, Infinity] });

function attemptsChartOptions(width: number): uPlot.Options {
  // The series holds the total (see below): the legend shows the total less the failed.
  const succeededAt = (u: uPlot, index: number | null) => (index === null ? '--' : String((u.data[1]![index] ?? 0) - (u.data[2]![index] ?? 0)));
  return {
    width,
    height: 180,
    scales: { x: { time: true, range: paddedX }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: 'attempts', size: 50, incrs: WHOLE_STEPS }],
    series: [
      { label: 'Interval from' },
      // Stacked by drawing the total in the succeeded colour and the failed part over its foot.
      { label: 'Succeeded', fill: SUCCEEDED_COLOUR, stroke: SUCCEEDED_COLOUR, paths: bars, points: { show: false }, value: (u, _v, _s, index) => succeededAt(u, index) },
      { label: 'Failed', fill: FAILED_COLOUR, stroke: FAILED_COLOUR, paths: bars, points: { show: false } },
    ],
  };
}

function latencyChartOptions(width: number): uPlot.Options {
  const ms = (_u: uPlot, value: number | null) => (value === null ? '--' : `${Math.round(value)} ms`);
  return {
    width,
    height: 180,
    // Logarithmic: a timeout's 15 s and a healthy 100 ms both stay readable on one chart.
    scales: { x: { time: true, range: paddedX }, y: { distr: 3, log: 10 } },
    axes: [{}, { label: 'ms (log scale)', size: 56 }],
    series: [
      { label: 'Interval from' },
      { label: 'p50', stroke: P50_COLOUR, width: 2, value: ms, spanGaps: false },
      { label: 'p95', stroke: P95_COLOUR, width: 2, dash: [6, 3], value: ms, spanGaps: false },
    ],
  };
}

function attemptsData(activity: WebhookActivity | WebhooksActivity['webhooks'][number], starts: readonly string[]): uPlot.AlignedData {
  return [starts.map(seconds), activity.buckets.map((b) => b.succeeded + b.failed), activity.buckets.map((b) => b.failed)];
}

/** The webhook page's two charts and their text. */
export function ActivityCharts({ activity }: { activity: WebhookActivity }) {
  const attemptsRef = useRef<HTMLDivElement>(null);
  const latencyRef = useRef<HTMLDivElement>(null);
  const starts = activity.buckets.map((b) => b.start);
  const hours = Math.round((seconds(activity.to) - seconds(activity.from)) / 3600);
  const minutes = activity.intervalSeconds / 60;
  useChart(attemptsRef, attemptsChartOptions, attemptsData(activity, starts), 'attempts');
  useChart(latencyRef, latencyChartOptions, [starts.map(seconds), activity.buckets.map((b) => b.p50Ms), activity.buckets.map((b) => b.p95Ms)], 'latency');
  const attemptsText = `Attempts over the last ${hours} hours, per ${minutes} minutes: ${attemptsSummary(activity.buckets)}.`;
  const latencyText = `Latency over the last ${hours} hours, per ${minutes} minutes: ${latencySummary(activity)}.`;
  return (
    <section class="activity" aria-labelledby="activity-title">
      <h2 id="activity-title">Last {hours} hours</h2>
      <div class="charts">
        <figure>
          <figcaption>Attempts per {minutes} minutes</figcaption>
          <div ref={attemptsRef} class="chart attempts-chart" role="img" aria-label={attemptsText} />
          <p class="hint chart-summary">{attemptsText}</p>
        </figure>
        <figure>
          <figcaption>Latency (p50, p95)</figcaption>
          <div ref={latencyRef} class="chart latency-chart" role="img" aria-label={latencyText} />
          <p class="hint chart-summary">{latencyText}</p>
        </figure>
      </div>
      <details class="activity-table">
        <summary>The intervals as a table</summary>
        <table>
          <caption class="visually-hidden">Attempts and latency per interval, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">Interval from</th>
              <th scope="col">Succeeded</th>
              <th scope="col">Failed</th>
              <th scope="col">p50</th>
              <th scope="col">p95</th>
            </tr>
          </thead>
          <tbody>
            {activity.buckets
              .filter((b) => b.succeeded + b.failed > 0)
              .map((b) => (
                <tr key={b.start}>
                  <td>{formatTime(b.start)}</td>
                  <td>{b.succeeded}</td>
                  <td>{b.failed}</td>
                  <td>{b.p50Ms === null ? '—' : `${Math.round(b.p50Ms)} ms`}</td>
                  <td>{b.p95Ms === null ? '—' : `${Math.round(b.p95Ms)} ms`}</td>
                </tr>
              ))}
          </tbody>
        </table>
        <p class="hint">Intervals without attempts are left out. Latencies are estimates, within 20 % (docs/api.md, "Activity").</p>
      </details>
    </section>
  );
}

function sparklineOptions(width: number): uPlot.Options {
  return {
    width,
    height: 28,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: paddedX }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{ show: false }, { show: false }],
    // Bars touching: at 96 intervals in a few rem, a gap would leave each bar a pixel.
    series: [{}, { fill: SUCCEEDED_COLOUR, stroke: SUCCEEDED_COLOUR, paths: touchingBars, points: { show: false } }, { fill: FAILED_COLOUR, stroke: FAILED_COLOUR, paths: touchingBars, points: { show: false } }],
  };
}

/** A list row's attempts over the window, in a few pixels: failures show red at a glance. */
export function Sparkline({ activity }: { activity: WebhooksActivity['webhooks'][number] }) {
  const ref = useRef<HTMLDivElement>(null);
  useChart(ref, sparklineOptions, attemptsData(activity, activity.buckets.map((b) => b.start)), 'sparkline');
  return <div ref={ref} class="sparkline" role="img" aria-label={`Attempts in the last 24 hours: ${attemptsSummary(activity.buckets)}`} />;
}
