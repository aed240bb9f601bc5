// What the GPU machine checks of the WebGPU backend, in one device call (it has no vitest and no npm): the
// conformance suite on Dawn's hardware adapter against the float64 cpu oracle (jit and eager, f32 and f16 where
// the adapter has shader-f16, every GPU matmul tile), the jitted-step buffer check, then a sweep of the matmul
// tiles at the benchmark's sizes (this project alone; `npm run bench:webgpu` compares with the peers).
//
//   ../shared/device/pack.sh bench/device-webgpu.ts bench/webgpu.ts
//   device: bash .device/run.sh device-webgpu --out $OUT [--budget 200] [--only NAME,...] [--no-sweep]
//
// Prints one line per case (ok / FAIL with the differences) and a summary; exits 1 when anything failed.

import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { create, globals } from 'webgpu';
import * as tw from '../index.ts';
import { webgpuDebug, webgpuInstance } from '../backends/webgpu/index.ts';
import type { MatmulTile } from '../backends/webgpu/wgsl.ts';
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

const TILES: MatmulTile[] = [64, 128].flatMap((bm) => [64, 128].flatMap((bn) => [8, 16].map((bk) => ({ bm, bn, bk }) as MatmulTile)));
const tileName = (t: MatmulTile) => `${t.bm}×${t.bn}×${t.bk}`;

/** A matmul shape of the sweep: C[m,n] = A·B with A stored [m,k], or [k,m] and transposed (a weight gradient). */
interface Shape { m: number; k: number; n: number; transA?: boolean }
const shapeName = (s: Shape) => `${s.m}×${s.k}${s.transA ? 'ᵀ' : ''}·${s.k}×${s.n}`;

/**
 * GFLOP/s of a jitted matmul with the given tile. A repetition of N runs ends in one readback, whose cost (tens of
 * ms for 64 MB) is the same for every N: the time per run is the slope between 2 and 12 runs (best of 3 each).
 */
async function timeMatmul(sh: Shape, tile: MatmulTile | undefined): Promise<number> {
  webgpuDebug.matmulTile = tile;
  try {
    const a = tw.random.normal(tw.random.key(1), sh.transA ? [sh.k, sh.m] : [sh.m, sh.k]), b = tw.random.normal(tw.random.key(2), [sh.k, sh.n]);
    const f = tw.jit((p: tw.Tensor<'f32'>, q: tw.Tensor<'f32'>) => (sh.transA ? tw.transpose(p) : p).matmul(q));
    await f(a, b).data();
    const rep = async (runs: number) => {
      let best = Infinity;
      for (let r = 0; r < 3; r++) {
        gc();
        await new Promise((res) => setTimeout(res, 0));
        const t = performance.now();
        let last: tw.Tensor | undefined;
        for (let i = 0; i < runs; i++) last = f(a, b);
        await last!.data();
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    const ms = Math.max((await rep(12)) - (await rep(2)), 1e-3) / 10;
    return (2 * sh.m * sh.n * sh.k) / (ms * 1e-3) / 1e9;
  } finally {
    webgpuDebug.matmulTile = undefined;
  }
}

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
  for (const tile of TILES) {
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

  if (!args.includes('--no-sweep')) {
    await tw.setBackend('webgpu');
    // the first timings of a cold GPU run at idle clocks: warm it up first
    for (const t = performance.now(); performance.now() - t < 1500; ) await timeMatmul({ m: 2048, k: 2048, n: 2048 }, undefined);
    say(`\n## matmul tiles, GFLOP/s (at ${elapsed().toFixed(0)} s)`);
    const shapes: Shape[] = [
      ...[512, 1024, 2048, 4096].map((n) => ({ m: n, k: n, n })),
      { m: 1024, k: 1024, n: 4096 }, // an MLP's forward
      { m: 1024, k: 4096, n: 1024, transA: true }, // its weight gradient
    ];
    say(`| tile | ${shapes.map(shapeName).join(' | ')} |`);
    say(`|---|${shapes.map(() => '---').join('|')}|`);
    for (const tile of [undefined, ...TILES]) {
      const cells: string[] = [];
      for (const sh of shapes) {
        try {
          cells.push((await timeMatmul(sh, tile)).toFixed(0));
        } catch (e) {
          cells.push(`failed: ${(e as Error).message.split('\n')[0]!.slice(0, 80)}`);
        }
      }
      say(`| ${tile ? tileName(tile) : 'default (matmulTile)'} | ${cells.join(' | ')} |`);
    }
  }
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
