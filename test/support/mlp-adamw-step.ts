// A 2-layer MLP training step (loss, backward, AdamW) and arguments to trace it on: the fusion tests pin its
// kernel count, the kernel pins its kernels.

import * as tw from 'twinflow';
import { adamw } from '../../models/optim/adamw.ts';

type P = { w1: tw.Tensor<'f32'>; b1: tw.Tensor<'f32'>; w2: tw.Tensor<'f32'>; b2: tw.Tensor<'f32'> };

export function mlpAdamwStep(x: tw.Tensor<'f32'>) {
  const opt = adamw({ lr: 1e-3, weightDecay: 0 });
  const loss = (p: P, xb: tw.Tensor<'f32'>, yb: tw.Tensor<'f32'>) =>
    tw.mean(tw.square(tw.sub(tw.add(tw.matmul(tw.gelu(tw.add(tw.matmul(xb, p.w1), p.b1)), p.w2), p.b2), yb)));
  const step = (p: P, s: ReturnType<typeof opt.init>, xb: tw.Tensor<'f32'>, yb: tw.Tensor<'f32'>) => {
    const [l, g] = tw.valueAndGrad(loss)(p, xb, yb);
    return { l, ...opt.update(g, s, p) };
  };
  const p: P = { w1: tw.zeros([32, 64]), b1: tw.zeros([64]), w2: tw.zeros([64, 2]), b2: tw.zeros([2]) };
  return { step, args: [p, opt.init(p), x, tw.zeros([16, 2])] as const };
}
