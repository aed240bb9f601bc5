// The driver-API bindings (backends/cuda/driver.ts) against a fake libcuda.so.1 (test/support/fake-libcuda.c),
// in child processes that load it through TWINFLOW_LIBCUDA: the no-GPU error and the fallback of 'auto', device
// properties, host<->device copies of every dtype, launches whose kernel parameters arrive as device pointers,
// events, and a failing launch reported with the CUDA error and the kernel source. test/cuda-ffi.test.ts checks
// every launch of whole programs. Skipped with the reason printed without a C compiler or libnvrtc (the backend
// compiles at creation).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { roundBF16 } from '../dsl/float-formats.ts';
import { fakeDriverOrSkip } from './support/fake-libcuda.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinflow-fakecuda-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const { lib = '', reason } = fakeDriverOrSkip();
if (reason) console.warn(`cuda-driver: skipping: ${reason}`);

/** Runs an ES module snippet with the fake driver as TWINFLOW_LIBCUDA; returns its last JSON line. */
function child(script: string, env: Record<string, string> = {}): { out: Record<string, unknown>; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, TWINFLOW_LIBCUDA: lib, TWINFLOW_PTX_CACHE: path.join(dir, 'ptx'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  return { out: line ? JSON.parse(line) : {}, stderr: r.stderr, status: r.status };
}

describe.skipIf(reason !== undefined)('cuda driver bindings (fake libcuda.so.1)', () => {
  it("a driver without a GPU is a clear 'no CUDA device' error, and 'auto' moves on", () => {
    const { out } = child(
      `import * as tw from 'twinflow';
       let err; try { await tw.setBackend('cuda'); } catch (e) { err = e.detail; }
       const auto = await tw.setBackend('auto');
       console.log(JSON.stringify({ err, auto }));`,
      { FAKE_CUDA_FAIL: 'cuInit:100' },
    );
    expect(out.err).toBe('no CUDA device: the NVIDIA driver is installed but cuInit found no GPU (CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected)');
    expect((out.auto as { name: string; reason: string }).reason).toMatch(/^auto: cuda unavailable \(no CUDA device: /);
  });

  it('opens the device, copies every dtype both ways, launches with device pointers, times with events', () => {
    const { out, stderr } = child(
      `import * as tw from 'twinflow';
       import koffi from 'koffi';
       import { cudaInstance } from './backends/cuda/index.ts';
       const choice = await tw.setBackend('auto');
       const be = cudaInstance();
       const data = {};
       for (const [d, v] of [['f32', [1.5, -2, 3e-8]], ['f16', [1.5, -2, 65504]], ['bf16', [1.5, -2, 3.0e38]], ['i32', [-7, 0, 2147483647]], ['u32', [0, 1, 4294967295]], ['bool', [1, 0, 1]]]) {
         data[d] = Array.from(await tw.tensor(v, d).data());
       }
       const f = tw.jit((x) => [x, tw.add(x, 1)]);
       const [same, plus] = f(tw.tensor([1, 2]));
       const copied = Array.from(await same.data());
       await plus.data();
       const launches = koffi.load(process.env.TWINFLOW_LIBCUDA).func('int fakeLaunches()')();
       console.log(JSON.stringify({ choice: choice.name, device: be.device, data, copied, launches, ms: be.time(() => {}, 1), stats: be.stats() }));`,
    );
    expect(stderr).toBe('');
    expect(out.choice).toBe('cuda');
    expect(out.device).toMatch(/^cuda \(Fake GPU, sm_90, 132 SMs, driver 13\.0, NVRTC \d+\.\d+\)$/);
    expect(out.data).toEqual({
      f32: [1.5, -2, Math.fround(3e-8)], f16: [1.5, -2, 65504], bf16: [1.5, -2, roundBF16(3.0e38)], i32: [-7, 0, 2147483647], u32: [0, 1, 4294967295], bool: [1, 0, 1],
    });
    expect(out.copied).toEqual([1, 2]);
    expect(out.launches).toBeGreaterThanOrEqual(1); // the jitted add (tensor creation may launch too)
    expect(out.ms).toBe(1.5);
    expect((out.stats as { modules: number }).modules).toBeGreaterThanOrEqual(1);
  });

  it('a failing launch names the call, the CUDA error and the kernel, with its source', () => {
    const { out } = child(
      `import * as tw from 'twinflow';
       await tw.setBackend('cuda');
       let msg; try { tw.add(tw.tensor([1, 2]), 1); } catch (e) { msg = e.message; }
       console.log(JSON.stringify({ msg }));`,
      { FAKE_CUDA_FAIL: 'cuLaunchKernel:700' },
    );
    const msg = out.msg as string;
    expect(msg).toMatch(/^cuda: cuLaunchKernel \(k0_map = tw_map_[0-9a-f]{8}\) failed: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered/);
    expect(msg).toContain('--- source ---');
    expect(msg).toMatch(/extern "C" __global__ void __launch_bounds__\(256\) tw_map_[0-9a-f]{8}\(float\* __restrict__ a0, const float\* __restrict__ a1\)/);
  });
});
