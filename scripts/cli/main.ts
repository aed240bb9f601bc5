// The `twinflow` command line: train, sample, eval (commander). User errors — bad flags, unknown data sets,
// a checkpoint from another model, an unavailable backend — print one line and exit with code 2.

import { statSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as tw from '../../index.ts';
import { CheckpointError } from '../../models/checkpoint/safetensors.ts';
import { addCompileCommand } from './compile.ts';
import { evaluate, writeMetrics } from './eval.ts';
import { OBJECTIVES } from '../../models/registry.ts';
import { objectiveFor, problem } from './problem.ts';
import { isLora, loraModel } from './lora.ts';
import { DATA_SETS, MODELS, readRunConfig, resolveCheckpoint, type RunConfig, runPaths, UsageError } from './runs.ts';
import { SAMPLE_FORMATS, samplePlot } from './sample.ts';
import { train } from './train.ts';
import { PRECISIONS } from '../../models/twinflow/precision.ts';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer.');
  return n;
};
const nonNegativeInt = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
};
const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a positive number.');
  return n;
};
/** λ as a number or a fraction ("1/3"). */
const unitFraction = (v: string) => {
  const parts = v.split('/');
  const n = parts.length <= 2 && parts.every((p) => p.trim() !== '') ? Number(parts[0]) / Number(parts[1] ?? 1) : NaN;
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number in [0, 1], e.g. 0.5 or 1/3.');
  return n;
};
const nfeList = (v: string) => v.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected positive integers separated by commas, e.g. 1,2,4.');
  return n;
});

const backendOption = () => new Option('--backend <name>', 'cuda, webgpu or cpu; auto tries them in that order').choices(['auto', 'cpu', 'webgpu', 'cuda']).default('auto');

/** Selects the backend and says which one and why (stderr). */
async function useBackend(request: string): Promise<void> {
  try {
    await tw.setBackend(request as tw.BackendName | 'auto');
  } catch (e) {
    throw new UsageError(`--backend ${request}: ${e instanceof tw.TwinflowError ? e.detail : (e as Error).message}`);
  }
  const c = tw.backendChoice();
  process.stderr.write(`backend: ${c.name} on ${c.device} (${c.reason})\n`);
}

