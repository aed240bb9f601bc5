// Canvas drawing for the page: 2-D samples over the data, a grid of digits, a loss curve.

const ctx2d = (c: HTMLCanvasElement) => {
  const g = c.getContext('2d');
  if (!g) throw new Error('this browser gives no 2-D canvas context');
  return g;
};

/** Points in [−extent, extent]²: the data in grey, the samples in blue. */
export function drawScatter(c: HTMLCanvasElement, data: Float32Array, samples: Float32Array, extent = 4.5): void {
  const g = ctx2d(c);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, c.width, c.height);
  const px = (v: number) => ((v + extent) / (2 * extent)) * c.width;
  const py = (v: number) => c.height - ((v + extent) / (2 * extent)) * c.height;
  const dots = (xy: Float32Array, colour: string) => {
    g.fillStyle = colour;
    for (let i = 0; i + 1 < xy.length; i += 2) g.fillRect(px(xy[i]!) - 1, py(xy[i + 1]!) - 1, 2.5, 2.5);
  };
  dots(data, 'rgba(0,0,0,0.25)');
  dots(samples, 'rgba(20,90,220,0.8)');
}

/** `n` square images of side `side` in [−1, 1], `cols` per row, scaled up `scale` times. */
export function drawDigits(c: HTMLCanvasElement, pixels: Float32Array, side: number, cols: number, scale = 2): void {
  const n = pixels.length / (side * side);
  const rows = Math.ceil(n / cols);
  c.width = cols * side * scale;
  c.height = rows * side * scale;
  const img = new ImageData(cols * side, rows * side);
  for (let k = 0; k < n; k++) {
    const [r0, c0] = [Math.floor(k / cols) * side, (k % cols) * side];
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const v = Math.round(Math.min(1, Math.max(0, (pixels[k * side * side + y * side + x]! + 1) / 2)) * 255);
        const at = ((r0 + y) * cols * side + c0 + x) * 4;
        img.data.set([v, v, v, 255], at);
      }
    }
  }
  const g = ctx2d(c);
  const tmp = new OffscreenCanvas(img.width, img.height);
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, c.width, c.height);
}

/** Loss against step, log scale. */
export function drawLoss(c: HTMLCanvasElement, steps: number[], losses: number[]): void {
  const g = ctx2d(c);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, c.width, c.height);
  g.fillStyle = '#444';
  g.font = '12px sans-serif';
  g.fillText('loss (log scale) against step', 8, 14);
  const ok = losses.map((l, i) => [steps[i]!, Math.log10(l)] as const).filter(([, l]) => Number.isFinite(l));
  if (ok.length < 2) return;
  const [s0, s1] = [ok[0]![0], ok[ok.length - 1]![0]];
  const lo = Math.min(...ok.map(([, l]) => l)), hi = Math.max(...ok.map(([, l]) => l));
  const x = (s: number) => 40 + ((s - s0) / Math.max(1, s1 - s0)) * (c.width - 50);
  const y = (l: number) => 25 + (1 - (l - lo) / Math.max(1e-9, hi - lo)) * (c.height - 45);
  g.fillText(`${(10 ** hi).toPrecision(3)}`, 2, 30);
  g.fillText(`${(10 ** lo).toPrecision(3)}`, 2, c.height - 18);
  g.fillText(`step ${s1}`, c.width - 70, c.height - 4);
  g.strokeStyle = '#c0392b';
  g.lineWidth = 1.5;
  g.beginPath();
  ok.forEach(([s, l], i) => (i ? g.lineTo(x(s), y(l)) : g.moveTo(x(s), y(l))));
  g.stroke();
}
