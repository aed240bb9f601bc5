// Compile-time benchmark: the full qwen-image-20b backbone (60 blocks, 4,096 image + 512 text tokens, bf16,
// abstract weights) through tw.compile for CUDA, phase by phase: the forward (trace → render, target < 5 s on a
// 2-core machine), the training step's backward (the parameters' gradient of a squared loss, target < 20 s),
// the TwinFlow LoRA training step as `twinflow compile --mode train-lora` builds it (target < 20 s), and the
// forward cold, NVRTC included, with an empty PTX cache (target < 60 s). Prints a table.
//
//   npm run bench:compile [-- --layers N] [--only forward,backward,lora,cold]
//   node --import tsx --cpu-prof --cpu-prof-dir=DIR bench/compile.ts --only forward   (to profile a phase)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tw from '../index.ts';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { mmdit, mmditSpec, type MmditParams } from '../models/backbones/mmdit.ts';
import { abstractParams } from '../models/nn/params.ts';
import { loraStep } from '../scripts/cli/compile.ts';
import { opt } from './options.ts';

const base = mmditConfigs['qwen-image-20b'];
const cfg = { ...base, layers: Number(opt('layers') ?? base.layers) };
const only = opt('only')?.split(',') ?? ['forward', 'backward', 'lora', 'cold'];

const d = 'bf16';
const params = abstractParams(mmditSpec(cfg), d) as MmditParams;
const x = tw.abstract([1, cfg.channels, cfg.size, cfg.size], d), t = tw.abstract([1], d);
const cond = { tokens: tw.abstract([1, 512, cfg.textDim], d), mask: tw.abstract([1, 512], 'bool') };
// the network is typed for f32; its dtype flows from the (bf16) inputs
const net = mmdit(cfg) as unknown as (...a: unknown[]) => tw.Tensor<'bf16'>;
const backward = (p: MmditParams, x: tw.Tensor<'bf16'>, t: tw.Tensor<'bf16'>, c: typeof cond) =>
  tw.grad((q: MmditParams) => tw.mean(tw.square(net(q, x, t, t, c))))(p);

interface Row { name: string; target: number; c: tw.Compiled; wall: number }
const rows: Row[] = [];
const run = (name: string, target: number, f: () => tw.Compiled) => {
  const t0 = performance.now();
  const c = f();
  rows.push({ name, target, c, wall: (performance.now() - t0) / 1000 });
  console.error(`${name}: ${rows[rows.length - 1]!.wall.toFixed(1)} s`);
};

if (only.includes('forward')) run(`forward, ${cfg.layers} blocks`, 5, () => tw.compile(net, [params, x, t, t, cond], { target: 'cuda', ptx: false }));
if (only.includes('backward')) run(`backward, ${cfg.layers} blocks`, 20, () => tw.compile(backward, [params, x, t, cond], { target: 'cuda', ptx: false }));
if (only.includes('lora')) {
  const step = loraStep(cfg, { dtype: d, text: 512 }, cfg.size);
  run(`LoRA training step (rank ${step.rank}), ${cfg.layers} blocks`, 20, () => tw.compile(step.f as (...a: never[]) => unknown, step.args, { target: 'cuda', ptx: false, weights: [0], donate: step.donate }));
}
if (only.includes('cold')) {
  const cache = mkdtempSync(path.join(tmpdir(), 'twinflow-ptx-'));
  const saved = process.env.TWINFLOW_PTX_CACHE;
  process.env.TWINFLOW_PTX_CACHE = cache; // empty: every unique kernel goes through NVRTC
  try {
    run(`forward cold + NVRTC, ${cfg.layers} blocks`, 60, () => tw.compile(net, [params, x, t, t, cond], { target: 'cuda' }));
  } finally {
    if (saved === undefined) delete process.env.TWINFLOW_PTX_CACHE;
    else process.env.TWINFLOW_PTX_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  }
}

const s = (v: number) => v.toFixed(2);
console.log('| case | trace s | simplify s | plan s | render s | NVRTC s | total s | target s | kernels (unique) | bytes moved | peak activations |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const { name, target, c, wall } of rows) {
  const p = c.summary.seconds;
  const note = c.summary.note ? ` (${c.summary.note.split(';')[0]})` : '';
  console.log(`| ${name}${note} | ${s(p.trace)} | ${s(p.simplify)} | ${s(p.plan)} | ${s(p.render)} | ${s(p.nvrtc)} | ${s(wall)} | ${wall <= target ? '' : 'over '}${target} | ${c.summary.kernels} (${c.summary.uniqueKernels}) | ${(c.summary.bytes / 2 ** 40).toFixed(3)} TiB | ${(c.summary.peakActivationBytes / 2 ** 30).toFixed(2)} GiB |`);
}
