// Plots drawn into an RGBA pixel buffer and encoded as PNG with pngjs: no native canvas, so the CLI runs on
// a bare machine. Scatter plots (2-D samples over data), line charts (loss curves, log scale) and digit grids,
// with a 5×7 bitmap font for titles, ticks and legends.

import { PNG } from 'pngjs';

export type Rgb = readonly [number, number, number];

export const COLORS = {
  background: [255, 255, 255],
  axis: [60, 60, 60],
  grid: [225, 225, 225],
  text: [20, 20, 20],
  data: [150, 170, 200],
  samples: [230, 110, 20],
  series: [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]],
} as const satisfies Record<string, Rgb | readonly Rgb[]>;

/** An RGBA image, row-major, 4 bytes per pixel. */
export class Canvas {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number, bg: Rgb = COLORS.background) {
    this.data = new Uint8Array(width * height * 4);
    this.rect(0, 0, width, height, bg);
  }

  /** Blends colour c over pixel (x, y) with opacity a; outside the image it does nothing. */
  pixel(x: number, y: number, c: Rgb, a = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    for (let k = 0; k < 3; k++) this.data[i + k] = Math.round(this.data[i + k]! * (1 - a) + c[k]! * a);
    this.data[i + 3] = 255;
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb, a = 1): void {
    for (let j = Math.max(0, Math.round(y)); j < Math.min(this.height, Math.round(y + h)); j++) {
      for (let i = Math.max(0, Math.round(x)); i < Math.min(this.width, Math.round(x + w)); i++) this.pixel(i, j, c, a);
    }
  }

  /** A straight segment (DDA), `width` pixels wide. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, width = 1): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let k = 0; k <= n; k++) this.rect(x0 + ((x1 - x0) * k) / n - width / 2, y0 + ((y1 - y0) * k) / n - width / 2, width, width, c);
  }

  /** Text in the 5×7 font at `scale` pixels per font pixel; (x, y) is the top left corner. Returns the width drawn. */
  text(s: string, x: number, y: number, c: Rgb = COLORS.text, scale = 1): number {
    let cx = x;
    for (const ch of s) {
      const glyph = FONT[ch] ?? FONT[ch.toUpperCase()] ?? FONT['?']!;
      glyph.forEach((row, j) => {
        for (let i = 0; i < 5; i++) if (row & (0x10 >> i)) this.rect(cx + i * scale, y + j * scale, scale, scale, c);
      });
      cx += 6 * scale;
    }
    return cx - x;
  }

  png(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    return PNG.sync.write(png);
  }
}

export const textWidth = (s: string, scale = 1) => s.length * 6 * scale;

/** A rectangle of the canvas mapped to data coordinates [x0, x1] × [y0, y1] (y up), optionally log10 in y. */
interface Frame { left: number; top: number; width: number; height: number; x: [number, number]; y: [number, number]; logY?: boolean }

const toPx = (f: Frame) => ({
  x: (v: number) => f.left + ((v - f.x[0]) / (f.x[1] - f.x[0])) * f.width,
  y: (v: number) => {
    const u = f.logY ? Math.log10(v) : v;
    return f.top + f.height - ((u - f.y[0]) / (f.y[1] - f.y[0])) * f.height;
  },
});

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
export function ticks(lo: number, hi: number, target = 5): number[] {
  const raw = (hi - lo) / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

const fmtTick = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-2) ? v.toExponential(0) : String(Number(v.toPrecision(3))));

/** Frame, grid, tick labels and title; log-y ticks at powers of ten. */
function axes(cv: Canvas, f: Frame, title: string, xLabel?: string): void {
  const px = toPx(f);
  const xt = ticks(f.x[0], f.x[1]);
  const yt = f.logY ? range(Math.ceil(f.y[0]), Math.floor(f.y[1])).map((e) => 10 ** e) : ticks(f.y[0], f.y[1]);
  for (const v of xt) {
    cv.line(px.x(v), f.top, px.x(v), f.top + f.height, COLORS.grid);
    const s = fmtTick(v);
    cv.text(s, px.x(v) - textWidth(s) / 2, f.top + f.height + 5, COLORS.axis);
  }
  for (const v of yt) {
    cv.line(f.left, px.y(v), f.left + f.width, px.y(v), COLORS.grid);
    const s = fmtTick(v);
    cv.text(s, f.left - textWidth(s) - 5, px.y(v) - 3, COLORS.axis);
  }
  const [l, t, r, b] = [f.left, f.top, f.left + f.width, f.top + f.height];
  for (const [x0, y0, x1, y1] of [[l, t, r, t], [l, b, r, b], [l, t, l, b], [r, t, r, b]] as const) cv.line(x0, y0, x1, y1, COLORS.axis);
  const big = textWidth(title, 2) <= cv.width - 16 ? 2 : 1; // long titles in the small font
  cv.text(title, (cv.width - textWidth(title, big)) / 2, big === 2 ? 8 : 12, COLORS.text, big);
  if (xLabel) cv.text(xLabel, l + (f.width - textWidth(xLabel)) / 2, b + 18, COLORS.axis);
}

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);

/** Legend entries stacked in the top right corner of the frame. */
function legend(cv: Canvas, f: Frame, entries: [string, Rgb][]): void {
  const w = Math.max(...entries.map(([s]) => textWidth(s))) + 20;
  const x = f.left + f.width - w - 6;
  cv.rect(x - 4, f.top + 4, w + 8, entries.length * 12 + 6, COLORS.background, 0.85);
  entries.forEach(([s, c], i) => {
    const y = f.top + 8 + i * 12;
    cv.rect(x, y + 1, 10, 5, c);
    cv.text(s, x + 16, y, COLORS.text);
  });
}

