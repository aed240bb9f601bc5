// `twinflow train`: one jitted step (twinflowLoss → valueAndGrad → clip → AdamW → EMA) with the parameters,
// optimizer state and running loss sums donated, periodic atomic checkpoints, a progress bar (TTY) or a
// plain progress line every --log-every steps, --resume, and Ctrl-C: finish the step, save, exit 0.

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import * as tw from '../../index.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint/checkpoint.ts';
import { initParams } from '../../models/nn/params.ts';
import { adamw } from '../../models/optim/adamw.ts';
import { clipByGlobalNorm } from '../../models/optim/clip.ts';
import { emaUpdate } from '../../models/optim/ema.ts';
import { SLICES, sliceRows, type TwinFlowConfig } from '../../models/twinflow/config.ts';
import { drawStep } from '../../models/twinflow/draws.ts';
import { twinflowLoss } from '../../models/twinflow/objective.ts';
import { lineChart } from './plot.ts';
import { objectiveConfig, problem } from './problem.ts';
import { type HistoryPoint, readJson, type RunConfig, runPaths, UsageError, writeJsonAtomic } from './runs.ts';

export const EMA_DECAY = 0.99;
/** Independent random streams of a run, folded into its seed key. */
export const STREAMS = { init: 0, data: 1, draws: 2, sample: 3, eval: 4 } as const;

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

type Sums = { loss: tw.Tensor<'f32'>; terms: Record<string, tw.Tensor<'f32'>> };

/** The loss terms twinflowLoss reports for this batch size and config. */
function termNames(cfg: TwinFlowConfig, batch: number): string[] {
  const at = sliceRows(batch, cfg.slices);
  const names: string[] = SLICES.filter((s) => at[s][1] > at[s][0]);
  return cfg.rectify > 0 && names.includes('e2e') ? [...names, 'rectify'] : names;
}

/** A run's parameters, EMA and optimizer state, freshly initialised from its seed (the template for loading). */
export function initialState(run: RunConfig) {
  const prob = problem(run);
  const opt = adamw({ lr: run.lr, betas: [0.9, 0.99], weightDecay: 0 });
  const params = initParams(prob.spec, tw.random.foldIn(tw.random.key(run.seed), STREAMS.init));
  // the EMA starts as a copy: donation needs distinct tensors
  return { prob, opt, params, ema: tw.treeMap((p) => p.add(0), params), optState: opt.init(params) };
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
  const zeroSums = (): Sums => ({ loss: tw.scalar(0), terms: Object.fromEntries(names.map((n) => [n, tw.scalar(0)])) });
  type State = { params: typeof params; ema: typeof ema; opt: typeof optState };
  const step = tw.jit((s: State, sums: Sums, batch: ReturnType<typeof prob.batch>, key: tw.random.Key) => {
    const draws = drawStep(key, batch.x.shape, cfg);
    const [[loss, terms], grads] = tw.valueAndGrad((p: State['params']) => {
      const out = twinflowLoss(prob.net, p, s.ema, batch, draws, cfg);
      return [out.loss, out.terms] as [tw.Tensor<'f32'>, Record<string, tw.Tensor<'f32'>>];
    }, { hasAux: true })(s.params);
    const next = opt.update(clipByGlobalNorm(grads, 1).grads, s.opt, s.params);
    return {
      state: { params: next.params, ema: emaUpdate(s.ema, next.params, EMA_DECAY, s.opt.step), opt: next.state },
      sums: { loss: sums.loss.add(loss), terms: Object.fromEntries(names.map((n) => [n, sums.terms[n]!.add(terms[n]!)])) },
    };
  }, { name: 'trainStep', donate: [0, 1] });

  const base = tw.random.key(run.seed);
  const [dataKey, drawKey] = [tw.random.foldIn(base, STREAMS.data), tw.random.foldIn(base, STREAMS.draws)];
  let state: State = { params, ema, opt: optState };
  let sums = zeroSums();
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
    [sums, sumsFrom, lastLog] = [zeroSums(), i, { step: i, time: performance.now() }];
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
