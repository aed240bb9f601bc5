// `twinflow compile`: compiles an MMDiT backbone's forward, or a TwinFlow LoRA training step on it, for CUDA or
// WebGPU on this machine, no GPU needed. The weights are abstract values (shapes only), so even the 20B config
// costs no memory for them. Writes every unique kernel (.cu, with .ptx when NVRTC loads, or .wgsl), plan.json
// and summary.md, and prints the summary.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import * as tw from '../../index.ts';
import { mmditConfigs, type MmditConfigName } from '../../models/backbones/configs.ts';
import { type MmditConfig, mmdit, mmditSpec } from '../../models/backbones/mmdit.ts';
import { checkLoraRank } from '../../models/nn/lora.ts';
import { abstractParams, countParams, partitionTrainable, withFrozen } from '../../models/nn/params.ts';
import { twinflow } from '../../models/twinflow/config.ts';
import { termNames, twinflowObjective } from '../../models/objectives/twinflow.ts';
import { freshGuard, optimizerFor, trainStep, zeroSums } from '../../models/twinflow/train-step.ts';
import { UsageError } from './runs.ts';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer.');
  return n;
};

export interface CompileRequest {
  model: MmditConfigName;
  target: 'cuda' | 'wgsl';
  /** Image tokens: a square grid of patches. */
  tokens?: number;
  text: number;
  dtype: 'bf16' | 'f32';
  /** forward: the backbone alone; train-lora: a TwinFlow step training rank-`rank` adapters on the attention and MLP linears. */
  mode?: 'forward' | 'train-lora';
  /** train-lora: checkpoint each block (recompute its internals in the backward). */
  remat?: boolean;
  /** train-lora: the adapters' rank (default 64). */
  rank?: number;
  layers?: number;
  arch?: string;
  ptx: boolean;
  out: string;
}

export interface CompileReport {
  parameters: number;
  /** train-lora: adapter parameters. */
  adapters?: number;
  /** train-lora: bytes of the adapters, their EMA and Adam's moments (f32), which stay on the device between steps. */
  trainStateBytes?: number;
  compiled: tw.Compiled;
  summary: string;
}

