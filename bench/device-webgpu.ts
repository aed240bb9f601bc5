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

import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { create, globals } from 'webgpu';
import * as tw from '../index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import { MATMUL_TILES, type MatmulTile } from '../backends/webgpu/wgsl.ts';
import { casesFor, type Float, jittedStepCheck, runCase } from '../test/conformance/harness.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
process.env.XDG_RUNTIME_DIR ??= '/tmp';
Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const budgetS = Number(opt('budget') ?? 200);
const only = opt('only')?.split(',');
const outDir = opt('out');
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1e3;
const report: string[] = [];
const say = (s: string) => {
  console.log(s);
  report.push(s);
};

let failed = 0, passed = 0, skipped = 0;
const failures: string[] = [];
async function check(label: string, body: () => Promise<string[]>): Promise<void> {
  if (elapsed() > budgetS) {
    skipped++;
    return;
  }
  const t = performance.now();
  let f: string[];
  try {
    f = await body();
  } catch (e) {
    f = [`threw: ${(e as Error).message.split('\n').slice(0, 12).join('\n    ')}`];
  }
  const ms = (performance.now() - t).toFixed(0);
  if (f.length) {
    failed++;
    failures.push(label);
    say(`FAIL ${label} (${ms} ms)\n    ${f.join('\n    ')}`);
  } else {
    passed++;
    say(`ok   ${label} (${ms} ms)`);
  }
}

const tileName = (t: MatmulTile) => `${t.bm}×${t.bn}×${t.bk}`;

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
      });
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
    });
  }
  webgpuDebug.poison = false;
  await check('jitted step: no recompilation, no growth in live buffers', async () => {
    await tw.setBackend('webgpu');
    return jittedStepCheck(() => be.stats().liveBuffers, gc);
  });
  if (skipped) say(`(${skipped} check(s) not run: over the ${budgetS} s budget)`);

  return 0;
}

const code = await main();
say(`\n${passed} passed, ${failed} failed in ${elapsed().toFixed(0)} s${failures.length ? `\nfailed: ${failures.join('; ')}` : ''}`);
if (outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'device-webgpu.txt'), report.join('\n') + '\n');
}
// Dawn's Node bindings keep the process alive while devices exist
process.exit(code || (failed ? 1 : 0));
