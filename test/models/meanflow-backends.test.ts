// MeanFlow through the MMDiT (joint attention included) under jit: the loss with the tiny config, and the
// prediction u and target v − (t − r)·du/dt that its jvp of the network gives, on WebGPU (Dawn over lavapipe)
// and on the cuda backend (the generated CUDA C run on the CPU emulation of test/support/cuda-emulator.ts),
// against the float64 cpu oracle with checkBackends. A backend this machine cannot run is skipped with the
// reason printed. (The loss's gradients, through the jvp's primal, are checked on small MLPs in meanflow.test.ts;
// compiling them too for lavapipe takes minutes.)

import * as tw from 'twinflow';
import { checkBackends } from 'twinflow/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CudaBackend } from '../../backends/cuda/index.ts';
import { registerBackend } from '../../dsl/backend.ts';
import { mmditConfigs } from '../../models/backbones/configs.ts';
import { type MmditCond, type MmditParams, mmdit, mmditSpec } from '../../models/backbones/mmdit.ts';
import { meanflow, meanflowLoss, meanflowTarget } from '../../models/objectives/meanflow.ts';
import { initParams } from '../../models/nn/params.ts';
import { unavailable } from '../support/backend-probe.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from '../support/cuda-emulator.ts';

type F = tw.Tensor<'f32'>;
// not zero-initialised: a zero output layer would make u, its jvp and most gradients exactly 0
const cfg = { ...mmditConfigs.tiny, zeroInit: false };
const net = mmdit(cfg);
const objective = { ...meanflow, flowShare: 0.5 }; // row 0: r = t; row 1: r < t

/** The loss, and u and the target at x_t = x (one jvp of the MMDiT each). */
const program = tw.jit((p: MmditParams, x: F, z: F, t: F, r: F, tokens: F, mask: tw.Tensor<'bool'>) => {
  const cond: MmditCond = { tokens, mask };
  const { loss } = meanflowLoss(net, p, { x, cond, nullCond: cond }, { z, t, r }, objective);
  return { loss, ...meanflowTarget(net, p, x, t, r, z.sub(x), cond) };
}, { name: 'meanflowMmdit' });

function inputs(): Parameters<typeof program> {
  const [kp, kx, kz, kt] = tw.random.split(tw.random.key(7), 4);
  const shape = [2, cfg.channels, cfg.size, cfg.size];
  return [
    initParams(mmditSpec(cfg), kp) as MmditParams,
    tw.random.normal(kx, shape), tw.random.normal(kz, shape),
    tw.tensor([0.7, 0.9]), tw.tensor([0.7, 0.2]),
    tw.random.normal(kt, [2, 3, cfg.textDim]), tw.tensor([[true, true, false], [true, false, false]]),
  ];
}

describe('jit(MeanFlow loss and gradients) through the tiny MMDiT against the f64 cpu oracle', () => {
  it('webgpu', async (ctx) => {
    const why = await unavailable('webgpu', 'meanflow on webgpu: skipping');
    if (why) return ctx.skip();
    const results = await checkBackends(program, inputs(), { backends: ['webgpu'] });
    expect(results.map((r) => r.status)).toEqual(['passed']);
  }, 120_000);

  describe('cuda (the emulated device)', () => {
    const why = emulatorUnavailable();
    if (why) console.warn(`meanflow on emulated cuda: skipping: ${why}`);
    let backend: CudaBackend | undefined;
    beforeAll(() => {
      // this file's module graph gets its own registry: 'cuda' here is the emulated device
      registerBackend({ name: 'cuda', create: async () => (backend ??= new CudaBackend(new EmulatedCudaDevice())) });
    });
    afterAll(async () => {
      await tw.setBackend('cpu');
    });
    it.skipIf(why !== undefined)('runs the generated CUDA C', async () => {
      const results = await checkBackends(program, inputs(), { backends: ['cuda'] });
      expect(results.map((r) => r.status)).toEqual(['passed']);
    }, 300_000);
  });
});