const fmtBytes = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const fmtCount = (n: number) => (n >= 1e12 ? `${(n / 1e12).toFixed(2)} T` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`);

/** Compiles the model's forward and writes the kernels, plan.json and summary.md to `req.out`. */
export async function compileModel(req: CompileRequest): Promise<CompileReport> {
  const base = mmditConfigs[req.model];
  const cfg = { ...base, layers: req.layers ?? base.layers };
  const tokens = req.tokens ?? (base.size / base.patch) ** 2;
  const side = Math.round(Math.sqrt(tokens));
  if (side * side !== tokens) throw new UsageError(`--tokens ${tokens}: image tokens must fill a square grid of ${cfg.patch}×${cfg.patch} patches (e.g. ${Math.max(1, side) ** 2} or ${(side + 1) ** 2})`);
  if (req.target === 'wgsl' && req.dtype === 'bf16') throw new UsageError('--target wgsl: WGSL has no bf16; use --dtype f32 (or --target cuda)');
  const size = side * cfg.patch;
  const d = req.dtype;
  const mode = req.mode ?? 'forward';
  if (mode === 'forward' && req.remat) throw new UsageError('--remat applies to --mode train-lora (a forward keeps nothing for a backward)');
  const parameters = countParams(mmditSpec(cfg));
  const x = tw.abstract([1, cfg.channels, size, size], d), t = tw.abstract([1], d);
  const cond = { tokens: tw.abstract([1, req.text, cfg.textDim], d), mask: tw.abstract([1, req.text], 'bool') };
  const program = mode === 'forward' ? { f: mmdit(cfg), args: [abstractParams(mmditSpec(cfg), d), x, t, t, cond], donate: [] } : loraStep(cfg, req, size);
  let compiled: tw.Compiled;
  try {
    compiled = tw.compile(program.f as (...a: never[]) => unknown, program.args, {
      target: req.target === 'wgsl' ? 'webgpu' : 'cuda', ...(req.arch ? { arch: req.arch } : {}), ptx: req.ptx, weights: [0], donate: program.donate,
    });
  } catch (e) {
    if (e instanceof tw.TwinflowError) throw new UsageError(e.detail.split('\n')[0]!);
    throw e;
  }
  const s = compiled.summary;
  const phases = Object.entries(s.seconds).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ');
  const lora = 'adapters' in program ? program : undefined;
  const total = s.weightBytes + (lora?.trainStateBytes ?? 0) + s.peakActivationBytes;
  const what = lora ? `TwinFlow LoRA step (rank ${lora.rank}${req.remat ? ', remat' : ''})` : 'forward';
  const lines = [
    `# ${req.model} ${what}, ${req.target}${s.arch ? ` (sm_${s.arch})` : ''}, ${d}, ${cfg.layers} blocks, ${tokens} image + ${req.text} text tokens`,
    '',
    '| | |',
    '|---|---|',
    `| parameters | ${fmtCount(parameters)} (${parameters}) |`,
    `| kernels per run | ${s.kernels} |`,
    `| unique kernels | ${s.uniqueKernels} |`,
    `| flops per run | ${fmtCount(s.flops)} |`,
    `| bytes moved per run | ${fmtBytes(s.bytes)} |`,
    `| weight bytes | ${fmtBytes(s.weightBytes)} (${s.weightBytes}) |`,
    ...(lora ? [
      `| adapter parameters | ${fmtCount(lora.adapters)} (${(100 * lora.adapters / parameters).toFixed(2)}% of the model) |`,
      `| adapter + EMA + optimizer bytes (f32) | ${fmtBytes(lora.trainStateBytes)} (${lora.trainStateBytes}) |`,
    ] : []),
    `| peak activation bytes | ${fmtBytes(s.peakActivationBytes)} (${s.peakActivationBytes}) |`,
    ...(lora ? [`| total on the device | ${fmtBytes(total)} (${(total / 1e9).toFixed(1)} GB): ${[80, 141].map((gb) => `${total <= gb * 1e9 ? 'fits' : 'does not fit'} ${gb} GB`).join(', ')} |`] : []),
    `| time per phase | ${phases} |`,
    ...(s.note ? ['', s.note] : []),
  ];
  const summary = lines.join('\n');
  const kernelDir = path.join(req.out, 'kernels');
  await mkdir(kernelDir, { recursive: true });
  for (const k of compiled.kernels) {
    await writeFile(path.join(kernelDir, k.file), k.source);
    if (k.ptx !== undefined) await writeFile(path.join(kernelDir, k.file.replace(/\.cu$/, '.ptx')), k.ptx);
  }
  const plan = {
    model: req.model, target: req.target, dtype: d, layers: cfg.layers, imageTokens: tokens, textTokens: req.text, parameters,
    summary: s,
    steps: compiled.explanation.kernels.map((k, i) => ({ ...k, file: compiled.kernels[compiled.stepKernels[i]!]!.file })),
    buffers: compiled.plan.buffers.length,
  };
  await writeFile(path.join(req.out, 'plan.json'), `${JSON.stringify(plan, null, 1)}\n`);
  await writeFile(path.join(req.out, 'summary.md'), `${summary}\n`);
  return { parameters, compiled, summary, ...(lora ? { adapters: lora.adapters, trainStateBytes: lora.trainStateBytes } : {}) };
}

/**
 * The TwinFlow training step (models/twinflow/train-step.ts) of rank-r LoRA adapters on the backbone's
 * attention and MLP linears, over abstract values: base weights frozen in the request's dtype; adapters, their
 * EMA and Adam's moments in f32 (cast to the dtype inside the network); loss and draws in f32. One row, in
 * TwinFlow's e2e slice with rectification (the network with gradient and twice without): the costliest single
 * row. The state is donated, as the CLI's step donates it.
 */