/** Flags that define a run; on --resume, any given explicitly must match the checkpoint's. */
const RUN_FLAGS = ['data', 'model', 'objective', 'lambda', 'hidden', 'batch', 'lr', 'seed', 'precision', 'lora'] as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
async function runConfigFor(cmd: Command, o: any): Promise<RunConfig> {
  const given = (k: string) => cmd.getOptionValueSource(k) === 'cli';
  if (statSync(o.out, { throwIfNoEntry: false })?.isFile()) throw new UsageError(`--out ${o.out} is a file; pass a directory for the run (e.g. runs/NAME)`);
  if (o.resume) {
    if (!statSync(runPaths(o.out).config, { throwIfNoEntry: false })) throw new UsageError(`--resume: ${o.out} has no run to resume (no ${runPaths(o.out).config}); start one without --resume`);
    const saved = await readRunConfig(o.out);
    for (const k of RUN_FLAGS) {
      if (given(k) && o[k] !== (k === 'precision' ? saved.precision ?? 'f32' : saved[k])) {
        throw new UsageError(`--resume: ${o.out} holds a checkpoint of ${saved.objective} on ${saved.data} with ${saved.model}; --${k} ${o[k]} does not match its ${saved[k] ?? '(unset)'}`);
      }
    }
    return { ...saved, steps: given('steps') ? o.steps : saved.steps };
  }
  if (o.lora !== undefined && o.init === undefined) throw new UsageError('--lora trains adapters on a trained model: pass the run to start from with --init RUN');
  if (o.init !== undefined) {
    if (o.lora === undefined) throw new UsageError('--init starts LoRA fine-tuning from a run: pass the adapters\' rank with --lora RANK');
    if (!statSync(runPaths(o.init).config, { throwIfNoEntry: false })) throw new UsageError(`--init ${o.init}: no run there (no ${runPaths(o.init).config}); pass the --out of a finished twinflow train`);
    const src = await readRunConfig(o.init);
    // the model is the init run's: --data, --model and --hidden default to its values and must match them
    for (const k of ['data', 'model', 'hidden'] as const) {
      if (given(k) && o[k] !== src[k]) throw new UsageError(`--init ${o.init}: it trained ${src.model}${src.hidden ? ` (hidden ${src.hidden})` : ''} on ${src.data}; --${k} ${o[k]} does not match its ${src[k] ?? '(unset)'}`);
      o[k] = src[k];
    }
  }
  if (!o.data) throw new UsageError(`missing --data (one of ${DATA_SETS.join(', ')})`);
  if (o.lambda !== undefined && o.objective !== 'twinflow') throw new UsageError(`--lambda applies to --objective twinflow, not ${o.objective}`);
  if (o.hidden !== undefined && o.model !== 'mlp') throw new UsageError(`--hidden sets the width of --model mlp, not ${o.model}`);
  const run: RunConfig = {
    data: o.data, model: o.model, objective: o.objective,
    ...(o.objective === 'twinflow' ? { lambda: o.lambda ?? 0.5 } : {}),
    ...(o.hidden !== undefined ? { hidden: o.hidden } : {}),
    steps: o.steps, batch: o.batch ?? (o.data === 'mnist' ? 128 : 64), lr: o.lr ?? (o.data === 'mnist' ? 2e-4 : 3e-3), seed: o.seed,
    ...(o.precision === 'bf16' ? { precision: 'bf16' as const } : {}),
    ...(o.init !== undefined ? { init: o.init, lora: o.lora } : {}),
  };
  problem(run); // checks data × model
  if (isLora(run)) loraModel(run); // checks the rank against the model's width
  objectiveFor(run); // checks the batch against the objective's parts
  return run;
}

