// Loading koffi (prebuilt FFI, no native build step) without a static import, so that importing twinflow in a
// browser or without the package installed still works: only creating the cuda backend needs it.

import type * as Koffi from 'koffi';

export type KoffiModule = typeof Koffi;

let koffiModule: KoffiModule | undefined;

/** Node built-ins through getBuiltinModule keep this file importable in a browser bundle. */
export function nodeModule<T>(name: string): T {
  const p = (globalThis as { process?: { getBuiltinModule?(m: string): unknown } }).process;
  if (!p?.getBuiltinModule) throw new Error(`the cuda backend needs Node.js (>= 20.16) for ${name}`);
  return p.getBuiltinModule(name) as T;
}

export function koffi(): KoffiModule {
  if (!koffiModule) {
    const { createRequire } = nodeModule<typeof import('node:module')>('node:module');
    try {
      koffiModule = createRequire(import.meta.url)('koffi') as KoffiModule;
    } catch (e) {
      throw new Error(`the npm package 'koffi' (FFI for NVRTC and the CUDA driver) could not be loaded: ${(e as Error).message}`);
    }
  }
  return koffiModule;
}
