// Donation: a jitted step may reuse the memory of the arguments it replaces (parameters, optimizer state).

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { webgpuInstance } from '../backends/webgpu/index.ts';
import { unavailable } from './support/backend-probe.ts';

type P = { w: tw.Tensor<'f32'>; b: tw.Tensor<'f32'> };

function setup() {
  const k = tw.random.split(tw.random.key(3), 3);
  const x = tw.random.normal(k[0]!, [16, 3]);
  const y = tw.sin(tw.sum(x, 1, true));
  const loss = (p: P) => tw.mean(tw.square(tw.sub(tw.tanh(tw.add(tw.matmul(x, p.w), p.b)), y)));
  const step = (p: P) => {
    const [l, g] = tw.valueAndGrad(loss)(p);
    return { l, p: tw.treeMap((a, d) => a.sub(d.mul(0.3)), p, g) };
  };
  const init = (): P => ({ w: tw.random.normal(k[1]!, [3, 1]), b: tw.zeros([1]) });
  return { step, init };
}

const webgpu = await unavailable('webgpu', 'donation: skipping the webgpu part');

for (const backend of ['cpu', 'webgpu'] as const) {
  describe.skipIf(backend === 'webgpu' && webgpu !== undefined)(`donation on ${backend}`, () => {
    it('gives the same results as without donation, and the donated tensors cannot be read', async () => {
      await tw.setBackend(backend);
      const { step, init } = setup();
      const plain = tw.jit(step);
      const donating = tw.jit(step, { donate: [0], name: 'train' });
      let a = init(), b = init();
      for (let i = 0; i < 5; i++) {
        const ra = plain(a);
        const old = b;
        const rb = donating(b);
        expect(await rb.l.item()).toBe(await ra.l.item());
        expect(() => old.w.data()).toThrow(/was donated to the jitted function 'train'/);
        expect(() => tw.add(old.w, 1)).toThrow(/donated/);
        a = ra.p;
        b = rb.p;
      }
      expect(Array.from(await b.w.data())).toEqual(Array.from(await a.w.data()));
      await tw.setBackend('cpu');
    });

    it('scalars handed to users are their own (donating one leaves the others readable)', async () => {
      await tw.setBackend(backend);
      const a = tw.scalar(0), b = tw.scalar(0), c = tw.zeros([]);
      const inc = tw.jit((s: tw.Tensor<'f32'>) => s.add(1), { donate: [0] });
      expect(await inc(a).item()).toBe(1);
      expect(await b.item()).toBe(0);
      expect(await c.item()).toBe(0);
      expect(await tw.add(tw.ones([2]), 0).data()).toEqual(new Float32Array([1, 1]));
      await tw.setBackend('cpu');
    });

    it('rejects a donated tensor passed twice', async () => {
      await tw.setBackend(backend);
      const f = tw.jit((a: tw.Tensor<'f32'>, b: tw.Tensor<'f32'>) => tw.add(a, b), { donate: [0] });
      const t = tw.ones([3]);
      expect(() => f(t, t)).toThrow(/donated tensor f32\[3\] is passed more than once/);
      await tw.setBackend('cpu');
    });

    it.skipIf(backend !== 'webgpu')('recycles buffers without waiting for garbage collection', async () => {
      await tw.setBackend('webgpu');
      const { step, init } = setup();
      const donating = tw.jit(step, { donate: [0] });
      let p = init();
      for (let i = 0; i < 3; i++) p = donating(p).p;
      await p.w.data();
      const before = webgpuInstance()!.stats().liveBuffers;
      for (let i = 0; i < 50; i++) p = donating(p).p;
      await p.w.data();
      // the loss scalars returned each step are the only new allocations
      expect(webgpuInstance()!.stats().liveBuffers - before).toBeLessThanOrEqual(51);
      await tw.setBackend('cpu');
    });
  });
}
