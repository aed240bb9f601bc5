// twinflow/web: the public API with the cpu and webgpu backends and nothing from `node:` on its import
// graph, for bundling into a page (test/web-bundle.test.ts checks that). WebGPU runs on navigator.gpu, or on
// a page's own device: `await setBackend('webgpu', { device })`.

import './backends/webgpu/index.ts';

export * from './core.ts';
export { deviceRequest } from './backends/webgpu/device.ts';
