// `twinflow eval`: the metric table of a checkpoint at several NFE, as markdown and JSON. 2-D data: sliced
// Wasserstein-2 and energy distance to held-out points, and mode coverage (8 gaussians: modes within 3σ;
// checkerboard: its 8 filled cells). MNIST: conditional accuracy of a fixed classifier, Fréchet distance and
// diversity ratio in its features. A "data" row scores real held-out-like data the same way: the floor.

import { writeFile } from 'node:fs/promises';
import * as tw from '../../index.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { MNIST_CLASSES } from '../../models/data/mnist-format.ts';
import { STREAMS } from '../../models/twinflow/train-step.ts';
import { classifierAccuracy, classifierFeatures, type ClassifierParams, loadOrTrainClassifier } from '../../models/metrics/classifier.ts';
import { diversityRatio } from '../../models/metrics/diversity.ts';
import { energyDistance } from '../../models/metrics/energy.ts';
import { frechetDistance } from '../../models/metrics/frechet.ts';
import { gauss8Modes } from '../../models/metrics/modes.ts';
import { slicedWasserstein } from '../../models/metrics/sliced-wasserstein.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { readRunConfig, resolveCheckpoint, type RunConfig, runPaths, UsageError, writeJsonAtomic } from './runs.ts';
import { samplerFor } from './problem.ts';
import { loadRun } from './train.ts';

type T = tw.Tensor<'f32'>;

/** One row: a sampler (or the data itself) and its metrics; absent metrics do not apply to the data set. */
export interface MetricRow {
  sampler: string;
  nfe: number | null;
  slicedW2?: number;
  energy?: number;
  /** Modes or cells holding at least 5% of the samples, out of `modesTotal`. */
  modes?: number;
  modesTotal?: number;
  /** Share of samples inside some mode or filled cell. */
  precision?: number;
  accuracy?: number;
  frechet?: number;
  diversity?: number;
}

export interface EvalResult { run: RunConfig; step: number; samples: number; rows: MetricRow[] }

/** Cells of the checkerboard (4×4 over [−2, 2]², the 8 with an even ⌊x⌋ + ⌊y⌋ are filled) holding ≥ 5% of the points. */
function checkerboardCells(xy: Float32Array): { modes: number; precision: number } {
  const counts = new Map<number, number>();
  let inside = 0;
  for (let i = 0; i + 1 < xy.length; i += 2) {
    const [cx, cy] = [Math.floor(xy[i]!), Math.floor(xy[i + 1]!)];
    if (cx < -2 || cx > 1 || cy < -2 || cy > 1 || (cx + cy) % 2 !== 0) continue;
    inside++;
    counts.set(cx * 4 + cy, (counts.get(cx * 4 + cy) ?? 0) + 1);
  }
  const n = xy.length / 2;
  return { modes: [...counts.values()].filter((c) => c >= 0.05 * n).length, precision: inside / n };
}

/** 2-D metrics of points x against reference y. */
async function score2d(data: RunConfig['data'], x: T, y: T, key: tw.random.Key): Promise<Omit<MetricRow, 'sampler' | 'nfe'>> {
  const e = Math.min(2048, x.shape[0]!);
  const row: Omit<MetricRow, 'sampler' | 'nfe'> = {
    slicedW2: await slicedWasserstein(x, y, key).item(),
    energy: await energyDistance(x.slice([0, e]), y.slice([0, e])).item(),
  };
  if (data === '2d:8gauss') {
    const m = gauss8Modes(x);
    return { ...row, modes: await m.covered.item(), modesTotal: 8, precision: await m.precision.item() };
  }
  if (data === '2d:checkerboard') return { ...row, ...checkerboardCells((await x.data()) as Float32Array), modesTotal: 8 };
  return row;
}

/** MNIST metrics of digits x with their intended labels, against the held-out digits. */
async function scoreDigits(clf: ClassifierParams, x: T, labels: tw.Tensor<'i32'>, real: { x: T; labels: tw.Tensor<'i32'> }) {
  const [fx, fr] = [classifierFeatures(clf, x), classifierFeatures(clf, real.x)];
  return {
    accuracy: await classifierAccuracy(clf, x, labels).item(),
    frechet: await frechetDistance(fx, fr).item(),
    diversity: await diversityRatio(fx, labels, fr, real.labels, MNIST_CLASSES).mean().item(),
  };
}

/** 2-D rows are scored on all samples at once (sorted projections), so their count is bounded. */
export const MAX_SAMPLES = 2 ** 18;

/** Row names of the samplers (models/registry.ts samplerFor). */
const SAMPLER_NAMES = { multi: 'Euler', few: 'few-step', any: 'any-step' } as const;

