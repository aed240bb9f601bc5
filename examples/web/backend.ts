// Choosing the page's backend: WebGPU on this page's own device when the browser has an adapter, else the
// cpu backend with a notice saying why.

import * as tw from '../../web.ts';
import { webgpuDebug } from '../../backends/webgpu/index.ts';

export interface PageBackend {
  name: 'webgpu' | 'cpu';
  adapter: string;
  /** Why the page runs on the cpu backend, when it does. */
  notice?: string;
}

export async function startBackend(): Promise<PageBackend> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (!adapter) {
    await tw.setBackend('cpu');
    const why = gpu ? 'this browser offers WebGPU but no adapter (GPU blocked or unsupported)' : 'this browser has no WebGPU (navigator.gpu is missing)';
    return { name: 'cpu', adapter: 'none', notice: `No WebGPU: ${why}. Running on the cpu backend (JavaScript), which is much slower. Chrome or Edge 113+, or Firefox and Safari with WebGPU enabled, run this page on the GPU.` };
  }
  // ?kernels=gpu renders the GPU kernel shapes even on a CPU adapter (bench/web.ts compares the two)
  webgpuDebug.gpuKernels = new URLSearchParams(location.search).get('kernels') === 'gpu';
  const device = await adapter.requestDevice(tw.deviceRequest(adapter));
  await tw.setBackend('webgpu', { device });
  const i = adapter.info;
  return { name: 'webgpu', adapter: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unnamed adapter' };
}
