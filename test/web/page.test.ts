// The browser demo (examples/web) in real Chromium: the system's /usr/bin/chromium (scripts/setup-system.sh)
// driven by playwright-core, WebGPU on SwiftShader, against the page built once here and served by a static
// server on 127.0.0.1. Screenshots of each test go to test-artifacts/web/ (git-ignored).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as tw from 'twinflow';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../models/checkpoint/fetch.ts';
import { initParams } from '../../models/nn/params.ts';
import { modelFor } from '../../models/registry.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { samplePlot } from '../../scripts/cli/sample.ts';

const CHROMIUM = '/usr/bin/chromium';
// PLATFORM.md's flags for WebGPU on SwiftShader in headless Chromium (Playwright adds --headless and a fresh profile).
const FLAGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--disable-gpu-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = path.resolve(import.meta.dirname, '../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/web');
const SHIPPED = path.join(ROOT, 'examples/web/public/runs');

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (scripts/setup-system.sh installs it)`;
if (missing) console.warn(`skipping the browser tests: ${missing}`);

type Demo = {
  backend?: { name: string; adapter: string; notice?: string };
  generated?: { run: string; nfe: number; seed: number; prompt: string; values: number[]; ms: number; compiled: boolean };
  errors: string[];
  train?: { steps: number; losses: number[]; heldOut: { step: number; loss: number }[]; isRunning: boolean };
};

/** What the page's scripts see (this file is compiled without the DOM typings). */
type Win = { twinflowDemo: Demo; document: { getElementById(id: string): Canvas } };
type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };

let tmp: string;
let server: Server;
let origin: string;
let browser: Browser;

/** Files from the built page, plus /corrupt/: the shipped 2-D run with one byte of its EMA flipped. */
async function serve(dist: string, corrupt: string): Promise<void> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.css': 'text/css' };
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x').pathname;
    const file = url.startsWith('/corrupt/') ? path.join(corrupt, url.slice(9)) : path.join(dist, url === '/' ? 'index.html' : url);
    try {
      const body = await readFile(path.normalize(file));
      res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A fresh page that fails on console errors and uncaught exceptions (collected, checked by the caller). */
async function open(query = ''): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1000, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${origin}/${query}`);
  return { page, errors };
}

const demo = (page: Page) => page.evaluate(() => JSON.parse(JSON.stringify((globalThis as unknown as Win).twinflowDemo, (k, v) => (k === 'train' && v ? { steps: v.steps, losses: v.losses, heldOut: v.heldOut, isRunning: v.running } : v))) as Demo);

/** Waits until the page shows a generation for `run` (or an error, which fails the wait with its text). */
async function generated(page: Page, run: string, nfe: number, seed: number, prompt?: string): Promise<NonNullable<Demo['generated']>> {
  await page.waitForFunction(([r, n, s, p]) => {
    const d = (globalThis as unknown as Win).twinflowDemo;
    const g = d.generated;
    return d.errors.length > 0 || (g?.run === r && g.nfe === n && g.seed === s && (p === undefined || g.prompt === p));
  }, [run, nfe, seed, prompt] as const, { timeout: 45_000 });
  const d = await demo(page);
  expect(d.errors).toEqual([]);
  return d.generated!;
}

/** Generates `run` at `nfe` and `seed` (and `prompt`, for MNIST) through the page's controls. */
async function choose(page: Page, run: string, nfe: number, seed: number, prompt?: string) {
  await page.selectOption('#nfe', String(nfe));
  await page.fill('#seed', String(seed));
  if ((await page.inputValue('#run')) !== run) {
    await page.selectOption('#run', run); // a change of run generates (and shows the prompt box for MNIST)
    await generated(page, run, nfe, seed);
  }
  if (prompt !== undefined) await page.fill('#prompt', prompt);
  await page.click('#generate');
  return generated(page, run, nfe, seed, prompt);
}

/** Distinct colours among the canvas's pixels (a blank canvas has one). */
const colours = (page: Page, id: string) =>
  page.evaluate((id) => {
    const c = (globalThis as unknown as Win).document.getElementById(id);
    const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < px.length; i += 4) seen.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
    return seen.size;
  }, id);