export async function evaluate(ckpt: string, nfes: readonly number[], samples = 4096, log: (l: string) => void = () => {}): Promise<EvalResult> {
  const { dir, folder } = await resolveCheckpoint(ckpt);
  const run = await readRunConfig(dir);
  if (run.data !== 'mnist' && samples > MAX_SAMPLES) throw new UsageError(`--samples ${samples}: over ${MAX_SAMPLES}, the most the sliced Wasserstein distance sorts at once (256 projections); pass at most ${MAX_SAMPLES}`);
  const { prob, ema, step } = await loadRun(dir, run, { folder, finite: true });
  const key = tw.random.foldIn(tw.random.key(run.seed), STREAMS.eval);
  const name = (nfe: number) => `${SAMPLER_NAMES[samplerFor(run, nfe).kind]}, ${nfe} NFE`;
  const rows: MetricRow[] = [];
  if (prob.kind === '2d') {
    const [kr, kd, ks] = tw.random.split(key, 3);
    const ref = prob.reference(kr, samples).x;
    rows.push({ sampler: 'data (held-out sample)', nfe: null, ...(await score2d(run.data, prob.reference(kd, samples).x, ref, ks)) });
    for (const nfe of nfes) {
      log(`eval: ${name(nfe)}`);
      rows.push({ sampler: name(nfe), nfe, ...(await score2d(run.data, await generate(prob, run, ema, nfe, samples), ref, ks)) });
    }
  } else {
    const mnist = loadMnist();
    const { params: clf, heldOutAccuracy } = await loadOrTrainClassifier(mnist, undefined, { log });
    const real = { x: mnist.heldOut.images, labels: mnist.heldOut.labels };
    const train = { x: mnist.train.images.slice([0, 9000, 9]), labels: mnist.train.labels.slice([0, 9000, 9]) }; // 1,000 train digits, every class
    rows.push({ sampler: `data (train digits; classifier held-out accuracy ${heldOutAccuracy.toFixed(3)})`, nfe: null, ...(await scoreDigits(clf, train.x, train.labels, real)) });
    const labels = Array.from(await real.labels.data());
    for (const nfe of nfes) {
      log(`eval: ${name(nfe)}`);
      const x = await generate(prob, run, ema, nfe, labels.length, labels);
      rows.push({ sampler: name(nfe), nfe, ...(await scoreDigits(clf, x, real.labels, real)) });
    }
  }
  return { run, step, samples: prob.kind === '2d' ? samples : 1000, rows };
}

const COLUMNS: [keyof MetricRow, string, (r: MetricRow) => string][] = [
  ['slicedW2', 'sliced W2', (r) => r.slicedW2!.toFixed(4)],
  ['energy', 'energy distance', (r) => r.energy!.toFixed(4)],
  ['modes', 'modes covered', (r) => `${r.modes}/${r.modesTotal}`],
  ['precision', 'in modes', (r) => r.precision!.toFixed(3)],
  ['accuracy', 'conditional accuracy', (r) => r.accuracy!.toFixed(3)],
  ['frechet', 'Fréchet distance', (r) => r.frechet!.toFixed(1)],
  ['diversity', 'diversity ratio', (r) => r.diversity!.toFixed(3)],
];

/** The columns that some row has, as a markdown table. */
export function metricsTable(rows: readonly MetricRow[], first: [string, (r: MetricRow) => string][] = [['sampler', (r) => r.sampler]]): string {
  const cols = COLUMNS.filter(([k]) => rows.some((r) => r[k] !== undefined));
  const head = [...first.map(([h]) => h), ...cols.map(([, h]) => h)];
  const cells = rows.map((r) => [...first.map(([, f]) => f(r)), ...cols.map(([k, , f]) => (r[k] === undefined ? '' : f(r)))]);
  return [head, head.map(() => '---'), ...cells].map((c) => `| ${c.join(' | ')} |`).join('\n');
}

/** Writes runs/NAME/metrics.md and metrics.json; returns the markdown. */
export async function writeMetrics(ckpt: string, result: EvalResult): Promise<{ markdown: string; md: string; json: string }> {
  const paths = runPaths((await resolveCheckpoint(ckpt)).dir);
  const { run, step, samples } = result;
  const caption = `${run.objective} on ${run.data} with ${run.model}, step ${step}; ${samples} samples per row`;
  const markdown = `${caption}\n\n${metricsTable(result.rows)}\n`;
  await writeFile(paths.metricsMd, markdown);
  await writeJsonAtomic(paths.metricsJson, result);
  return { markdown, md: paths.metricsMd, json: paths.metricsJson };
}
