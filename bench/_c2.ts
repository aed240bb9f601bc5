import * as tw from '../index.ts';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams } from '../models/nn/params.ts';
const name = (process.argv[2] ?? 'tiny') as keyof typeof mmditConfigs;
let prev: Set<string> | undefined;
for (const layers of process.argv.slice(3).map(Number)) {
  const cfg = { ...mmditConfigs[name], layers };
  const p = abstractParams(mmditSpec(cfg));
  const x = tw.abstract([1, cfg.channels, cfg.size, cfg.size]), t = tw.abstract([1]);
  const cond = { tokens: tw.abstract([1, 8, cfg.textDim]), mask: tw.abstract([1, 8], 'bool') };
  const c = tw.compile(mmdit(cfg), [p, x, t, t, cond], { target: 'cuda', ptx: false, weights: [0] });
  const files = new Set(c.kernels.map((k) => k.file));
  console.log(layers, c.summary.kernels, c.summary.uniqueKernels, prev ? [...files].filter((f) => !prev!.has(f)).map((f) => c.kernels.find((k) => k.file === f)!.name).join(' ') : '');
  prev = files;
}
