import { it } from 'vitest';
import * as tw from 'twinflow';
const f64 = (...v: number[]) => tw.tensor(Float64Array.from(v));
it('scratch', async () => {
  let leaked: tw.Tensor | undefined;
  const j = tw.jit((x: tw.Tensor<'f64'>) => { leaked = tw.mul(x, 2); return tw.add(x, 1); });
  console.log(await j(f64(1, 2)).data());
  try { console.log(String(tw.add(leaked as any, 1))); } catch (e) { console.log('leak |', (e as Error).constructor.name, '|', (e as Error).message); }
  const j2 = tw.jit((x: tw.Tensor<'f64'>) => tw.add(x, 1));
  try { tw.jit((x: tw.Tensor<'f64'>) => { void x.data(); return x; })(f64(1)); } catch (e) { console.log('data |', (e as Error).constructor.name, '|', (e as Error).message); }
  // async throws inside async function => rejected promise, not sync throw
  const jc = tw.jit(() => tw.tensor(Float64Array.of(3, 4)));
  console.log(await jc().data(), jc.stats);
  const ji = tw.jit((x: tw.Tensor<'f64'>) => x);
  const x = f64(5); const y = ji(x); console.log(y === x, await y.data());
  const jp = tw.jit((p: { a: tw.Tensor<'f64'>; s: number; n: string }) => ({ out: tw.mul(p.a, p.s), n: p.n, k: 7 }));
  console.log(jp({ a: f64(1, 2), s: 3, n: 'hi' }));
  console.log(tw.printGraph((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.sum(tw.exp(tw.matmul(a, b)), 1), tw.zeros([2, 3]), tw.zeros([3, 4])));
  const g = tw.traceGraph((a: tw.Tensor<'f64'>) => tw.add(tw.exp(tw.mul(a, 1)), tw.exp(tw.mul(a, 1))), [f64(1, 2)]).graph;
  console.log(tw.formatGraph(g)); console.log(tw.formatGraph(tw.simplify(g)));
  const g2 = tw.traceGraph(() => tw.add(tw.exp(tw.tensor(2)), 1), []).graph;
  console.log(tw.formatGraph(g2)); console.log(tw.formatGraph(tw.simplify(g2)));
  const g3 = tw.traceGraph(() => tw.add(tw.broadcastTo(tw.tensor(2), [100]), 1), []).graph;
  console.log(tw.formatGraph(g3)); console.log(tw.formatGraph(tw.simplify(g3)));
});
