// `twinflow train`: one jitted step (the objective's loss → valueAndGrad → clip → AdamW → EMA) with the parameters,
// optimizer state and running loss sums donated, checkpoint sets written atomically (run-folder.ts), a
// progress bar (TTY) or a plain progress line every --log-every steps, --resume, a non-finite guard computed
// inside the step, and SIGINT/SIGTERM: finish the step, save, exit 0.

import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import * as tw from '../../index.ts';
import { checkpointFiles, loadCheckpoint } from '../../models/checkpoint/checkpoint.ts';
import { CheckpointWriteError, cleanCheckpoints, listCheckpoints, saveCheckpointSet, type SaveSetOptions } from '../../models/checkpoint/run-folder.ts';
import { decodeSafetensors } from '../../models/checkpoint/safetensors.ts';
import {
  checkedValues, freshGuard, initialState as freshState, type OnNan, STREAMS, type Sums, type StepState, trainStep, zeroSums,
} from '../../models/twinflow/train-step.ts';
import { freshLora, isLora, loraCheckpoint, loraNet, type LoraParts, loraPartsLike, resumeLora } from './lora.ts';
import { withPrecision } from '../../models/twinflow/precision.ts';
import { lineChart } from './plot.ts';
import { checkMemory } from './limits.ts';
import { objectiveFor, problem } from './problem.ts';
import { cleanRunTemporaries, type HistoryPoint, latestCheckpointOf, readJson, readRunConfig, type RunConfig, runPaths, UsageError, writeJsonAtomic } from './runs.ts';

/** The loss history inside each checkpoint folder. */
const HISTORY = 'history.json';

export interface TrainOptions {
  run: RunConfig;
  out: string;
  resume: boolean;
  checkpointEvery: number;
  logEvery: number;
  /** Step folders to keep (default 2). */
  keepCheckpoints?: number;
  /** A step whose loss or gradients are not finite: stop (default; the last finite checkpoint stays) or skip its update. */
  onNan?: OnNan;
  /** Progress output: a redrawn bar (TTY) or one line per log point. */
  progress: 'bar' | 'lines';
  /** Where progress lines and messages go (stderr by default). */
  log?: (line: string) => void;
  /** Stop (saving a checkpoint, as after a signal) once performance.now() passes this: a time-boxed session resumes later. */
  stopAt?: number;
  /** Fault-injection hook for the checkpoint writer (tests). */
  saveHook?: SaveSetOptions['at'];
}

export interface TrainResult {
  step: number;
  /** The signal that stopped training early, if any. */
  interrupted: NodeJS.Signals | null;
  history: HistoryPoint[];
  /** Seconds per step over this session, the first (compiling) step left out; NaN with under two steps. */
  secPerStep: number;
  /** Steps whose update --on-nan skip left out. */
  skipped: number;
}

/** Training stopped because a step's loss or gradients were not finite; the message names the step and terms. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}


/**
 * A run's parameters, EMA and optimizer state, freshly initialised from its seed (the template for loading;
 * a LoRA run's optimizer part holds its adapter state and base: lora.ts).
 */
export function initialState(run: RunConfig) {
  const prob = problem(run);
  checkMemory(run, prob);
  const fresh = freshState(prob.spec, run);
  return { prob, ...fresh, ...(isLora(run) ? { optState: loraPartsLike(run, fresh.opt, fresh.params) } : {}) };
}

/** The EMA weights of the run a LoRA run starts from (--init), checked to be finite. */
async function initWeights(run: RunConfig): Promise<unknown> {
  const dir = run.init!;
  return (await loadRun(dir, await readRunConfig(dir), { finite: true })).ema;
}

/**
 * Loads a checkpoint folder of a run (default: its latest) into its model; a mismatch (another model's files)
 * is a UsageError on one line. `finite` also refuses EMA weights that are not all finite, naming the tensor.
 */
export async function loadRun(dir: string, run: RunConfig, o: { folder?: string; finite?: boolean } = {}) {
  const folder = o.folder ?? (await latestCheckpointOf(dir));
  if (!folder) throw new UsageError(`${dir}: no checkpoint yet (no ${path.join(runPaths(dir).checkpoints, 'latest')}); continue the run with twinflow train --out ${dir} --resume`);
  const { prob, params, ema, optState } = initialState(run);
  let loaded;
  try {
    loaded = await loadCheckpoint(folder, { params, ema, optState });
  } catch (e) {
    const lines = (e as Error).message.split('\n').map((l) => l.trim());
    const more = lines.length > 2 ? ` (and ${lines.length - 2} more differences)` : '';
    const others = (await listCheckpoints(runPaths(dir).checkpoints)).filter((f) => path.resolve(f) !== path.resolve(folder));
    const fix = lines.length > 1 || !others.length ? '' : `; other checkpoints: ${others.join(', ')} (pass one to --ckpt, or write its folder name into ${path.join(runPaths(dir).checkpoints, 'latest')} to resume from it)`;
    throw new UsageError(`${lines.slice(0, 2).join(' ')}${more}${fix}`);
  }
  if (o.finite) await requireFinite(path.join(folder, 'ema.safetensors'), dir);
  return { prob, folder, ...loaded };
}

