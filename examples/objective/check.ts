import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb, checkGrads } from 'twinflow/testing';
import { sample2d } from '../../models/data/toy2d.ts';
import { modelFor } from '../../models/registry.ts';
import { freshGuard, initialState, trainStep, zeroSums } from '../../models/twinflow/train-step.ts';
import { flowMatching, flowMatchingLoss } from './flow-matching.ts';

// 1. Gradients, in float64 on the cpu oracle: a small tanh network F(x, t, r), random sizes and values.
type T = tw.Tensor<'f32'>; // f64 values behind the objective's f32 types
type P = { w: T; a: T; v: T };
const net = (p: P, x: T, t: T, r: T) => tw.tanh(x.matmul(p.w).add(t.reshape([-1, 1]).mul(p.a)).add(r.reshape([-1, 1]))).matmul(p.v);
const draws = fc.record({ B: fc.integer({ min: 1, max: 4 }), D: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 1, max: 4 }) })
  .chain(({ B, D, H }) => fc.tuple(
    arb.pytree({ w: arb.tensor({ shape: [D, H] }), a: arb.tensor({ shape: [H] }), v: arb.tensor({ shape: [H, D] }) }),
    arb.tensor({ shape: [B, D] }), arb.tensor({ shape: [B, D] }), arb.tensor({ shape: [B], min: 0, max: 1 }),
  ));
await fc.assert(fc.asyncProperty(draws, fc.integer(), async ([p, x, z, t], seed) => {
  const f = (q: P, xs: T) => flowMatchingLoss(net, q, { x: xs, cond: null, nullCond: null }, z as unknown as T, t as unknown as T).loss;
  await checkGrads(f, [p as unknown as P, x as unknown as T], { order: 1, seed });
}), { numRuns: 6 });
console.log('gradients: ok');

// 2. Training with the CLI's jitted step (AdamW, gradient clipping, EMA, non-finite guard) on the checkerboard.
const run = { data: '2d:checkerboard', model: 'mlp', objective: 'fm', batch: 64, lr: 3e-3, seed: 0 };
const model = modelFor(run);
const { opt, params, ema, optState } = initialState(model.spec, run);
const names = flowMatching.terms(run.batch);
const step = trainStep(model.net, opt, flowMatching, names);
let [state, sums, guard] = [{ params, ema, opt: optState }, zeroSums(names), freshGuard(0, names)];
for (let i = 0; i < 120; i++) {
  const batch = { x: sample2d('checkerboard', tw.random.key(i), run.batch), cond: null, nullCond: null };
  ({ state, sums, guard } = step(state, sums, guard, batch, tw.random.key(1e6 + i)));
  if (i === 19) {
    console.log('mean loss, steps 1-20:', (await sums.loss.item()) / 20);
    sums = zeroSums(names);
  }
}
console.log('mean loss, steps 21-120:', (await sums.loss.item()) / 100);
