// The Generate tab's drawing: samples of a loaded run (run.ts) with 1, 2 or 4 network evaluations from a
// seed, exactly as `twinflow sample` draws them, onto the page's canvas.

import * as tw from '../../web.ts';
import { sample2d, type Toy2d } from '../../models/data/toy2d.ts';
import { MNIST_SIDE } from '../../models/data/mnist-format.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { STREAMS } from '../../models/twinflow/train-step.ts';
import { drawDigits, drawScatter } from './draw.ts';
import type { LoadedRun } from './run.ts';

/** Rows drawn per generation: 64 digits (an 8×8 grid), or 2,048 points. */
export const ROWS = { image: 64, '2d': 2048 } as const;

export interface Generation {
  values: Float32Array;
  ms: number;
  /** True when this call compiled the sampler (its first run for this run and NFE). */
  compiled: boolean;
}

const compiledFor = new Set<string>();

/** Samples of a loaded run, drawn onto `canvas`. */
export async function generateInto(canvas: HTMLCanvasElement, run: LoadedRun, nfe: number, seed: number, prompt: string): Promise<Generation> {
  const n = ROWS[run.model.kind];
  const labels = Array.from({ length: n }, (_, i) => i % 10);
  const key = `${run.url} ${nfe}`;
  const t0 = performance.now();
  const x = await generate(run.model, run.config, run.ema, nfe, n, labels, run.model.kind === 'image' && prompt.trim() ? prompt : undefined, seed);
  const values = (await x.data()) as Float32Array;
  const ms = performance.now() - t0;
  const compiled = !compiledFor.has(key);
  compiledFor.add(key);
  if (run.model.kind === '2d') {
    const data = sample2d(run.config.data.slice(3) as Toy2d, tw.random.foldIn(tw.random.key(seed), STREAMS.eval), n);
    drawScatter(canvas, (await data.data()) as Float32Array, values);
  } else drawDigits(canvas, values, MNIST_SIDE, 8, 2);
  return { values, ms, compiled };
}
