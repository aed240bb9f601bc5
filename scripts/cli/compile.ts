// `twinflow compile`: compiles an MMDiT backbone for CUDA or WebGPU on this machine, no GPU needed. The weights
// are abstract values (shapes only), so even the 20B config costs no memory for them. Writes every unique
// kernel (.cu, with .ptx when NVRTC loads, or .wgsl), plan.json and summary.md, and prints the summary.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import * as tw from '../../index.ts';
import { mmditConfigs, type MmditConfigName } from '../../models/backbones/configs.ts';
import { mmdit, mmditSpec } from '../../models/backbones/mmdit.ts';
import { abstractParams, countParams } from '../../models/nn/params.ts';
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
  layers?: number;
  arch?: string;
  ptx: boolean;
  out: string;
}

export interface CompileReport {
  parameters: number;
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
  const spec = mmditSpec(cfg);
  const d = req.dtype;
  const params = abstractParams(spec, d);
  const x = tw.abstract([1, cfg.channels, size, size], d), t = tw.abstract([1], d);
  const cond = { tokens: tw.abstract([1, req.text, cfg.textDim], d), mask: tw.abstract([1, req.text], 'bool') };
  let compiled: tw.Compiled;
  try {
    compiled = tw.compile(mmdit(cfg), [params, x, t, t, cond], {
      target: req.target === 'wgsl' ? 'webgpu' : 'cuda', ...(req.arch ? { arch: req.arch } : {}), ptx: req.ptx, weights: [0],
    });
  } catch (e) {
    if (e instanceof tw.TwinflowError) throw new UsageError(e.detail.split('\n')[0]!);
    throw e;
  }
  const parameters = countParams(spec);
  const s = compiled.summary;
  const phases = Object.entries(s.seconds).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ');
  const lines = [
    `# ${req.model} forward, ${req.target}${s.arch ? ` (sm_${s.arch})` : ''}, ${d}, ${cfg.layers} blocks, ${tokens} image + ${req.text} text tokens`,
    '',
    '| | |',
    '|---|---|',
    `| parameters | ${fmtCount(parameters)} (${parameters}) |`,
    `| kernels per run | ${s.kernels} |`,
    `| unique kernels | ${s.uniqueKernels} |`,
    `| flops per run | ${fmtCount(s.flops)} |`,
    `| bytes moved per run | ${fmtBytes(s.bytes)} |`,
    `| weight bytes | ${fmtBytes(s.weightBytes)} |`,
    `| peak activation bytes | ${fmtBytes(s.peakActivationBytes)} |`,
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
  return { parameters, compiled, summary };
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
    .option('--remat', 'recompute block internals in the backward')
    .option('--layers <n>', "blocks (default: the config's)", positiveInt)
    .option('--arch <sm>', 'cuda: compute capability, e.g. sm_90 (default: $TWINFLOW_CUDA_ARCH, else sm_90)')
    .option('--no-ptx', 'cuda: skip NVRTC (sources only)')
    .requiredOption('--out <dir>', 'output directory')
    .action(async (o) => {
      if (o.mode !== 'forward') throw new UsageError(`--mode ${o.mode} is not yet supported (only forward)`);
      if (o.remat) throw new UsageError('--remat is not yet supported (it applies to training modes)');
      const r = await compileModel({ model: o.model, target: o.target, tokens: o.tokens, text: o.text, dtype: o.dtype, layers: o.layers, arch: o.arch, ptx: o.ptx, out: o.out });
      console.log(`${r.summary}\n\nwritten: ${o.out}/kernels (${r.compiled.kernels.length} files${r.compiled.kernels.some((k) => k.ptx) ? ' + PTX' : ''}), ${o.out}/plan.json, ${o.out}/summary.md`);
    });
}
