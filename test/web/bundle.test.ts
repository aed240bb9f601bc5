// `twinflow/web` bundles for a browser as it is: esbuild with platform 'browser', no shims, no externals.
// Any Node built-in on the import graph (node:fs, node:url, crypto …) fails the build; the cuda backend
// (koffi, NVRTC) must not be in it either.
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

async function bundle(entry: string) {
  const r = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', minify: true, write: false, metafile: true, logLevel: 'silent' });
  return { inputs: Object.keys(r.metafile.inputs), bytes: r.outputFiles[0]!.contents.length };
}

describe('twinflow/web bundle', () => {
  it('web.ts bundles for the browser with nothing from node: and no cuda backend', async () => {
    const { inputs, bytes } = await bundle('web.ts');
    expect(inputs.filter((f) => f.startsWith('node:') || f.includes('backends/cuda/'))).toEqual([]);
    expect(inputs).toContain('backends/webgpu/index.ts');
    expect(bytes).toBeGreaterThan(50_000);
  });

  it('the page and the models it uses (registry, checkpoint codec and fetch, train step) bundle the same way', async () => {
    const { inputs } = await bundle('examples/web/main.ts');
    expect(inputs.filter((f) => f.startsWith('node:') || f.includes('backends/cuda/'))).toEqual([]);
    for (const f of ['models/registry.ts', 'models/checkpoint/codec.ts', 'models/checkpoint/fetch.ts', 'models/twinflow/train-step.ts']) expect(inputs).toContain(f);
  });

  it('a Node built-in on the graph fails the build (the check can fail)', async () => {
    await expect(bundle('models/checkpoint/checkpoint.ts')).rejects.toThrow(/node:/);
  });
});
