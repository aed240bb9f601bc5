// What the GPU machine checks of the WebGPU backend, in one device call (it has no vitest and no npm): the
// conformance suite on Dawn's hardware adapter against the float64 cpu oracle (jit and eager, f32 and f16 where
// the adapter has shader-f16, every GPU matmul tile) and the jitted-step buffer check. The benchmark is
// bench/webgpu.ts (its --tiles rows time each matmul tile).
//
//   ../shared/device/pack.sh bench/device-webgpu.ts bench/webgpu.ts
//   device: bash .device/run.sh device-webgpu --out $OUT [--budget 200] [--only NAME,...]
//           bash .device/run.sh webgpu --out $OUT [--tiles]
//
// Prints one line per case (ok / FAIL with the differences) and a summary; exits 1 when anything failed.

import { create, globals } from 'webgpu';
import * as tw from '../index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { MATMUL_TILES, tileName } from '../backends/webgpu/wgsl.ts';
import { casesFor, type Float, jittedStepCheck, runCase } from '../test/conformance/harness.ts';
import { check, elapsed, finish, gc, only, say } from './device-report.ts';
import { opt } from './options.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
const budgetS = Number(opt('budget') ?? 200);
const overBudget = () => elapsed() > budgetS;

async function main(): Promise<number> {
  try {
    await tw.setBackend('webgpu');
  } catch (e) {
    say(`webgpu backend unavailable: ${(e as Error).message}`);
    return 2;
  }
  const be = webgpuInstance()!;
  say(`adapter: ${be.device}${be.software ? ' (software)' : ''}; shader-f16: ${be.hasF16}`);
  const selected = (name: string) => !only || only.some((o) => name.includes(o));

  say(`\n## conformance against the float64 cpu oracle (budget ${budgetS} s)`);
  webgpuDebug.poison = true;
  for (const float of (be.hasF16 ? ['f32', 'f16'] : ['f32']) as Float[]) {
    for (const c of casesFor(float).filter((c) => selected(c.name))) {
      await check(`${c.name} [${float}]`, async () => {
        await tw.setBackend('webgpu');
        return runCase(c, 'webgpu', float);
      }, { skip: overBudget() });
    }
  }
  const matmuls = casesFor('f32').filter((c) => /matmul|@|einsum|attention|MLP/.test(c.name) && selected(c.name));
  for (const tile of MATMUL_TILES) {
    await check(`every matmul case with tile ${tileName(tile)} [f32, jit]`, async () => {
      webgpuDebug.matmulTile = tile;
      try {
        const out: string[] = [];
        for (const c of matmuls) out.push(...(await runCase(c, 'webgpu', 'f32', ['jit'])));
        return out;
      } finally {
        webgpuDebug.matmulTile = undefined;
      }
    }, { skip: overBudget() });
  }
  webgpuDebug.poison = false;
  await check('jitted step: no recompilation, no growth in live buffers', async () => {
    await tw.setBackend('webgpu');
    return jittedStepCheck(() => be.stats().liveBuffers, gc);
  });
  return 0;
}

finish('device-webgpu.txt', await main());