describe.skipIf(missing)('the browser demo in Chromium (WebGPU on SwiftShader)', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'twinflow-web-'));
    await mkdir(ARTIFACTS, { recursive: true });
    const dist = path.join(tmp, 'dist');
    await build({ root: path.join(ROOT, 'examples/web'), logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
    const corrupt = path.join(tmp, 'corrupt');
    await cp(path.join(SHIPPED, 'checkerboard'), corrupt, { recursive: true });
    const ema = path.join(corrupt, 'checkpoints/step-00001348/ema.safetensors');
    const bytes = await readFile(ema);
    bytes[bytes.length - 5]! ^= 0x40;
    await writeFile(ema, bytes);
    await serve(dist, corrupt);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads with no console errors, finds a WebGPU adapter and draws samples and a digit grid', async () => {
    const { page, errors } = await open();
    await generated(page, 'runs/checkerboard/', 1, 0);
    const d = await demo(page);
    expect(d.backend?.name).toBe('webgpu');
    expect(d.backend?.adapter).toMatch(/swiftshader/i);
    expect(await colours(page, 'generate-canvas')).toBeGreaterThan(2);
    await page.screenshot({ path: path.join(ARTIFACTS, 'generate-2d.png'), fullPage: true });
    const digits = await choose(page, 'runs/mnist/', 1, 0, 'a handwritten digit seven');
    expect(digits.values.length).toBe(64 * 32 * 32);
    expect(await colours(page, 'generate-canvas')).toBeGreaterThan(16);
    await page.screenshot({ path: path.join(ARTIFACTS, 'generate-mnist.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('a fixed seed and a shipped checkpoint give the values Node computes on the cpu backend', async () => {
    const { page, errors } = await open();
    await generated(page, 'runs/checkerboard/', 1, 0);
    const cases = [
      { run: 'runs/checkerboard/', nfe: 2, seed: 7, prompt: undefined },
      { run: 'runs/mnist/', nfe: 1, seed: 3, prompt: 'the number four' },
    ];
    await tw.setBackend('cpu');
    for (const c of cases) {
      const page1 = await choose(page, c.run, c.nfe, c.seed, c.prompt);
      const config = JSON.parse(await readFile(path.join(SHIPPED, c.run.slice(5), 'config.json'), 'utf8'));
      const model = modelFor(config);
      const { ema } = await loadCheckpoint(`${origin}/${c.run}checkpoints/${(await readFile(path.join(SHIPPED, c.run.slice(5), 'checkpoints/latest'), 'utf8')).trim()}/`, { ema: initParams(model.spec, tw.random.key(0)) });
      const n = model.kind === '2d' ? 2048 : 64;
      const labels = Array.from({ length: n }, (_, i) => i % 10);
      const node = await (await generate(model, config, ema, c.nfe, n, labels, c.prompt, c.seed)).data();
      expect(page1.values.length).toBe(node.length);
      let worst = 0;
      node.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - page1.values[i]!) / (1 + Math.abs(v)))));
      console.log(`${c.run} nfe ${c.nfe} seed ${c.seed}: browser WebGPU against Node cpu, max |Δ|/(1+|x|) = ${worst.toExponential(2)}`);
      // The noise is the same to ~1e-7 (random.normal avoids the device's log and cos), but the networks call
      // sin, cos and exp on the device (time embeddings, activations), whose f32 accuracy WGSL leaves to the
      // adapter: a few 1e-5 after a sampler on SwiftShader.
      expect(worst).toBeLessThan(1e-4);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'generate-matches-node.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('50 training steps in the tab lower the loss, and the downloaded checkpoint samples in Node', async () => {
    const { page, errors } = await open();
    await generated(page, 'runs/checkerboard/', 1, 0);
    await page.click('#tab-train');
    await page.click('#train-toggle');
    await page.waitForFunction(() => ((globalThis as unknown as Win).twinflowDemo.train!.steps >= 50), undefined, { timeout: 45_000 });
    await page.click('#train-toggle'); // pause
    await page.waitForFunction(() => !(globalThis as unknown as { twinflowDemo: { train: { running: boolean } } }).twinflowDemo.train.running);
    const { train } = await demo(page);
    const held = train!.heldOut;
    console.log(`in-tab training: ${train!.steps} steps; loss every 10: ${train!.losses.map((l) => l.toFixed(3)).join(' ')}; held-out: ${held.map((h) => `${h.step}: ${h.loss.toFixed(4)}`).join(', ')}`);
    expect(held[0]!.step).toBe(0);
    expect(held.at(-1)!.step).toBe(50);
    expect(held.at(-1)!.loss).toBeLessThan(held[0]!.loss); // the held-out flow-matching error (examples/web/train.ts)
    await page.screenshot({ path: path.join(ARTIFACTS, 'train.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#train-download')]);
    const file = path.join(tmp, 'tab.safetensors');
    await download.saveAs(file);
    await tw.setBackend('cpu');
    const [png] = await samplePlot({ ckpt: file, nfe: 1, out: path.join(ARTIFACTS, 'tab-checkpoint-samples.png'), points: 500 });
    expect(existsSync(png!)).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('without WebGPU the page says so and generates on the cpu backend', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.addInitScript(() => Object.defineProperty(Object.getPrototypeOf((globalThis as unknown as { navigator: object }).navigator), 'gpu', { get: () => undefined }));
    await page.goto(`${origin}/`);
    const g = await generated(page, 'runs/checkerboard/', 1, 0);
    expect((await demo(page)).backend?.name).toBe('cpu');
    expect(await page.textContent('#backend-notice')).toMatch(/^No WebGPU: this browser has no WebGPU \(navigator\.gpu is missing\)\. Running on the cpu backend/);
    expect(await page.isVisible('#backend-notice')).toBe(true);
    expect(g.values.length).toBe(2048 * 2);
    expect(await colours(page, 'generate-canvas')).toBeGreaterThan(2);
    await page.screenshot({ path: path.join(ARTIFACTS, 'no-webgpu.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('a corrupt checkpoint shows its reason on the page', async () => {
    const { page } = await open('?run=/corrupt/');
    await page.waitForFunction(() => (globalThis as unknown as Win).twinflowDemo.errors.length > 0, undefined, { timeout: 30_000 });
    const shown = await page.textContent('#generate-error');
    expect(shown).toMatch(/corrupt\/checkpoints\/step-00001348\/ema\.safetensors: the data does not match its SHA-256 checksum: the file is corrupt/);
    expect(await page.isVisible('#generate-error')).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'corrupt.png'), fullPage: true });
    await page.close();
  }, 60_000);
});
