// The tiny MMDiT as tw.compile emits it for CUDA, executed: the cuda backend on the CPU emulation of the device
// (test/support/cuda-emulator.ts) runs the same graph, and every kernel tw.compile wrote is among the kernels it
// ran, whose result matches the float64 oracle.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { registerBackend } from '../dsl/backend.ts';
import { CudaBackend, cudaDebug } from '../backends/cuda/index.ts';
import { mmditConfigs } from '../models/backbones/configs.ts';
import { type MmditConfig, mmdit, mmditSpec } from '../models/backbones/mmdit.ts';
import { abstractParams, initParams } from '../models/nn/params.ts';
import { TOL } from './conformance/harness.ts';
import { EmulatedCudaDevice, emulatorUnavailable } from './support/cuda-emulator.ts';
import { expectClose } from './support/expect-close.ts';

const unavailable = emulatorUnavailable();
if (unavailable) console.warn(`compile-emulated: skipping: ${unavailable}`);

const device = new EmulatedCudaDevice();
let backend: CudaBackend | undefined;
// this file's module graph gets its own registry: 'cuda' here is the emulated device
registerBackend({ name: 'cuda', create: async () => (backend ??= new CudaBackend(device)) });

const cfg: MmditConfig = { ...mmditConfigs.tiny, zeroInit: false };
const text = 5;

describe.skipIf(unavailable !== undefined)('tw.compile output on an emulated device', () => {
  beforeAll(() => {
    cudaDebug.poison = true;
  });
  afterAll(async () => {
    cudaDebug.poison = false;
    await tw.setBackend('cpu');
  });

  it('the tiny MMDiT: every compiled kernel runs, and the forward matches the float64 oracle', async () => {
    const abstractArgs = [abstractParams(mmditSpec(cfg)), tw.abstract([1, cfg.channels, cfg.size, cfg.size]), tw.abstract([1]), tw.abstract([1]), { tokens: tw.abstract([1, text, cfg.textDim]), mask: tw.abstract([1, text], 'bool') }];
    const compiled = tw.compile(mmdit(cfg), abstractArgs, { target: 'cuda', arch: device.props.arch, ptx: false });

    const args = [initParams(mmditSpec(cfg), tw.random.key(0)), tw.random.normal(tw.random.key(1), [1, cfg.channels, cfg.size, cfg.size]), tw.tensor([0.6]), tw.tensor([0.2]),
      { tokens: tw.random.normal(tw.random.key(2), [1, text, cfg.textDim]), mask: tw.tensor([[true, true, true, false, false]]) }];
    const [leaves, def] = tw.treeFlatten(args);
    const host = await Promise.all(leaves.map(async (v) => ({ data: await v.data(), dtype: v.dtype, shape: v.shape })));
    const on = (float: 'f32' | 'f64') => tw.treeUnflatten(def, host.map((h) => tw.tensor(h.data, h.dtype === 'f32' ? float : h.dtype, h.shape))) as unknown[];
    const net = mmdit(cfg) as unknown as (...a: unknown[]) => tw.Tensor;
    const want = await net(...on('f64')).data();

    await tw.setBackend('cuda');
    const got = await tw.jit(net)(...on('f32')).data();
    const ran = new Set(backend!.compiledKernels().map((k) => `${k.rendered.entry}.cu`));
    for (const k of compiled.kernels) expect(ran, k.file).toContain(k.file);
    expectClose(got, want, TOL.f32.rtol, TOL.f32.atol);
  }, 50_000);
});