export function program(): Command {
  const cli = new Command('twinflow')
    .description('Train, sample and evaluate TwinFlow one-step generative models')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.trimEnd().split('\n')[0]! + '\n') });

  const trainCmd = cli.command('train').description('train a model; Ctrl-C saves a checkpoint and exits')
    .addOption(new Option('--data <name>', 'data set').choices(DATA_SETS))
    .addOption(new Option('--model <name>', 'backbone').choices(MODELS).default('mlp'))
    .addOption(new Option('--objective <name>', 'training objective (fm: flow matching); sample and eval use its sampler').choices(OBJECTIVES).default('twinflow'))
    .addOption(backendOption())
    .option('--steps <n>', 'total training steps', positiveInt, 4000)
    .option('--batch <n>', 'batch size (default: 64 for 2-D data, 128 for MNIST)', positiveInt)
    .option('--lr <x>', 'AdamW learning rate (default: 3e-3 for 2-D data, 2e-4 for MNIST)', positiveNumber)
    .option('--lambda <x>', "TwinFlow's balance λ: the batch share of the twin terms (default 1/2)", unitFraction)
    .option('--hidden <n>', 'MLP width (default: 64 for 2-D data, 512 for MNIST)', positiveInt)
    .option('--seed <n>', 'random seed', nonNegativeInt, 0)
    .addOption(new Option('--precision <p>', 'network compute precision; bf16 keeps f32 master weights, optimizer state and losses (cuda or cpu)').choices(PRECISIONS).default('f32'))
    .option('--init <run>', "start from this run's EMA weights, frozen, training LoRA adapters (with --lora); data and model are the run's")
    .option('--lora <rank>', 'LoRA rank of the adapters --init trains (1 … the model width)', positiveInt)
    .requiredOption('--out <dir>', 'run directory, e.g. runs/NAME')
    .option('--resume', 'continue the run in --out from its checkpoint', false)
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt, 500)
    .option('--log-every <n>', 'steps between logged loss points', positiveInt, 50)
    .option('--keep-checkpoints <k>', 'checkpoint folders to keep (the newest K)', positiveInt, 2)
    .addOption(new Option('--on-nan <what>', 'a step with non-finite loss or gradients: stop (keeping the last finite checkpoint) or skip its update').choices(['stop', 'skip']).default('stop'))
    .action(async (o) => {
      const run = await runConfigFor(trainCmd, o);
      await useBackend(o.backend);
      if (run.precision === 'bf16' && tw.backendChoice().name === 'webgpu') throw new UsageError('--precision bf16: the webgpu backend has no bf16 (WGSL has no such type); use --backend cuda, or cpu');
      const lora = isLora(run) ? ` from ${run.init} with LoRA rank ${run.lora}` : '';
      process.stderr.write(`training ${run.objective} on ${run.data} with ${run.model}${lora}: ${run.steps} steps of ${run.batch} → ${o.out}\n`);
      const r = await train({
        run, out: o.out, resume: o.resume, checkpointEvery: o.checkpointEvery, logEvery: o.logEvery, keepCheckpoints: o.keepCheckpoints, onNan: o.onNan,
        progress: process.stderr.isTTY ? 'bar' : 'lines',
      });
      const paths = runPaths(o.out);
      const rate = Number.isFinite(r.secPerStep) ? ` (${(1 / r.secPerStep).toFixed(1)} steps/s)` : '';
      const skipped = r.skipped ? `; ${r.skipped} steps with non-finite values skipped` : '';
      console.log(r.interrupted ? `interrupted at step ${r.step} (${r.interrupted}); checkpoint saved (continue with --resume)` : `trained to step ${r.step}${rate}${skipped}`);
      console.log(`checkpoints: ${paths.checkpoints}\nloss curve: ${paths.lossPng}`);
    });

  cli.command('sample').description('draw samples from a checkpoint and plot them (PNG)')
    .requiredOption('--ckpt <dir>', 'run directory, its checkpoints/ or one step folder in it')
    .option('--nfe <n>', 'network evaluations per sample', positiveInt, 1)
    .option('--prompt <text>', 'MNIST: the prompt for every digit, e.g. "a handwritten digit seven"')
    .option('--out <png>', 'output PNG (default: RUN/samples-nfeN.png)')
    .addOption(new Option('--format <f>', 'png: the plot; npy or safetensors: the raw samples too, beside it').choices(SAMPLE_FORMATS).default('png'))
    .addOption(backendOption())
    .action(async (o) => {
      if (!o.ckpt.endsWith('.safetensors')) await readRunConfig((await resolveCheckpoint(o.ckpt)).dir); // a missing run is reported before the backend starts
      await useBackend(o.backend);
      console.log(`samples: ${(await samplePlot({ ckpt: o.ckpt, nfe: o.nfe, prompt: o.prompt, out: o.out, format: o.format })).join(', ')}`);
    });

  cli.command('eval').description('metric table of a checkpoint (markdown and JSON)')
    .requiredOption('--ckpt <dir>', 'run directory, its checkpoints/ or one step folder in it')
    .option('--nfe <list>', 'comma-separated NFE counts', nfeList, [1, 2, 4])
    .option('--samples <n>', '2-D: samples per row', positiveInt, 4096)
    .addOption(backendOption())
    .action(async (o) => {
      await readRunConfig((await resolveCheckpoint(o.ckpt)).dir);
      await useBackend(o.backend);
      const result = await evaluate(o.ckpt, o.nfe, o.samples, (l) => process.stderr.write(`${l}\n`));
      const { markdown, md, json } = await writeMetrics(o.ckpt, result);
      console.log(`${markdown}\nmetrics: ${md}, ${json}`);
    });
  addCompileCommand(cli);
  return cli;
}

/** Runs the CLI on arguments (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander has printed the one line
    if (e instanceof UsageError || e instanceof CheckpointError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${e instanceof Error ? (process.env.TWINFLOW_DEBUG ? e.stack : e.message) : String(e)}\n`);
    return 1;
  }
}
