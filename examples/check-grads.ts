import fc from 'fast-check';
import * as tw from 'twinflow';
import { arb, checkGrads } from 'twinflow/testing';

type T = tw.Tensor<'f64'>;
// A flow-matching objective for a linear velocity field v(z, t) = z·W + t·c, on one batch.
const objective = (p: { w: T; c: T }, x0: T, x1: T, t: T) => {
  const zt = x0.mul(tw.sub(1, t)).add(x1.mul(t));
  return zt.matmul(p.w).add(t.mul(p.c)).sub(x1.sub(x0)).square().mean();
};

// For random parameters, batches and times: the VJP and JVP against central differences in float64,
// the VJP against the JVP, and the same for the gradient (order 2). A failure shrinks the input and
// throws a report naming the output, the input leaf, the worst element and the seed to replay it.
await fc.assert(
  fc.asyncProperty(
    arb.pytree({ w: arb.tensor({ shape: [2, 2] }), c: arb.tensor({ shape: [2] }) }),
    arb.tensor({ shape: [4, 2] }), arb.tensor({ shape: [4, 2] }), arb.tensor({ shape: [4, 1], min: 0, max: 1 }), fc.integer(),
    (p, x0, x1, t, seed) => checkGrads(objective, [p, x0, x1, t], { order: 2, seed }),
  ),
  { numRuns: 10 },
);
console.log('objective gradients: ok');