/** Refuses a weights file with NaN or ±∞ values, naming the first such tensor. */
async function requireFinite(file: string, dir: string): Promise<void> {
  for (const [name, t] of decodeSafetensors(new Uint8Array(await readFile(file)), file).tensors) {
    let bad = 0;
    for (const v of t.data) if (!Number.isFinite(v)) bad++;
    if (bad) throw new UsageError(`${file}: tensor ${name} holds ${bad} non-finite values (NaN or ±Infinity) of ${t.data.length}: the weights diverged; use an earlier checkpoint (--ckpt ${runPaths(dir).checkpoints}/step-...) or retrain with a lower --lr`);
  }
}

/** The loss history a checkpoint folder records (runs before step folders kept it beside the checkpoint). */
async function readHistory(dir: string, folder: string, step: number): Promise<HistoryPoint[]> {
  const file = [path.join(folder, HISTORY), runPaths(dir).legacyHistory].find(existsSync);
  return file ? (await readJson<HistoryPoint[]>(file, 'delete it to resume without the earlier loss curve')).filter((h) => h.step <= step) : [];
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { run } = o;
  const onNan = o.onNan ?? 'stop';
  const paths = runPaths(o.out);
  const objective = objectiveFor(run);
  let { prob, opt, params, ema, optState } = initialState(run);
  let start = 0;
  let history: HistoryPoint[] = [];
  let checkpointDir: string | null = null;
  if (statSync(o.out, { throwIfNoEntry: false })?.isFile()) throw new UsageError(`--out ${o.out} is a file; pass a directory for the run (e.g. runs/NAME)`);
  if (o.resume) {
    const removed = [...(await cleanRunTemporaries(o.out)), ...(await cleanCheckpoints(paths.checkpoints)).map((r) => path.join(paths.checkpoints, r))];
    if (removed.length) log(`removed what an interrupted save left: ${removed.join(', ')}`);
    checkpointDir = await latestCheckpointOf(o.out);
    if (checkpointDir) {
      const ck = await loadRun(o.out, run, { folder: checkpointDir });
      ({ params, ema, optState } = ck);
      start = ck.step;
      history = await readHistory(o.out, checkpointDir, start);
      log(`resuming ${o.out} from step ${start} (${checkpointDir})`);
      if (run.steps < start) throw new UsageError(`--steps ${run.steps}: the checkpoint is already at step ${start}; pass --steps above ${start} to train further`);
    } else log(`resuming ${o.out}: it has no checkpoint yet, so training starts at step 0`);
    const recorded = await readRunConfig(o.out);
    if (recorded.steps !== run.steps) {
      log(`--steps ${run.steps}: the run's total changes from ${recorded.steps} to ${run.steps} steps (recorded in ${paths.config})`);
      await writeJsonAtomic(paths.config, run);
    }
  } else {
    const existing = await latestCheckpointOf(o.out);
    if (existing) throw new UsageError(`${o.out} already holds a checkpoint (${existing}); pass --resume to continue it, or choose another --out`);
    await cleanRunTemporaries(o.out);
    await cleanCheckpoints(paths.checkpoints);
    await writeJsonAtomic(paths.config, run);
  }

  let state: StepState = { params, ema, opt: optState };
  let frozen: unknown = null; // a LoRA run's base weights
  if (isLora(run)) ({ state, frozen } = checkpointDir ? resumeLora(optState as LoraParts<unknown>) : freshLora(run, opt, await initWeights(run)));
  const names = objective.terms(run.batch);
  const checked = checkedValues(names);
  const step = trainStep(isLora(run) ? loraNet(run, frozen) : withPrecision(prob.net, run.precision ?? 'f32'), opt, objective, names, onNan);

  const base = tw.random.key(run.seed);
  const [dataKey, drawKey] = [tw.random.foldIn(base, STREAMS.data), tw.random.foldIn(base, STREAMS.draws)];
  let sums = zeroSums(names);
  let guard = freshGuard(start, names);
  let saved = start;
  let reported = -1; // the first non-finite step already reported (skip mode)

  /** Reads the guard (at log and save points only, where the loop reads the device anyway); stop mode throws. */
  const checkGuard = async () => {
    const first = await guard.first.item();
    if (first < 0 || first === reported) return;
    const which = Array.from(await guard.which.data());
    const what = checked.filter((_, k) => which[k]).map((n) => (n === 'gradients' || n === 'loss' ? n : `loss term ${n}`)).join(', ');
    if (onNan === 'skip') {
      reported = first;
      log(`step ${first + 1}: non-finite ${what}; its update was skipped (${await guard.skipped.item()} steps skipped so far; --on-nan skip)`);
      return;
    }
    const kept = checkpointDir ? `the last finite checkpoint is step ${saved} (${checkpointDir})` : 'no checkpoint was saved before it';
    throw new NonFiniteError(`step ${first + 1}: non-finite ${what}; training stopped and ${kept}. Lower --lr, or pass --on-nan skip to leave such steps out`);
  };
  const save = async (at: number) => {
    await checkGuard();
    const parts = isLora(run) ? loraCheckpoint(run, state, frozen) : { params: state.params, ema: state.ema, optState: state.opt };
    const files = await checkpointFiles({ ...parts, step: at }, run);
    files.set(HISTORY, new TextEncoder().encode(`${JSON.stringify(history, null, 2)}\n`));
    try {
      checkpointDir = await saveCheckpointSet(paths.checkpoints, at, files, { keep: o.keepCheckpoints, at: o.saveHook });
    } catch (e) {
      if (e instanceof CheckpointWriteError) e.message += `; once that is fixed, continue with: twinflow train --out ${o.out} --resume`;
      throw e;
    }
    saved = at;
  };

  let interrupted: NodeJS.Signals | null = null;
  let saving = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!interrupted) log(`${signal}: finishing the step, saving a checkpoint and exiting`);
    else log(`${signal} again: ${saving ? 'the checkpoint is being saved' : 'about to save'}; waiting for it to finish so that the checkpoint, history and loss.png stay whole (kill -9 abandons it; the previous checkpoint stays intact)`);
    interrupted ??= signal;
  };
  const signals = ['SIGINT', 'SIGTERM'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  const bar = o.progress === 'bar'
    ? new cliProgress.SingleBar({ format: 'train {bar} {value}/{total} | {speed} steps/s | {terms}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(run.steps, start, { speed: '-', terms: 'compiling…' });

  let i = start;
  let lastLog = { step: start, time: performance.now() };
  let firstDone = 0; // when the first (compiling) step of this session finished
  const logPoint = async () => {
    const point = await readSums(sums, i, lastLog);
    [sums, lastLog] = [zeroSums(names), { step: i, time: performance.now() }];
    await checkGuard();
    if (point) history.push(point);
    const terms = point ? Object.entries({ loss: point.loss, ...point.terms }).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join(' ') : 'every update skipped';
    const speed = point?.stepsPerSec.toFixed(1) ?? '-';
    if (bar) bar.update(i, { speed, terms });
    else log(`step ${i}/${run.steps} | ${speed} steps/s | ${terms}`);
  };
  let loggedAt = start;
  try {
    try {
      while (i < run.steps && !interrupted && !(o.stopAt !== undefined && performance.now() > o.stopAt)) {
        ({ state, sums, guard } = step(state, sums, guard, prob.batch(dataKey, i, run.batch), tw.random.foldIn(drawKey, i)));
        i++;
        if (i === start + 1) {
          await sums.loss.data(); // wait for the device: the first step's time is compile time
          firstDone = performance.now();
          lastLog = { step: i, time: firstDone };
        }
        if (i % o.logEvery === 0 || i === run.steps) {
          await logPoint();
          loggedAt = i;
        } else bar?.increment();
        if (i % o.checkpointEvery === 0 || i === run.steps) {
          saving = true;
          await save(i);
          saving = false;
        }
        await new Promise((r) => setImmediate(r)); // let signals and the progress bar's timer run
      }
      if (i > loggedAt) await logPoint();
      saving = true;
      if (saved !== i) await save(i);
    } finally {
      bar?.stop();
      // a failure here (a full disk) must not hide the error that ended training
      if (history.length) await writeFile(paths.lossPng, lossCurve(history, run).png()).catch((e: Error) => log(`could not write ${paths.lossPng}: ${e.message}`));
    }
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
  }
  const sessionSteps = i - start - 1;
  const secPerStep = sessionSteps > 0 ? (performance.now() - firstDone) / 1000 / sessionSteps : NaN;
  return { step: i, interrupted, history, secPerStep, skipped: await guard.skipped.item() };
}

/** Mean loss terms over the steps applied since the previous point (null when every one was skipped), and the step rate. */
async function readSums(sums: Sums, step: number, since: { step: number; time: number }): Promise<HistoryPoint | null> {
  const n = await sums.count.item();
  if (n === 0) return null;
  const terms: Record<string, number> = {};
  for (const [k, v] of Object.entries(sums.terms)) terms[k] = (await v.item()) / n;
  const loss = (await sums.loss.item()) / n;
  const dt = (performance.now() - since.time) / 1000;
  return { step, loss, terms, stepsPerSec: step > since.step && dt > 0 ? (step - since.step) / dt : 0 };
}

/** The loss curve of a run: total loss and each term, log scale. */
export function lossCurve(history: HistoryPoint[], run: RunConfig) {
  const series: Record<string, number[]> = { loss: history.map((h) => h.loss) };
  for (const k of Object.keys(history[0]!.terms)) series[k] = history.map((h) => h.terms[k] ?? NaN);
  return lineChart(history.map((h) => h.step), series, `${run.objective} loss, ${run.data}, ${run.model}`, 'step');
}
