// Getting a GPUDevice: the browser's navigator.gpu when there is one, else Dawn's Node bindings (npm `webgpu`).

export interface DeviceInfo {
  /** Held for the device's lifetime: Dawn's Node bindings free the instance when this is collected (absent for an adopted device outside a page). */
  gpu: GPU | undefined;
  device: GPUDevice;
  description: string;
  f16: boolean;
  subgroups: boolean;
  /** A CPU implementation (lavapipe, SwiftShader), which favours different kernel shapes. */
  software: boolean;
}

async function gpuObject(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let mod: { create(args: string[]): GPU; globals: Record<string, unknown> };
  try {
    // A computed specifier: bundlers for the browser must not follow it into Dawn's native Node module.
    const dawn = 'webgpu';
    mod = (await import(/* @vite-ignore */ dawn)) as unknown as typeof mod;
  } catch (e) {
    throw new Error(`the npm package 'webgpu' (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);
  return mod.create([]);
}

export async function openDevice(): Promise<DeviceInfo> {
  const gpu = await gpuObject();
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter (on Linux without a GPU, Mesa lavapipe from bookworm-backports provides one: see scripts/setup-system.sh)');
  const device = await adapter.requestDevice(deviceRequest(adapter));
  return { ...describeDevice(device, adapter.info), gpu };
}

/**
 * What the backend asks of an adapter: shader-f16 and subgroups where offered, and the adapter's own limits
 * for storage buffers and workgroups (the defaults are too small for fused training steps). A page that
 * opens its own device for setBackend('webgpu', { device }) should ask for the same.
 */
export function deviceRequest(adapter: GPUAdapter): GPUDeviceDescriptor {
  const l = adapter.limits;
  return {
    requiredFeatures: (['shader-f16', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    },
  };
}

/** A device the caller already holds (a page's own): its adapter facts come from `device.adapterInfo`. */
export function adoptDevice(device: GPUDevice): DeviceInfo {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  return { ...describeDevice(device, info), gpu };
}

function describeDevice(device: GPUDevice, info: GPUAdapterInfo | undefined): Omit<DeviceInfo, 'gpu'> {
  const facts = info ? [info.vendor, info.architecture, info.device].filter(Boolean) : ['adapter not described'];
  return {
    device,
    description: `webgpu (${facts.join(' ')})`,
    f16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    software: !!info && (info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description} ${info.architecture}`)),
  };
}
