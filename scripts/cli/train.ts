// `twinflow train`: one jitted step (twinflowLoss → valueAndGrad → clip → AdamW → EMA) with the parameters,
// optimizer state and running loss sums donated, periodic atomic checkpoints, a progress bar (TTY) or a
// plain progress line every --log-every steps, --resume, and Ctrl-C: finish the step, save, exit 0.

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import * as tw from '../../index.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint/checkpoint.ts';
import { initialState as freshState, STREAMS, type StepState, type Sums, termNames, trainStep, zeroSums } from '../../models/twinflow/train-step.ts';
import { lineChart } from './plot.ts';
import { objectiveConfig, problem } from './problem.ts';
import { type HistoryPoint, readJson, type RunConfig, runPaths, UsageError, writeJsonAtomic } from './runs.ts';

export { EMA_DECAY, STREAMS } from '../../models/twinflow/train-step.ts';

export interface TrainOptions {
  run: RunConfig;
  out: string;
  resume: boolean;
  checkpointEvery: number;
  logEvery: number;
  /** Progress output: a redrawn bar (TTY) or one line per log point. */
  progress: 'bar' | 'lines';
  /** Where progress lines and messages go (stderr by default). */
  log?: (line: string) => void;
}

export interface TrainResult {
  step: number;
  interrupted: boolean;
  history: HistoryPoint[];
  /** Seconds per step over this session, the first (compiling) step left out; NaN with under two steps. */
  secPerStep: number;
}

/** A run's parameters, EMA and optimizer state, freshly initialised from its seed (the template for loading). */
export function initialState(run: RunConfig) {
  const prob = problem(run);
  return { prob, ...freshState(prob.spec, run) };
}

/** Loads a run's checkpoint into its model; a mismatch (another model's files) is a UsageError on one line. */
export async function loadRun(dir: string, run: RunConfig) {
  const { prob, params, ema, optState } = initialState(run);
  try {
    return { prob, ...(await loadCheckpoint(runPaths(dir).checkpoint, { params, ema, optState })) };
  } catch (e) {
    const lines = (e as Error).message.split('\n').map((l) => l.trim());
    const more = lines.length > 2 ? ` (and ${lines.length - 2} more differences)` : '';
    throw new UsageError(`${lines.slice(0, 2).join(' ')}${more}`);
  }
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { run } = o;
  const paths = runPaths(o.out);
  const cfg = objectiveConfig(run);
  let { prob, opt, params, ema, optState } = initialState(run);
  let start = 0;
  let history: HistoryPoint[] = [];
  if (o.resume) {
    const ck = await loadRun(o.out, run);
    ({ params, ema, optState } = ck);
    start = ck.step;
    history = existsSync(paths.history) ? (await readJson<HistoryPoint[]>(paths.history)).filter((h) => h.step <= start) : [];
    log(`resuming ${o.out} from step ${start}`);
  } else if (existsSync(`${paths.checkpoint}/checkpoint.json`)) {
    throw new UsageError(`${o.out} already holds a checkpoint; pass --resume to continue it, or choose another --out`);
  }
  await writeJsonAtomic(paths.config, run);

  const names = termNames(cfg, run.batch);
  const step = trainStep(prob.net, opt, cfg, names);

  const base = tw.random.key(run.seed);
  const [dataKey, drawKey] = [tw.random.foldIn(base, STREAMS.data), tw.random.foldIn(base, STREAMS.draws)];
  let state: StepState = { params, ema, opt: optState };
  let sums = zeroSums(names);
  let saved = start;
  const save = async (at: number) => {
    await saveCheckpoint(paths.checkpoint, { params: state.params, ema: state.ema, optState: state.opt, step: at }, run);
    await writeJsonAtomic(paths.history, history);
    saved = at;
  };

  let interrupted = false;
  const onSigint = () => {
    if (!interrupted) log(`interrupted: saving a checkpoint at the current step`);
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  const bar = o.progress === 'bar'
    ? new cliProgress.SingleBar({ format: 'train {bar} {value}/{total} | {speed} steps/s | {terms}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(run.steps, start, { speed: '-', terms: 'compiling…' });

  let i = start;
  let sumsFrom = start; // the step the running sums start after
  let lastLog = { step: start, time: performance.now() };
  let firstDone = 0; // when the first (compiling) step of this session finished
  const logPoint = async () => {
    const point = await readSums(sums, i, i - sumsFrom, lastLog);
    [sums, sumsFrom, lastLog] = [zeroSums(names), i, { step: i, time: performance.now() }];
    history.push(point);
    const terms = Object.entries({ loss: point.loss, ...point.terms }).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join(' ');
    if (bar) bar.update(i, { speed: point.stepsPerSec.toFixed(1), terms });
    else log(`step ${i}/${run.steps} | ${point.stepsPerSec.toFixed(1)} steps/s | ${terms}`);
  };
  try {
    while (i < run.steps && !interrupted) {
      ({ state, sums } = step(state, sums, prob.batch(dataKey, i, run.batch), tw.random.foldIn(drawKey, i)));
      i++;
      if (i === start + 1) {
        await sums.loss.data(); // wait for the device: the first step's time is compile time
        firstDone = performance.now();
        lastLog = { step: i, time: firstDone };
      }
      if (i % o.logEvery === 0 || i === run.steps) await logPoint();
      else bar?.increment();
      if (i % o.checkpointEvery === 0 || i === run.steps) await save(i);
      await new Promise((r) => setImmediate(r)); // let signals and the progress bar's timer run
    }
    if (i > sumsFrom) await logPoint();
    if (saved !== i) await save(i);
  } finally {
    process.off('SIGINT', onSigint);
    bar?.stop();
  }
  if (history.length) await writeFile(paths.lossPng, lossCurve(history, run).png());
  const sessionSteps = i - start - 1;
  return { step: i, interrupted, history, secPerStep: sessionSteps > 0 ? (performance.now() - firstDone) / 1000 / sessionSteps : NaN };
}

/** Mean loss terms over the `n` steps whose sums these are, and the step rate since the previous point. */
async function readSums(sums: Sums, step: number, n: number, since: { step: number; time: number }): Promise<HistoryPoint> {
  const mean = async (t: tw.Tensor<'f32'>) => (await t.item()) / Math.max(1, n);
  const terms: Record<string, number> = {};
  for (const [k, v] of Object.entries(sums.terms)) terms[k] = await mean(v);
  const loss = await mean(sums.loss);
  const dt = (performance.now() - since.time) / 1000;
  return { step, loss, terms, stepsPerSec: step > since.step && dt > 0 ? (step - since.step) / dt : 0 };
}

/** The loss curve of a run: total loss and each term, log scale. */
export function lossCurve(history: HistoryPoint[], run: RunConfig) {
  const series: Record<string, number[]> = { loss: history.map((h) => h.loss) };
  for (const k of Object.keys(history[0]!.terms)) series[k] = history.map((h) => h.terms[k] ?? NaN);
  return lineChart(history.map((h) => h.step), series, `${run.objective} loss, ${run.data}, ${run.model}`, 'step');
}