export function loraStep(base: MmditConfig, req: Pick<CompileRequest, 'rank' | 'dtype' | 'remat' | 'text'>, size: number) {
  const rank = req.rank ?? 64;
  try {
    checkLoraRank(rank, base.dim);
  } catch (e) {
    throw new UsageError(`--rank: ${(e as Error).message}`);
  }
  const d = req.dtype;
  const cfg: MmditConfig = { ...base, lora: { rank, alpha: rank }, remat: req.remat ?? false };
  const spec = mmditSpec(cfg);
  const { trainable, frozen } = partitionTrainable(abstractParams(spec, d), spec);
  const f32 = (tree: unknown) => tw.treeMap((l) => tw.abstract(l.shape, 'f32'), tree);
  const body = mmdit(cfg);
  type T = tw.Tensor<'f32'>;
  type C = { tokens: T; mask: tw.Tensor<'bool'> };
  const objective = { ...twinflow, slices: { e2e: 1, mul: 0, any: 0, adv: 0 } };
  const names = termNames(objective, 1);
  // the frozen weights are an argument (so they are inputs of the program, not constants)
  const f = (weights: unknown, ...a: Parameters<ReturnType<typeof trainStep>>) => {
    const net = withFrozen((p, x: T, t: T, r: T, c: C) => body(p, x.cast(d) as T, t.cast(d) as T, r.cast(d) as T, c).cast('f32') as T, weights);
    return trainStep((p, ...rest: [T, T, T, C]) => net(tw.treeMap((l) => l.cast(d), p), ...rest), optimizerFor({ lr: 1e-4 }), twinflowObjective(objective), names)(...a);
  };
  const adapters = tw.treeFlatten(trainable)[0].reduce((n, l) => n + l.size, 0);
  const state = { params: f32(trainable), ema: f32(trainable), opt: { step: tw.abstract([], 'f32'), m: f32(trainable), v: f32(trainable) } };
  const c = { tokens: tw.abstract([1, req.text, cfg.textDim], d), mask: tw.abstract([1, req.text], 'bool') };
  const batch = { x: tw.abstract([1, cfg.channels, size, size], 'f32'), cond: c, nullCond: c };
  return {
    f,
    args: [frozen, state, zeroSums(names), freshGuard(0, names), batch, tw.random.key(0)],
    donate: [1, 2, 3],
    rank,
    adapters,
    trainStateBytes: 4 * (4 * adapters + 1),
  };
}

/** Registers `compile` on the CLI. */
export function addCompileCommand(cli: Command): void {
  cli.command('compile').description('compile an MMDiT backbone for CUDA or WebGPU without a GPU: kernels, plan.json, summary')
    .addOption(new Option('--model <name>', 'MMDiT config').choices(Object.keys(mmditConfigs)).default('tiny'))
    .addOption(new Option('--target <name>', 'kernel language').choices(['cuda', 'wgsl']).default('cuda'))
    .option('--tokens <n>', "image tokens, a square grid of patches (default: the config's image size)", positiveInt)
    .option('--text <n>', 'text tokens', positiveInt, 8)
    .addOption(new Option('--dtype <name>', 'weights and activations').choices(['bf16', 'f32']).default('f32'))
    .addOption(new Option('--mode <name>', 'what to compile').choices(['forward', 'train-lora']).default('forward'))
    .option('--remat', 'train-lora: recompute each block\'s internals in the backward (tw.checkpoint)')
    .option('--rank <n>', 'train-lora: LoRA rank', positiveInt, 64)
    .option('--layers <n>', "blocks (default: the config's)", positiveInt)
    .option('--arch <sm>', 'cuda: compute capability, e.g. sm_90 (default: $TWINFLOW_CUDA_ARCH, else sm_90)')
    .option('--no-ptx', 'cuda: skip NVRTC (sources only)')
    .requiredOption('--out <dir>', 'output directory')
    .action(async (o) => {
      const r = await compileModel({
        model: o.model, target: o.target, tokens: o.tokens, text: o.text, dtype: o.dtype, mode: o.mode, remat: o.remat ?? false, rank: o.rank, layers: o.layers, arch: o.arch, ptx: o.ptx, out: o.out,
      });
      console.log(`${r.summary}\n\nwritten: ${o.out}/kernels (${r.compiled.kernels.length} files${r.compiled.kernels.some((k) => k.ptx) ? ' + PTX' : ''}), ${o.out}/plan.json, ${o.out}/summary.md`);
    });
}