/** Samples (orange) over data (blue-grey) in the square [−lim, lim]²; points are [x, y] pairs, row-major. */
export function scatterPlot(data: Float32Array, samples: Float32Array, title: string, lim = 3, size = 480): Canvas {
  const cv = new Canvas(size, size + 20);
  const f: Frame = { left: 44, top: 34, width: size - 60, height: size - 60, x: [-lim, lim], y: [-lim, lim] };
  axes(cv, f, title);
  const px = toPx(f);
  const dots = (pts: Float32Array, c: Rgb, a: number) => {
    for (let i = 0; i + 1 < pts.length; i += 2) cv.rect(px.x(pts[i]!) - 1, px.y(pts[i + 1]!) - 1, 2, 2, c, a);
  };
  dots(data, COLORS.data, 0.5);
  dots(samples, COLORS.samples, 0.6);
  legend(cv, f, [['data', COLORS.data], ['samples', COLORS.samples]]);
  return cv;
}

/** Line chart of named series over shared x values, y on a log scale (loss curves). Non-positive values are skipped. */
export function lineChart(x: readonly number[], series: Record<string, readonly number[]>, title: string, xLabel: string, size: [number, number] = [640, 400]): Canvas {
  const cv = new Canvas(size[0], size[1]);
  const ys = Object.values(series).flat().filter((v) => v > 0 && Number.isFinite(v));
  const [lo, hi] = ys.length ? [Math.log10(Math.min(...ys)), Math.log10(Math.max(...ys))] : [-1, 0];
  const pad = Math.max(0.1, (hi - lo) * 0.05);
  const f: Frame = {
    left: 70, top: 34, width: size[0] - 90, height: size[1] - 80,
    x: [x[0] ?? 0, Math.max((x[x.length - 1] ?? 1), (x[0] ?? 0) + 1)], y: [lo - pad, hi + pad], logY: true,
  };
  axes(cv, f, title, xLabel);
  const px = toPx(f);
  const entries: [string, Rgb][] = [];
  Object.entries(series).forEach(([name, ys], k) => {
    const c = COLORS.series[k % COLORS.series.length]!;
    entries.push([name, c]);
    for (let i = 1; i < ys.length; i++) {
      if (ys[i - 1]! > 0 && ys[i]! > 0) cv.line(px.x(x[i - 1]!), px.y(ys[i - 1]!), px.x(x[i]!), px.y(ys[i]!), c, 2);
    }
  });
  legend(cv, f, entries);
  return cv;
}

/**
 * Grayscale images [N, side·side] with values in [−1, 1], tiled `cols` per row with a 2-pixel gap, each
 * pixel drawn `zoom`×; `rowLabels` are written to the left of each row.
 */
export function imageGrid(images: Float32Array, side: number, cols: number, title: string, rowLabels: string[] = [], zoom = 2): Canvas {
  const n = images.length / (side * side);
  const rows = Math.ceil(n / cols);
  const tile = side * zoom + 2;
  const labelW = rowLabels.length ? Math.max(...rowLabels.map((s) => textWidth(s))) + 8 : 0;
  const cv = new Canvas(Math.max(labelW + cols * tile + 4, textWidth(title, 2) + 16), rows * tile + 36, [0, 0, 0]);
  cv.text(title, (cv.width - textWidth(title, 2)) / 2, 8, [255, 255, 255], 2);
  for (let k = 0; k < n; k++) {
    const [r, c] = [Math.floor(k / cols), k % cols];
    const [x0, y0] = [labelW + 2 + c * tile, 32 + r * tile];
    for (let j = 0; j < side; j++) {
      for (let i = 0; i < side; i++) {
        const v = Math.round(Math.min(1, Math.max(0, (images[k * side * side + j * side + i]! + 1) / 2)) * 255);
        cv.rect(x0 + i * zoom, y0 + j * zoom, zoom, zoom, [v, v, v]);
      }
    }
  }
  rowLabels.forEach((s, r) => cv.text(s, 2, 32 + r * tile + tile / 2 - 4, [200, 200, 200]));
  return cv;
}

// 5×7 glyphs, one number per row, bit 4 = leftmost pixel. Lower case is drawn as upper case.
const FONT: Record<string, readonly number[]> = {
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '0': [14, 17, 19, 21, 25, 17, 14], '1': [4, 12, 4, 4, 4, 4, 14], '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14], '4': [2, 6, 10, 18, 31, 2, 2], '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14], '7': [31, 1, 2, 4, 8, 8, 8], '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 31, 17, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28], E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17], I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16], Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4], U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 10, 4, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31],
  '.': [0, 0, 0, 0, 0, 12, 12], ',': [0, 0, 0, 0, 12, 4, 8], ':': [0, 12, 12, 0, 12, 12, 0],
  '-': [0, 0, 0, 31, 0, 0, 0], '+': [0, 4, 4, 31, 4, 4, 0], '=': [0, 0, 31, 0, 31, 0, 0],
  '(': [2, 4, 8, 8, 8, 4, 2], ')': [8, 4, 2, 2, 2, 4, 8], '/': [1, 1, 2, 4, 8, 16, 16],
  '%': [24, 25, 2, 4, 8, 19, 3], '_': [0, 0, 0, 0, 0, 0, 31], "'": [4, 4, 8, 0, 0, 0, 0],
  '<': [2, 4, 8, 16, 8, 4, 2], '>': [8, 4, 2, 1, 2, 4, 8], '?': [14, 17, 1, 2, 4, 0, 4],
  '|': [4, 4, 4, 4, 4, 4, 4], '*': [0, 4, 21, 14, 21, 4, 0], 'λ': [8, 4, 4, 10, 10, 17, 17],
  '·': [0, 0, 0, 12, 12, 0, 0], '×': [0, 17, 10, 4, 10, 17, 0],
};
