/**
 * The four charts, drawn with uPlot (the global `uPlot` that /uplot.js defines; only its types are
 * imported here). Colours come from the page's CSS variables, so the charts follow the light or
 * dark scheme: {@link Charts.redraw} builds them again when the scheme changes.
 */
import type UPlot from 'uplot';
import { formatBytes, formatRate, type ChartWindow } from './format.js';
import type { SeriesKey } from './state.js';

// The value `uPlot` is the global that /uplot.js (uPlot's iife build) defines before this module
// runs. uPlot's types declare that global themselves (`export as namespace uPlot`), which
// tsconfig.json's allowUmdGlobalAccess lets a module use, so no import of uPlot reaches the browser.

interface Line {
  readonly key: SeriesKey;
  readonly label: string;
  /** The CSS variable holding its colour. */
  readonly colour: string;
  /** The scale and axis it is drawn on: counts, rates, or bytes per second. */
  readonly scale: 'n' | 'rate' | 'bytes';
  /** Filled below the line: the one level among rates. */
  readonly isArea?: true;
}

interface ChartSpec {
  readonly id: string;
  readonly lines: readonly Line[];
}

const SPECS: readonly ChartSpec[] = [
  {
    id: 'chart-connections',
    lines: [
      { key: 'open', label: 'open', colour: '--c1', scale: 'n', isArea: true },
      { key: 'connections', label: 'new/s', colour: '--c2', scale: 'rate' },
    ],
  },
  {
    id: 'chart-logins',
    lines: [
      { key: 'loginsOk', label: 'ok/s', colour: '--c3', scale: 'rate' },
      { key: 'loginsFailed', label: 'failed/s', colour: '--c4', scale: 'rate' },
      { key: 'loginsThrottled', label: 'throttled/s', colour: '--c5', scale: 'rate' },
    ],
  },
  { id: 'chart-bytes', lines: [{ key: 'bytesOut', label: 'sent/s', colour: '--c1', scale: 'bytes' }] },
  {
    id: 'chart-messages',
    lines: [
      { key: 'retr', label: 'RETR/s', colour: '--c2', scale: 'rate' },
      { key: 'dele', label: 'DELE/s', colour: '--c4', scale: 'rate' },
    ],
  },
];

const HEIGHT_PX = 170;
// uPlot.Axis.Side is an ambient const enum, whose members isolatedModules cannot read: its values.
/* eslint-disable @typescript-eslint/no-unsafe-enum-assignment -- the numbers of uPlot.Axis.Side */
const LEFT = 3 as UPlot.Axis.Side;
const RIGHT = 1 as UPlot.Axis.Side;
/* eslint-enable @typescript-eslint/no-unsafe-enum-assignment */

const formatTick: Record<Line['scale'], (v: number) => string> = {
  n: (v) => formatRate(v),
  rate: (v) => formatRate(v),
  // uPlot's legend passes null (typed number) where the cursor is on no sample.
  bytes: (v) => (Number.isFinite(v) ? `${formatBytes(v)}/s` : '–'),
};

/** Sizes each chart to its box's width, and draws the window it is given. */
export class Charts {
  readonly #plots = new Map<string, UPlot>();
  readonly #observer: ResizeObserver;
  #window: ChartWindow | null = null;

  constructor() {
    this.#observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const plot = this.#plots.get(entry.target.id);
        const width = Math.floor(entry.contentRect.width);
        if (plot !== undefined && width > 0 && width !== plot.width) {
          plot.setSize({ width, height: HEIGHT_PX });
        }
      }
    });
  }

  /** Shows `window` (a new one, or the same one after it changed). */
  show(window: ChartWindow): void {
    this.#window = window;
    if (this.#plots.size === 0) {
      this.redraw();
      return;
    }
    for (const spec of SPECS) {
      // setData fits the scales to the data again: the x scale follows the window as it moves.
      this.#plots.get(spec.id)?.setData(dataOf(spec, window));
    }
  }

  /** Builds every chart again, with the colours the CSS variables hold now. */
  redraw(): void {
    const window = this.#window;
    if (window === null) return;
    const style = getComputedStyle(document.documentElement);
    const colour = (name: string): string => style.getPropertyValue(name).trim() || 'gray';
    for (const spec of SPECS) {
      const box = document.getElementById(spec.id);
      if (box === null) continue;
      this.#plots.get(spec.id)?.destroy();
      this.#observer.unobserve(box);
      const plot = new uPlot(
        optionsOf(spec, box.clientWidth, colour, () => this.#window),
        dataOf(spec, window),
        box,
      );
      this.#plots.set(spec.id, plot);
      this.#observer.observe(box);
    }
  }
}

function dataOf(spec: ChartSpec, window: ChartWindow): UPlot.AlignedData {
  return [window.t, ...spec.lines.map((line) => window.values[line.key])];
}

function optionsOf(
  spec: ChartSpec,
  width: number,
  colour: (name: string) => string,
  shown: () => ChartWindow | null,
): UPlot.Options {
  const text = colour('--muted');
  const grid = colour('--grid');
  const scales = [...new Set(spec.lines.map((line) => line.scale))];
  const axes: UPlot.Axis[] = [
    { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
    ...scales.map((scale, i): UPlot.Axis => ({
      scale,
      side: i === 0 ? LEFT : RIGHT,
      stroke: text,
      size: scale === 'bytes' ? 78 : 44,
      grid: { show: i === 0, stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      values: (_u, splits) => splits.map(formatTick[scale]),
    })),
  ];
  return {
    width: Math.max(width, 200),
    height: HEIGHT_PX,
    cursor: { drag: { x: false, y: false } },
    scales: {
      // The whole span (15 minutes, 24 hours) up to the newest sample, however few samples there are.
      x: {
        range: (_u, min, max) => {
          const spanS = (shown()?.spanMs ?? 0) / 1000;
          return spanS > 0 && Number.isFinite(max) ? [max - spanS, max] : [min, max];
        },
      },
      ...Object.fromEntries(scales.map((scale) => [scale, { range: (_u, _min, max) => [0, niceMax(max)] }])),
    },
    axes,
    series: [
      {},
      ...spec.lines.map((line): UPlot.Series => ({
        label: line.label,
        scale: line.scale,
        stroke: colour(line.colour),
        ...(line.isArea === true ? { fill: translucent(colour(line.colour)) } : {}),
        width: 1.5,
        points: { show: false },
        value: (_u, v) => formatTick[line.scale](v),
      })),
    ],
  };
}

/** The top of a scale that starts at 0: at least 1, else a little above the largest value. */
function niceMax(max: number | null): number {
  if (max === null || !Number.isFinite(max) || max <= 0) return 1;
  return max * 1.1;
}

/** A `#rrggbb` colour at a fifth of its opacity; other forms unchanged. */
function translucent(colour: string): string {
  return /^#[0-9a-f]{6}$/i.test(colour) ? `${colour}33` : colour;
}
