// setBackend('webgpu', { device }): a program (or page) hands the backend a GPUDevice it opened itself.
import * as tw from 'twinflow';
import { afterAll, expect, it } from 'vitest';
import { deviceRequest } from '../../backends/webgpu/device.ts';
import { unavailable } from '../support/backend-probe.ts';

const reason = await unavailable('webgpu', 'own device: skipping');

afterAll(() => tw.setBackend('cpu'));

it.skipIf(reason !== undefined)('the webgpu backend runs on a device the caller opened, and says so', async () => {
  const dawn = (await import('webgpu')) as unknown as { create(a: string[]): GPU };
  const gpu = dawn.create([]);
  const adapter = (await gpu.requestAdapter())!;
  const device = await adapter.requestDevice(deviceRequest(adapter));
  const choice = await tw.setBackend('webgpu', { device });
  expect(choice).toEqual({ name: 'webgpu', reason: "requested, on the caller's device" });
  expect(tw.backendChoice().device).toMatch(/^webgpu \(/);
  const x = tw.arange(8).cast('f32');
  expect(Array.from(await tw.jit((a: tw.Tensor<'f32'>) => a.mul(2).add(1))(x).data())).toEqual([1, 3, 5, 7, 9, 11, 13, 15]);
  device.destroy();
});

it('only webgpu takes a device, and auto must name it', async () => {
  const device = {} as GPUDevice;
  await expect(tw.setBackend('cpu', { device })).rejects.toThrow(/setBackend\('cpu', \{ device \}\): only webgpu takes a device/);
  await expect(tw.setBackend('auto', { device })).rejects.toThrow(/name the backend the device is for/);
});
