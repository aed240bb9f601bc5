// The browser demo against Node on CPU WebGPU adapters (`npm run bench:web`): bundle sizes, the latency of
// 64 MNIST digits and of 2,048 2-D points at 1 NFE (first call with compilation, then steady state), and
// training steps per second (the page's train-in-the-tab against the same step in Node), each with the
// kernel shapes for CPU adapters and for GPUs. Chromium runs WebGPU on SwiftShader, Node on Mesa lavapipe.
//   npm run bench:web              everything (Chromium needs /usr/bin/chromium)
//   tsx bench/web.ts node cpu|gpu  the Node half for one kernel shape (run in a fresh process per shape)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = path.resolve(import.meta.dirname, '..');
const REPEATS = 5;
// steps 10 to 50: after the step's compilation, before step 50's held-out check and samples (which compile)
const TRAIN_STEPS = 40;
type Row = { where: string; kernels: string; firstMnist: number; mnist: number; first2d: number; points2d: number; stepsPerSec: number };
const median = (v: number[]) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function serve(dir: string): Promise<{ server: Server; origin: string }> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x').pathname;
    try {
      const body = await readFile(path.join(dir, url === '/' ? 'index.html' : url));
      res.writeHead(200, { 'content-type': url.endsWith('.js') ? 'text/javascript' : url.endsWith('.html') || url === '/' ? 'text/html' : 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The Node half: the page's own modules (generate, TabTrainer) on Dawn over lavapipe. */
async function nodeRow(kernels: string, origin: string): Promise<Row> {
  const tw = await import('../index.ts');
  const { webgpuDebug } = await import('../backends/webgpu/index.ts');
  webgpuDebug.gpuKernels = kernels === 'gpu';
  await tw.setBackend('webgpu');
  const { loadRun } = await import('../examples/web/run.ts');
  const { generate } = await import('../models/twinflow/generate.ts');
  const { TabTrainer } = await import('../examples/web/train.ts');
  const time = async (run: Awaited<ReturnType<typeof loadRun>>, n: number, prompt?: string) => {
    const t0 = performance.now();
    await (await generate(run.model, run.config, run.ema, 1, n, Array.from({ length: n }, (_, i) => i % 10), prompt, 0)).data();
    return performance.now() - t0;
  };
  const [mnist, board] = [await loadRun(`${origin}/runs/mnist/`), await loadRun(`${origin}/runs/checkerboard/`)];
  const firstMnist = await time(mnist, 64, 'seven');
  const repeat = async (f: () => Promise<number>) => {
    const v: number[] = [];
    for (let i = 0; i < REPEATS; i++) v.push(await f());
    return median(v);
  };
  const mnistMs = await repeat(() => time(mnist, 64, 'seven'));
  const first2d = await time(board, 2048);
  const points2d = await repeat(() => time(board, 2048));
  const trainer = new TabTrainer({ onLoss() {}, onSamples() {}, onStatus() {} });
  void trainer.start();
  while (trainer.steps < 10) await new Promise((r) => setTimeout(r, 5)); // compiled and warm
  const [s0, t0] = [trainer.steps, performance.now()];
  while (trainer.steps < s0 + TRAIN_STEPS) await new Promise((r) => setTimeout(r, 5));
  const stepsPerSec = ((trainer.steps - s0) * 1000) / (performance.now() - t0);
  await trainer.pause();
  return { where: 'Node, Dawn on lavapipe', kernels, firstMnist, mnist: mnistMs, first2d, points2d, stepsPerSec };
}

async function chromiumRow(kernels: string, origin: string): Promise<Row> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--disable-gpu-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/?kernels=${kernels}`);
    type G = { generated?: { run: string; ms: number; compiled: boolean }; errors: string[]; train?: { steps: number } };
    const state = () => page.evaluate(() => (globalThis as unknown as { twinflowDemo: G }).twinflowDemo.generated);
    const until = (run: string, count: number) =>
      page.waitForFunction(([r, c]) => {
        const d = (globalThis as unknown as { twinflowDemo: G & { count?: number } }).twinflowDemo;
        if (d.errors.length) throw new Error(d.errors[0]);
        return d.generated?.run === r && (d as { generations?: number }).generations === c;
      }, [run, count] as const, { timeout: 120_000 });
    // count generations through the facts line: each generation rewrites it
    await page.evaluate(() => {
      const d = (globalThis as unknown as { twinflowDemo: { generations?: number } }).twinflowDemo;
      d.generations = 0;
      // (this file is compiled without the DOM typings)
      const g = globalThis as unknown as { MutationObserver: new (f: () => void) => { observe(n: unknown, o: object): void }; document: { getElementById(id: string): unknown } };
      new g.MutationObserver(() => (d.generations = (d.generations ?? 0) + 1)).observe(g.document.getElementById('generate-facts'), { childList: true, characterData: true, subtree: true });
    });
    const generations = async (run: string, n: number): Promise<number[]> => {
      const ms: number[] = [];
      const start = await page.evaluate(() => (globalThis as unknown as { twinflowDemo: { generations?: number } }).twinflowDemo.generations ?? 0);
      for (let i = 1; i <= n; i++) {
        await page.click('#generate');
        await until(run, start + i);
        ms.push((await state())!.ms);
      }
      return ms;
    };
    await page.waitForFunction(() => (globalThis as unknown as { twinflowDemo: G }).twinflowDemo.generated !== undefined, undefined, { timeout: 120_000 });
    const first2d = (await state())!.ms; // the page's first generation: 2-D points, compiling
    const points2d = median(await generations('runs/checkerboard/', REPEATS));
    await page.fill('#seed', '0');
    const before = await page.evaluate(() => (globalThis as unknown as { twinflowDemo: { generations?: number } }).twinflowDemo.generations ?? 0);
    await page.selectOption('#run', 'runs/mnist/');
    await until('runs/mnist/', before + 1);
    const firstMnist = (await state())!.ms;
    await page.fill('#prompt', 'seven');
    const mnist = median(await generations('runs/mnist/', REPEATS));
    await page.click('#tab-train');
    await page.click('#train-toggle');
    const steps = () => page.evaluate(() => (globalThis as unknown as { twinflowDemo: G }).twinflowDemo.train!.steps);
    await page.waitForFunction(() => (globalThis as unknown as { twinflowDemo: G }).twinflowDemo.train!.steps >= 10, undefined, { timeout: 120_000 });
    const [s0, t0] = [await steps(), performance.now()];
    await page.waitForFunction((s) => (globalThis as unknown as { twinflowDemo: G }).twinflowDemo.train!.steps >= s, s0 + TRAIN_STEPS, { timeout: 300_000 });
    const stepsPerSec = ((await steps()) - s0) * 1000 / (performance.now() - t0);
    return { where: 'Chromium, SwiftShader', kernels, firstMnist, mnist, first2d, points2d, stepsPerSec };
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const [mode, kernels, origin] = process.argv.slice(2);
  if (mode === 'node') {
    console.log(JSON.stringify(await nodeRow(kernels!, origin!)));
    process.exit(0);
  }
  const { build } = await import('esbuild');
  const lib = await build({ entryPoints: [path.join(ROOT, 'web.ts')], bundle: true, platform: 'browser', format: 'esm', minify: true, write: false });
  const { build: vite } = await import('vite');
  const dist = path.join(tmpdir(), `twinflow-bench-web-${process.pid}`);
  await vite({ root: path.join(ROOT, 'examples/web'), logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
  const js = (await import('node:fs')).readdirSync(path.join(dist, 'assets')).filter((f) => f.endsWith('.js'));
  const page = Buffer.concat(await Promise.all(js.map((f) => readFile(path.join(dist, 'assets', f)))));
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`twinflow/web (web.ts, esbuild --minify): ${kb(lib.outputFiles[0]!.contents.length)}, gzipped ${kb(gzipSync(lib.outputFiles[0]!.contents).length)}`);
  console.log(`the page (vite build, all JS): ${kb(page.length)}, gzipped ${kb(gzipSync(page).length)}`);
  const { server, origin: o } = await serve(dist);
  const f = (v: number) => v.toFixed(1);
  console.log('\n| where | kernel shapes | 64 MNIST digits, 1 NFE: first call | steady | 2,048 2-D points, 1 NFE: first call | steady | train steps/s (2-D, batch 64) |');
  console.log('|---|---|---|---|---|---|---|');
  const print = (r: Row) => console.log(`| ${r.where} | ${r.kernels} | ${f(r.firstMnist)} ms | ${f(r.mnist)} ms | ${f(r.first2d)} ms | ${f(r.points2d)} ms | ${r.stepsPerSec.toFixed(1)} |`);
  for (const k of ['cpu', 'gpu']) print(await chromiumRow(k, o));
  for (const k of ['cpu', 'gpu']) {
    // asynchronously: this process serves the child's requests meanwhile
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', import.meta.filename, 'node', k, o], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() } });
    print(JSON.parse(stdout.trim().split('\n').at(-1)!));
  }
  server.close();
}

await main();
