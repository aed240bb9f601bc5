// MeanFlow through the MMDiT (joint attention included) under jit: the loss with the tiny config, and the
// prediction u and target v − (t − r)·du/dt that its jvp of the network gives, on WebGPU (Dawn over lavapipe)
// against the float64 cpu oracle with checkBackends; for CUDA, every kernel of the program compiled to PTX by
// NVRTC, and (opt-in, minutes) the generated CUDA C run on the CPU emulation of test/support/cuda-emulator.ts
// against the oracle. What this machine cannot run is skipped with the reason printed. (The loss's gradients, through the jvp's primal, are checked on small MLPs in meanflow.test.ts;
// compiling them too for lavapipe takes minutes.)

import * as tw from 'twinflow';
import { checkBackends } from 'twinflow/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CudaBackend } from '../../backends/cuda/index.ts';
import { nvrtc } from '../../backends/cuda/nvrtc.ts';
import { registerBackend } from '../../dsl/backend.ts';
import { mmditConfigs } from '../../models/backbones/configs.ts';
import { type MmditCond, type MmditParams, mmdit, mmditSpec } from '../../models/backbones/mmdit.ts';
import { meanflow, meanflowLoss, meanflowTarget } from '../../models/objectives/meanflow.ts';
import { initParams } from '../../models/nn/params.ts';
import { unavailable } from '../support/backend-probe.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from '../support/cuda-emulator.ts';

let noNvrtc: string | undefined;
try {
  nvrtc();
} catch (e) {
  noNvrtc = (e as Error).message;
  console.warn(`meanflow cuda compile: skipping: ${noNvrtc}`);
}
const full = process.env.TWINFLOW_CUDA_EMULATOR === 'full';

type F = tw.Tensor<'f32'>;
// not zero-initialised: a zero output layer would make u, its jvp and most gradients exactly 0
const cfg = { ...mmditConfigs.tiny, zeroInit: false };
const net = mmdit(cfg);
const objective = { ...meanflow, flowShare: 0.5 }; // row 0: r = t; row 1: r < t

/** The loss, and u and the target at x_t = x (one jvp of the MMDiT each). */
const meanflowParts = (p: MmditParams, x: F, z: F, t: F, r: F, tokens: F, mask: tw.Tensor<'bool'>) => {
  const cond: MmditCond = { tokens, mask };
  const { loss } = meanflowLoss(net, p, { x, cond, nullCond: cond }, { z, t, r }, objective);
  return { loss, ...meanflowTarget(net, p, x, t, r, z.sub(x), cond) };
};
const program = tw.jit(meanflowParts, { name: 'meanflowMmdit' });

function inputs(): Parameters<typeof meanflowParts> {
  const [kp, kx, kz, kt] = tw.random.split(tw.random.key(7), 4);
  const shape = [2, cfg.channels, cfg.size, cfg.size];
  return [
    initParams(mmditSpec(cfg), kp) as MmditParams,
    tw.random.normal(kx, shape), tw.random.normal(kz, shape),
    tw.tensor([0.7, 0.9]), tw.tensor([0.7, 0.2]),
    tw.random.normal(kt, [2, 3, cfg.textDim]), tw.tensor([[true, true, false], [true, false, false]]),
  ];
}

describe('jit(MeanFlow loss, u and target) through the tiny MMDiT', () => {
  it('webgpu', async (ctx) => {
    const why = await unavailable('webgpu', 'meanflow on webgpu: skipping');
    if (why) return ctx.skip();
    const results = await checkBackends(program, inputs(), { backends: ['webgpu'] });
    expect(results.map((r) => r.status)).toEqual(['passed']);
  }, 240_000);

  it('cuda: every kernel of the program compiles to PTX with NVRTC (sm_90)', (ctx) => {
    if (noNvrtc) return ctx.skip();
    const { kernels } = tw.compile(meanflowParts, inputs(), { target: 'cuda' });
    expect(kernels.length).toBeGreaterThan(10);
    for (const k of kernels) expect(k.ptx, k.name).toMatch(/\.entry /);
  }, 240_000);

  // g++ builds each kernel for the emulator: minutes on a 2-core machine, so opt-in as the emulator's full suite is
  describe('cuda: runs the generated CUDA C on the emulated device (TWINFLOW_CUDA_EMULATOR=full)', () => {
    const why = emulatorUnavailable() ?? (full ? undefined : 'set TWINFLOW_CUDA_EMULATOR=full to run (g++ builds each kernel: minutes)');
    if (why) console.warn(`meanflow on emulated cuda: skipping: ${why}`);
    beforeAll(() => {
      // this file's module graph gets its own registry: 'cuda' here is the emulated device
      let backend: CudaBackend | undefined;
      registerBackend({ name: 'cuda', create: async () => (backend ??= new CudaBackend(new EmulatedCudaDevice())) });
    });
    afterAll(async () => {
      await tw.setBackend('cpu');
    });
    it.skipIf(why !== undefined)('matches the f64 cpu oracle', async () => {
      const results = await checkBackends(program, inputs(), { backends: ['cuda'] });
      expect(results.map((r) => r.status)).toEqual(['passed']);
    }, 1_800_000);
  });
});
