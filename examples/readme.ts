import * as tw from 'twinflow';

type Params = { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> };
// Mean squared error of a one-layer tanh model: an ordinary, pure TypeScript function.
const loss = (p: Params, x: tw.Tensor<'f32'>, y: tw.Tensor<'f32'>) => x.matmul(p.w).add(p.b).tanh().sub(y).square().mean();

const [kx, kw] = tw.random.split(tw.random.key(0));
const x = tw.random.normal(kx, [64, 3]);
const y = tw.sin(x.sum(1, true));
let params: Params = { w: tw.random.normal(kw, [3, 1]), b: tw.zeros([1]) };

// One gradient-descent step, traced and compiled once, then served from the cache.
const step = tw.jit((p: Params) => {
  const [value, grads] = tw.valueAndGrad(loss)(p, x, y);
  return { value, params: tw.treeMap((t, g) => t.sub(g.mul(0.5)), p, grads) };
});
for (let i = 0; i < 200; i++) ({ params } = step(params));
console.log('loss after 200 steps:', await step(params).value.item(), step.stats);
tw.printGraph(tw.grad(loss), params, x, y); // the gradient program, one line per primitive
