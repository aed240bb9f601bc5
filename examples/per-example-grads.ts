// Per-example gradient norms of a small MLP's loss with vmap(grad(...)): one batched program (one jit
// compilation) instead of a loop over examples, checked here against that loop.
import * as tw from 'twinflow';

type T = tw.Tensor<'f32'>;
type Params = { w1: T; b1: T; w2: T; b2: T };

const [k1, k2, k3, k4] = tw.random.split(tw.random.key(0), 4);
const params: Params = {
  w1: tw.random.normal(k1!, [2, 32]).mul(0.5), b1: tw.zeros([32]),
  w2: tw.random.normal(k2!, [32, 1]).mul(0.2), b2: tw.zeros([1]),
};
const xs = tw.random.normal(k3!, [16, 2]);
const ys = tw.random.normal(k4!, [16, 1]);

// The loss of ONE example: x is [2], y is [1].
const loss = (p: Params, x: T, y: T) => {
  const h = tw.tanh(x.matmul(p.w1).add(p.b1));
  return h.matmul(p.w2).add(p.b2).sub(y).square().sum();
};

// ‖∇_params loss‖ for every example at once: params are shared (inAxes null), x and y batched along axis 0.
const gradNorm = (p: Params, x: T, y: T) => {
  const g: Params = tw.grad(loss)(p, x, y);
  return tw.sqrt([g.w1, g.b1, g.w2, g.b2].map((l) => l.square().sum()).reduce((a, b) => a.add(b)));
};
const perExampleNorms = tw.jit(tw.vmap(gradNorm, { inAxes: [null, 0, 0] }));
const norms: Float32Array = await perExampleNorms(params, xs, ys).data();

// The same, one example at a time.
const loop = await Promise.all(Array.from({ length: 16 }, (_, i) => gradNorm(params, xs.slice(i), ys.slice(i)).item()));
const worst = Math.max(...loop.map((v, i) => Math.abs(v - norms[i]!) / Math.max(1, Math.abs(v))));

console.log(`per-example gradient norms: ${Array.from(norms, (v) => v.toFixed(4)).join(' ')}`);
console.log(`largest relative difference from the loop over examples: ${worst.toExponential(2)}`);
if (!(worst < 1e-5)) throw new Error('vmap(grad) disagrees with the loop over examples');
